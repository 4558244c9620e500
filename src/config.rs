//! Run configuration: one TOML file (pipelines/*.toml), every key overridable
//! with `--set key=value`. Unknown keys are errors, so a typo never silently
//! runs the defaults.

use crate::error::{Error, Result};
use crate::tasks::Family;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The embedded default: what `selfplay run` uses with no `--config`.
pub const DEFAULT_TOML: &str = include_str!("../pipelines/default.toml");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Root seed; every task, episode and weight init derives from it.
    pub seed: u64,
    /// Iterations of tasks -> play -> train -> eval -> gate in `run`.
    pub iterations: u32,
    /// Self-play episodes per iteration, over all families.
    pub games_per_iteration: usize,
    /// Episodes advanced in lock-step; one network call serves all of them.
    pub parallel_batch_size: usize,
    /// Training minibatch size.
    pub batch_size: usize,
    /// Replay window: training samples from the newest this many examples.
    pub max_buffer_size: usize,
    /// Task families and their mix and difficulty schedule.
    pub families: BTreeMap<String, FamilyConfig>,
    pub mcts: MctsConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub infer: InferConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    /// Share of self-play episodes (normalised over families).
    pub weight: f64,
    /// Difficulty range [lo, hi] in [0, 1]; tasks draw uniformly from it.
    /// With a curriculum, the range reached at the end of the ramp.
    pub difficulty: [f32; 2],
    /// Curriculum: `constant` (default), `linear` or `step`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Curriculum start range (iteration 1); defaults to `difficulty`.
    #[serde(default)]
    pub difficulty_start: Option<[f32; 2]>,
    /// Iterations over which the range ramps to `difficulty` (0: all of them).
    #[serde(default)]
    pub ramp_iterations: u32,
    /// Number of levels of the `step` schedule.
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Weight of a random-playout value mixed into the network's leaf value
    /// for this family (0: network only). Helps long-horizon puzzles whose
    /// sparse successes leave the value head little to learn from early on.
    #[serde(default)]
    pub rollout_mix: f32,
}

fn default_steps() -> u32 {
    4
}

/// How a family's difficulty range moves over iterations.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    /// Straight line from `difficulty_start` to `difficulty`.
    Linear,
    /// `steps` equal levels from `difficulty_start` to `difficulty`.
    Step,
}

impl FamilyConfig {
    /// The difficulty range of `iteration` (1-based) in a run of `iterations`.
    pub fn difficulty_at(&self, iteration: u32, iterations: u32) -> [f32; 2] {
        let start = self.difficulty_start.unwrap_or(self.difficulty);
        let ramp = if self.ramp_iterations == 0 {
            iterations
        } else {
            self.ramp_iterations
        }
        .max(1);
        let progress = |i: u32| (i.saturating_sub(1) as f32 / (ramp.max(2) - 1) as f32).min(1.0);
        let t = match self.schedule {
            Schedule::Constant => 1.0,
            Schedule::Linear => progress(iteration),
            Schedule::Step => {
                let levels = self.steps.max(2) as f32;
                ((progress(iteration) * levels).floor().min(levels - 1.0)) / (levels - 1.0)
            }
        };
        let lerp = |a: f32, b: f32| a + (b - a) * t;
        [
            lerp(start[0], self.difficulty[0]),
            lerp(start[1], self.difficulty[1]),
        ]
    }

    /// The whole range the run covers (held-out tasks span it).
    pub fn difficulty_span(&self) -> [f32; 2] {
        let start = self.difficulty_start.unwrap_or(self.difficulty);
        [
            start[0].min(self.difficulty[0]),
            start[1].max(self.difficulty[1]),
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MctsConfig {
    pub num_simulations: u32,
    /// Exploration constant of PUCT.
    pub c_puct: f32,
    /// First-play urgency: unvisited children score the parent's Q minus this.
    pub fpu_reduction: f32,
    pub dirichlet_alpha: f32,
    /// Share of root prior replaced by Dirichlet noise (self-play only).
    pub dirichlet_epsilon: f32,
    /// Sampling temperature for the first `temperature_moves` moves, then greedy.
    pub temperature: f32,
    pub temperature_moves: u32,
    /// Leaves collected per tree per network call (virtual loss keeps them apart).
    pub leaves_per_wave: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture: only `mlp` (residual MLP) for now.
    pub arch: String,
    pub hidden: usize,
    pub blocks: usize,
    pub value_hidden: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps per iteration.
    pub steps: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Weight of the value MSE against the policy cross-entropy.
    pub value_weight: f64,
    /// libtorch intra-op threads.
    pub threads: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Held-out puzzles per puzzle family (fixed set, seeds disjoint from training).
    pub heldout_tasks: usize,
    /// Games per two-player matchup, half with each colour.
    pub games: usize,
    /// Simulations per move in evaluation (0: same as mcts.num_simulations).
    pub num_simulations: u32,
    /// Promote when the candidate's mean advantage over the incumbent is >= this.
    pub gate_threshold: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InferConfig {
    /// `cpu` or `cuda` / `cuda:N`.
    pub device: String,
    /// ONNX Runtime intra-op threads (0: all cores).
    pub threads: usize,
}

impl Config {
    /// Loads a TOML file (or the embedded default) and applies `key=value` overrides.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config> {
        let (name, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            ),
            None => (
                "pipelines/default.toml (embedded)".into(),
                DEFAULT_TOML.into(),
            ),
        };
        let parse = |text: &str| {
            text.parse::<toml::Table>()
                .map_err(|e| Error::Config(format!("{name}: {}", one_line(&e.to_string()))))
        };
        let mut value = parse(DEFAULT_TOML)?;
        merge(&mut value, parse(&text)?);
        for kv in overrides {
            apply_override(&mut value, kv)?;
        }
        let config: Config =
            toml::Value::Table(value)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::Config(format!("{name}: {}", one_line(&e.to_string())))
                })?;
        config
            .validate()
            .map_err(|e| Error::Config(format!("{name}: {e}")))?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.families.is_empty() {
            return Err("`families` is empty: expected at least one of countdown, connect4".into());
        }
        for (name, fam) in &self.families {
            Family::parse(name).map_err(|e| format!("families.{name}: {e}"))?;
            let ranges = [
                ("difficulty", Some(fam.difficulty)),
                ("difficulty_start", fam.difficulty_start),
            ];
            for (key, range) in ranges {
                let Some([lo, hi]) = range else { continue };
                if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
                    return Err(format!(
                        "families.{name}.{key} = [{lo}, {hi}]: expected 0 <= lo <= hi <= 1"
                    ));
                }
            }
            if !(0.0..=1.0).contains(&fam.rollout_mix) {
                return Err(format!(
                    "families.{name}.rollout_mix = {}: expected a value in [0, 1]",
                    fam.rollout_mix
                ));
            }
            if !(fam.weight >= 0.0 && fam.weight.is_finite()) {
                return Err(format!(
                    "families.{name}.weight = {}: expected >= 0",
                    fam.weight
                ));
            }
        }
        if self.families.values().all(|f| f.weight == 0.0) {
            return Err("every families.*.weight is 0: expected one > 0".into());
        }
        positive("parallel_batch_size", self.parallel_batch_size)?;
        positive("batch_size", self.batch_size)?;
        positive("max_buffer_size", self.max_buffer_size)?;
        positive("mcts.num_simulations", self.mcts.num_simulations as usize)?;
        positive("mcts.leaves_per_wave", self.mcts.leaves_per_wave as usize)?;
        positive("model.hidden", self.model.hidden)?;
        positive("model.value_hidden", self.model.value_hidden)?;
        if self.model.arch != "mlp" {
            return Err(format!(
                "model.arch = '{}': expected 'mlp'",
                self.model.arch
            ));
        }
        if self.mcts.c_puct <= 0.0 || !self.mcts.c_puct.is_finite() {
            return Err(format!("mcts.c_puct = {}: expected > 0", self.mcts.c_puct));
        }
        if !(0.0..=1.0).contains(&self.mcts.dirichlet_epsilon) {
            return Err("mcts.dirichlet_epsilon: expected a value in [0, 1]".into());
        }
        if self.mcts.dirichlet_alpha <= 0.0 {
            return Err("mcts.dirichlet_alpha: expected > 0".into());
        }
        parse_device(&self.infer.device).map_err(|e| format!("infer.device: {e}"))?;
        Ok(())
    }

    /// Families in the run with their config, in a fixed order.
    pub fn families(&self) -> Vec<(Family, FamilyConfig)> {
        let mut out: Vec<_> = self
            .families
            .iter()
            .filter_map(|(n, c)| Family::parse(n).ok().map(|f| (f, c.clone())))
            .collect();
        out.sort_by_key(|(f, _)| *f);
        out
    }

    /// Rollout mix weight per family, indexed by `family as usize`.
    pub fn rollout_mix(&self) -> Vec<f32> {
        let mut mix = vec![0.0; Family::ALL.len()];
        for (f, c) in self.families() {
            mix[f as usize] = c.rollout_mix;
        }
        mix
    }

    /// Observation and action sizes the run's model needs: the max over families.
    pub fn model_dims(&self) -> (usize, usize) {
        let fams = self.families();
        let obs = fams.iter().map(|(f, _)| f.input_dim()).max().unwrap_or(0);
        let act = fams.iter().map(|(f, _)| f.action_dim()).max().unwrap_or(0);
        (obs, act)
    }

    /// Simulations per move in evaluation.
    pub fn eval_simulations(&self) -> u32 {
        match self.eval.num_simulations {
            0 => self.mcts.num_simulations,
            n => n,
        }
    }

    /// Short stable hash of the whole config, recorded in markers and metadata.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> std::result::Result<crate::infer::Device, String> {
    match s {
        "cpu" => Ok(crate::infer::Device::Cpu),
        "cuda" => Ok(crate::infer::Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(crate::infer::Device::Cuda)
            .ok_or_else(|| format!("'{s}': expected cpu, cuda or cuda:N")),
    }
}

fn positive(key: &str, v: usize) -> std::result::Result<(), String> {
    if v == 0 {
        return Err(format!("{key} = 0: expected a positive number"));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Overlays a config file on the embedded default: tables merge key by key,
/// except `families`, which a file that names it replaces whole (so a run can
/// drop a family).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if key != "families" => {
                merge(b, o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Applies `a.b.c=value` to a TOML table; the value is parsed as TOML, else taken as a string.
fn apply_override(table: &mut toml::Table, kv: &str) -> Result<()> {
    let (key, raw) = kv
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--set '{kv}': expected KEY=VALUE")))?;
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| {
            Error::Config(format!("--set '{kv}': '{part}' is a value, not a table"))
        })?;
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_loads_and_overrides_apply() {
        let c = Config::load(None, &["mcts.num_simulations=12".into(), "seed=7".into()]).unwrap();
        assert_eq!(c.mcts.num_simulations, 12);
        assert_eq!(c.seed, 7);
    }

    #[test]
    fn a_file_overlays_the_default_and_replaces_families() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "iterations = 3\n[mcts]\nc_puct = 2.0\n[families.sudoku]\nweight = 1.0\ndifficulty = [0.0, 0.2]\n").unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        assert_eq!(c.iterations, 3);
        assert_eq!(c.mcts.c_puct, 2.0);
        assert_eq!(
            c.mcts.num_simulations,
            Config::load(None, &[]).unwrap().mcts.num_simulations
        );
        assert_eq!(c.families.keys().collect::<Vec<_>>(), vec!["sudoku"]);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = Config::load(None, &["mcts.num_simulation=12".into()]).unwrap_err();
        assert!(e.to_string().contains("num_simulation"), "{e}");
    }

    #[test]
    fn unknown_family_is_an_error() {
        let e = Config::load(None, &["families.chess.weight=1".into()]).unwrap_err();
        assert!(e.to_string().contains("chess"), "{e}");
    }

    #[test]
    fn bad_difficulty_is_an_error() {
        let e =
            Config::load(None, &["families.countdown.difficulty=[0.9, 0.1]".into()]).unwrap_err();
        assert!(e.to_string().contains("difficulty"), "{e}");
    }

    #[test]
    fn rollout_mix_outside_unit_interval_is_refused() {
        let e = Config::load(None, &["families.countdown.rollout_mix=1.5".into()]).unwrap_err();
        assert!(e.to_string().contains("rollout_mix"), "{e}");
        let c = Config::load(None, &["families.countdown.rollout_mix=0.25".into()]).unwrap();
        assert_eq!(c.rollout_mix()[Family::Countdown as usize], 0.25);
        assert_eq!(c.rollout_mix()[Family::Connect4 as usize], 0.0);
    }

    #[test]
    fn curricula_ramp_from_start_to_end() {
        let mut f = FamilyConfig {
            weight: 1.0,
            difficulty: [0.5, 1.0],
            schedule: Schedule::Linear,
            difficulty_start: Some([0.0, 0.2]),
            ramp_iterations: 5,
            steps: 4,
            rollout_mix: 0.0,
        };
        assert_eq!(f.difficulty_at(1, 10), [0.0, 0.2]);
        assert_eq!(f.difficulty_at(3, 10), [0.25, 0.6]);
        assert_eq!(f.difficulty_at(5, 10), [0.5, 1.0]);
        assert_eq!(f.difficulty_at(9, 10), [0.5, 1.0]);
        f.schedule = Schedule::Step;
        f.steps = 2;
        assert_eq!(f.difficulty_at(2, 10), [0.0, 0.2]);
        assert_eq!(f.difficulty_at(4, 10), [0.5, 1.0]);
        f.schedule = Schedule::Constant;
        assert_eq!(f.difficulty_at(1, 10), [0.5, 1.0]);
        assert_eq!(f.difficulty_span(), [0.0, 1.0]);
        let e = Config::load(None, &["families.countdown.schedule=\"wavy\"".into()]).unwrap_err();
        assert!(e.to_string().contains("wavy"), "{e}");
    }

    #[test]
    fn hash_changes_with_config() {
        let a = Config::load(None, &[]).unwrap();
        let b = Config::load(None, &["seed=99".into()]).unwrap();
        assert_ne!(a.hash(), b.hash());
    }
}
