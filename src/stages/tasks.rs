//! `tasks`: generates an iteration's training tasks per family, and the
//! fixed held-out set (seeds disjoint from training: their top bit is set).

use super::import::{default_name, imported_dir, run_import};
use super::{derive_seed, Ctx, Shard, ShardArgs, StageArgs};
use crate::error::{Error, Result};
use crate::metrics::{commit_metrics, metric_row, print_summary, StageFigures, StageMeter};
use crate::output::NOTE;
use crate::store::lock::Claim;
use crate::store::parquet_io::{read_metrics, read_part, stage_part, FileMeta};
use crate::store::rows::{tasks_batch, tasks_from_batch, FamilyRange, MetricDetail, MetricRow};
use crate::store::{complete_parts, is_committed, part_path, Store};
use crate::tasks::{Family, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

const EVAL_BIT: u64 = 1 << 63;
const STREAM_TRAIN: u64 = 1;
const STREAM_EVAL: u64 = 2;

/// `tasks`: an iteration's tasks, the held-out sets alone, or an import.
#[derive(clap::Args, Clone, Debug)]
pub struct TasksArgs {
    /// Required unless --import or --heldout.
    #[arg(long, required_unless_present_any = ["import", "heldout"])]
    pub iteration: Option<u32>,
    /// Write only the held-out sets (once per run; safe to run
    /// concurrently: later callers wait and find them written).
    #[arg(long, conflicts_with_all = ["iteration", "import"])]
    pub heldout: bool,
    /// A public task file to import into imported/name=NAME/.
    #[arg(long, requires = "format")]
    pub import: Option<PathBuf>,
    /// countdown-parquet, game24, connect4-pons or sudoku.
    #[arg(long)]
    pub format: Option<String>,
    /// Name of the imported store (default: the file's stem).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub shard: ShardArgs,
}

impl StageArgs for TasksArgs {
    type Outcome = TasksOutcome;

    /// Only an iteration's tasks are sharded.
    fn shard(&self) -> Result<Shard> {
        if self.import.is_some() || self.heldout {
            Ok(Shard::ALL)
        } else {
            self.shard.resolve()
        }
    }
}

/// What `tasks` wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TasksOutcome {
    /// An iteration's tasks, this shard's part of each family (reported on
    /// stderr; nothing on stdout in text).
    Generated {
        iteration: u32,
        shard: u32,
        num_shards: u32,
        tasks: u64,
    },
    /// The held-out stores, one per family.
    Heldout { stores: Vec<PathBuf> },
    /// An imported task file.
    Imported {
        store: PathBuf,
        family: Family,
        rows: u64,
    },
}

impl fmt::Display for TasksOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TasksOutcome::Generated { .. } => Ok(()),
            TasksOutcome::Heldout { stores } => stores
                .iter()
                .try_for_each(|s| writeln!(f, "{}", s.display())),
            TasksOutcome::Imported {
                store,
                family,
                rows,
            } => writeln!(f, "{}: {rows} {family} tasks", store.display()),
        }
    }
}

/// The command: imports `--import`, writes the held-out sets, or this
/// shard's tasks of `--iteration` (shard 0 also the held-out sets).
pub fn run(ctx: &Ctx, args: &TasksArgs) -> Result<TasksOutcome> {
    if let Some(file) = &args.import {
        let name = args.name.clone().unwrap_or_else(|| default_name(file));
        let format = args.format.clone().unwrap_or_default();
        let (family, rows) = run_import(ctx, file, &format, &name)?;
        return Ok(TasksOutcome::Imported {
            store: imported_dir(ctx, &name),
            family,
            rows,
        });
    }
    if args.heldout {
        ensure_heldout(ctx)?;
        let stores = ctx
            .cfg
            .families()
            .into_iter()
            .map(|(family, _)| ctx.run.heldout(family.name()))
            .collect();
        return Ok(TasksOutcome::Heldout { stores });
    }
    let iteration = args.iteration.unwrap_or(0);
    let n = run_tasks(ctx, iteration)?;
    if ctx.shard.index == 0 {
        ensure_heldout(ctx)?;
    }
    let shard = ctx.shard.index;
    tracing::info!(
        target: NOTE,
        stage = "tasks",
        iteration,
        shard,
        tasks = n,
        "tasks iteration {iteration} shard {shard}: {n} tasks written"
    );
    Ok(TasksOutcome::Generated {
        iteration,
        shard,
        num_shards: ctx.shard.count,
        tasks: n,
    })
}

/// Tasks of each family for one iteration: `games_per_iteration` split by weight.
pub fn family_counts(ctx: &Ctx) -> Vec<(Family, usize)> {
    let fams = ctx.cfg.families();
    let total: f64 = fams.iter().map(|(_, c)| c.weight).sum();
    fams.iter()
        .map(|(f, c)| {
            (
                *f,
                (ctx.cfg.games_per_iteration as f64 * c.weight / total).round() as usize,
            )
        })
        .collect()
}

/// Generates tasks/iteration=N/family=F for this shard. Each family's part
/// commits on its own; the shard's metrics row, summed from the parts'
/// footers, commits last, so a rerun after a crash redoes exactly what was
/// not committed.
pub fn run_tasks(ctx: &Ctx, iteration: u32) -> Result<u64> {
    let shard = ctx.shard.index;
    let claim = ctx.claim(&format!("tasks iteration {iteration} shard {shard}"))?;
    let mut written = 0;
    let mut parts = Vec::new();
    for ((family, count), (_, fc)) in family_counts(ctx).into_iter().zip(ctx.cfg.families()) {
        let dir = ctx.run.tasks(iteration, family.name());
        parts.push(part_path(&dir, shard));
        if is_committed(&dir, shard) {
            continue;
        }
        let meter = StageMeter::start();
        let range = fc.difficulty_at(iteration, ctx.cfg.iterations);
        let tasks = generate(ctx, iteration, family, count, range);
        let detail = MetricDetail {
            difficulty: Some(vec![FamilyRange {
                family: family.name().into(),
                lo: range[0],
                hi: range[1],
            }]),
            ..MetricDetail::default()
        };
        let n = tasks.len() as u64;
        let row = metric_row(
            "tasks",
            iteration,
            shard,
            n,
            "tasks",
            &meter.finish(),
            detail,
        );
        written += commit_tasks(
            &claim,
            ctx,
            &dir,
            &tasks,
            ("tasks", Some(iteration)),
            Some(&row),
        )?;
    }
    if !is_committed(&ctx.run.metrics("tasks", iteration), shard) {
        let row = sum_rows(&parts)?;
        commit_metrics(&claim, &row, &ctx.cfg.hash())?;
        print_summary(&row);
    }
    Ok(written)
}

/// This shard's tasks of `family` in iteration `iteration`.
fn generate(ctx: &Ctx, iteration: u32, family: Family, count: usize, range: [f32; 2]) -> Vec<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(&[
        ctx.cfg.seed,
        STREAM_TRAIN,
        iteration as u64,
        family as u64,
    ]));
    let [lo, hi] = range;
    let specs: Vec<(f32, u64)> = (0..count)
        .map(|_| {
            (
                lo + (hi - lo) * rng.random::<f32>(),
                rng.random::<u64>() & !EVAL_BIT,
            )
        })
        .collect();
    let mine: Vec<(f32, u64)> = specs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| ctx.shard.owns(*i))
        .map(|(_, s)| s)
        .collect();
    mine.par_iter()
        .map(|&(d, s)| ctx.cfg.generate(family, d, s))
        .collect()
}

/// One metrics row for a shard from its family parts' footers: items and
/// seconds add up, CPU is time-weighted, peak memory is the max.
fn sum_rows(parts: &[std::path::PathBuf]) -> Result<MetricRow> {
    let rows: Vec<MetricRow> = parts
        .iter()
        .map(|p| read_metrics(p))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let first = rows.first().cloned().ok_or_else(|| {
        Error::Data(format!(
            "{}: no selfplay.metrics in the footer; expected a tasks part written by selfplay",
            parts
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))
    })?;
    let items: u64 = rows.iter().map(|r| r.items).sum();
    let seconds: f64 = rows.iter().map(|r| r.seconds).sum();
    let fig = StageFigures {
        seconds,
        cpu_pct: rows.iter().map(|r| r.cpu_pct * r.seconds).sum::<f64>() / seconds.max(1e-9),
        peak_rss_mb: rows.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
    };
    let ranges = rows
        .iter()
        .flat_map(|r| r.detail.difficulty.clone().unwrap_or_default())
        .collect();
    let detail = MetricDetail {
        difficulty: Some(ranges),
        ..MetricDetail::default()
    };
    Ok(metric_row(
        "tasks",
        first.iteration,
        first.shard,
        items,
        "tasks",
        &fig,
        detail,
    ))
}

/// Generates the held-out set once per run. Safe when several processes
/// call it at once (`tasks --heldout` jobs, evals): the set is a pure
/// function of the config, so a second caller always waits for the claim
/// (never "busy") and then finds the families the first one committed.
pub fn ensure_heldout(ctx: &Ctx) -> Result<()> {
    let families = ctx.cfg.families();
    let done = |f: &Family| is_committed(&ctx.run.heldout(f.name()), 0);
    if families.iter().all(|(f, _)| done(f)) {
        return Ok(());
    }
    let claim = Claim::acquire(&ctx.run, "heldout", true)?;
    for (family, fc) in families {
        let dir = ctx.run.heldout(family.name());
        if is_committed(&dir, 0) {
            continue;
        }
        let n = heldout_count(ctx, family);
        let mut rng =
            ChaCha8Rng::seed_from_u64(derive_seed(&[ctx.cfg.seed, STREAM_EVAL, family as u64]));
        let [lo, hi] = fc.difficulty_span();
        // Evenly spread over the difficulty range, so buckets are comparable;
        // games keep distinct start positions only (greedy play from a
        // repeated start repeats the game).
        let specs: Vec<(f32, u64)> = (0..n * 20)
            .map(|i| {
                let d = if n > 1 {
                    lo + (hi - lo) * (i % n) as f32 / (n - 1) as f32
                } else {
                    lo
                };
                (d, rng.random::<u64>() | EVAL_BIT)
            })
            .collect();
        let mut tasks: Vec<Task> = Vec::with_capacity(n);
        let mut seen = std::collections::HashSet::new();
        for chunk in specs.chunks(n) {
            let batch: Vec<Task> = chunk
                .par_iter()
                .map(|&(d, s)| ctx.cfg.generate(family, d, s))
                .collect();
            for t in batch {
                let fresh = family.num_players() == 1 || seen.insert(t.spec.clone());
                if fresh && tasks.len() < n {
                    tasks.push(t);
                }
            }
            if tasks.len() == n {
                break;
            }
        }
        let whole = Ctx {
            shard: Shard::ALL,
            ..ctx.clone()
        };
        commit_tasks(&claim, &whole, &dir, &tasks, ("heldout", None), None)?;
    }
    Ok(())
}

/// Held-out tasks per family: puzzles `eval.heldout_tasks`; games one start
/// position per pair of games (each played with both colours).
pub fn heldout_count(ctx: &Ctx, family: Family) -> usize {
    if family.num_players() == 2 {
        ctx.cfg.eval.games.div_ceil(2).max(1)
    } else {
        ctx.cfg.eval.heldout_tasks.max(1)
    }
}

/// Writes and commits this shard's part of a tasks partition, made by
/// `stage` for `iteration` (None: the held-out set).
fn commit_tasks(
    claim: &Claim,
    ctx: &Ctx,
    dir: &Path,
    tasks: &[Task],
    (stage, iteration): (&str, Option<u32>),
    metrics: Option<&MetricRow>,
) -> Result<u64> {
    let meta = FileMeta {
        stage: stage.into(),
        config_hash: ctx.cfg.hash(),
        model_id: None,
        shard: ctx.shard.index,
        num_shards: ctx.shard.count,
        seed: ctx.cfg.seed,
        inputs: Vec::new(),
    };
    let batch = tasks_batch(tasks, iteration)?;
    stage_part(claim, dir, &Store::Tasks.schema(), &meta, &[batch], metrics)?.commit()
}

/// Reads every committed task of a tasks partition folder (`.../family=F`).
pub fn read_tasks(dir: &Path, family: Family) -> Result<Vec<Task>> {
    let schema = Store::Tasks.schema();
    let mut out = Vec::new();
    for part in complete_parts(dir)? {
        for b in read_part(&part, &schema)? {
            out.extend(tasks_from_batch(&b, family)?);
        }
    }
    Ok(out)
}

/// Family of a `family=F` folder, from its name.
pub fn family_of_dir(dir: &Path) -> Result<Family> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let fam = name
        .strip_prefix("family=")
        .ok_or_else(|| Error::Data(format!("{}: expected a family=NAME folder", dir.display())))?;
    Family::parse(fam)
}
