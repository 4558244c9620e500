//! Stages: each a pure function of its input stores, config and seed, and
//! each a subcommand. `run` chains them in-process.

pub mod eval;
pub mod import;
pub mod init;
pub mod inspect;
pub mod play;
pub mod report;
pub mod run;
pub mod show;
pub mod tasks;
#[cfg(feature = "train")]
pub mod train;

use crate::config::parse_device;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::infer::OnnxModel;
use crate::mcts::evaluator::Evaluator;
use crate::model::ModelMeta;
use crate::store::lock::Claim;
use crate::store::RunDir;
use std::path::Path;

/// What every stage gets: the config, the run directory, and its shard.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub cfg: Config,
    pub run: RunDir,
    pub shard: Shard,
    /// Wait for a shard another process is writing, instead of failing.
    pub wait: bool,
}

impl Ctx {
    /// Claims a unit of work (`play iteration 3 shard 7`) for this process.
    pub fn claim(&self, what: &str) -> Result<Claim> {
        Claim::acquire(&self.run, what, self.wait)
    }
}

/// This job's share of a stage: `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Explicit flags win; else SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX
    /// with SLURM_ARRAY_TASK_COUNT; else the whole job.
    pub fn resolve(index: Option<u32>, count: Option<u32>) -> Result<Shard> {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        let index = index
            .or_else(|| env("SLURM_ARRAY_TASK_ID"))
            .or_else(|| env("JOB_COMPLETION_INDEX"))
            .unwrap_or(0);
        let count = count.or_else(|| env("SLURM_ARRAY_TASK_COUNT")).unwrap_or(1);
        if count == 0 || index >= count {
            return Err(Error::Config(format!(
                "--shard-index {index} / --num-shards {count}: expected 0 <= index < count"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Does item `i` belong to this shard?
    pub fn owns(&self, i: usize) -> bool {
        i % self.count as usize == self.index as usize
    }
}

/// SplitMix64 over a list of parts: stable, well-mixed derived seeds.
pub fn derive_seed(parts: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &p in parts {
        h ^= p;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// Loads a model folder as a network evaluator, checking its dims.
pub fn load_evaluator(cfg: &Config, dir: &Path) -> Result<(Evaluator, ModelMeta)> {
    let meta = ModelMeta::load(dir)?;
    for (family, _) in cfg.families() {
        meta.check_family(family)?;
    }
    crate::infer::init_runtime(None).map_err(Error::Model)?;
    let device = parse_device(&cfg.infer.device).map_err(Error::Config)?;
    let path = dir.join("model.onnx");
    let model = OnnxModel::load(&path, device, cfg.infer.threads).map_err(Error::Model)?;
    if model.obs_dim() != meta.spec.obs_dim || model.action_dim() != meta.spec.action_dim {
        return Err(Error::Model(format!(
            "{}: network dims {}x{} differ from model.json {}x{}",
            path.display(),
            model.obs_dim(),
            model.action_dim(),
            meta.spec.obs_dim,
            meta.spec.action_dim
        )));
    }
    Ok((
        Evaluator::Network {
            model: Box::new(model),
            id: meta.id.clone(),
            rollout_mix: cfg.rollout_mix(),
        },
        meta,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_items() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for i in 0..30 {
            assert_eq!(shards.iter().filter(|s| s.owns(i)).count(), 1);
        }
        assert!(Shard::resolve(Some(3), Some(3)).is_err());
    }

    #[test]
    fn derived_seeds_differ() {
        assert_ne!(derive_seed(&[1, 2]), derive_seed(&[2, 1]));
        assert_eq!(derive_seed(&[5, 6]), derive_seed(&[5, 6]));
    }
}
