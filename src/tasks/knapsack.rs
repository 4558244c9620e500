//! 0/1 knapsack: pick items of maximum total value within a weight capacity.
//!
//! # Rules
//!
//! A task lists `n` items (1..=[`MAX_ITEMS`]), each with a weight and a
//! value, and a capacity. Items are chosen in ascending index order: action
//! `i` takes item `i` (0-based) and thereby passes over every item before it,
//! so each subset has exactly one action sequence and the search sees no
//! permutation duplicates. Taking item `i` is legal when `i` is after the last
//! item taken and its weight fits in the remaining capacity. The episode ends
//! when no item can be taken any more.
//!
//! The verifier ([`Knapsack::is_success`]) judges the final state alone: the
//! chosen weight is within capacity and the chosen value equals the optimum,
//! which the spec stores (and [`Knapsack::from_spec`] re-checks with the
//! exact solver). Values are at least 1, so once the optimum is reached no
//! later item fits and the episode is over: there is no need for a "stop"
//! action, and every episode ends within `n` steps.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0). The item count
//! grows smoothly, `n = 4 + round(12 * difficulty)` (4..=16); the band picks
//! the other parameters. Weights `w` are uniform in the band's range; values
//! are uncorrelated (uniform in the same range), weakly correlated
//! (`w + U(-w/4, w/4)`, at least 1) or strongly correlated (`w + K`), the
//! classic hard family where the value/weight ratio misleads. The capacity is
//! `ratio * total weight` (rounded, at least the heaviest item). Tasks where
//! all items fit are redrawn; from the middle band on, so are tasks that the
//! greedy "best value/weight ratio first" rule solves.
//!
//! | difficulty   | weights  | values            | capacity ratio | greedy must fail |
//! |--------------|----------|-------------------|----------------|------------------|
//! | [0.0, 0.2)   | 1..=10   | uncorrelated      | 0.50           | no               |
//! | [0.2, 0.4)   | 1..=20   | uncorrelated      | 0.40..=0.60    | no               |
//! | [0.4, 0.6)   | 1..=30   | weakly correlated | 0.40..=0.60    | yes              |
//! | [0.6, 0.8)   | 5..=50   | `w + 10`          | 0.35..=0.65    | yes              |
//! | [0.8, 1.0]   | 10..=100 | `w + 20`          | 0.30..=0.70    | yes              |
//!
//! Rejected draws are retried from the same seeded stream, so a task is a
//! pure function of `(difficulty, seed)`. After [`MAX_ATTEMPTS`] misses the
//! last draw that at least leaves something to choose is kept; the tests
//! check that this fallback does not fire in practice.
//!
//! The reference solution is the optimal set with the fewest items, e.g.
//! `"take items 1, 4, 5 (weight 17/20, value 31)"` (1-based), and
//! `optimal_steps` is its size: the shortest successful episode.
//!
//! # Observation ([`OBS_DIM`] = 150 floats, all within `[0, 4]`)
//!
//! With `C` the capacity, `R` the remaining capacity, `V*` the optimum and
//! `LP(j, r)` the fractional-knapsack bound of the items after `j` within `r`:
//!
//! | index      | feature                                                     |
//! |------------|-------------------------------------------------------------|
//! | 0          | `R / C`                                                     |
//! | 1          | value so far / `V*`                                         |
//! | 2          | `min((value + LP(last taken, R)) / V*, 4)`: below 1 means the optimum is out of reach |
//! | 3          | items passed over or taken / `n`                            |
//! | 4          | `n / 16`                                                    |
//! | 5          | items taken / `n`                                           |
//! | 6 + 9i ..  | item `i` (0..16): present, taken, still available, fits now, `min(w/C, 4)`, `min(v/V*, 4)`, ratio / best ratio, `min(w/R, 4)` (4 when `R = 0`), bound if taken now `min((value + v + LP(i, R - w)) / V*, 4)` (0 unless it fits) |
//!
//! The item block lines up with the action space (action `i` = item `i`), so
//! a small MLP can read "which item keeps the optimum in reach" directly.

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Most items in a task; also the action space (one action per item).
pub const MAX_ITEMS: usize = 16;
/// Action `i` takes item `i`.
pub const ACTION_DIM: usize = MAX_ITEMS;
/// Largest weight accepted in a spec.
pub const MAX_WEIGHT: u32 = 1000;
/// Largest value accepted in a spec.
pub const MAX_VALUE: u32 = 1000;
/// Largest capacity accepted in a spec (every item fits at once).
pub const MAX_CAPACITY: u32 = MAX_ITEMS as u32 * MAX_WEIGHT;
/// Generator retries before settling for the last usable draw.
pub const MAX_ATTEMPTS: usize = 200;

const GLOBAL_FEATURES: usize = 6;
const ITEM_FEATURES: usize = 9;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = GLOBAL_FEATURES + MAX_ITEMS * ITEM_FEATURES;

/// A live knapsack episode. Fixed-size with no heap data, so MCTS can clone
/// it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knapsack {
    n: u8,
    weights: [u32; MAX_ITEMS],
    values: [u32; MAX_ITEMS],
    capacity: u32,
    optimum: u32,
    /// Item indices sorted by value/weight ratio, best first (for the bounds).
    by_ratio: [u8; MAX_ITEMS],
    /// Bit `i` set when item `i` is taken.
    taken: u16,
    /// Items before `next` are decided (taken or passed over).
    next: u8,
    weight: u32,
    value: u32,
}

impl Knapsack {
    /// Start state for `weights`/`values` (1..=16 items, each in 1..=1000)
    /// and `capacity` (1..=16000); computes the optimum with [`solve`]. The
    /// error names the bad field and the expected range.
    pub fn new(weights: &[u32], values: &[u32], capacity: u32) -> Result<Self, String> {
        let n = weights.len();
        if !(1..=MAX_ITEMS).contains(&n) {
            return Err(format!(
                "weights: expected 1..={MAX_ITEMS} entries, got {n}"
            ));
        }
        if values.len() != n {
            return Err(format!(
                "values: expected {n} entries (one per weight), got {}",
                values.len()
            ));
        }
        for (k, &w) in weights.iter().enumerate() {
            check_range(&format!("weights[{k}]"), u64::from(w), 1, MAX_WEIGHT)?;
        }
        for (k, &v) in values.iter().enumerate() {
            check_range(&format!("values[{k}]"), u64::from(v), 1, MAX_VALUE)?;
        }
        check_range("capacity", u64::from(capacity), 1, MAX_CAPACITY)?;
        let best = solve(weights, values, capacity)
            .ok_or_else(|| "spec: expected a solvable instance".to_string())?;
        let optimum = best.iter().map(|&i| values[i]).sum();
        let mut state = Knapsack {
            n: n as u8,
            weights: [0; MAX_ITEMS],
            values: [0; MAX_ITEMS],
            capacity,
            optimum,
            by_ratio: [0; MAX_ITEMS],
            taken: 0,
            next: 0,
            weight: 0,
            value: 0,
        };
        state.weights[..n].copy_from_slice(weights);
        state.values[..n].copy_from_slice(values);
        state.by_ratio = ratio_order(weights, values);
        Ok(state)
    }

    /// Parses `{"weights":[..],"values":[..],"capacity":C,"optimum":V}`.
    /// Rejects unknown fields, out-of-range numbers and an `optimum` that is
    /// not the true optimum of the instance.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"weights":[1..=16 integers in 1..=1000],"values":[as many integers in 1..=1000],"capacity":1..=16000,"optimum":the optimal value}"#;
        const FIELDS: [&str; 4] = ["weights", "values", "capacity", "optimum"];
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only {FIELDS:?}"
            ));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| format!("{name}: missing; expected {SHAPE}"))
        };
        let weights = json_list("weights", field("weights")?, MAX_WEIGHT)?;
        let values = json_list("values", field("values")?, MAX_VALUE)?;
        let capacity = json_int("capacity", field("capacity")?, 1, MAX_CAPACITY)?;
        let optimum = json_int("optimum", field("optimum")?, 0, MAX_CAPACITY * MAX_VALUE)?;
        let state = Knapsack::new(&weights, &values, capacity)?;
        if optimum != state.optimum {
            return Err(format!(
                "optimum: expected {} (the instance's optimal value), got {optimum}",
                state.optimum
            ));
        }
        Ok(state)
    }

    /// The start state's spec (the task's parameters, not the current state),
    /// so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        format!(
            "{{\"weights\":[{}],\"values\":[{}],\"capacity\":{},\"optimum\":{}}}",
            join(self.weights()),
            join(self.values()),
            self.capacity,
            self.optimum
        )
    }

    pub fn weights(&self) -> &[u32] {
        &self.weights[..usize::from(self.n)]
    }

    pub fn values(&self) -> &[u32] {
        &self.values[..usize::from(self.n)]
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The optimal total value (from the spec, checked by the solver).
    pub fn optimum(&self) -> u32 {
        self.optimum
    }

    /// Items taken so far, 0-based, ascending.
    pub fn taken(&self) -> Vec<usize> {
        (0..usize::from(self.n))
            .filter(|&i| self.taken & (1 << i) != 0)
            .collect()
    }

    /// Total weight and value of the items taken so far.
    pub fn totals(&self) -> (u32, u32) {
        (self.weight, self.value)
    }

    fn remaining(&self) -> u32 {
        self.capacity - self.weight
    }

    /// Whether item `i` may be taken now.
    pub fn is_legal(&self, action: Action) -> bool {
        let i = usize::from(action);
        i >= usize::from(self.next)
            && i < usize::from(self.n)
            && self.weights[i] <= self.remaining()
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        out.extend(
            (self.next..self.n)
                .map(Action::from)
                .filter(|&a| self.is_legal(a)),
        );
    }

    /// Takes item `action`, passing over the items before it. An illegal
    /// action is a bug (debug assert) and is ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let legal = self.is_legal(action);
        debug_assert!(legal, "illegal action {action} in {}", self.render());
        if !legal {
            return;
        }
        let i = usize::from(action);
        self.taken |= 1 << i;
        self.next = action as u8 + 1;
        self.weight += self.weights[i];
        self.value += self.values[i];
    }

    /// Over when no later item fits.
    pub fn is_terminal(&self) -> bool {
        !(self.next..self.n).any(|a| self.is_legal(Action::from(a)))
    }

    /// The verifier: the chosen items fit and reach the optimal value.
    pub fn is_success(&self) -> bool {
        self.weight <= self.capacity && self.value == self.optimum
    }

    /// Fractional-knapsack bound: the most value the items with index
    /// `>= from` can add within `room` when items may be split.
    fn lp_bound(&self, from: usize, room: u32) -> f64 {
        let mut room = f64::from(room);
        let mut bound = 0.0;
        for &i in &self.by_ratio[..usize::from(self.n)] {
            let i = usize::from(i);
            if i < from || room <= 0.0 {
                continue;
            }
            let (w, v) = (f64::from(self.weights[i]), f64::from(self.values[i]));
            let part = (room / w).min(1.0);
            bound += part * v;
            room -= part * w;
        }
        bound
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let n = usize::from(self.n);
        let next = usize::from(self.next);
        let cap = f64::from(self.capacity);
        let opt = f64::from(self.optimum.max(1));
        let rem = self.remaining();
        let value = f64::from(self.value);
        let scaled = |x: f64| x.clamp(0.0, 4.0) as f32;
        out[0] = (f64::from(rem) / cap) as f32;
        out[1] = scaled(value / opt);
        out[2] = scaled((value + self.lp_bound(next, rem)) / opt);
        out[3] = next as f32 / n as f32;
        out[4] = n as f32 / MAX_ITEMS as f32;
        out[5] = self.taken.count_ones() as f32 / n as f32;
        let best_ratio = (0..n).map(|i| self.ratio(i)).fold(0.0, f64::max);
        for i in 0..n {
            let (w, v) = (self.weights[i], self.values[i]);
            let fits = self.is_legal(i as Action);
            let base = GLOBAL_FEATURES + i * ITEM_FEATURES;
            let slot = &mut out[base..base + ITEM_FEATURES];
            slot[0] = 1.0;
            slot[1] = flag(self.taken & (1 << i) != 0);
            slot[2] = flag(i >= next);
            slot[3] = flag(fits);
            slot[4] = scaled(f64::from(w) / cap);
            slot[5] = scaled(f64::from(v) / opt);
            slot[6] = (self.ratio(i) / best_ratio) as f32;
            slot[7] = if rem == 0 {
                4.0
            } else {
                scaled(f64::from(w) / f64::from(rem))
            };
            if fits {
                let bound = value + f64::from(v) + self.lp_bound(i + 1, rem - w);
                slot[8] = scaled(bound / opt);
            }
        }
    }

    fn ratio(&self, i: usize) -> f64 {
        f64::from(self.values[i]) / f64::from(self.weights[i])
    }

    /// Human label of an action, e.g. `"take item 3 (w 5, v 7)"` (1-based).
    pub fn label(&self, action: Action) -> String {
        let i = usize::from(action);
        if i >= usize::from(self.n) {
            return format!("illegal action {action}");
        }
        format!(
            "take item {} (w {}, v {})",
            i + 1,
            self.weights[i],
            self.values[i]
        )
    }

    /// Two lines: the items (`*` taken, `-` passed over, `+` still open) and
    /// the status, e.g. `"capacity 20 | taken 1, 4 (weight 12, value 19) |
    /// optimum 31"`, with `" | solved"` / `" | failed"` once over.
    pub fn render(&self) -> String {
        let items: Vec<String> = (0..usize::from(self.n))
            .map(|i| {
                let mark = if self.taken & (1 << i) != 0 {
                    '*'
                } else if i < usize::from(self.next) {
                    '-'
                } else {
                    '+'
                };
                format!("{mark}{}:{}/{}", i + 1, self.weights[i], self.values[i])
            })
            .collect();
        let taken: Vec<String> = self.taken().iter().map(|i| (i + 1).to_string()).collect();
        let taken = if taken.is_empty() {
            "(none)".to_string()
        } else {
            taken.join(", ")
        };
        let mut s = format!(
            "items (weight/value): {}\ncapacity {} | taken {taken} (weight {}, value {}) | optimum {}",
            items.join(" "),
            self.capacity,
            self.weight,
            self.value,
            self.optimum
        );
        match self.outcome() {
            Some(Outcome::Success) => s.push_str(" | solved"),
            Some(_) => s.push_str(" | failed"),
            None => {}
        }
        s
    }
}

fn join(xs: &[u32]) -> String {
    xs.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Item indices by value/weight ratio, best first (ties: lower index first),
/// padded with zeros.
fn ratio_order(weights: &[u32], values: &[u32]) -> [u8; MAX_ITEMS] {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // v_a / w_a > v_b / w_b  <=>  v_a * w_b > v_b * w_a (exact in u64).
    order.sort_by(|&a, &b| {
        let lhs = u64::from(values[a]) * u64::from(weights[b]);
        let rhs = u64::from(values[b]) * u64::from(weights[a]);
        rhs.cmp(&lhs).then(a.cmp(&b))
    });
    let mut out = [0; MAX_ITEMS];
    for (slot, &i) in out.iter_mut().zip(&order) {
        *slot = i as u8;
    }
    out
}

/// `Ok(())` if `value` is in `lo..=hi`, else an error naming `field`.
fn check_range(field: &str, value: u64, lo: u32, hi: u32) -> Result<(), String> {
    if (u64::from(lo)..=u64::from(hi)).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field}: expected an integer in {lo}..={hi}, got {value}"
        ))
    }
}

/// A JSON integer in `lo..=hi`, or an error naming `field`.
fn json_int(field: &str, value: &serde_json::Value, lo: u32, hi: u32) -> Result<u32, String> {
    let n = value
        .as_u64()
        .ok_or_else(|| format!("{field}: expected an integer in {lo}..={hi}, got {value}"))?;
    check_range(field, n, lo, hi)?;
    u32::try_from(n).map_err(|_| format!("{field}: expected an integer in {lo}..={hi}, got {n}"))
}

/// A JSON array of 1..=16 integers in `1..=max`, or an error naming `field`.
fn json_list(field: &str, value: &serde_json::Value, max: u32) -> Result<Vec<u32>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("{field}: expected an array of 1..={MAX_ITEMS} integers"))?;
    if !(1..=MAX_ITEMS).contains(&list.len()) {
        return Err(format!(
            "{field}: expected 1..={MAX_ITEMS} entries, got {}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(k, v)| json_int(&format!("{field}[{k}]"), v, 1, max))
        .collect()
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// An optimal set of items (0-based, ascending) with the fewest items among
/// all optimal sets; `None` when the input is out of range (no items or more
/// than [`MAX_ITEMS`], mismatched lengths, a zero weight, a weight, value or
/// capacity above the spec limits).
///
/// Exact DP over (items considered, capacity): a cell holds the best
/// `(value, fewest items)` pair, packed so that a larger key is better.
pub fn solve(weights: &[u32], values: &[u32], capacity: u32) -> Option<Vec<usize>> {
    let n = weights.len();
    let in_range = (1..=MAX_ITEMS).contains(&n)
        && values.len() == n
        && weights.iter().all(|&w| (1..=MAX_WEIGHT).contains(&w))
        && values.iter().all(|&v| v <= MAX_VALUE)
        && capacity <= MAX_CAPACITY;
    if !in_range {
        return None;
    }
    let cap = capacity as usize;
    let width = cap + 1;
    // key = value * 32 + (31 - items); n <= 16 keeps the count in 5 bits.
    // Row 0 ("no items") holds 31 everywhere, so the count never underflows.
    let mut table = vec![31u32; (n + 1) * width];
    for i in 0..n {
        let w = weights[i] as usize;
        let gain = values[i] * 32 - 1;
        let (done, rest) = table.split_at_mut((i + 1) * width);
        let prev = &done[i * width..];
        let cur = &mut rest[..width];
        for c in 0..width {
            let skip = prev[c];
            cur[c] = if c >= w {
                let take = prev[c - w] + gain;
                skip.max(take)
            } else {
                skip
            };
        }
    }
    let mut items = Vec::new();
    let mut c = cap;
    for i in (0..n).rev() {
        if table[(i + 1) * width + c] != table[i * width + c] {
            items.push(i);
            c -= weights[i] as usize;
        }
    }
    items.reverse();
    Some(items)
}

/// `"take items 1, 4, 5 (weight 17/20, value 31)"` for 0-based `items`.
pub fn format_solution(weights: &[u32], values: &[u32], capacity: u32, items: &[usize]) -> String {
    let weight: u32 = items.iter().map(|&i| weights[i]).sum();
    let value: u32 = items.iter().map(|&i| values[i]).sum();
    let list: Vec<String> = items.iter().map(|i| (i + 1).to_string()).collect();
    let head = match items.len() {
        0 => "take no items".to_string(),
        1 => format!("take item {}", list[0]),
        _ => format!("take items {}", list.join(", ")),
    };
    format!("{head} (weight {weight}/{capacity}, value {value})")
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// [`verify_solution`] on a task spec; a bad spec fails.
pub fn verify_spec(spec: &str, solution: &str) -> bool {
    Knapsack::from_spec(spec)
        .is_ok_and(|k| verify_solution(k.weights(), k.values(), k.capacity, solution))
}

/// Checks human text like `"take items 1, 4, 5 (weight 17/20, value 31)"`
/// against the instance, independently of the game and the DP: items are
/// 1-based, distinct, separated by commas and/or spaces ("and" allowed), in
/// any order; the parenthesis is optional but must be right when present.
/// The set must fit and its value must equal the optimum, which is found
/// here by enumerating every subset (Gray code order, `n <= 16`).
pub fn verify_solution(weights: &[u32], values: &[u32], capacity: u32, solution: &str) -> bool {
    let n = weights.len();
    if n == 0 || n > MAX_ITEMS || values.len() != n {
        return false;
    }
    let Some((items, claimed)) = parse_solution(solution) else {
        return false;
    };
    let mut seen = 0u32;
    let (mut weight, mut value) = (0u64, 0u64);
    for &item in &items {
        if item == 0 || item > n || seen & (1 << item) != 0 {
            return false;
        }
        seen |= 1 << item;
        weight += u64::from(weights[item - 1]);
        value += u64::from(values[item - 1]);
    }
    if let Some((w, c, v)) = claimed {
        if (w, c, v) != (weight, u64::from(capacity), value) {
            return false;
        }
    }
    weight <= u64::from(capacity) && value == brute_force_optimum(weights, values, capacity)
}

/// Best value of any subset within `capacity`, by visiting all `2^n`
/// subsets in Gray code order (one item flips per step).
fn brute_force_optimum(weights: &[u32], values: &[u32], capacity: u32) -> u64 {
    let (mut weight, mut value, mut best) = (0i64, 0i64, 0i64);
    let mut inside = 0u32;
    for k in 1u32..(1 << weights.len()) {
        let i = k.trailing_zeros() as usize;
        let sign = if inside & (1 << i) != 0 { -1 } else { 1 };
        inside ^= 1 << i;
        weight += sign * i64::from(weights[i]);
        value += sign * i64::from(values[i]);
        if weight <= i64::from(capacity) {
            best = best.max(value);
        }
    }
    best as u64
}

/// Claimed `(weight, capacity, value)` from the optional parenthesis.
type Claim = (u64, u64, u64);

/// Splits `"take items 1, 4 (weight 9/10, value 12)"` into the 1-based item
/// list and the claim.
fn parse_solution(text: &str) -> Option<(Vec<usize>, Option<Claim>)> {
    let text = text.trim();
    let (head, claim) = match text.find('(') {
        Some(k) => {
            let inner = text[k + 1..].trim_end().strip_suffix(')')?;
            (&text[..k], Some(parse_claim(inner)?))
        }
        None => (text, None),
    };
    let rest = head.trim().strip_prefix("take")?.trim_start();
    if let Some(after) = rest.strip_prefix("no items") {
        return after.trim().is_empty().then_some((Vec::new(), claim));
    }
    let rest = rest
        .strip_prefix("items")
        .or_else(|| rest.strip_prefix("item"))?;
    let mut items = Vec::new();
    for token in rest
        .split([',', ' '])
        .filter(|t| !t.is_empty() && *t != "and")
    {
        if !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        items.push(token.parse().ok()?);
    }
    (!items.is_empty()).then_some((items, claim))
}

/// Parses `"weight 17/20, value 31"`.
fn parse_claim(text: &str) -> Option<Claim> {
    let (weight, value) = text.split_once(',')?;
    let (w, c) = weight.trim().strip_prefix("weight")?.split_once('/')?;
    let v = value.trim().strip_prefix("value")?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some((num(w)?, num(c)?, num(v)?))
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// How an item's value relates to its weight.
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Uniform in the weight range, independent of the weight.
    Uncorrelated,
    /// `w + U(-w/4, w/4)`, at least 1.
    Weak,
    /// `w + K`.
    Strong(u32),
}

/// One row of the difficulty table (module docs).
struct Band {
    weights: (u32, u32),
    values: Values,
    /// Capacity ratio range in percent of the total weight.
    ratio: (u32, u32),
    greedy_fails: bool,
}

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { weights: (1, 10), values: Values::Uncorrelated, ratio: (50, 50), greedy_fails: false },
    Band { weights: (1, 20), values: Values::Uncorrelated, ratio: (40, 60), greedy_fails: false },
    Band { weights: (1, 30), values: Values::Weak, ratio: (40, 60), greedy_fails: true },
    Band { weights: (5, 50), values: Values::Strong(10), ratio: (35, 65), greedy_fails: true },
    Band { weights: (10, 100), values: Values::Strong(20), ratio: (30, 70), greedy_fails: true },
];

/// `difficulty` clamped to `[0, 1]`, NaN -> 0.
pub fn clamp_difficulty(difficulty: f32) -> f32 {
    if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    }
}

fn band_for(difficulty: f32) -> &'static Band {
    let k = (clamp_difficulty(difficulty) * BANDS.len() as f32) as usize;
    &BANDS[k.min(BANDS.len() - 1)]
}

/// Item count for a difficulty: `4 + round(12 * d)`.
fn items_for(difficulty: f32) -> usize {
    4 + (clamp_difficulty(difficulty) * 12.0).round() as usize
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draw = pick_instance(band_for(difficulty), items_for(difficulty), &mut rng);
    let spec = format!(
        "{{\"weights\":[{}],\"values\":[{}],\"capacity\":{},\"optimum\":{}}}",
        join(&draw.weights),
        join(&draw.values),
        draw.capacity,
        draw.optimum()
    );
    let items: Vec<String> = draw
        .weights
        .iter()
        .zip(&draw.values)
        .enumerate()
        .map(|(i, (w, v))| format!("{}: ({w}, {v})", i + 1))
        .collect();
    Task {
        task_id: format!("knapsack-{seed:016x}"),
        family: Family::Knapsack,
        difficulty,
        seed,
        statement: format!(
            "Choose items of maximum total value with total weight at most {}; items (weight, value): {}",
            draw.capacity,
            items.join(", ")
        ),
        spec,
        reference_solution: format_solution(&draw.weights, &draw.values, draw.capacity, &draw.best),
        optimal_steps: Some(draw.best.len() as u32),
    }
}

/// An instance with its optimal (fewest-items) set.
struct Draw {
    weights: Vec<u32>,
    values: Vec<u32>,
    capacity: u32,
    best: Vec<usize>,
}

impl Draw {
    fn optimum(&self) -> u32 {
        self.best.iter().map(|&i| self.values[i]).sum()
    }

    /// Value of the greedy "best ratio first, take if it fits" rule.
    fn greedy_value(&self) -> u32 {
        let order = ratio_order(&self.weights, &self.values);
        let mut room = self.capacity;
        let mut value = 0;
        for &i in &order[..self.weights.len()] {
            let i = usize::from(i);
            if self.weights[i] <= room {
                room -= self.weights[i];
                value += self.values[i];
            }
        }
        value
    }

    /// Not every item fits at once, so there is a real choice.
    fn has_choice(&self) -> bool {
        self.weights.iter().sum::<u32>() > self.capacity
    }

    fn meets(&self, band: &Band) -> bool {
        self.has_choice() && (!band.greedy_fails || self.greedy_value() < self.optimum())
    }
}

/// Draws until an instance meets the band; after [`MAX_ATTEMPTS`] keeps the
/// last draw with a real choice.
fn pick_instance(band: &Band, n: usize, rng: &mut ChaCha8Rng) -> Draw {
    let mut fallback = None;
    for _ in 0..MAX_ATTEMPTS {
        let draw = draw_instance(band, n, rng);
        if draw.meets(band) {
            return draw;
        }
        if draw.has_choice() {
            fallback = Some(draw);
        }
    }
    fallback.unwrap_or_else(|| draw_instance(band, n, rng))
}

fn draw_instance(band: &Band, n: usize, rng: &mut ChaCha8Rng) -> Draw {
    let (lo, hi) = band.weights;
    let weights: Vec<u32> = (0..n).map(|_| rng.random_range(lo..=hi)).collect();
    let values: Vec<u32> = weights
        .iter()
        .map(|&w| match band.values {
            Values::Uncorrelated => rng.random_range(lo..=hi),
            Values::Weak => {
                let spread = w / 4;
                (w + rng.random_range(0..=2 * spread))
                    .saturating_sub(spread)
                    .max(1)
            }
            Values::Strong(k) => w + k,
        })
        .collect();
    let total: u32 = weights.iter().sum();
    let ratio = rng.random_range(band.ratio.0..=band.ratio.1);
    let heaviest = weights.iter().copied().max().unwrap_or(1);
    let capacity = ((total * ratio + 50) / 100).max(heaviest);
    let best = solve(&weights, &values, capacity).unwrap_or_default();
    Draw {
        weights,
        values,
        capacity,
        best,
    }
}

impl Puzzle for Knapsack {
    fn is_success(&self) -> bool {
        Knapsack::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Knapsack::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

    fn game(weights: &[u32], values: &[u32], capacity: u32) -> Knapsack {
        Knapsack::new(weights, values, capacity).expect("valid test instance")
    }

    fn legal(g: &Knapsack) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// Takes the 0-based `items` in order; None if one is illegal.
    fn replay(spec: &str, items: &[usize]) -> Option<Knapsack> {
        let mut g = Knapsack::from_spec(spec).ok()?;
        for &i in items {
            let a = i as Action;
            if !legal(&g).contains(&a) {
                return None;
            }
            g.step(a);
        }
        Some(g)
    }

    /// Exhaustive `(best value, fewest items)` by bit loops, no DP.
    fn brute_force(weights: &[u32], values: &[u32], capacity: u32) -> (u32, u32) {
        let mut best = (0, 0);
        for mask in 0u32..(1 << weights.len()) {
            let pick = |xs: &[u32]| -> u32 {
                xs.iter()
                    .enumerate()
                    .filter(|&(i, _)| mask & (1 << i) != 0)
                    .map(|(_, &x)| x)
                    .sum()
            };
            if pick(weights) > capacity {
                continue;
            }
            let (v, k) = (pick(values), mask.count_ones());
            if v > best.0 || (v == best.0 && k < best.1) {
                best = (v, k);
            }
        }
        best
    }

    #[test]
    fn taking_items_in_order() {
        // Items (w, v): (5, 10) (4, 40) (6, 30) (3, 50), capacity 10.
        let mut g = game(&[5, 4, 6, 3], &[10, 40, 30, 50], 10);
        assert_eq!(g.optimum(), 90, "items 2 and 4");
        assert_eq!(legal(&g), vec![0, 1, 2, 3]);
        assert_eq!(g.label(1), "take item 2 (w 4, v 40)");
        assert_eq!(g.label(7), "illegal action 7");
        g.step(1);
        assert_eq!(legal(&g), vec![2, 3], "item 1 is passed over");
        assert_eq!(g.totals(), (4, 40));
        assert!(!g.is_terminal());
        g.step(2);
        assert_eq!(g.totals(), (10, 70));
        assert!(g.is_terminal(), "item 4 no longer fits");
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(g.to_move(), 0);
    }

    #[test]
    fn reaching_the_optimum_succeeds() {
        let mut g = game(&[5, 4, 6, 3], &[10, 40, 30, 50], 10);
        assert_eq!(g.outcome(), None);
        assert_eq!(g.terminal_value(), 0.0);
        g.step(1);
        g.step(3);
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert_eq!(g.taken(), vec![1, 3]);
        assert_eq!(
            g.render(),
            "items (weight/value): -1:5/10 *2:4/40 -3:6/30 *4:3/50\n\
             capacity 10 | taken 2, 4 (weight 7, value 90) | optimum 90 | solved"
        );
    }

    #[test]
    fn skipping_everything_fails() {
        let mut g = game(&[5, 4, 6, 3], &[10, 40, 30, 50], 10);
        g.step(3);
        assert!(g.is_terminal() && !g.is_success());
        assert!(g.render().ends_with("| failed"));
    }

    #[test]
    fn render_of_the_start_state() {
        let g = game(&[5, 4], &[10, 40], 6);
        assert_eq!(
            g.render(),
            "items (weight/value): +1:5/10 +2:4/40\ncapacity 6 | taken (none) (weight 0, value 0) | optimum 40"
        );
    }

    #[test]
    fn nothing_fits_is_an_immediate_success() {
        let g = game(&[5, 7], &[1, 1], 4);
        assert_eq!(g.optimum(), 0);
        assert!(g.is_terminal() && g.is_success());
        assert!(legal(&g).is_empty());
    }

    #[test]
    fn encode_is_bounded_and_aligned_with_actions() {
        let g = game(&[5, 4, 6, 3], &[10, 40, 30, 50], 10);
        let mut obs = vec![0.0; OBS_DIM + 3];
        g.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && (0.0..=4.0).contains(x)));
        assert_eq!(&obs[OBS_DIM..], &[0.0; 3]);
        assert_eq!(obs[0], 1.0, "all capacity left");
        assert!(obs[2] >= 1.0, "the optimum is in reach");
        let item = |i: usize, f: usize| obs[GLOBAL_FEATURES + i * ITEM_FEATURES + f];
        assert_eq!(item(3, 6), 1.0, "item 4 has the best ratio");
        assert!(
            item(1, 8) >= 1.0,
            "taking item 2 keeps the optimum in reach"
        );
        assert!(item(0, 8) < 1.0, "taking item 1 loses it");
        assert_eq!(item(4, 0), 0.0, "slot 4 is empty");
        let mut h = g.clone();
        h.step(2);
        let mut obs = vec![0.0; OBS_DIM];
        h.encode(&mut obs);
        assert!(obs[2] < 1.0, "item 2 passed over: 90 is out of reach");
    }

    #[test]
    fn spec_round_trips() {
        let spec = r#"{"weights":[5,4,6,3],"values":[10,40,30,50],"capacity":10,"optimum":90}"#;
        let g = Knapsack::from_spec(spec).unwrap();
        assert_eq!(g.to_spec(), spec);
        let mut h = Knapsack::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(0);
        assert_eq!(h.to_spec(), spec, "the spec is the start state");
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let ok = r#""weights":[5,4],"values":[10,40],"capacity":6"#;
        let cases = [
            (String::new(), "spec"),
            ("{".into(), "spec"),
            ("[1,2]".into(), "spec"),
            ("null".into(), "spec"),
            (format!("{{{ok}}}"), "optimum"),
            (format!("{{{ok},\"optimum\":41}}"), "optimum"),
            (format!("{{{ok},\"optimum\":-1}}"), "optimum"),
            (format!("{{{ok},\"optimum\":40,\"extra\":1}}"), "extra"),
            (
                r#"{"values":[1],"capacity":6,"optimum":0}"#.into(),
                "weights",
            ),
            (
                r#"{"weights":[],"values":[],"capacity":6,"optimum":0}"#.into(),
                "weights",
            ),
            (
                r#"{"weights":[1],"values":[1,2],"capacity":6,"optimum":1}"#.into(),
                "values",
            ),
            (
                r#"{"weights":[0],"values":[1],"capacity":6,"optimum":1}"#.into(),
                "weights[0]",
            ),
            (
                r#"{"weights":[1001],"values":[1],"capacity":6,"optimum":0}"#.into(),
                "weights[0]",
            ),
            (
                r#"{"weights":[2.5],"values":[1],"capacity":6,"optimum":1}"#.into(),
                "weights[0]",
            ),
            (
                r#"{"weights":["3"],"values":[1],"capacity":6,"optimum":1}"#.into(),
                "weights[0]",
            ),
            (
                r#"{"weights":[1],"values":[0],"capacity":6,"optimum":0}"#.into(),
                "values[0]",
            ),
            (
                r#"{"weights":[1],"values":"1","capacity":6,"optimum":1}"#.into(),
                "values",
            ),
            (
                r#"{"weights":[1],"values":[1],"capacity":0,"optimum":0}"#.into(),
                "capacity",
            ),
            (
                r#"{"weights":[1],"values":[1],"capacity":16001,"optimum":1}"#.into(),
                "capacity",
            ),
            (
                r#"{"weights":[1],"values":[1],"capacity":1e30,"optimum":1}"#.into(),
                "capacity",
            ),
            (
                r#"{"weights":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"values":[1],"capacity":6,"optimum":1}"#.into(),
                "weights",
            ),
        ];
        for (spec, field) in &cases {
            let err = Knapsack::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
        assert!(Knapsack::new(&[1; 17], &[1; 17], 5).is_err());
        assert!(Knapsack::new(&[1, 2], &[1], 5).is_err());
    }

    #[test]
    fn solve_finds_optimal_sets_with_fewest_items() {
        assert_eq!(
            solve(&[5, 4, 6, 3], &[10, 40, 30, 50], 10),
            Some(vec![1, 3])
        );
        // {0} and {1, 2} both give 10: the single item wins.
        assert_eq!(solve(&[4, 2, 2], &[10, 5, 5], 4), Some(vec![0]));
        assert_eq!(solve(&[5], &[3], 4), Some(vec![]));
        assert_eq!(solve(&[], &[], 4), None);
        assert_eq!(solve(&[0], &[1], 4), None);
        assert_eq!(solve(&[1, 2], &[1], 4), None);
        assert_eq!(solve(&[1; 17], &[1; 17], 4), None);
    }

    #[test]
    fn solve_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..500 {
            let n = rng.random_range(1..=10);
            let weights: Vec<u32> = (0..n).map(|_| rng.random_range(1..=30)).collect();
            let values: Vec<u32> = (0..n).map(|_| rng.random_range(1..=30)).collect();
            let capacity = rng.random_range(1..=120);
            let best = solve(&weights, &values, capacity).expect("in range");
            let value: u32 = best.iter().map(|&i| values[i]).sum();
            let weight: u32 = best.iter().map(|&i| weights[i]).sum();
            assert!(weight <= capacity);
            let expected = brute_force(&weights, &values, capacity);
            assert_eq!(
                (value, best.len() as u32),
                expected,
                "{weights:?} {values:?} {capacity}"
            );
            assert_eq!(
                u64::from(value),
                brute_force_optimum(&weights, &values, capacity)
            );
            let text = format_solution(&weights, &values, capacity, &best);
            assert!(
                verify_solution(&weights, &values, capacity, &text),
                "{text}"
            );
        }
    }

    #[test]
    fn verifier_accepts_human_variants() {
        let (w, v) = ([5, 4, 6, 3], [10, 40, 30, 50]);
        let ok = |s: &str| verify_solution(&w, &v, 10, s);
        assert!(ok("take items 2, 4 (weight 7/10, value 90)"));
        assert!(ok("take items 2, 4"));
        assert!(ok("take items 4 2"));
        assert!(ok(" take items 2 and 4 "));
        assert!(ok("take items 2,4 ( weight 7 / 10 , value 90 )"));
        assert!(!ok("take items 2, 4 (weight 7/10, value 91)"));
        assert!(!ok("take items 2, 4 (weight 8/10, value 90)"));
        assert!(!ok("take items 2, 4 (weight 7/11, value 90)"));
        assert!(!ok("take items 2, 4 (weight 7/10)"));
        assert!(!ok("take items 2, 4 (weight 7/10, value 90"));
        assert!(!ok("take items 2, 3"), "value 70 is not optimal");
        assert!(!ok("take items 2, 3, 4"), "too heavy");
        assert!(!ok("take items 2, 2, 4"), "item twice");
        assert!(!ok("take items 0, 2, 4"), "items are 1-based");
        assert!(!ok("take items 2, 5"), "no item 5");
        assert!(!ok("take items 2, -4"));
        assert!(!ok("take items 2, 4.0"));
        assert!(!ok("take items 2, 99999999999999999999999"));
        assert!(!ok("take items"));
        assert!(!ok("take no items"));
        assert!(!ok("items 2, 4"));
        assert!(!ok(""));
        assert!(verify_solution(&[5, 7], &[1, 1], 4, "take no items"));
        assert!(verify_solution(
            &[5, 7],
            &[1, 1],
            4,
            "take no items (weight 0/4, value 0)"
        ));
        assert!(verify_solution(&[5, 7], &[9, 1], 5, "take item 1"));
        assert!(!verify_solution(&[], &[], 5, "take no items"));
        assert!(!verify_solution(&[1, 2], &[1], 5, "take item 1"));
    }

    /// Sets the verifier must reject, derived from an optimal set.
    fn corruptions(g: &Knapsack, best: &[usize]) -> Vec<(&'static str, Vec<usize>)> {
        let n = g.weights().len();
        let mut out = vec![("dropped an item", best[1..].to_vec())];
        let (w, _) = best
            .iter()
            .fold((0, 0), |(w, v), &i| (w + g.weights()[i], v + g.values()[i]));
        // Adding any item either overflows or beats the optimum: both wrong.
        if let Some(extra) = (0..n).find(|i| !best.contains(i)) {
            let mut more = best.to_vec();
            more.push(extra);
            more.sort_unstable();
            out.push(("added an item", more));
        }
        // Swapping for a lighter-or-equal item of lower value.
        for (k, &i) in best.iter().enumerate() {
            let worse = (0..n).find(|&j| {
                !best.contains(&j)
                    && g.values()[j] < g.values()[i]
                    && w - g.weights()[i] + g.weights()[j] <= g.capacity()
            });
            if let Some(j) = worse {
                let mut swapped = best.to_vec();
                swapped[k] = j;
                swapped.sort_unstable();
                out.push(("swapped for a worse item", swapped));
                break;
            }
        }
        out
    }

    fn check_task(task: &Task) {
        let g = Knapsack::from_spec(&task.spec).expect("generated spec parses");
        let (w, v, c) = (g.weights().to_vec(), g.values().to_vec(), g.capacity());
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let best = solve(&w, &v, c).expect("solvable");
        assert!(!best.is_empty());
        assert_eq!(task.optimal_steps, Some(best.len() as u32));
        assert_eq!(task.reference_solution, format_solution(&w, &v, c, &best));
        assert!(
            verify_solution(&w, &v, c, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &best).expect("solution is playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        for (what, bad) in corruptions(&g, &best) {
            let text = format_solution(&w, &v, c, &bad);
            assert!(!verify_solution(&w, &v, c, &text), "{what}: {task:?}");
        }
        let claim = task.reference_solution.replace("value ", "value 1");
        assert!(!verify_solution(&w, &v, c, &claim), "wrong claim: {task:?}");
        assert_eq!(w.len(), items_for(task.difficulty));
        let band = band_for(task.difficulty);
        let draw = Draw {
            weights: w.clone(),
            values: v.clone(),
            capacity: c,
            best,
        };
        assert!(draw.meets(band), "fallback fired: {task:?}");
        assert!(w
            .iter()
            .all(|x| (band.weights.0..=band.weights.1).contains(x)));
        assert!(task.statement.starts_with(&format!(
            "Choose items of maximum total value with total weight at most {c}; "
        )));
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..4000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..300).map(|s| generate(d, s)).collect();
                let mean = |f: &dyn Fn(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 300.0;
                let games: Vec<Knapsack> = tasks
                    .iter()
                    .map(|t| Knapsack::from_spec(&t.spec).unwrap())
                    .collect();
                let greedy_fails = games
                    .iter()
                    .filter(|g| {
                        let draw = Draw {
                            weights: g.weights().to_vec(),
                            values: g.values().to_vec(),
                            capacity: g.capacity(),
                            best: Vec::new(),
                        };
                        draw.greedy_value() < g.optimum()
                    })
                    .count() as f64
                    / 300.0;
                let n = games.iter().map(|g| g.weights().len() as f64).sum::<f64>() / 300.0;
                (
                    n,
                    mean(&|t| f64::from(t.optimal_steps.unwrap_or(0))),
                    greedy_fails,
                )
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 > w[0].0, "items grow: {stats:?}");
            assert!(w[1].1 > w[0].1, "optimal steps grow: {stats:?}");
            assert!(w[1].2 >= w[0].2, "greedy fails more often: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,80}") {
            let _ = Knapsack::from_spec(&spec);
        }

        #[test]
        fn from_spec_checks_ranges(
            items in prop::collection::vec((0u64..1100, 0u64..1100), 0..18),
            capacity in 0u64..17_000,
        ) {
            let w: Vec<String> = items.iter().map(|p| p.0.to_string()).collect();
            let v: Vec<String> = items.iter().map(|p| p.1.to_string()).collect();
            let ok = (1..=16).contains(&items.len())
                && items.iter().all(|&(a, b)| (1..=1000).contains(&a) && (1..=1000).contains(&b))
                && (1..=16_000).contains(&capacity);
            let optimum = if ok {
                let wu: Vec<u32> = items.iter().map(|p| p.0 as u32).collect();
                let vu: Vec<u32> = items.iter().map(|p| p.1 as u32).collect();
                brute_force(&wu, &vu, capacity as u32).0
            } else {
                0
            };
            let spec = format!(
                "{{\"weights\":[{}],\"values\":[{}],\"capacity\":{capacity},\"optimum\":{optimum}}}",
                w.join(","),
                v.join(",")
            );
            prop_assert_eq!(Knapsack::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[a-z0-9 ,()/]{0,50}") {
            let _ = verify_solution(&[5, 4, 6, 3], &[10, 40, 30, 50], 10, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Knapsack::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            let mut steps = 0;
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && (0.0..=4.0).contains(x)));
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                if acts.is_empty() {
                    break;
                }
                g.step(acts[rng.random_range(0..acts.len())]);
                steps += 1;
                prop_assert!(g.totals().0 <= g.capacity());
            }
            prop_assert!(steps <= g.weights().len());
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            let text = format_solution(g.weights(), g.values(), g.capacity(), &g.taken());
            let verdict = verify_solution(g.weights(), g.values(), g.capacity(), &text);
            prop_assert_eq!(verdict, g.is_success());
        }
    }
}
