//! Stages: each a pure function of its input stores, config and seed, and
//! each a subcommand. `run` chains them in-process.
//!
//! Every command has one entry point of one shape: its module's
//! `pub fn run(ctx: &Ctx, args: &XArgs) -> Result<XOutcome>`, where `XArgs`
//! (clap arguments) implements [`StageArgs`] and `XOutcome` is an
//! [`Outcome`] (`Display` for the human text, `Serialize` for JSON). The
//! binary parses, calls `args.check()`, builds the context `args.access()`
//! asks for, calls `run` and prints the outcome; nothing else.

pub mod c4set;
pub mod config;
pub mod distill;
pub mod eval;
pub mod hands;
pub mod import;
pub mod init;
pub mod inspect;
pub mod play;
pub mod plot;
pub mod promote;
pub mod report;
pub mod run;
pub mod show;
pub mod tasks;
pub mod train;

use crate::config::parse_device;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::infer::OnnxModel;
use crate::mcts::evaluator::Evaluator;
use crate::model::ModelMeta;
use crate::output::Outcome;
use crate::store::lock::Claim;
use crate::store::RunDir;
use std::path::Path;

/// The context a command runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Writes into `--out`: the config is checked against (or recorded as)
    /// the run's config.toml, and a run of an older store layout refused.
    Write,
    /// Reads `--out`: an older store layout is refused; config.toml is
    /// neither checked nor made.
    Read,
    /// Names `--out` without touching it (or does not use it at all).
    Bare,
}

/// A command's arguments, as its stage sees them; the stage's
/// `run(ctx, args)` does the work.
pub trait StageArgs {
    type Outcome: Outcome;

    /// The context the command needs.
    fn access(&self) -> Access {
        Access::Write
    }

    /// This job's shard (flags, else the scheduler's variables).
    fn shard(&self) -> Result<Shard> {
        Ok(Shard::ALL)
    }

    /// Checks of the arguments that need no run directory; the binary calls
    /// it before the context is built, so a bad value writes nothing.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the outcome is printed as JSON whatever `--log-format` says
    /// (`inspect --json`).
    fn json(&self) -> bool {
        false
    }
}

/// A sharded job's `--shard-index` / `--num-shards`.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct ShardArgs {
    /// This job's shard (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0).
    #[arg(long)]
    pub shard_index: Option<u32>,
    /// Number of shards (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long)]
    pub num_shards: Option<u32>,
}

impl ShardArgs {
    pub fn resolve(&self) -> Result<Shard> {
        Shard::resolve(self.shard_index, self.num_shards)
    }
}

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
    /// with SLURM_ARRAY_TASK_COUNT; else the whole job. A variable that is
    /// set but not a non-negative integer is an error, not shard 0.
    pub fn resolve(index: Option<u32>, count: Option<u32>) -> Result<Shard> {
        Shard::resolve_with(index, count, |k| {
            std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// [`Shard::resolve`] over an environment lookup (a pure function, for tests).
    /// An empty variable counts as unset.
    pub fn resolve_with(
        index: Option<u32>,
        count: Option<u32>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard> {
        let var = |key: &'static str, what: &str| -> Result<Option<(u32, String)>> {
            let Some(raw) = env(key) else { return Ok(None) };
            let v = raw.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u32>()
                .map(|n| Some((n, key.to_string())))
                .map_err(|_| {
                    Error::Config(format!(
                        "environment variable {key}={raw:?}: expected a non-negative integer ({what})"
                    ))
                })
        };
        let index = match index {
            Some(i) => (i, "--shard-index".to_string()),
            None => match var("SLURM_ARRAY_TASK_ID", "this job's shard index")? {
                Some((id, from)) => slurm_index(id, from, &var)?,
                None => var("JOB_COMPLETION_INDEX", "this job's shard index")?
                    .unwrap_or((0, "the default".into())),
            },
        };
        let count = match count {
            Some(c) => (c, "--num-shards".to_string()),
            None => var("SLURM_ARRAY_TASK_COUNT", "the number of shards")?
                .unwrap_or((1, "the default".into())),
        };
        let ((index, index_from), (count, count_from)) = (index, count);
        if count == 0 || index >= count {
            return Err(Error::Config(format!(
                "shard index {index} (from {index_from}) / shard count {count} (from {count_from}): expected 0 <= index < count (--shard-index / --num-shards)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Does item `i` belong to this shard?
    pub fn owns(&self, i: usize) -> bool {
        i % self.count as usize == self.index as usize
    }
}

/// A shard-related environment variable, parsed: (value, where it came from).
type EnvVar<'a> = &'a dyn Fn(&'static str, &str) -> Result<Option<(u32, String)>>;

/// A Slurm array task's shard: arrays may start anywhere and step
/// (`--array=1-7:2`), so the index is (ID - MIN) / STEP.
fn slurm_index(id: u32, from: String, var: EnvVar) -> Result<(u32, String)> {
    let min = var("SLURM_ARRAY_TASK_MIN", "the array's first index")?.map_or(0, |v| v.0);
    let step = var("SLURM_ARRAY_TASK_STEP", "the array's step")?.map_or(1, |v| v.0.max(1));
    if id < min || !(id - min).is_multiple_of(step) {
        return Err(Error::Config(format!(
            "environment variable SLURM_ARRAY_TASK_ID={id}: not in the array starting at SLURM_ARRAY_TASK_MIN={min} with step {step}"
        )));
    }
    Ok(((id - min) / step, format!("{from} - SLURM_ARRAY_TASK_MIN")))
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
    let model = OnnxModel::load_with(&path, device, (cfg.infer.session_threads(), cfg.infer.spin))
        .map_err(Error::Model)?;
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
    let cache = cfg.mcts.cache_entries as usize;
    let evaluator = Evaluator::network(model, meta.id.clone(), cfg.rollout_mix(), cache)
        .averaging_symmetries(cfg.infer.average_symmetries);
    Ok((evaluator, meta))
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
    fn shard_variables_must_be_integers() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let ok = |i, c, vars| Shard::resolve_with(i, c, env(vars)).unwrap();
        assert_eq!(ok(None, None, &[]), Shard::ALL);
        assert_eq!(
            ok(
                None,
                None,
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_COUNT", "4")
                ]
            ),
            Shard { index: 2, count: 4 }
        );
        assert_eq!(
            ok(None, Some(3), &[("JOB_COMPLETION_INDEX", "1")]),
            Shard { index: 1, count: 3 }
        );
        // Flags win, and then the variables are not read.
        assert_eq!(
            ok(Some(0), Some(2), &[("SLURM_ARRAY_TASK_ID", "abc")]),
            Shard { index: 0, count: 2 }
        );
        assert_eq!(ok(None, None, &[("SLURM_ARRAY_TASK_ID", "")]), Shard::ALL);
        // Arrays that start at 1 or step: `--array=1-7:2` is shards 0..4.
        let stepped = &[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(ok(None, None, stepped), Shard { index: 2, count: 4 });
        let off = &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        let e = Shard::resolve_with(None, None, env(off))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID=4") && e.contains("step 2"),
            "{e}"
        );
        for (vars, key, value) in [
            (
                &[("SLURM_ARRAY_TASK_ID", "abc")][..],
                "SLURM_ARRAY_TASK_ID",
                "abc",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "-1")][..],
                "JOB_COMPLETION_INDEX",
                "-1",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "4x"),
                ][..],
                "SLURM_ARRAY_TASK_COUNT",
                "4x",
            ),
        ] {
            let err = Shard::resolve_with(None, None, env(vars)).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{msg}");
            assert_eq!(err.exit_code(), 2);
            assert!(
                msg.contains(&format!("{key}=\"{value}\""))
                    && msg.contains("expected a non-negative integer"),
                "{msg}"
            );
        }
        let msg = Shard::resolve_with(
            None,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("from SLURM_ARRAY_TASK_ID") && msg.contains("0 <= index < count"),
            "{msg}"
        );
    }

    #[test]
    fn a_one_based_array_maps_to_shards_from_zero() {
        // `sbatch --array=1-4`: IDs 1..4, MIN 1, COUNT 4 -> shards 0..3.
        let slurm = |id: &str| {
            let id = id.to_string();
            Shard::resolve_with(None, None, move |k| match k {
                "SLURM_ARRAY_TASK_ID" => Some(id.clone()),
                "SLURM_ARRAY_TASK_MIN" => Some("1".into()),
                "SLURM_ARRAY_TASK_MAX" => Some("4".into()),
                "SLURM_ARRAY_TASK_COUNT" => Some("4".into()),
                _ => None,
            })
        };
        for (id, index) in [("1", 0), ("2", 1), ("3", 2), ("4", 3)] {
            assert_eq!(slurm(id).unwrap(), Shard { index, count: 4 });
        }
        for (id, needle) in [
            ("0", "not in the array starting at SLURM_ARRAY_TASK_MIN=1"),
            (
                "5",
                "shard index 4 (from SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / shard count 4",
            ),
        ] {
            let e = slurm(id).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn derived_seeds_differ() {
        assert_ne!(derive_seed(&[1, 2]), derive_seed(&[2, 1]));
        assert_eq!(derive_seed(&[5, 6]), derive_seed(&[5, 6]));
    }
}
