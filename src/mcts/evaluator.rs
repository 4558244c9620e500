//! Leaf evaluators: the network through ONNX Runtime, or the classic
//! baselines (uniform priors with a random-rollout value; pure uniform).

use super::cache::{self, EvalCache, Source};
use crate::error::{Error, Result};
use crate::infer::OnnxModel;
use crate::tasks::symmetry::Symmetry;
use crate::tasks::{Action, Family, Game, FAMILY_TAG};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// How an agent scores leaves. One `evaluate` call serves a whole wave.
pub enum Evaluator {
    /// Policy logits and value from the network; for a family with a
    /// rollout mix `l > 0` the value is `(1 - l) * net + l * rollout`
    /// (AlphaGo's leaf evaluation), indexed by `family as usize`.
    Network {
        model: Box<OnnxModel>,
        id: String,
        rollout_mix: Vec<f32>,
        /// Outputs by position, shared by every wave of this evaluator's
        /// life (a whole shard); `None` sends every leaf.
        cache: Option<EvalCache>,
        /// Per family (`family as usize`), the symmetries each output is
        /// averaged over; empty lists when averaging is off.
        symmetries: Vec<Vec<Symmetry>>,
    },
    /// Uniform priors; value from one random playout to the end.
    Rollout,
    /// Uniform priors, value 0: search guided by nothing but terminal states.
    Uniform,
}

impl Evaluator {
    pub fn name(&self) -> String {
        match self {
            Evaluator::Network { id, .. } => id.clone(),
            Evaluator::Rollout => "mcts_rollout".into(),
            Evaluator::Uniform => "mcts_uniform".into(),
        }
    }

    /// A network evaluator with a cache of `cache_entries` positions (0: off).
    pub fn network(
        model: OnnxModel,
        id: String,
        rollout_mix: Vec<f32>,
        cache_entries: usize,
    ) -> Evaluator {
        let cache = EvalCache::new(cache_entries, model.action_dim());
        Evaluator::Network {
            model: Box::new(model),
            id,
            rollout_mix,
            cache,
            symmetries: vec![Vec::new(); Family::ALL.len()],
        }
    }

    /// The same evaluator for one of `lanes` lanes: a session of its own
    /// on the same model file and an empty cache of a `lanes`-th of the
    /// size, so that lanes together hold what one cache would.
    pub fn fork(&self, lanes: usize) -> Result<Evaluator> {
        Ok(match self {
            Evaluator::Network {
                model,
                id,
                rollout_mix,
                cache,
                symmetries,
            } => Evaluator::Network {
                model: Box::new(model.fork().map_err(Error::Model)?),
                id: id.clone(),
                rollout_mix: rollout_mix.clone(),
                cache: cache.as_ref().and_then(|c| {
                    EvalCache::new(c.entries().div_ceil(lanes.max(1)), model.action_dim())
                }),
                symmetries: symmetries.clone(),
            },
            Evaluator::Rollout => Evaluator::Rollout,
            Evaluator::Uniform => Evaluator::Uniform,
        })
    }

    /// Averages each network output over its position's symmetries
    /// (`Family::symmetries`): values and logits are the means over the
    /// position and its images, each image's logits mapped back to the
    /// position's actions. One network row more per symmetry; the cache
    /// holds the averages. No effect on other evaluators.
    pub fn averaging_symmetries(mut self, on: bool) -> Evaluator {
        if let Evaluator::Network { symmetries, .. } = &mut self {
            for &family in Family::ALL {
                symmetries[family as usize] = if on { family.symmetries() } else { Vec::new() };
            }
        }
        self
    }

    /// Fills `logits[i*action_dim..]` and `values[i]` for each leaf; values
    /// are from the view of the leaf's player to move. `parallel` encodes
    /// the rows on rayon's pool (worth it when the cores are not busy with
    /// other work, as when search takes turns with the network).
    pub fn evaluate(
        &mut self,
        (leaves, parallel): (&[(&Game, u64)], bool),
        obs_dim: usize,
        action_dim: usize,
        scratch: &mut Vec<f32>,
        logits: &mut Vec<f32>,
        values: &mut Vec<f32>,
    ) -> Result<Served> {
        let n = leaves.len();
        logits.clear();
        logits.resize(n * action_dim, 0.0);
        values.clear();
        values.resize(n, 0.0);
        match self {
            Evaluator::Network {
                model,
                id,
                rollout_mix,
                cache,
                symmetries,
            } => {
                scratch.clear();
                scratch.resize(n * obs_dim, 0.0);
                let encode = |(row, (game, _)): (&mut [f32], &(&Game, u64))| game.encode_input(row);
                if parallel {
                    scratch.par_chunks_mut(obs_dim).zip(leaves).for_each(encode);
                } else {
                    scratch.chunks_mut(obs_dim).zip(leaves).for_each(encode);
                }
                let served = match cache {
                    None => {
                        let families: Vec<Family> = leaves.iter().map(|l| l.0.family()).collect();
                        let net = (&mut **model, id.as_str(), symmetries.as_slice());
                        run_network(net, scratch, &families, logits, values)?;
                        Served {
                            network: n,
                            cached: 0,
                        }
                    }
                    Some(cache) => {
                        let net = (&mut **model, id.as_str(), symmetries.as_slice());
                        serve_cached(net, cache, leaves, scratch, logits, values)?
                    }
                };
                mix_rollouts(rollout_mix, (leaves, parallel), values);
                Ok(served)
            }
            Evaluator::Rollout => {
                let rollout =
                    |(v, (game, seed)): (&mut f32, &(&Game, u64))| *v = rollout_value(game, *seed);
                if parallel {
                    values
                        .par_iter_mut()
                        .zip(leaves.par_iter())
                        .for_each(rollout);
                } else {
                    values.iter_mut().zip(leaves).for_each(rollout);
                }
                Ok(Served::default())
            }
            Evaluator::Uniform => Ok(Served::default()),
        }
    }
}

/// How a wave's leaves were served: rows run through the network, and
/// leaves answered from the cache (the rest shared a row with a duplicate).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Served {
    pub network: usize,
    pub cached: usize,
}

/// The network with its id (for errors) and the symmetries by family.
type Net<'a> = (&'a mut OnnxModel, &'a str, &'a [Vec<Symmetry>]);

/// Runs the network on the first `families.len()` encoded rows of
/// `scratch` (row `i` a position of `families[i]`), each output averaged
/// over its family's symmetries.
fn run_network(
    (model, id, symmetries): Net,
    scratch: &[f32],
    families: &[Family],
    logits: &mut [f32],
    values: &mut [f32],
) -> Result<()> {
    let (n, obs_dim, action_dim) = (families.len(), model.obs_dim(), model.action_dim());
    let mut run = |rows: &[f32], n: usize, logits: &mut [f32], values: &mut [f32]| {
        model
            .run(rows, n, logits, values)
            .map_err(|e| Error::Model(format!("{id}: {e}")))
    };
    run(&scratch[..n * obs_dim], n, logits, values)?;
    // Images of every row, as one more batch: (row, symmetry) pairs.
    let images: Vec<(usize, &Symmetry)> = families
        .iter()
        .enumerate()
        .flat_map(|(i, &f)| symmetries[f as usize].iter().map(move |s| (i, s)))
        .collect();
    if images.is_empty() {
        return Ok(());
    }
    let mut rows = vec![0.0; images.len() * obs_dim];
    for (out, &(i, s)) in rows.chunks_mut(obs_dim).zip(&images) {
        let row = &scratch[i * obs_dim..(i + 1) * obs_dim];
        let width = families[i].obs_dim();
        out[..FAMILY_TAG].copy_from_slice(&row[..FAMILY_TAG]);
        out[FAMILY_TAG..FAMILY_TAG + width]
            .copy_from_slice(&s.obs(&row[FAMILY_TAG..FAMILY_TAG + width]));
    }
    let (mut l, mut v) = (
        vec![0.0; images.len() * action_dim],
        vec![0.0; images.len()],
    );
    run(&rows, images.len(), &mut l, &mut v)?;
    for (k, &(i, s)) in images.iter().enumerate() {
        values[i] += v[k];
        for a in 0..families[i].action_dim() {
            logits[i * action_dim + a] += l[k * action_dim + usize::from(s.action(a as Action))];
        }
    }
    for (i, &f) in families.iter().enumerate() {
        let count = 1.0 + symmetries[f as usize].len() as f32;
        if count > 1.0 {
            values[i] /= count;
            logits[i * action_dim..(i + 1) * action_dim]
                .iter_mut()
                .for_each(|x| *x /= count);
        }
    }
    Ok(())
}

/// Serves a wave through the cache: keys the encoded leaves, answers hits
/// from the cache, runs each missing position once, then stores those.
fn serve_cached(
    net: Net,
    cache: &mut EvalCache,
    leaves: &[(&Game, u64)],
    scratch: &mut [f32],
    logits: &mut [f32],
    values: &mut [f32],
) -> Result<Served> {
    let (obs_dim, action_dim) = (net.0.obs_dim(), net.0.action_dim());
    let keys: Vec<u128> = scratch
        .chunks(obs_dim)
        .zip(leaves)
        .map(|(row, (game, _))| game.state_key(row))
        .collect();
    let (sources, rows) = cache::plan(cache, &keys);
    compact_rows(scratch, obs_dim, &rows);
    let m = rows.len();
    let (mut l, mut v) = (vec![0.0; m * action_dim], vec![0.0; m]);
    let families: Vec<Family> = rows.iter().map(|&leaf| leaves[leaf].0.family()).collect();
    run_network(net, scratch, &families, &mut l, &mut v)?;
    let row = |r: usize| &l[r * action_dim..(r + 1) * action_dim];
    for (i, src) in sources.iter().enumerate() {
        let (from, value) = match *src {
            Source::Cached(slot) => cache.get(slot),
            Source::Network(r) => (row(r), v[r]),
        };
        logits[i * action_dim..(i + 1) * action_dim].copy_from_slice(from);
        values[i] = value;
    }
    for (r, &leaf) in rows.iter().enumerate() {
        cache.put(keys[leaf], row(r), v[r]);
    }
    let cached = sources
        .iter()
        .filter(|s| matches!(s, Source::Cached(_)))
        .count();
    Ok(Served { network: m, cached })
}

/// Moves the encoded rows of `rows` (ascending leaf indices) to the front
/// of `scratch`, in order, as the network batch.
fn compact_rows(scratch: &mut [f32], obs_dim: usize, rows: &[usize]) {
    for (r, &leaf) in rows.iter().enumerate() {
        if r != leaf {
            scratch.copy_within(leaf * obs_dim..(leaf + 1) * obs_dim, r * obs_dim);
        }
    }
}

/// Blends each leaf's network value with a random playout where its
/// family's mix weight is positive (on rayon's pool when `parallel`).
fn mix_rollouts(mix: &[f32], (leaves, parallel): (&[(&Game, u64)], bool), values: &mut [f32]) {
    if mix.iter().all(|&l| l <= 0.0) {
        return;
    }
    let blend = |(v, (game, seed)): (&mut f32, &(&Game, u64))| {
        let l = mix.get(game.family() as usize).copied().unwrap_or(0.0);
        if l > 0.0 {
            *v = (1.0 - l) * *v + l * rollout_value(game, *seed);
        }
    };
    if parallel {
        values.par_iter_mut().zip(leaves.par_iter()).for_each(blend);
    } else {
        values.iter_mut().zip(leaves).for_each(blend);
    }
}

/// Value of one random playout, from the view of the leaf's mover.
pub fn rollout_value(game: &Game, seed: u64) -> f32 {
    let mover = game.to_move();
    let mut g = game.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.random_playout(&mut rng);
    let v = g.terminal_value();
    if g.to_move() == mover {
        v
    } else {
        -v
    }
}
