//! Leaf evaluators: the network through ONNX Runtime, or the classic
//! baselines (uniform priors with a random-rollout value; pure uniform).

use crate::error::{Error, Result};
use crate::infer::OnnxModel;
use crate::tasks::Game;
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

    /// Fills `logits[i*action_dim..]` and `values[i]` for each leaf; values
    /// are from the view of the leaf's player to move.
    pub fn evaluate(
        &mut self,
        leaves: &[(&Game, u64)],
        obs_dim: usize,
        action_dim: usize,
        scratch: &mut Vec<f32>,
        logits: &mut Vec<f32>,
        values: &mut Vec<f32>,
    ) -> Result<()> {
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
            } => {
                scratch.clear();
                scratch.resize(n * obs_dim, 0.0);
                scratch
                    .par_chunks_mut(obs_dim)
                    .zip(leaves.par_iter())
                    .for_each(|(row, (game, _))| game.encode_input(row));
                model
                    .run(scratch, n, logits, values)
                    .map_err(|e| Error::Model(format!("{id}: {e}")))?;
                mix_rollouts(rollout_mix, leaves, values);
                Ok(())
            }
            Evaluator::Rollout => {
                values
                    .par_iter_mut()
                    .zip(leaves.par_iter())
                    .for_each(|(v, (game, seed))| *v = rollout_value(game, *seed));
                Ok(())
            }
            Evaluator::Uniform => Ok(()),
        }
    }
}

/// Blends each leaf's network value with a random playout where its
/// family's mix weight is positive.
fn mix_rollouts(mix: &[f32], leaves: &[(&Game, u64)], values: &mut [f32]) {
    if mix.iter().all(|&l| l <= 0.0) {
        return;
    }
    values
        .par_iter_mut()
        .zip(leaves.par_iter())
        .for_each(|(v, (game, seed))| {
            let l = mix.get(game.family() as usize).copied().unwrap_or(0.0);
            if l > 0.0 {
                *v = (1.0 - l) * *v + l * rollout_value(game, *seed);
            }
        });
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
