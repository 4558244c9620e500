//! `tasks`: generates an iteration's training tasks per family, and the
//! fixed held-out set (seeds disjoint from training: their top bit is set).

use super::{derive_seed, Ctx};
use crate::error::{Error, Result};
use crate::metrics::{report, StageMeter};
use crate::store::parquet_io::{read_part, write_part, FileMeta};
use crate::store::rows::{tasks_batch, tasks_from_batch};
use crate::store::{committed_parts, is_committed, write_marker, Marker, Store};
use crate::tasks::{Family, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

const EVAL_BIT: u64 = 1 << 63;
const STREAM_TRAIN: u64 = 1;
const STREAM_EVAL: u64 = 2;

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

/// Generates tasks/iteration=N/family=F for this shard (skips committed ones).
pub fn run_tasks(ctx: &Ctx, iteration: u32) -> Result<u64> {
    let meter = StageMeter::start();
    let mut written = 0;
    let mut ranges = serde_json::Map::new();
    for ((family, count), (_, fc)) in family_counts(ctx).into_iter().zip(ctx.cfg.families()) {
        let dir = ctx.run.tasks(iteration, family.name());
        if is_committed(&dir, ctx.shard.index) {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(&[
            ctx.cfg.seed,
            STREAM_TRAIN,
            iteration as u64,
            family as u64,
        ]));
        let [lo, hi] = fc.difficulty_at(iteration, ctx.cfg.iterations);
        ranges.insert(family.name().to_string(), serde_json::json!([lo, hi]));
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
        let tasks: Vec<Task> = mine
            .par_iter()
            .map(|&(d, s)| family.generate(d, s))
            .collect();
        written += commit_tasks(ctx, &dir, &tasks, "tasks")?;
    }
    let fig = meter.finish();
    if written > 0 {
        let detail = serde_json::json!({ "difficulty": ranges });
        report(
            &ctx.run,
            "tasks",
            iteration,
            ctx.shard.index,
            written,
            "tasks",
            &fig,
            detail,
            &ctx.cfg.hash(),
        )?;
    }
    Ok(written)
}

/// Generates the held-out set once per run (shard 0 writes it).
pub fn ensure_heldout(ctx: &Ctx) -> Result<()> {
    for (family, fc) in ctx.cfg.families() {
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
                .map(|&(d, s)| family.generate(d, s))
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
        commit_tasks(ctx, &dir, &tasks, "heldout")?;
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

fn commit_tasks(ctx: &Ctx, dir: &Path, tasks: &[Task], stage: &str) -> Result<u64> {
    let meta = FileMeta {
        stage: stage.into(),
        config_hash: ctx.cfg.hash(),
        model_id: None,
    };
    let rows = write_part(
        dir,
        ctx.shard.index,
        &Store::Tasks.schema(),
        &meta,
        &[tasks_batch(tasks)?],
    )?;
    write_marker(
        dir,
        &Marker {
            stage: stage.into(),
            shard: ctx.shard.index,
            rows,
            seed: ctx.cfg.seed,
            config_hash: ctx.cfg.hash(),
            inputs: Vec::new(),
            producer: crate::store::producer(),
        },
    )?;
    Ok(rows)
}

/// Reads every committed task of a tasks partition folder (`.../family=F`).
pub fn read_tasks(dir: &Path, family: Family) -> Result<Vec<Task>> {
    let schema = Store::Tasks.schema();
    let mut out = Vec::new();
    for part in committed_parts(dir)? {
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
