//! The evaluation cache: network outputs by position key, so a position
//! reached again (a transposition in one tree, the same opening in many
//! games of a shard) is not sent to the network twice.
//!
//! A direct-mapped table of fixed size (KataGo's NN cache is the model):
//! a new entry replaces whatever held its slot, so memory is bounded and
//! the contents are a pure function of the order of insertions, which
//! keeps runs reproducible. A hit returns exactly what the network gave,
//! so with a deterministic network the search is unchanged by the cache.

/// Network outputs of up to `entries` positions.
pub struct EvalCache {
    keys: Vec<u128>,
    filled: Vec<bool>,
    values: Vec<f32>,
    /// `entries * action_dim` raw policy logits.
    logits: Vec<f32>,
    action_dim: usize,
}

impl EvalCache {
    /// A cache of `entries` (rounded up to a power of two) positions with
    /// `action_dim` logits each; `None` for 0 (caching off).
    pub fn new(entries: usize, action_dim: usize) -> Option<EvalCache> {
        if entries == 0 {
            return None;
        }
        let n = entries.next_power_of_two();
        Some(EvalCache {
            keys: vec![0; n],
            filled: vec![false; n],
            values: vec![0.0; n],
            logits: vec![0.0; n * action_dim],
            action_dim,
        })
    }

    /// Positions it holds at most.
    pub fn entries(&self) -> usize {
        self.keys.len()
    }

    fn slot(&self, key: u128) -> usize {
        let folded = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (folded.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 32) as usize & (self.keys.len() - 1)
    }

    /// The slot holding `key`, if cached.
    pub fn find(&self, key: u128) -> Option<usize> {
        let s = self.slot(key);
        (self.filled[s] && self.keys[s] == key).then_some(s)
    }

    /// The logits and value in `slot` (from [`EvalCache::find`]).
    pub fn get(&self, slot: usize) -> (&[f32], f32) {
        let d = self.action_dim;
        (&self.logits[slot * d..(slot + 1) * d], self.values[slot])
    }

    /// Stores a position's outputs, replacing its slot's previous entry.
    pub fn put(&mut self, key: u128, logits: &[f32], value: f32) {
        let s = self.slot(key);
        let d = self.action_dim;
        self.keys[s] = key;
        self.filled[s] = true;
        self.values[s] = value;
        self.logits[s * d..(s + 1) * d].copy_from_slice(logits);
    }
}

/// Where each leaf of a wave gets its outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    /// A cache slot, as it was before this wave's insertions.
    Cached(usize),
    /// A row of the network batch (shared by duplicates within the wave).
    Network(usize),
}

/// Plans a wave: each key is served from the cache, or by the network
/// row of its first occurrence in the wave. Returns each leaf's source and
/// the leaf index behind each network row, in row order.
pub fn plan(cache: &EvalCache, keys: &[u128]) -> (Vec<Source>, Vec<usize>) {
    let mut first = std::collections::HashMap::with_capacity(keys.len());
    let mut rows = Vec::new();
    let sources = keys
        .iter()
        .enumerate()
        .map(|(i, &key)| match cache.find(key) {
            Some(slot) => Source::Cached(slot),
            None => Source::Network(*first.entry(key).or_insert_with(|| {
                rows.push(i);
                rows.len() - 1
            })),
        })
        .collect();
    (sources, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_return_what_was_stored_and_misses_are_planned_once() {
        let mut c = EvalCache::new(5, 3).unwrap();
        assert_eq!(c.keys.len(), 8);
        c.put(7, &[1.0, 2.0, 3.0], 0.5);
        let slot = c.find(7).unwrap();
        assert_eq!(c.get(slot), (&[1.0, 2.0, 3.0][..], 0.5));
        assert_eq!(c.find(8), None);
        // Keys 8 and 9 miss; the second 8 shares the first one's row.
        let (src, rows) = plan(&c, &[8, 7, 9, 8]);
        assert_eq!(
            src,
            vec![
                Source::Network(0),
                Source::Cached(slot),
                Source::Network(1),
                Source::Network(0)
            ]
        );
        assert_eq!(rows, vec![0, 2]);
    }

    #[test]
    fn a_new_entry_replaces_its_slot_and_memory_stays_bounded() {
        let mut c = EvalCache::new(4, 1).unwrap();
        for k in 0..1000u128 {
            c.put(k << 70 | k, &[k as f32], 0.0);
        }
        assert_eq!(c.logits.len(), 4);
        let held = (0..1000u128)
            .filter(|k| c.find(k << 70 | k).is_some())
            .count();
        assert!((1..=4).contains(&held), "{held}");
        assert!(EvalCache::new(0, 7).is_none());
    }
}
