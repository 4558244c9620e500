//! `play`: batched MCTS self-play of an iteration's tasks with the best
//! model; streams episodes and examples to Parquet on a writer thread.

use super::tasks::read_tasks;
use super::{derive_seed, load_evaluator, Ctx, Shard, ShardArgs, StageArgs};
use crate::config::ExamplesConfig;
use crate::error::{Error, Result};
use crate::mcts::{
    Agent, BatchedSearch, EpisodeSpec, Finished, SearchParams, SearchStats, StepRecord,
};
use crate::metrics::{
    commit_metrics, metric_row, print_summary, progress, restore_metrics, StageMeter, Work,
};
use crate::store::lock::Claim;
use crate::store::parquet_io::{FileMeta, PartWriter};
use crate::store::rows::{episodes_batch, examples_batch, EpisodeRow, ExampleRow, MetricDetail};
use crate::store::{is_committed, part_path, Store};
use crate::tasks::{Outcome, Task};
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Rows buffered by the writer before a batch goes to Parquet.
const FLUSH_ROWS: usize = 4096;

/// `play --iteration N [--model M]`, one shard.
#[derive(clap::Args, Clone, Debug)]
pub struct PlayArgs {
    #[arg(long)]
    pub iteration: u32,
    /// best, latest, a model id (iteration=000003) or a model folder.
    #[arg(long, default_value = "best")]
    pub model: String,
    #[command(flatten)]
    pub shard: ShardArgs,
}

impl StageArgs for PlayArgs {
    type Outcome = PlayOutcome;

    fn shard(&self) -> Result<Shard> {
        self.shard.resolve()
    }
}

/// What a play shard did (its summary line is on stderr; nothing on
/// stdout in text).
#[derive(Clone, Debug, Serialize)]
pub struct PlayOutcome {
    pub iteration: u32,
    pub shard: u32,
    pub num_shards: u32,
    /// The model folder played with.
    pub model: std::path::PathBuf,
    /// Episodes played now; None when the shard was already committed.
    pub episodes: Option<u64>,
    pub simulations: Option<u64>,
}

impl fmt::Display for PlayOutcome {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// The command: resolves `--model`, then [`run_play`].
pub fn run(ctx: &Ctx, args: &PlayArgs) -> Result<PlayOutcome> {
    let model = crate::model::resolve(&ctx.run, &args.model)?;
    let stats = run_play(ctx, args.iteration, &model)?;
    Ok(PlayOutcome {
        iteration: args.iteration,
        shard: ctx.shard.index,
        num_shards: ctx.shard.count,
        model,
        episodes: stats.as_ref().map(|s| s.episodes),
        simulations: stats.as_ref().map(|s| s.simulations),
    })
}

/// Plays this shard of iteration `iteration`'s tasks with the model in
/// `model_dir`. Commits examples, then episodes (the shard's commit point),
/// then the metrics row; a rerun redoes what a crash left uncommitted.
pub fn run_play(ctx: &Ctx, iteration: u32, model_dir: &Path) -> Result<Option<SearchStats>> {
    let (ep_dir, ex_dir) = (ctx.run.episodes(iteration), ctx.run.examples(iteration));
    let shard = ctx.shard.index;
    let claim = ctx.claim(&format!("play iteration {iteration} shard {shard}"))?;
    if is_committed(&ep_dir, shard) && is_committed(&ex_dir, shard) {
        tracing::info!("play iteration {iteration} shard {shard}: already committed, skipping");
        restore_metrics(&claim, "play", iteration, shard, &part_path(&ep_dir, shard))?;
        return Ok(None);
    }
    let (evaluator, meta) = load_evaluator(&ctx.cfg, model_dir)?;
    let tasks = shard_tasks(ctx, iteration)?;
    let specs = episode_specs(ctx, iteration, &tasks)?;
    let meter = StageMeter::start();
    let bar = progress(Work {
        stage: "play",
        iteration: Some(iteration),
        shard,
        unit: "episodes",
        total: Some(specs.len() as u64),
    });
    let file_meta = FileMeta {
        stage: "play".into(),
        config_hash: ctx.cfg.hash(),
        model_id: Some(meta.id.clone()),
        shard,
        num_shards: ctx.shard.count,
        seed: ctx.cfg.seed,
        inputs: vec![format!("tasks/iteration={iteration}"), meta.id.clone()],
    };
    let target = ShardTarget {
        claim: &claim,
        ep_dir: &ep_dir,
        ex_dir: &ex_dir,
        meta: &file_meta,
        iteration,
        simulations: ctx.cfg.mcts.num_simulations,
        weights: &ctx.cfg.examples,
        shaping: Shaping {
            discount: ctx.cfg.mcts.discount,
            length_penalty: ctx.cfg.mcts.length_penalty,
        },
    };
    let mut agents = [Agent::search(evaluator, ctx.cfg.mcts.algorithm)];
    let mut search = BatchedSearch {
        params: SearchParams::from_config(&ctx.cfg.mcts, true),
        agents: &mut agents,
        obs_dim: meta.spec.obs_dim,
        action_dim: meta.spec.action_dim,
        parallel: ctx.cfg.parallel_batch_size,
        overlap: ctx.cfg.infer.overlap,
        lanes: ctx.cfg.infer.lanes(),
    };
    let (played, written) = std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<Finished>(1024);
        let writer = scope.spawn(|| write_shard(rx, &target));
        let played = search.run(specs.into_iter(), |f| {
            bar.inc(1);
            tx.send(f)
                .map_err(|_| Error::Other("play: the writer thread stopped".into()))
        });
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::Other("play: the writer thread panicked".into())));
        (played, written)
    });
    bar.finish();
    // The writer's error first: it holds the cause (a full disk, a
    // read-only folder) of the search's "writer stopped".
    let (ep_w, ex_w) = written?;
    let stats = played?;
    let fig = meter.finish();
    let detail = MetricDetail {
        examples: Some(ex_w.rows()),
        sims_per_s: Some((stats.simulations as f64 / fig.seconds).round()),
        evals_per_s: Some((stats.network_rows as f64 / fig.seconds).round()),
        cache_hit_rate: (ctx.cfg.mcts.cache_entries > 0).then(|| stats.cache_hit_rate()),
        net_share: Some(((stats.eval_time.as_secs_f64() / fig.seconds) * 100.0).round() / 100.0),
        ..MetricDetail::default()
    };
    let row = metric_row(
        "play",
        iteration,
        shard,
        stats.episodes,
        "episodes",
        &fig,
        detail,
    );
    let (examples, episodes) = (ex_w.finish(Some(&row))?, ep_w.finish(Some(&row))?);
    examples.commit()?;
    episodes.commit()?;
    commit_metrics(&claim, &row, &ctx.cfg.hash())?;
    print_summary(&row);
    Ok(Some(stats))
}

/// This shard's tasks of the iteration: its share of each family (so
/// shards get equal work whatever the families cost), the families
/// interleaved so every network batch mixes them.
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
        let mine: Vec<Task> = tasks
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ctx.shard.owns(*i))
            .map(|(_, t)| t)
            .collect();
        per_family.push(mine);
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
    Ok(all)
}

fn episode_specs(ctx: &Ctx, iteration: u32, tasks: &[Task]) -> Result<Vec<EpisodeSpec>> {
    tasks
        .iter()
        .map(|t| {
            Ok(EpisodeSpec {
                game: ctx.cfg.game(t)?,
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

/// How a step's value target shrinks from the outcome, as search values
/// it: by `mcts.discount` per ply from the step to the end and by
/// `mcts.length_penalty` per stone on the board at the end.
#[derive(Clone, Copy, Debug)]
pub struct Shaping {
    pub discount: f32,
    pub length_penalty: f32,
}

/// An episode row and its example rows; a step's value target is the
/// outcome shaped by `shaping`.
pub fn rows_of(
    f: &Finished,
    model_id: &str,
    simulations: u32,
    (weights, shaping): (&ExamplesConfig, Shaping),
) -> (EpisodeRow, Vec<ExampleRow>) {
    let plies = f.steps.len();
    let length_scale = f.final_state.length_scale(shaping.length_penalty, 0);
    let family = f.task.family;
    let weight = match f.outcome {
        _ if family.num_players() > 1 => 1.0,
        Outcome::Success => weights.success_weight as f32,
        _ => weights.failure_weight as f32,
    };
    // The policy target lists the actions with a positive share.
    let kept = |s: &StepRecord| -> Vec<usize> {
        (0..s.policy.len())
            .filter(|&k| s.policy[k].1 > 0.0)
            .collect()
    };
    // The final board from each player's view, read once per episode.
    let ownership = [0, 1].map(|mover| f.final_state.ownership(mover));
    let examples = f
        .steps
        .iter()
        .enumerate()
        // Fast moves under the playout cap give no training target.
        .filter(|(_, s)| s.target)
        .map(|(i, s)| {
            let kept = kept(s);
            ExampleRow {
                task_id: f.task.task_id.clone(),
                family,
                step: i as u32,
                obs: s.obs.clone(),
                legal: s.legal.clone(),
                policy_actions: kept.iter().map(|&k| s.policy[k].0).collect(),
                policy_probs: kept.iter().map(|&k| s.policy[k].1).collect(),
                value: mixed_value(
                    value_target(f.outcome, s.mover)
                        * shaping.discount.powi((plies - i) as i32)
                        * length_scale,
                    s.root_value,
                    weights.value_q_mix as f32,
                ),
                weight,
                proven: s.proven,
                visit_counts: kept
                    .iter()
                    .map(|&k| s.visits.get(k).copied().unwrap_or(0))
                    .collect(),
                model_id: model_id.into(),
                ownership: ownership[usize::from(s.mover.min(1))].clone(),
            }
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

/// Where a play shard's two parts go.
struct ShardTarget<'a> {
    claim: &'a Claim,
    ep_dir: &'a Path,
    ex_dir: &'a Path,
    meta: &'a FileMeta,
    iteration: u32,
    simulations: u32,
    weights: &'a ExamplesConfig,
    shaping: Shaping,
}

/// Writer thread: buffers rows and streams them into the two parts, which
/// it hands back unfinished (their footers still need the stage's figures).
fn write_shard(
    rx: crossbeam_channel::Receiver<Finished>,
    t: &ShardTarget,
) -> Result<(PartWriter, PartWriter)> {
    let mut ep_w = PartWriter::create(t.claim, t.ep_dir, &Store::Episodes.schema(), t.meta)?;
    let mut ex_w = PartWriter::create(t.claim, t.ex_dir, &Store::Examples.schema(), t.meta)?;
    let model_id = t.meta.model_id.clone().unwrap_or_default();
    let (mut eps, mut exs) = (Vec::new(), Vec::new());
    for f in rx {
        let (e, xs) = rows_of(&f, &model_id, t.simulations, (t.weights, t.shaping));
        eps.push(e);
        exs.extend(xs);
        if exs.len() >= FLUSH_ROWS {
            ep_w.write(&episodes_batch(&eps, t.iteration)?)?;
            ex_w.write(&examples_batch(&exs, t.iteration)?)?;
            eps.clear();
            exs.clear();
        }
    }
    if !eps.is_empty() {
        ep_w.write(&episodes_batch(&eps, t.iteration)?)?;
        ex_w.write(&examples_batch(&exs, t.iteration)?)?;
    }
    Ok((ep_w, ex_w))
}

/// The value target `(1 - mix) * z + mix * q`; exactly `z` at 0.
fn mixed_value(z: f32, q: f32, mix: f32) -> f32 {
    if mix > 0.0 {
        (1.0 - mix) * z + mix * q.clamp(-1.0, 1.0)
    } else {
        z
    }
}

/// The model a stage should use for `--model` (best, latest, id, path).
pub fn model_dir(ctx: &Ctx, reference: &str) -> Result<std::path::PathBuf> {
    crate::model::resolve(&ctx.run, reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcts::StepRecord;
    use crate::tasks::{Family, Game};

    fn step(mover: u8) -> StepRecord {
        StepRecord {
            mover,
            obs: vec![0.0; 4],
            legal: vec![0, 1],
            policy: vec![(0, 1.0)],
            visits: vec![8],
            proven: false,
            target: true,
            action: 0,
            label: "col 1".into(),
            root_value: 0.0,
            stats: Vec::new(),
        }
    }

    /// A Connect Four episode the first player won, with `steps`.
    fn won(steps: Vec<StepRecord>) -> Finished {
        let task = Family::Connect4.generate(0.0, 1);
        Finished {
            final_state: Game::from_task(&task).unwrap(),
            task,
            seed: 0,
            agents: [0, 0],
            outcome: Outcome::Win,
            steps,
            wall: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn value_targets_are_discounted_per_ply_to_the_end() {
        let f = won(vec![step(0), step(1), step(0)]);
        let cfg = ExamplesConfig::default();
        let values = |d: f32| -> Vec<f32> {
            let (_, xs) = rows_of(&f, "m", 8, (&cfg, discounted(d)));
            xs.iter().map(|x| x.value).collect()
        };
        assert_eq!(values(1.0), vec![1.0, -1.0, 1.0]);
        assert_eq!(values(0.5), vec![0.125, -0.25, 0.5]);
    }

    fn discounted(discount: f32) -> Shaping {
        Shaping {
            discount,
            length_penalty: 0.0,
        }
    }

    /// With a length penalty a win is worth less the more stones it took,
    /// the same from every step (and scaled again by any discount).
    #[test]
    fn value_targets_lose_the_length_penalty_per_stone_at_the_end() {
        let mut f = won(vec![step(0), step(1), step(0)]);
        // Seven stones: the first player's four in column 1.
        let end = crate::tasks::connect4::Connect4::from_moves("1212121").unwrap();
        f.final_state = Game::Connect4(end);
        let cfg = ExamplesConfig::default();
        let values = |discount: f32| -> Vec<f32> {
            let shaping = Shaping {
                discount,
                length_penalty: 0.02,
            };
            let (_, xs) = rows_of(&f, "m", 8, (&cfg, shaping));
            xs.iter().map(|x| x.value).collect()
        };
        let v = values(1.0);
        let want = [0.86, -0.86, 0.86];
        assert!(
            v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
        let v = values(0.5);
        let want = [0.86 * 0.125, -0.86 * 0.25, 0.86 * 0.5];
        assert!(
            v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{v:?}"
        );
    }

    #[test]
    fn value_targets_mix_in_the_root_value() {
        let with_q = |mover, q| StepRecord {
            root_value: q,
            ..step(mover)
        };
        let f = won(vec![with_q(0, 0.2), with_q(1, 0.5)]);
        let values = |mix: f64| -> Vec<f32> {
            let cfg = ExamplesConfig {
                value_q_mix: mix,
                ..ExamplesConfig::default()
            };
            let (_, xs) = rows_of(&f, "m", 8, (&cfg, discounted(1.0)));
            xs.iter().map(|x| x.value).collect()
        };
        assert_eq!(values(0.0), vec![1.0, -1.0]);
        assert_eq!(values(1.0), vec![0.2, 0.5]);
        // z = 1 and q = 0.2 for player 0; z = -1 and q = 0.5 for player 1.
        let half = values(0.5);
        assert!((half[0] - 0.6).abs() < 1e-6 && (half[1] + 0.25).abs() < 1e-6);
    }
}
