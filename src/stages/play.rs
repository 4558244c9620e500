//! `play`: batched MCTS self-play of an iteration's tasks with the best
//! model; streams episodes and examples to Parquet on a writer thread.

use super::tasks::read_tasks;
use super::{derive_seed, load_evaluator, Ctx};
use crate::error::{Error, Result};
use crate::mcts::{BatchedSearch, EpisodeSpec, Finished, SearchParams, SearchStats};
use crate::metrics::{progress, report, StageMeter};
use crate::store::parquet_io::{FileMeta, PartWriter};
use crate::store::rows::{episodes_batch, examples_batch, EpisodeRow, ExampleRow};
use crate::store::{clear_marker, is_committed, write_marker, Marker, Store};
use crate::tasks::{Game, Outcome, Task};
use std::path::Path;

/// Rows buffered by the writer before a batch goes to Parquet.
const FLUSH_ROWS: usize = 4096;

/// Plays this shard of iteration `iteration`'s tasks with the model in `model_dir`.
pub fn run_play(ctx: &Ctx, iteration: u32, model_dir: &Path) -> Result<Option<SearchStats>> {
    let (ep_dir, ex_dir) = (ctx.run.episodes(iteration), ctx.run.examples(iteration));
    let shard = ctx.shard.index;
    if is_committed(&ep_dir, shard) && is_committed(&ex_dir, shard) {
        tracing::info!("play iteration {iteration} shard {shard}: already committed, skipping");
        return Ok(None);
    }
    // A half-done shard is redone whole: clear markers first so readers
    // never pair a new part with an old marker.
    clear_marker(&ep_dir, shard)?;
    clear_marker(&ex_dir, shard)?;

    let (evaluator, meta) = load_evaluator(&ctx.cfg, model_dir)?;
    let tasks = shard_tasks(ctx, iteration)?;
    let specs = episode_specs(ctx, iteration, &tasks)?;
    let meter = StageMeter::start();
    let bar = progress(specs.len() as u64, "play");

    let file_meta = FileMeta {
        stage: "play".into(),
        config_hash: ctx.cfg.hash(),
        model_id: Some(meta.id.clone()),
    };
    let (tx, rx) = crossbeam_channel::bounded::<Finished>(1024);
    let writer = {
        let (ep_dir, ex_dir, file_meta, model_id) = (
            ep_dir.clone(),
            ex_dir.clone(),
            file_meta.clone(),
            meta.id.clone(),
        );
        let sims = ctx.cfg.mcts.num_simulations;
        std::thread::spawn(move || {
            write_shard(rx, &ep_dir, &ex_dir, shard, &file_meta, &model_id, sims)
        })
    };

    let mut agents = [evaluator];
    let mut search = BatchedSearch {
        params: SearchParams::from_config(&ctx.cfg.mcts, true),
        agents: &mut agents,
        obs_dim: meta.spec.obs_dim,
        action_dim: meta.spec.action_dim,
        parallel: ctx.cfg.parallel_batch_size,
    };
    let played = search.run(specs.into_iter(), |f| {
        bar.inc(1);
        tx.send(f)
            .map_err(|_| Error::Other("play: the writer thread stopped".into()))
    });
    drop(tx);
    bar.finish_and_clear();
    let written = writer
        .join()
        .map_err(|_| Error::Other("play: the writer thread panicked".into()))?;
    let stats = played?;
    let (episodes, examples) = written?;

    let marker = |rows| Marker {
        stage: "play".into(),
        shard,
        rows,
        seed: ctx.cfg.seed,
        config_hash: ctx.cfg.hash(),
        inputs: vec![format!("tasks/iteration={iteration:06}"), meta.id.clone()],
        producer: crate::store::producer(),
    };
    write_marker(&ep_dir, &marker(episodes))?;
    write_marker(&ex_dir, &marker(examples))?;
    let fig = meter.finish();
    let detail = serde_json::json!({
        "examples": examples,
        "sims_per_s": (stats.simulations as f64 / fig.seconds).round(),
        "evals_per_s": (stats.evaluations as f64 / fig.seconds).round(),
        "net_share": ((stats.eval_time.as_secs_f64() / fig.seconds) * 100.0).round() / 100.0,
    });
    report(
        &ctx.run,
        "play",
        iteration,
        shard,
        stats.episodes,
        "episodes",
        &fig,
        detail,
        &ctx.cfg.hash(),
    )?;
    Ok(Some(stats))
}

/// This shard's tasks of the iteration, families interleaved so every
/// network batch mixes them.
fn shard_tasks(ctx: &Ctx, iteration: u32) -> Result<Vec<Task>> {
    let mut per_family = Vec::new();
    for (family, _) in ctx.cfg.families() {
        let dir = ctx.run.tasks(iteration, family.name());
        let tasks = read_tasks(&dir, family)?;
        if tasks.is_empty() {
            return Err(Error::Data(format!(
                "{}: no committed tasks; run `selfplay tasks --iteration {iteration}` first",
                dir.display()
            )));
        }
        per_family.push(tasks);
    }
    let longest = per_family.iter().map(Vec::len).max().unwrap_or(0);
    let mut all = Vec::new();
    for i in 0..longest {
        for tasks in &per_family {
            if let Some(t) = tasks.get(i) {
                all.push(t.clone());
            }
        }
    }
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| ctx.shard.owns(*i))
        .map(|(_, t)| t)
        .collect())
}

fn episode_specs(ctx: &Ctx, iteration: u32, tasks: &[Task]) -> Result<Vec<EpisodeSpec>> {
    tasks
        .iter()
        .map(|t| {
            Ok(EpisodeSpec {
                game: Game::from_task(t)?,
                seed: derive_seed(&[ctx.cfg.seed, iteration as u64, t.seed]),
                task: t.clone(),
                agents: [0, 0],
            })
        })
        .collect()
}

/// Value target for a mover given the final outcome.
pub fn value_target(outcome: Outcome, mover: u8) -> f32 {
    match outcome {
        Outcome::Success => 1.0,
        Outcome::Failure => -1.0,
        Outcome::Draw => 0.0,
        Outcome::Win if mover == 0 => 1.0,
        Outcome::Loss if mover == 1 => 1.0,
        Outcome::Win | Outcome::Loss => -1.0,
    }
}

/// An episode row and its example rows.
pub fn rows_of(f: &Finished, model_id: &str, simulations: u32) -> (EpisodeRow, Vec<ExampleRow>) {
    let family = f.task.family;
    let examples = f
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| ExampleRow {
            task_id: f.task.task_id.clone(),
            family,
            step: i as u32,
            obs: s.obs.clone(),
            legal: s.legal.clone(),
            policy_actions: s.policy.iter().map(|p| p.0).collect(),
            policy_probs: s.policy.iter().map(|p| p.1).collect(),
            value: value_target(f.outcome, s.mover),
            weight: 1.0,
            model_id: model_id.into(),
        })
        .collect();
    let episode = EpisodeRow {
        task_id: f.task.task_id.clone(),
        family,
        difficulty: f.task.difficulty,
        model_id: model_id.into(),
        outcome: f.outcome.name().into(),
        total_reward: f.outcome.reward(),
        actions: f.steps.iter().map(|s| s.action).collect(),
        action_labels: f.steps.iter().map(|s| s.label.clone()).collect(),
        root_values: f.steps.iter().map(|s| s.root_value).collect(),
        simulations,
        search_us: f.wall.as_micros() as u64,
        seed: f.seed,
    };
    (episode, examples)
}

/// Writer thread: buffers rows and streams them into the two part files.
fn write_shard(
    rx: crossbeam_channel::Receiver<Finished>,
    ep_dir: &Path,
    ex_dir: &Path,
    shard: u32,
    meta: &FileMeta,
    model_id: &str,
    simulations: u32,
) -> Result<(u64, u64)> {
    let mut ep_w = PartWriter::create(ep_dir, shard, &Store::Episodes.schema(), meta)?;
    let mut ex_w = PartWriter::create(ex_dir, shard, &Store::Examples.schema(), meta)?;
    let (mut eps, mut exs) = (Vec::new(), Vec::new());
    for f in rx {
        let (e, xs) = rows_of(&f, model_id, simulations);
        eps.push(e);
        exs.extend(xs);
        if exs.len() >= FLUSH_ROWS {
            ep_w.write(&episodes_batch(&eps)?)?;
            ex_w.write(&examples_batch(&exs)?)?;
            eps.clear();
            exs.clear();
        }
    }
    if !eps.is_empty() {
        ep_w.write(&episodes_batch(&eps)?)?;
        ex_w.write(&examples_batch(&exs)?)?;
    }
    Ok((ep_w.finish()?, ex_w.finish()?))
}

/// The model a stage should use for `--model` (best, latest, id, path).
pub fn model_dir(ctx: &Ctx, reference: &str) -> Result<std::path::PathBuf> {
    crate::model::resolve(&ctx.run, reference)
}
