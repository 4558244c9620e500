//! Run configuration: one TOML file (pipelines/*.toml), every key overridable
//! with `--set key=value`. Unknown keys are errors, so a typo never silently
//! runs the defaults.

use crate::error::{Error, Result};
use crate::model::{ArchConfig, ModelSpec};
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
    /// Root seed; every task, episode and weight init derives from it. Any u64.
    pub seed: u64,
    /// Iterations of tasks -> play -> train -> eval -> gate in `run`.
    /// Range: [0, 100000].
    pub iterations: u32,
    /// Self-play episodes per iteration, over all families. Range: [1, 10000000].
    pub games_per_iteration: usize,
    /// Episodes advanced in lock-step; one network call serves all of them.
    /// Range: [1, 65536].
    pub parallel_batch_size: usize,
    /// Training minibatch size. Range: [1, 65536].
    pub batch_size: usize,
    /// Replay window: training samples from the newest this many examples.
    /// Range: [1, 10000000]. Memory does not grow with it beyond
    /// `train.shuffle_buffer` rows (see `replay_window_bytes`).
    pub max_buffer_size: usize,
    /// Task families and their mix and difficulty schedule.
    pub families: BTreeMap<String, FamilyConfig>,
    pub mcts: MctsConfig,
    /// `[model]`: `arch` and that architecture's own keys.
    pub model: ArchConfig,
    pub train: TrainConfig,
    /// `[examples]`: what self-play writes beside each training target.
    #[serde(default)]
    pub examples: ExamplesConfig,
    pub eval: EvalConfig,
    pub infer: InferConfig,
}

/// Weights self-play gives its examples (the loss weighs each row by it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExamplesConfig {
    /// Weight of every example of a one-player episode that succeeded.
    /// Range: [0, 100].
    pub success_weight: f64,
    /// Weight of every example of a one-player episode that failed (its
    /// search targets are less trustworthy). Range: [0, 100].
    pub failure_weight: f64,
    /// Share of the search's root value in each value target: the target
    /// is `(1 - m) * z + m * q`, `z` the (discounted) outcome and `q` the
    /// root's backed-up value, both from the mover's view; a game's one
    /// outcome is a noisy label for its early positions, the search's
    /// value a smoother one (z/q averaging). 0: the outcome alone.
    /// Range: [0, 1].
    #[serde(default)]
    pub value_q_mix: f64,
}

impl Default for ExamplesConfig {
    fn default() -> Self {
        ExamplesConfig {
            success_weight: 1.0,
            failure_weight: 1.0,
            value_q_mix: 0.0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    /// Share of self-play episodes (normalised over families). Range: [0, 1e6];
    /// at least one family's must be > 0.
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
    /// Range: [0, 100000].
    #[serde(default)]
    pub ramp_iterations: u32,
    /// Number of levels of the `step` schedule (1 acts as 2). Range: [1, 1000].
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Weight of a random-playout value mixed into the network's leaf value
    /// for this family (0: network only). Helps long-horizon puzzles whose
    /// sparse successes leave the value head little to learn from early on.
    /// Range: [0, 1].
    #[serde(default)]
    pub rollout_mix: f32,
    /// What the model sees: `full` (default) or `raw` (sudoku: the grid
    /// only, no candidate or propagation features).
    #[serde(default, skip_serializing_if = "crate::tasks::View::is_full")]
    pub observation: crate::tasks::View,
    /// connect4: random opening plies [at difficulty 0, at difficulty 1] of
    /// a task's start position (unset: the family's own 0-10). Deeper
    /// openings put odd, tactical positions in self-play, like those of
    /// random-playout benchmark sets. Range: 0 <= lo <= hi <= 36.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_plies: Option<[u32; 2]>,
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
    /// Simulations per move in self-play. Range: [1, 100000].
    pub num_simulations: u32,
    /// Exploration constant of PUCT. Range: [1e-6, 100] (must be > 0).
    pub c_puct: f32,
    /// First-play urgency: unvisited children score the parent's Q minus this.
    /// Range: [-2, 2] (values lie in [-1, 1]).
    pub fpu_reduction: f32,
    /// Concentration of the root Dirichlet noise. Range: [1e-6, 100].
    pub dirichlet_alpha: f32,
    /// Share of root prior replaced by Dirichlet noise (self-play only).
    /// Range: [0, 1].
    pub dirichlet_epsilon: f32,
    /// Sampling temperature for the first `temperature_moves` moves, then greedy.
    /// Range: [0, 100] (0: greedy throughout).
    pub temperature: f32,
    /// Moves played with `temperature` before greedy play. Range: [0, 100000].
    pub temperature_moves: u32,
    /// Leaves collected per tree per network call (virtual loss keeps them apart).
    /// Range: [1, 256].
    pub leaves_per_wave: u32,
    /// The search policy: `puct` (AlphaZero: Dirichlet noise, PUCT, visit
    /// counts as the target) or `gumbel` (Gumbel AlphaZero: Gumbel-top-k
    /// and sequential halving at the root, completed-Q targets).
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Gumbel: most root actions considered. Range: [1, 4096].
    #[serde(default = "default_gumbel_m")]
    pub gumbel_m: u32,
    /// Gumbel: `c_visit` of sigma = (c_visit + max N) * c_scale * q.
    /// Range: [0, 1e6].
    #[serde(default = "default_c_visit")]
    pub c_visit: f32,
    /// Gumbel: `c_scale` of sigma (mctx's default 0.1). Range: [0, 1e3].
    #[serde(default = "default_c_scale")]
    pub c_scale: f32,
    /// Gumbel: self-play moves whose root draws Gumbel noise (the
    /// exploration, as PUCT samples by temperature); later moves play the
    /// improved policy's best action, their targets unchanged. Default:
    /// every move, as mctx. Range: [0, 100000].
    #[serde(default = "default_gumbel_noise_moves")]
    pub gumbel_noise_moves: u32,
    /// Playout cap randomization (KataGo): the share of self-play moves
    /// searched with the full budget and recorded as training targets; the
    /// others get `fast_simulations` without noise and give no example
    /// (1: every move full, the cap off). Range: [0, 1].
    #[serde(default = "default_full_search_prob")]
    pub full_search_prob: f32,
    /// Simulations of a fast move under the playout cap. Range: [1, 100000].
    #[serde(default = "default_fast_simulations")]
    pub fast_simulations: u32,
    /// Forced playouts and policy target pruning (KataGo), PUCT self-play
    /// on full moves: each root child gets at least sqrt(k x prior x N)
    /// visits, so moves the noised prior ranks low are looked at, and the
    /// policy target gives those forced visits back where PUCT would not
    /// have spent them. This is k (KataGo's 2); 0: off. Range: [0, 100].
    #[serde(default)]
    pub forced_playouts: f32,
    /// Positions the evaluation cache holds per evaluator (rounded up to a
    /// power of two), shared out over search lanes (each lane's cache
    /// holds a lanes-th); a cached or repeated position is not sent to the
    /// network again. 0: off. Range: [0, 16777216].
    #[serde(default = "default_cache_entries")]
    pub cache_entries: u32,
    /// Per-ply discount of values: a state's value is gamma^(plies to the
    /// end) times the outcome, in search backups, proven values and value
    /// targets, so a sooner win (a later loss) is worth more, as a perfect
    /// solver scores moves. 1: undiscounted. Range: [0.01, 1].
    #[serde(default = "default_discount")]
    pub discount: f32,
    /// Length penalty of two-player endings: a win or loss is worth
    /// `1 - lambda * (stones on the board when it ends)` of a whole one, in
    /// search (terminal and proven values) and in value targets. A solver
    /// scores moves so (Pons' Connect Four score is linear in it), and
    /// unlike `discount` it keeps adjacent distances equally far apart in
    /// value however far off they are. 0: off. Range: [0, 0.023], so a win
    /// on a full Connect Four board stays above a draw. Puzzles ignore it.
    #[serde(default)]
    pub length_penalty: f32,
    /// MCTS-Solver in two-player games: endings reached in the tree are
    /// proven with their distance and carried up, and a proven root plays
    /// the soonest win or the latest loss. Off by default: it is what a
    /// solver-scored benchmark asks for (pipelines/connect4.toml), but
    /// self-play with it trained weaker default-run Connect Four models on
    /// two seeds (README). Puzzle successes are proven either way.
    #[serde(default)]
    pub solver: bool,
    /// Monte-Carlo graph search in Connect Four and tic-tac-toe: a
    /// position reached by another move order shares the subtree searched
    /// first, so no simulation is spent searching a position twice. Off by
    /// default.
    #[serde(default)]
    pub graph: bool,
}

fn default_discount() -> f32 {
    1.0
}

fn default_cache_entries() -> u32 {
    1 << 18
}

fn default_full_search_prob() -> f32 {
    1.0
}

fn default_fast_simulations() -> u32 {
    16
}

/// `mcts.algorithm`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Puct,
    Gumbel,
}

fn default_gumbel_m() -> u32 {
    16
}

fn default_c_visit() -> f32 {
    50.0
}

fn default_gumbel_noise_moves() -> u32 {
    100_000
}

fn default_c_scale() -> f32 {
    0.1
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps per iteration. Range: [0, 10000000].
    pub steps: usize,
    /// AdamW learning rate. Range: [1e-9, 10].
    pub learning_rate: f64,
    /// AdamW weight decay. Range: [0, 10].
    pub weight_decay: f64,
    /// Weight of the value MSE against the policy cross-entropy. Range: [0, 1000].
    pub value_weight: f64,
    /// libtorch intra-op threads. Range: [1, 1024].
    pub threads: usize,
    /// Learning rate after warm-up: `constant`, or `cosine` decay over the
    /// run's `iterations x steps` optimizer steps down to
    /// `final_lr_ratio x learning_rate`.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Optimizer steps of linear warm-up from 0, counted over the whole run.
    /// Range: [0, 10000000].
    #[serde(default)]
    pub warmup_steps: u64,
    /// Where `cosine` ends, as a share of `learning_rate`. Range: [0, 1].
    #[serde(default = "default_final_lr_ratio")]
    pub final_lr_ratio: f64,
    /// Clip the gradients' global L2 norm to this (0: no clipping).
    /// Range: [0, 1e6].
    #[serde(default)]
    pub grad_clip: f64,
    /// Write a resumable checkpoint (weights, optimizer, average, position)
    /// every this many steps; a killed `train` rerun continues from the last
    /// one and ends with the uninterrupted run's weights (0: none).
    /// Range: [0, 10000000].
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Continue the parent model's optimizer state (AdamW moments and step)
    /// in the next iteration (`true`), or start each iteration's optimizer
    /// afresh (`false`).
    #[serde(default = "default_true")]
    pub continue_optimizer: bool,
    /// Rows of the replay window held in memory: a window that fits is
    /// loaded whole, a larger one streams through a shuffle buffer of this
    /// many rows. Range: [1, 10000000].
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// Share of tasks whose examples are never trained on; the curves
    /// measure losses on them. Range: [0, 0.5].
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// A curves-store measurement every this many minibatches, and one at
    /// the end of each iteration's training (0: only the end).
    /// Range: [0, 10000000].
    #[serde(default = "default_curve_every")]
    pub curve_every: u64,
    /// Map each training row by a random symmetry of its family where the
    /// family declares them (Connect Four's mirror, tic-tac-toe's eight,
    /// Sudoku's digit relabellings).
    #[serde(default = "default_true")]
    pub augment: bool,
    /// Where training runs: `cpu`, or `cuda` / `cuda:N` (libtorch CUDA;
    /// refused, never silently on the CPU, where there is no such GPU).
    #[serde(default = "default_cpu")]
    pub device: String,
    /// Decay of an exponential moving average of the weights, for any
    /// architecture (0: the architecture's own, `model.ema_decay` of trm
    /// and hrm, none for mlp and resnet). Range: [0, 0.99999].
    #[serde(default)]
    pub ema_decay: f64,
    /// Which weights a trained model plays with, when an average is kept:
    /// `average` (model.onnx and weights.safetensors are the average) or
    /// `trained` (they are the trained weights; the average is saved
    /// beside them as average.safetensors).
    #[serde(default)]
    pub play_weights: PlayWeights,
    /// Weight of the ownership head's cross-entropy (`model.ownership`)
    /// against the policy cross-entropy. Range: [0, 1000].
    #[serde(default = "default_ownership_weight")]
    pub ownership_weight: f64,
}

fn default_ownership_weight() -> f64 {
    1.0
}

/// `train.play_weights`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlayWeights {
    #[default]
    Average,
    Trained,
}

fn default_cpu() -> String {
    "cpu".into()
}

fn default_shuffle_buffer() -> usize {
    200_000
}

fn default_holdout() -> f64 {
    0.02
}

fn default_curve_every() -> u64 {
    100
}

fn default_true() -> bool {
    true
}

fn default_final_lr_ratio() -> f64 {
    0.1
}

fn default_checkpoint_every() -> u64 {
    250
}

/// `train.lr_schedule`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    Cosine,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Held-out puzzles per puzzle family (fixed set, seeds disjoint from training).
    /// Range: [1, 1000000].
    pub heldout_tasks: usize,
    /// Games per two-player matchup, half with each colour. Range: [1, 1000000].
    pub games: usize,
    /// Simulations per move in evaluation (0: same as mcts.num_simulations).
    /// Range: [0, 100000].
    pub num_simulations: u32,
    /// Promote when the candidate's mean advantage over the incumbent is >= this.
    /// Range: [-1, 1] (advantages lie in [-1, 1]; -1 always promotes).
    pub gate_threshold: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InferConfig {
    /// `cpu` or `cuda` / `cuda:N`.
    pub device: String,
    /// ONNX Runtime intra-op threads (0: all cores). Range: [0, 1024].
    pub threads: usize,
    /// Independent search loops, each on its own thread with its own ONNX
    /// Runtime session (of `threads` intra-op threads, or cores / lanes
    /// for 0) and cache, sharing the episodes in flight: tree work and the
    /// network take turns on each lane's core without hand-offs.
    /// 0: one per core on CPU, 1 on CUDA. Results do not depend on it.
    /// Range: [0, 1024].
    #[serde(default)]
    pub lanes: usize,
    /// Overlap tree work with the network: episodes in two groups, one
    /// group's tree work on the search thread while ONNX Runtime's
    /// `threads` evaluate the other's leaves (tree work is small beside
    /// the network; taking turns, it runs on all cores instead). Results
    /// do not depend on it.
    #[serde(default)]
    pub overlap: bool,
    /// ONNX Runtime's threads wait for the next call spinning instead of
    /// asleep: a wake-up saved per parallel operator, but the spinning
    /// threads take cores that tree work between calls needs.
    #[serde(default)]
    pub spin: bool,
    /// Average every network output over its position's symmetries
    /// (Connect Four's mirror, the square's eight for tic-tac-toe): a
    /// steadier policy and value for one more network row per symmetry.
    #[serde(default)]
    pub average_symmetries: bool,
}

impl InferConfig {
    /// Search lanes: `lanes`, or for 0 one per core on CPU and one on CUDA.
    pub fn lanes(&self) -> usize {
        match (self.lanes, parse_device(&self.device)) {
            (0, Ok(crate::infer::Device::Cpu)) => cores(),
            (0, _) => 1,
            (n, _) => n,
        }
    }

    /// Intra-op threads of each lane's session: `threads`, or for 0 with
    /// several lanes the cores shared out (ONNX Runtime's own choice, all
    /// cores, with one lane).
    pub fn session_threads(&self) -> usize {
        match (self.threads, self.lanes()) {
            (0, 1) => 0,
            (0, lanes) => (cores() / lanes).max(1),
            (n, _) => n,
        }
    }
}

/// Cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The valid range of a numeric config key. Checked on the merged TOML
/// before deserialisation, so a float for an integer key, NaN, inf or an
/// out-of-range value is reported with the key and its range.
pub struct Range {
    /// Dotted key; `*` stands for any family name (`families.*.weight`).
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    /// Integer keys refuse floats (`1e11`, `2.0`).
    pub integer: bool,
    /// What a bound means, when that is not obvious (shown in the error).
    pub doc: &'static str,
}

const fn int(key: &'static str, min: i64, max: i64, doc: &'static str) -> Range {
    Range {
        key,
        min: min as f64,
        max: max as f64,
        integer: true,
        doc,
    }
}

const fn float(key: &'static str, min: f64, max: f64, doc: &'static str) -> Range {
    Range {
        key,
        min,
        max,
        integer: false,
        doc,
    }
}

/// Every numeric key's range (`seed` takes any u64). Bounds fit one machine
/// of a few to 16 cores and 24 GiB, GPU or not; a unit test fails when a
/// numeric key has no entry here.
pub const RANGES: &[Range] = &[
    int("iterations", 0, 100_000, ""),
    int("games_per_iteration", 1, 10_000_000, ""),
    int("parallel_batch_size", 1, 65_536, ""),
    int("batch_size", 1, 65_536, ""),
    int("max_buffer_size", 1, 10_000_000, ""),
    float("families.*.weight", 0.0, 1e6, ""),
    int(
        "families.*.ramp_iterations",
        0,
        100_000,
        "0: all iterations",
    ),
    int("families.*.steps", 1, 1000, ""),
    float("families.*.rollout_mix", 0.0, 1.0, ""),
    int("mcts.num_simulations", 1, 100_000, ""),
    float("mcts.c_puct", 1e-6, 100.0, "must be > 0"),
    float("mcts.fpu_reduction", -2.0, 2.0, ""),
    float("mcts.dirichlet_alpha", 1e-6, 100.0, "must be > 0"),
    float("mcts.dirichlet_epsilon", 0.0, 1.0, ""),
    float("mcts.temperature", 0.0, 100.0, "0: greedy"),
    int("mcts.temperature_moves", 0, 100_000, ""),
    int("mcts.leaves_per_wave", 1, 256, ""),
    int("mcts.gumbel_m", 1, 4096, ""),
    float("mcts.c_visit", 0.0, 1e6, ""),
    float("mcts.c_scale", 0.0, 1e3, ""),
    int("mcts.gumbel_noise_moves", 0, 100_000, ""),
    float("mcts.full_search_prob", 0.0, 1.0, "1: the playout cap off"),
    int("mcts.fast_simulations", 1, 100_000, ""),
    float("mcts.forced_playouts", 0.0, 100.0, "0: off"),
    int("mcts.cache_entries", 0, 1 << 24, "0: off"),
    float("mcts.discount", 0.01, 1.0, "1: undiscounted"),
    float("mcts.length_penalty", 0.0, 0.023, "0: off"),
    // [model], per architecture; a key's range applies where it is present.
    // mlp:
    int("model.hidden", 1, 8192, ""),
    int("model.blocks", 0, 64, ""),
    int("model.value_hidden", 1, 8192, ""),
    // resnet (blocks and value_hidden as above):
    int("model.filters", 1, 1024, ""),
    int("model.flat_hidden", 1, 8192, ""),
    int("model.policy_channels", 1, 1024, ""),
    int("model.value_channels", 1, 1024, ""),
    int(
        "model.value_bins",
        0,
        1024,
        "0: a tanh scalar; 1 is refused",
    ),
    // trm, hrm (with hidden and value_hidden above):
    int("model.n", 1, 16, ""),
    int("model.t", 1, 16, ""),
    int("model.cycles", 1, 16, ""),
    int("model.n_sup", 1, 64, ""),
    int("model.export_steps", 1, 64, ""),
    float("model.ema_decay", 0.0, 0.99999, "0: no average"),
    int("train.steps", 0, 10_000_000, ""),
    float("train.learning_rate", 1e-9, 10.0, ""),
    float("train.weight_decay", 0.0, 10.0, ""),
    float("train.value_weight", 0.0, 1000.0, ""),
    float("train.ownership_weight", 0.0, 1000.0, ""),
    int("train.threads", 1, 1024, ""),
    int("train.warmup_steps", 0, 10_000_000, ""),
    float("train.final_lr_ratio", 0.0, 1.0, ""),
    float("train.grad_clip", 0.0, 1e6, "0: no clipping"),
    int("train.checkpoint_every", 0, 10_000_000, "0: no checkpoints"),
    int("train.shuffle_buffer", 1, 10_000_000, ""),
    float("train.holdout", 0.0, 0.5, ""),
    int("train.curve_every", 0, 10_000_000, "0: at the end only"),
    float("train.ema_decay", 0.0, 0.99999, "0: the architecture's own"),
    float("examples.success_weight", 0.0, 100.0, ""),
    float("examples.value_q_mix", 0.0, 1.0, ""),
    float("examples.failure_weight", 0.0, 100.0, ""),
    int("eval.heldout_tasks", 1, 1_000_000, ""),
    int("eval.games", 1, 1_000_000, ""),
    int(
        "eval.num_simulations",
        0,
        100_000,
        "0: same as mcts.num_simulations",
    ),
    float("eval.gate_threshold", -1.0, 1.0, ""),
    int("infer.threads", 0, 1024, "0: all cores"),
    int("infer.lanes", 0, 1024, "0: one per core on CPU, 1 on CUDA"),
];

/// Most parameters a model may have (about 400 MB of f32 weights; training
/// holds four copies with AdamW's moments).
pub const MAX_PARAMETERS: usize = 100_000_000;

/// Most bytes the rows training holds (the window or the shuffle buffer)
/// may take as dense f32 rows: about 7M rows of countdown and connect4,
/// 650k with every family.
pub const MAX_WINDOW_BYTES: usize = 6 << 30;

impl Range {
    /// The entry for a dotted key, if it is numeric.
    pub fn of(key: &str) -> Option<&'static Range> {
        RANGES.iter().find(|r| {
            let (mut p, mut k) = (r.key.split('.'), key.split('.'));
            loop {
                match (p.next(), k.next()) {
                    (None, None) => return true,
                    (Some(a), Some(b)) if a == "*" || a == b => {}
                    _ => return false,
                }
            }
        })
    }

    /// Checks `key`'s value: a finite number (an integer for integer keys) in range.
    fn check(&self, key: &str, value: &toml::Value) -> std::result::Result<(), String> {
        let x = match value {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) if !self.integer => Some(*f),
            _ => None,
        };
        // NaN fails both comparisons, inf the upper or lower bound.
        if x.is_some_and(|x| x >= self.min && x <= self.max) {
            return Ok(());
        }
        let kind = if self.integer {
            "an integer"
        } else {
            "a number"
        };
        let doc = match self.doc {
            "" => String::new(),
            d => format!(" ({d})"),
        };
        Err(format!(
            "{key} = {}: expected {kind} in [{}, {}]{doc}",
            one_line(&value.to_string()),
            bound(self.min),
            bound(self.max)
        ))
    }
}

/// A bound as written in docs: `100000`, `0.5`, `1e-6`.
fn bound(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// Checks every numeric key of a merged config tree against [`RANGES`];
/// keys without an entry are left to deserialisation.
fn check_ranges(table: &toml::Table, prefix: &str) -> std::result::Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (Range::of(&key), v) {
            (Some(range), v) => range.check(&key, v)?,
            (None, toml::Value::Table(t)) => check_ranges(t, &key)?,
            (None, _) => {}
        }
    }
    Ok(())
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
        check_model_keys(&value).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        check_ranges(&value, "").map_err(|e| Error::Config(format!("{name}: {e}")))?;
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
        }
        for (f, c) in self.families() {
            if let Some([lo, hi]) = c.opening_plies {
                if f != Family::Connect4 {
                    return Err(format!(
                        "families.{f}.opening_plies: only connect4 takes random opening plies; remove the key"
                    ));
                }
                if lo > hi || hi > crate::tasks::connect4::MAX_CONFIG_OPENING_PLIES {
                    return Err(format!(
                        "families.{f}.opening_plies = [{lo}, {hi}]: expected 0 <= lo <= hi <= {}",
                        crate::tasks::connect4::MAX_CONFIG_OPENING_PLIES
                    ));
                }
            }
            if !f.has_view(c.observation) {
                return Err(format!(
                    "families.{f}.observation = \"raw\": family {f} has no raw view (only sudoku and connect4 have one); expected \"full\""
                ));
            }
        }
        if self.families.values().all(|f| f.weight == 0.0) {
            return Err("every families.*.weight is 0: expected one > 0".into());
        }
        self.model_spec().check()?;
        let params = self.model_parameters();
        if params > MAX_PARAMETERS {
            return Err(format!(
                "{}: {:.1}M parameters, expected at most {}M; make the model smaller",
                model_keys(&self.model),
                params as f64 / 1e6,
                MAX_PARAMETERS / 1_000_000
            ));
        }
        let bytes = self.replay_window_bytes();
        if bytes > MAX_WINDOW_BYTES {
            let (obs, act) = self.model_dims();
            return Err(format!(
                "train.shuffle_buffer = {} (with max_buffer_size = {}): the rows training holds take {:.1} GiB \
                 (obs_dim {obs}, action_dim {act}), expected at most {} GiB; lower train.shuffle_buffer",
                self.train.shuffle_buffer,
                self.max_buffer_size,
                bytes as f64 / (1u64 << 30) as f64,
                MAX_WINDOW_BYTES >> 30
            ));
        }
        parse_device(&self.infer.device).map_err(|e| format!("infer.device: {e}"))?;
        parse_device(&self.train.device).map_err(|e| format!("train.device: {e}"))?;
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

    /// Each family's observation view, indexed by `family as usize`.
    pub fn views(&self) -> Vec<crate::tasks::View> {
        let mut views = vec![crate::tasks::View::Full; Family::ALL.len()];
        for (f, c) in self.families() {
            views[f as usize] = c.observation;
        }
        views
    }

    /// The start state of `task` as this run observes it.
    pub fn game(&self, task: &crate::tasks::Task) -> crate::error::Result<crate::tasks::Game> {
        let view = self.views()[task.family as usize];
        crate::tasks::Game::from_task(task)?
            .with_view(view)
            .map_err(|e| Error::Config(format!("families.{}.observation: {e}", task.family)))
    }

    /// The task of `family` for (difficulty, seed) under this config's
    /// generator settings (connect4's `opening_plies`).
    pub fn generate(&self, family: Family, difficulty: f32, seed: u64) -> crate::tasks::Task {
        let plies = self
            .families
            .get(family.name())
            .and_then(|c| c.opening_plies);
        match (family, plies) {
            (Family::Connect4, Some(range)) => {
                crate::tasks::connect4::generate_with_openings(difficulty, seed, range)
            }
            _ => family.generate(difficulty, seed),
        }
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

    /// The network the run's config asks for: its dims and `[model]`.
    pub fn model_spec(&self) -> ModelSpec {
        let (obs_dim, action_dim) = self.model_dims();
        let families: Vec<Family> = self.families().into_iter().map(|(f, _)| f).collect();
        let dims = crate::model::Dims {
            obs_dim,
            action_dim,
            grid: crate::model::GridView::for_families(&families),
        };
        ModelSpec::new(dims, self.model.clone())
    }

    /// Parameters of the run's model (weights and biases).
    pub fn model_parameters(&self) -> usize {
        self.model_spec().parameter_count()
    }

    /// Bytes of the rows training holds in memory (the whole window, or
    /// the shuffle buffer), bounded as dense f32 rows (observations, legal
    /// mask, policy targets).
    pub fn replay_window_bytes(&self) -> usize {
        let (obs, act) = self.model_dims();
        self.max_buffer_size.min(self.train.shuffle_buffer) * (obs + 2 * act + 1) * 4
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Overlays a config file on the embedded default: tables merge key by key,
/// except `families`, which a file that names it replaces whole (so a run can
/// drop a family).
/// `model.arch = "mlp", model.hidden = 256, ...`: a model config for messages.
fn model_keys(model: &ArchConfig) -> String {
    let Ok(toml::Value::Table(t)) = toml::Value::try_from(model) else {
        return format!("{model:?}");
    };
    let keys: Vec<String> = t.iter().map(|(k, v)| format!("model.{k} = {v}")).collect();
    keys.join(", ")
}

/// The arch named by a `[model]` table, if it has a string `arch`.
fn arch_of(model: &toml::Table) -> Option<&str> {
    model.get("arch").and_then(toml::Value::as_str)
}

/// Checks `[model]` before deserialisation: a known `arch`, and only that
/// architecture's keys, each error naming the key and what is expected.
fn check_model_keys(tree: &toml::Table) -> std::result::Result<(), String> {
    let Some(toml::Value::Table(model)) = tree.get("model") else {
        return Ok(()); // left to deserialisation
    };
    let known = ArchConfig::known_names();
    let arch = match model.get("arch") {
        None => return Err(format!("model.arch is missing: expected one of {known}")),
        Some(toml::Value::String(s)) => s.as_str(),
        Some(v) => {
            return Err(format!(
                "model.arch = {}: expected a string, one of {known}",
                one_line(&v.to_string())
            ))
        }
    };
    let Some(default) = ArchConfig::default_of(arch) else {
        return Err(format!(
            "model.arch = \"{arch}\": unknown architecture, expected one of {known}"
        ));
    };
    let Ok(toml::Value::Table(keys)) = toml::Value::try_from(&default) else {
        return Ok(());
    };
    if let Some(key) = model.keys().find(|k| !keys.contains_key(*k)) {
        let own: Vec<&str> = keys
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "arch")
            .collect();
        return Err(format!(
            "model.{key}: not a key of model.arch = \"{arch}\", expected one of {}",
            own.join(", ")
        ));
    }
    Ok(())
}

/// Merges `over` into `base`; a `[model]` that names another `arch`
/// replaces the base's section instead (its keys belong to another
/// architecture), and missing keys take that architecture's defaults.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if key == "model" && arch_of(&o).is_some_and(|a| Some(a) != arch_of(b)) =>
            {
                *b = o
            }
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
    // Another architecture: the old one's keys go, its defaults apply.
    if let (["model", "arch"], Some(toml::Value::Table(model))) =
        (&parts[..], table.get_mut("model"))
    {
        if arch_of(model) != value.as_str() {
            model.clear();
        }
    }
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

    /// The README's distill samples (math, code, search) come from the
    /// default run, so the default must train a family of each kind.
    #[test]
    fn the_default_trains_math_code_and_search() {
        let c = Config::load(None, &[]).unwrap();
        let mut kinds: Vec<&str> = c
            .families
            .keys()
            .map(|name| crate::tasks::Family::parse(name).unwrap().kind())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds, ["code", "math", "search"]);
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
    fn opening_plies_is_connect4_only_and_bounded() {
        let err = |set: &str| {
            Config::load(None, &[set.to_string()])
                .unwrap_err()
                .to_string()
        };
        let msg = err("families.countdown.opening_plies=[0, 4]");
        assert!(
            msg.contains("families.countdown.opening_plies") && msg.contains("only connect4"),
            "{msg}"
        );
        let msg = err("families.connect4.opening_plies=[10, 40]");
        assert!(
            msg.contains("families.connect4.opening_plies = [10, 40]") && msg.contains("<= 36"),
            "{msg}"
        );
        let msg = err("families.connect4.opening_plies=[9, 3]");
        assert!(msg.contains("lo <= hi"), "{msg}");
        let cfg = Config::load(None, &["families.connect4.opening_plies=[20, 30]".into()]).unwrap();
        let t = cfg.generate(Family::Connect4, 1.0, 9);
        assert_eq!(t.spec.matches(char::is_numeric).count(), 30, "{}", t.spec);
        assert_eq!(
            cfg.generate(Family::Countdown, 0.5, 9),
            Family::Countdown.generate(0.5, 9)
        );
    }

    /// `observation = "raw"` is a sudoku and connect4 view; any other
    /// family refuses it naming the key, and the raw view leaves only the
    /// grid (connect4: the stones, without the threat planes).
    #[test]
    fn raw_observation_is_for_sudoku_and_connect4() {
        let e = Config::load(None, &["families.countdown.observation=\"raw\"".into()]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("families.countdown.observation") && msg.contains("no raw view"),
            "{msg}"
        );
        let set = [
            "families.sudoku.weight=1".to_string(),
            "families.sudoku.difficulty=[0.8, 1.0]".into(),
            "families.sudoku.observation=\"raw\"".into(),
        ];
        let cfg = Config::load(None, &set).unwrap();
        let task = Family::Sudoku.generate(0.9, 3);
        let (mut full, mut raw) = (
            vec![0.0; Family::Sudoku.obs_dim()],
            vec![0.0; Family::Sudoku.obs_dim()],
        );
        crate::tasks::Game::from_task(&task)
            .unwrap()
            .encode(&mut full);
        cfg.game(&task).unwrap().encode(&mut raw);
        let grid = crate::tasks::sudoku::GRID;
        let digits = (grid.0 - 2) * grid.1 * grid.2;
        assert_eq!(full[..digits], raw[..digits]);
        assert!(
            raw[digits..].iter().filter(|&&v| v != 0.0).count() == 1,
            "only the size one-hot"
        );
        assert!(full[digits..].iter().filter(|&&v| v != 0.0).count() > 10);

        let cfg = Config::load(None, &["families.connect4.observation=\"raw\"".into()]).unwrap();
        let mut task = Family::Connect4.generate(0.0, 1);
        task.spec = r#"{"moves":"112233"}"#.into();
        let mut raw = vec![0.0; Family::Connect4.obs_dim()];
        cfg.game(&task).unwrap().encode(&mut raw);
        let stones = 2 * 42;
        assert_eq!(raw[..stones].iter().sum::<f32>(), 6.0);
        assert!(raw[stones..].iter().all(|&v| v == 0.0), "no threat planes");
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
            observation: Default::default(),
            opening_plies: None,
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

    /// Numeric leaves of a TOML tree as dotted keys, family names as `*`.
    fn numeric_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let k = if prefix == "families" { "*" } else { k };
            let key = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => numeric_keys(t, &key, out),
                toml::Value::Integer(_) | toml::Value::Float(_) => out.push(key),
                _ => {}
            }
        }
    }

    #[test]
    fn every_numeric_key_has_a_range() {
        let c = Config::load(None, &[]).unwrap();
        let toml::Value::Table(tree) = toml::Value::try_from(&c).unwrap() else {
            panic!("a config serialises to a table");
        };
        let mut keys = Vec::new();
        numeric_keys(&tree, "", &mut keys);
        // Every architecture's keys, not only the default one's.
        for arch in ArchConfig::known() {
            let toml::Value::Table(model) = toml::Value::try_from(&arch).unwrap() else {
                panic!("a model config serialises to a table");
            };
            numeric_keys(&model, "model", &mut keys);
        }
        keys.retain(|k| k != "seed"); // any u64
        for k in &keys {
            assert!(Range::of(k).is_some(), "{k}: no entry in RANGES");
        }
        for r in RANGES {
            assert!(
                keys.iter().any(|k| k == r.key),
                "{}: not a config key",
                r.key
            );
            assert!(r.min <= r.max, "{}", r.key);
        }
    }

    #[test]
    fn every_pipeline_loads() {
        for entry in
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines")).unwrap()
        {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn range_bounds_are_inclusive() {
        // Small families and no blocks, so that the widest trunk and the
        // longest replay window fit the parameter and memory bounds.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.toml");
        let small = "[model]\nblocks = 0\n\
                     [families.tictactoe]\nweight = 1\ndifficulty = [0, 1]\n\
                     [families.connect4]\nweight = 1\ndifficulty = [0, 1]\n";
        std::fs::write(&path, small).unwrap();
        // A `[model]` key is tried under the first architecture that has it
        // (another one than the file's switches to it, with no blocks where
        // it has them, so the bounds stay under the parameter limit).
        let file_arch = Config::load(Some(&path), &[]).unwrap().model.name();
        let arch_sets = |key: &str| -> Vec<Vec<String>> {
            let Some(model_key) = key.strip_prefix("model.") else {
                return vec![Vec::new()];
            };
            ArchConfig::known()
                .into_iter()
                .filter(|a| {
                    let Ok(toml::Value::Table(t)) = toml::Value::try_from(a) else {
                        return false;
                    };
                    t.contains_key(model_key)
                })
                .take(1)
                .map(|a| {
                    let has_blocks = match toml::Value::try_from(&a) {
                        Ok(toml::Value::Table(t)) => t.contains_key("blocks"),
                        _ => false,
                    };
                    match a.name() {
                        name if name == file_arch => Vec::new(),
                        name if has_blocks => {
                            vec![format!("model.arch=\"{name}\""), "model.blocks=0".into()]
                        }
                        name => vec![format!("model.arch=\"{name}\"")],
                    }
                })
                .collect()
        };
        for r in RANGES {
            let key = r.key.replace('*', "tictactoe");
            let archs = arch_sets(&key);
            assert!(!archs.is_empty(), "{key}: a key of no architecture");
            for arch in archs {
                let with = |set: &str| [arch.clone(), vec![set.to_string()]].concat();
                for x in [r.min, r.max] {
                    let set = format!("{key}={}", bound(x));
                    Config::load(Some(&path), &with(&set))
                        .unwrap_or_else(|e| panic!("{arch:?} {set}: {e}"));
                }
                let step = if r.integer { 1.0 } else { 1e-3 };
                for x in [r.min - step, r.max + step] {
                    let set = match r.integer {
                        true => format!("{key}={}", x as i64),
                        false => format!("{key}={x:?}"),
                    };
                    let e = Config::load(Some(&path), &with(&set))
                        .unwrap_err()
                        .to_string();
                    assert!(e.contains(&format!("{key} = ")), "{arch:?} {set}: {e}");
                }
            }
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let cases = [
            ("mcts.num_simulations=4000000000", "mcts.num_simulations"),
            ("infer.threads=100000", "infer.threads"),
            ("games_per_iteration=1e11", "games_per_iteration"),
            ("model.hidden=1e8", "model.hidden"),
            ("model.hidden=100000000", "model.hidden"),
            ("mcts.temperature=-1", "mcts.temperature"),
            ("mcts.temperature=nan", "mcts.temperature"),
            ("mcts.dirichlet_alpha=nan", "mcts.dirichlet_alpha"),
            ("mcts.dirichlet_alpha=0", "mcts.dirichlet_alpha"),
            ("mcts.dirichlet_epsilon=1.5", "mcts.dirichlet_epsilon"),
            ("eval.gate_threshold=nan", "eval.gate_threshold"),
            ("mcts.fpu_reduction=nan", "mcts.fpu_reduction"),
            ("mcts.c_puct=0", "mcts.c_puct"),
            ("mcts.c_puct=-inf", "mcts.c_puct"),
            ("mcts.leaves_per_wave=0", "mcts.leaves_per_wave"),
            ("train.learning_rate=nan", "train.learning_rate"),
            ("train.weight_decay=-0.1", "train.weight_decay"),
            ("train.value_weight=inf", "train.value_weight"),
            ("train.threads=2.0", "train.threads"),
            ("eval.num_simulations=-inf", "eval.num_simulations"),
            ("iterations=-1", "iterations"),
            ("batch_size=0", "batch_size"),
            ("families.countdown.weight=-1", "families.countdown.weight"),
            ("families.connect4.weight=inf", "families.connect4.weight"),
            (
                "families.countdown.rollout_mix=nan",
                "families.countdown.rollout_mix",
            ),
            ("families.countdown.steps=0", "families.countdown.steps"),
            ("mcts.num_simulations=\"64\"", "mcts.num_simulations"),
        ];
        for (set, key) in cases {
            let e = Config::load(None, &[set.into()]).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{set}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("{key} = ")), "{set}: {msg}");
            assert!(msg.contains("expected"), "{set}: {msg}");
            assert!(!msg.contains('\n'), "{set}: {msg}");
        }
    }

    #[test]
    fn a_range_error_reads_key_value_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "[mcts]\nnum_simulations = 4000000000\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "config: {}: mcts.num_simulations = 4000000000: expected an integer in [1, 100000]",
                path.display()
            )
        );
        let e = Config::load(None, &["mcts.temperature=nan".into()]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("mcts.temperature = nan: expected a number in [0, 100] (0: greedy)"),
            "{e}"
        );
        let e = Config::load(None, &["mcts.c_puct=0".into()]).unwrap_err();
        assert!(e.to_string().contains("[1e-6, 100]"), "{e}");
    }

    /// `[model]` is tagged by `arch`: an unknown arch is named with the known
    /// ones, a key of no (or another) architecture is named, on one line.
    #[test]
    fn model_keys_are_checked_against_the_arch() {
        let known = ArchConfig::known_names();
        let cases = [
            (
                "model.arch=\"cnn\"",
                format!("model.arch = \"cnn\": unknown architecture, expected one of {known}"),
            ),
            (
                "model.filters=3",
                "model.filters: not a key of model.arch = \"mlp\", expected one of blocks, hidden, value_bins, value_hidden".into(),
            ),
            (
                "model.arch=3",
                format!("model.arch = 3: expected a string, one of {known}"),
            ),
        ];
        for (set, want) in cases {
            let e = Config::load(None, &[set.into()]).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{set}: {e}");
            let msg = e.to_string();
            assert!(msg.ends_with(&want), "{set}: {msg}");
            assert!(!msg.contains('\n'), "{set}: {msg}");
        }
        // The same arch again keeps the other keys; a file with only
        // `arch` gets the architecture's defaults.
        let c = Config::load(
            None,
            &["model.hidden=8".into(), "model.arch=\"mlp\"".into()],
        )
        .unwrap();
        assert_eq!(
            c.model_parameters(),
            Config::load(None, &["model.hidden=8".into()])
                .unwrap()
                .model_parameters()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arch.toml");
        std::fs::write(&path, "[model]\narch = \"mlp\"\nblocks = 0\n").unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        let d = Config::load(None, &["model.blocks=0".into()]).unwrap();
        assert_eq!(c.model, d.model);
    }

    #[test]
    fn an_oversized_model_is_refused() {
        let set = ["model.hidden=4096".into(), "model.blocks=8".into()];
        let e = Config::load(None, &set).unwrap_err().to_string();
        assert!(
            e.contains("model.hidden") && e.contains("model.blocks"),
            "{e}"
        );
        assert!(e.contains("parameters"), "{e}");
        let c = Config::load(None, &["model.hidden=2048".into()]).unwrap();
        assert!(c.model_parameters() <= MAX_PARAMETERS);
    }

    #[test]
    fn a_shuffle_buffer_beyond_memory_is_refused() {
        let mixed = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/mixed.toml");
        let window = "max_buffer_size=1000000".to_string();
        let set = [window.clone(), "train.shuffle_buffer=1000000".into()];
        let e = Config::load(Some(&mixed), &set).unwrap_err().to_string();
        assert!(
            e.contains("train.shuffle_buffer = 1000000") && e.contains("GiB"),
            "{e}"
        );
        Config::load(None, &set).unwrap();
        // A large window alone streams through the default buffer.
        Config::load(Some(&mixed), &[window]).unwrap();
    }

    #[test]
    fn hash_changes_with_config() {
        let a = Config::load(None, &[]).unwrap();
        let b = Config::load(None, &["seed=99".into()]).unwrap();
        assert_ne!(a.hash(), b.hash());
    }
}
