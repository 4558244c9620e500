//! `eval`: measures a candidate on the held-out set against the incumbent
//! and the baselines (uniform-prior MCTS with random rollouts at the same
//! simulation count; random play), with Wilson 95% intervals, writes the
//! evals store, and decides promotion.

use super::tasks::{ensure_heldout, read_tasks};
use super::{derive_seed, load_evaluator, Ctx};
use crate::config::Algorithm;
use crate::error::Result;
use crate::mcts::evaluator::Evaluator;
use crate::mcts::{Agent, BatchedSearch, EpisodeSpec, SearchParams};
use crate::metrics::{
    commit_metrics, metric_row, print_summary, progress, restore_metrics, StageMeter,
};
use crate::store::lock::Claim;
use crate::store::parquet_io::{read_part, stage_part, FileMeta};
use crate::store::rows::{evals_batch, evals_from_batch, EvalRow, MetricDetail, MetricRow};
use crate::store::{complete_parts, is_committed, part_path, Store};
use crate::tasks::{Family, Game, Outcome, Task};
use std::path::{Path, PathBuf};

/// Wilson score interval (95%) for `p` observed over `n` trials.
pub fn wilson(p: f64, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_964f64;
    let n = n as f64;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The agents an evaluation uses, by index.
const CANDIDATE: usize = 0;
const RANDOM: usize = 2;

fn agent_name(i: usize) -> &'static str {
    ["candidate", "mcts_rollout", "random", "incumbent"][i]
}

/// Difficulty buckets of the per-bucket rows.
const BUCKETS: [(f32, f32); 4] = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)];

/// One finished evaluation episode: agent `a` measured against `b`.
struct Played {
    a: usize,
    b: usize,
    outcome: Outcome,
    /// 0 when `a` moved first.
    colour: u8,
    difficulty: f32,
}

/// Result of one evaluation: its rows and the gate decision.
#[derive(Clone, Debug)]
pub struct EvalSummary {
    pub rows: Vec<EvalRow>,
    /// Mean advantage of candidate over incumbent (None without an incumbent).
    pub advantage: Option<f64>,
    pub promote: bool,
}

/// Evaluates `candidate` (and `incumbent`, when given and different).
pub fn run_eval(
    ctx: &Ctx,
    iteration: u32,
    candidate: &Path,
    incumbent: Option<&Path>,
) -> Result<EvalSummary> {
    let dir = ctx.run.evals(iteration);
    let committed = || is_committed(&dir, 0);
    if committed() && is_committed(&ctx.run.metrics("eval", iteration), 0) {
        return Ok(summarise(ctx, read_evals(&dir)?));
    }
    let claim = ctx.claim(&format!("eval iteration {iteration}"))?;
    if committed() {
        restore_metrics(&claim, "eval", iteration, 0, &part_path(&dir, 0))?;
        return Ok(summarise(ctx, read_evals(&dir)?));
    }
    ensure_heldout(ctx)?;
    let meter = StageMeter::start();
    let (cand, cand_meta) = load_evaluator(&ctx.cfg, candidate)?;
    // The baselines keep PUCT whatever the candidate searches with.
    let algorithm = ctx.cfg.mcts.algorithm;
    let mut agents = vec![
        Agent::search(cand, algorithm),
        Agent::search(Evaluator::Rollout, Algorithm::Puct),
        Agent::Random,
    ];
    let mut ids = vec![cand_meta.id.clone(), "mcts_rollout".into(), "random".into()];
    if let Some(inc) = incumbent.filter(|p| *p != candidate) {
        let (e, m) = load_evaluator(&ctx.cfg, inc)?;
        if m.id != cand_meta.id {
            agents.push(Agent::search(e, algorithm));
            ids.push(m.id);
        }
    }
    let sims = ctx.cfg.eval_simulations();
    let mut rows = Vec::new();
    let mut games_played = 0u64;
    for (family, _) in ctx.cfg.families() {
        let tasks = read_tasks(&ctx.run.heldout(family.name()), family)?;
        let pairings = pairings(family, agents.len());
        let specs = match_specs(ctx, &tasks, &pairings)?;
        games_played += specs.len() as u64;
        let results = play_all(
            ctx,
            (cand_meta.spec.obs_dim, cand_meta.spec.action_dim),
            &mut agents,
            specs,
            sims,
        )?;
        for (a, b) in pairings {
            let res: Vec<&Played> = results.iter().filter(|r| (r.a, r.b) == (a, b)).collect();
            rows.push(tally(&ids, family, a, b, "all", &res, sims));
            for (lo, hi) in BUCKETS {
                let name = format!("{lo:.2}-{hi:.2}");
                let inside: Vec<&Played> = res
                    .iter()
                    .copied()
                    .filter(|r| r.difficulty >= lo && (r.difficulty < hi || hi >= 1.0))
                    .collect();
                if !inside.is_empty() {
                    rows.push(tally(&ids, family, a, b, &name, &inside, sims));
                }
            }
        }
    }
    let fig = meter.finish();
    let row = metric_row(
        "eval",
        iteration,
        0,
        games_played,
        "games",
        &fig,
        MetricDetail::default(),
    );
    let target = EvalTarget {
        claim: &claim,
        dir: &dir,
        stage: "eval",
        iteration: Some(iteration),
    };
    write_rows(ctx, &target, &ids, &rows, Some(&row))?;
    commit_metrics(&claim, &row, &ctx.cfg.hash())?;
    print_summary(&row);
    Ok(summarise(ctx, rows))
}

/// Who plays whom: puzzles are played by each agent alone (b == a); games
/// pit the candidate against each other agent.
fn pairings(family: Family, n_agents: usize) -> Vec<(usize, usize)> {
    if family.num_players() == 1 {
        (0..n_agents).map(|a| (a, a)).collect()
    } else {
        (1..n_agents).map(|b| (CANDIDATE, b)).collect()
    }
}

/// Episodes for every pairing; games are played from each start with both colours.
/// Tagged (a, b, colour of a) through the seed-free `agents` field.
fn match_specs(ctx: &Ctx, tasks: &[Task], pairings: &[(usize, usize)]) -> Result<Vec<EpisodeSpec>> {
    let mut out = Vec::new();
    for &(a, b) in pairings {
        for t in tasks {
            let game = ctx.cfg.game(t)?;
            let seed = derive_seed(&[ctx.cfg.seed, t.seed, a as u64, b as u64]);
            if a == b {
                out.push(EpisodeSpec {
                    task: t.clone(),
                    game,
                    seed,
                    agents: [a, a],
                });
            } else {
                out.push(EpisodeSpec {
                    task: t.clone(),
                    game: game.clone(),
                    seed,
                    agents: [a, b],
                });
                out.push(EpisodeSpec {
                    task: t.clone(),
                    game,
                    seed: seed ^ 1,
                    agents: [b, a],
                });
            }
        }
    }
    Ok(out)
}

/// Plays all episodes greedily.
fn play_all(
    ctx: &Ctx,
    dims: (usize, usize),
    agents: &mut [Agent],
    specs: Vec<EpisodeSpec>,
    sims: u32,
) -> Result<Vec<Played>> {
    let mut params = SearchParams::from_config(&ctx.cfg.mcts, false);
    params.num_simulations = sims;
    let (obs_dim, action_dim) = dims;
    let mut search = BatchedSearch {
        params,
        agents,
        obs_dim,
        action_dim,
        parallel: ctx.cfg.parallel_batch_size,
        overlap: ctx.cfg.infer.overlap,
    };
    let mut out = Vec::new();
    let bar = progress(specs.len() as u64, "eval");
    search.run(specs.into_iter(), |f| {
        bar.inc(1);
        let [p0, p1] = f.agents;
        // The measured agent is the lower index except for (x, CANDIDATE) colour swaps.
        let (a, b, colour) = if p0 == CANDIDATE || p1 != CANDIDATE {
            (p0, p1, 0)
        } else {
            (p1, p0, 1)
        };
        out.push(Played {
            a,
            b,
            outcome: f.outcome,
            colour,
            difficulty: f.task.difficulty,
        });
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(out)
}

fn tally(
    ids: &[String],
    family: Family,
    a: usize,
    b: usize,
    bucket: &str,
    res: &[&Played],
    sims: u32,
) -> EvalRow {
    let (mut wins, mut draws, mut losses) = (0u32, 0u32, 0u32);
    for p in res {
        match (p.outcome, p.colour) {
            (Outcome::Success, _) | (Outcome::Win, 0) | (Outcome::Loss, 1) => wins += 1,
            (Outcome::Draw, _) => draws += 1,
            _ => losses += 1,
        }
    }
    let games = res.len() as u32;
    let rate = if games == 0 {
        0.0
    } else {
        (wins as f64 + 0.5 * draws as f64) / games as f64
    };
    let (ci_low, ci_high) = wilson(rate, games);
    EvalRow {
        model_id: ids[a].clone(),
        agent: agent_name(a).into(),
        opponent: if a == b {
            "none".into()
        } else {
            agent_name(b).into()
        },
        family,
        bucket: bucket.into(),
        games,
        wins,
        draws,
        losses,
        rate,
        ci_low,
        ci_high,
        simulations: if a == RANDOM { 0 } else { sims },
    }
}

/// Gate: the candidate's mean advantage over the incumbent across families
/// (puzzles: success-rate difference; games: 2 x (head-to-head score - 1/2)).
fn summarise(ctx: &Ctx, rows: Vec<EvalRow>) -> EvalSummary {
    let mut advantages = Vec::new();
    for (family, _) in ctx.cfg.families() {
        let find = |agent: &str, opp: &str| {
            rows.iter()
                .find(|r| {
                    r.family == family && r.bucket == "all" && r.agent == agent && r.opponent == opp
                })
                .map(|r| r.rate)
        };
        let adv = if family.num_players() == 1 {
            find("candidate", "none")
                .zip(find("incumbent", "none"))
                .map(|(c, i)| c - i)
        } else {
            find("candidate", "incumbent").map(|s| 2.0 * (s - 0.5))
        };
        advantages.extend(adv);
    }
    let advantage =
        (!advantages.is_empty()).then(|| advantages.iter().sum::<f64>() / advantages.len() as f64);
    let promote = advantage.is_some_and(|a| a >= ctx.cfg.eval.gate_threshold);
    EvalSummary {
        rows,
        advantage,
        promote,
    }
}

pub fn read_evals(dir: &Path) -> Result<Vec<EvalRow>> {
    let schema = Store::Evals.schema();
    let mut rows = Vec::new();
    for part in complete_parts(dir)? {
        for b in read_part(&part, &schema)? {
            rows.extend(evals_from_batch(&b)?);
        }
    }
    Ok(rows)
}

/// Node budget per position when checking Connect Four moves with the solver.
const C4_CHECK_NODES: u64 = 50_000_000;

/// Evaluates `candidate` on an imported (or any) tasks folder holding
/// `family=F` parts: puzzles by success rate; games by the share of positions
/// whose first chosen move is game-theoretically optimal (solver-checked),
/// with rows per class (win / draw / loss for the side to move).
pub fn run_eval_tasks(ctx: &Ctx, dir: &Path, candidate: &Path) -> Result<(Vec<EvalRow>, PathBuf)> {
    let families: Vec<(Family, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| crate::error::Error::io(dir, e))?
        .flatten()
        .filter_map(|e| {
            super::tasks::family_of_dir(&e.path())
                .ok()
                .map(|f| (f, e.path()))
        })
        .collect();
    if families.is_empty() {
        return Err(crate::error::Error::Data(format!(
            "{}: no family=NAME folders; expected a tasks store such as imported/name=NAME",
            dir.display()
        )));
    }
    let (cand, meta) = load_evaluator(&ctx.cfg, candidate)?;
    let mut agents = vec![Agent::search(cand, ctx.cfg.mcts.algorithm)];
    let sims = ctx.cfg.eval_simulations();
    let ids = vec![meta.id.clone()];
    let mut rows = Vec::new();
    for (family, fdir) in families {
        meta.check_family(family)?;
        let tasks = read_tasks(&fdir, family)?;
        let specs = match_specs(ctx, &tasks, &[(CANDIDATE, CANDIDATE)])?;
        let mut firsts = Vec::new();
        let mut params = SearchParams::from_config(&ctx.cfg.mcts, false);
        params.num_simulations = sims;
        let mut search = BatchedSearch {
            params,
            agents: &mut agents,
            obs_dim: meta.spec.obs_dim,
            action_dim: meta.spec.action_dim,
            parallel: ctx.cfg.parallel_batch_size,
            overlap: ctx.cfg.infer.overlap,
        };
        let bar = progress(specs.len() as u64, "eval");
        search.run(specs.into_iter(), |f| {
            bar.inc(1);
            firsts.push((
                f.task.task_id.clone(),
                f.outcome,
                f.steps.first().map(|s| s.action),
            ));
            Ok(())
        })?;
        bar.finish_and_clear();
        if family.num_players() == 1 {
            let played: Vec<Played> = firsts
                .iter()
                .map(|(_, outcome, _)| Played {
                    a: 0,
                    b: 0,
                    outcome: *outcome,
                    colour: 0,
                    difficulty: 0.0,
                })
                .collect();
            let refs: Vec<&Played> = played.iter().collect();
            rows.push(tally(&ids, family, 0, 0, "all", &refs, sims));
        } else {
            rows.extend(optimal_move_rows(&ids, family, &tasks, &firsts, sims)?);
        }
    }
    let name = store_name(dir);
    let out = ctx.run.imported_evals(&name, &meta.id);
    let claim = ctx.claim(&format!("eval tasks {name} {}", meta.id))?;
    let target = EvalTarget {
        claim: &claim,
        dir: &out,
        stage: "eval_tasks",
        iteration: None,
    };
    write_rows(ctx, &target, &ids, &rows, None)?;
    Ok((rows, out))
}

/// The name of an imported tasks store: `NAME` of `.../name=NAME`, else
/// the folder's own name.
fn store_name(dir: &Path) -> String {
    let last = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "tasks".into());
    last.strip_prefix("name=").unwrap_or(&last).to_string()
}

/// Where an evaluation's rows go.
struct EvalTarget<'a> {
    claim: &'a Claim,
    dir: &'a Path,
    stage: &'a str,
    iteration: Option<u32>,
}

/// Commits `rows` as the evals part of `t.dir` (replacing an earlier one);
/// `agents[0]` is the candidate.
fn write_rows(
    ctx: &Ctx,
    t: &EvalTarget,
    agents: &[String],
    rows: &[EvalRow],
    metrics: Option<&MetricRow>,
) -> Result<()> {
    let meta = FileMeta {
        stage: t.stage.into(),
        config_hash: ctx.cfg.hash(),
        model_id: agents.first().cloned(),
        shard: 0,
        num_shards: 1,
        seed: ctx.cfg.seed,
        inputs: agents.to_vec(),
    };
    let batch = evals_batch(rows, t.iteration)?;
    stage_part(
        t.claim,
        t.dir,
        &Store::Evals.schema(),
        &meta,
        &[batch],
        metrics,
    )?
    .commit()?;
    Ok(())
}

/// The exact value of a game position for its mover and the moves that
/// keep it; `None` when the solver cannot settle it within its budget.
fn optimal_first_moves(game: &Game) -> Option<(i32, Vec<crate::tasks::Action>)> {
    match game {
        Game::Connect4(pos) => crate::tasks::connect4::optimal_moves(pos, C4_CHECK_NODES),
        Game::TicTacToe(pos) => {
            let scores = crate::tasks::tictactoe::solve_moves(pos);
            let best = scores.iter().map(|s| s.1).max()?;
            let moves = scores.iter().filter(|s| s.1 == best).map(|s| s.0);
            Some((best, moves.collect()))
        }
        _ => None,
    }
}

/// Rows of the optimal-first-move share, overall and per position class,
/// and the share of positions left unscored.
fn optimal_move_rows(
    ids: &[String],
    family: Family,
    tasks: &[Task],
    firsts: &[(String, Outcome, Option<crate::tasks::Action>)],
    sims: u32,
) -> Result<Vec<EvalRow>> {
    let by_id: std::collections::HashMap<&str, &Task> =
        tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let mut checked: Vec<(&'static str, bool)> = Vec::new();
    let mut unscored = 0usize;
    for (id, _, action) in firsts {
        let (Some(task), Some(action)) = (by_id.get(id.as_str()), action) else {
            continue;
        };
        let Some((best, optimal)) = optimal_first_moves(&Game::from_task(task)?) else {
            unscored += 1;
            continue;
        };
        let class = match best.signum() {
            1 => "win",
            0 => "draw",
            _ => "loss",
        };
        checked.push((class, optimal.contains(action)));
    }
    if unscored > 0 {
        eprintln!(
            "eval: {family}: {unscored} of {} positions could not be scored within {C4_CHECK_NODES} solver nodes (row `unscored`)",
            unscored + checked.len()
        );
    }
    let row = |bucket: &str, xs: Vec<bool>| {
        let played: Vec<Played> = xs
            .iter()
            .map(|&ok| Played {
                a: 0,
                b: 0,
                outcome: if ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                colour: 0,
                difficulty: 0.0,
            })
            .collect();
        let refs: Vec<&Played> = played.iter().collect();
        let mut r = tally(ids, family, 0, 0, bucket, &refs, sims);
        r.opponent = "solver".into();
        r
    };
    let mut rows = vec![row("all", checked.iter().map(|c| c.1).collect())];
    // The share of positions the solver could not score: never dropped
    // silently, so a rate is read against what it covers.
    let mut gaps = vec![true; unscored];
    gaps.resize(unscored + checked.len(), false);
    rows.push(row("unscored", gaps));
    for class in ["win", "draw", "loss"] {
        let xs: Vec<bool> = checked
            .iter()
            .filter(|c| c.0 == class)
            .map(|c| c.1)
            .collect();
        if !xs.is_empty() {
            rows.push(row(class, xs));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        let (lo, hi) = wilson(0.5, 100);
        assert!(
            (lo - 0.4038).abs() < 1e-3 && (hi - 0.5962).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0.0, 10);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.2775).abs() < 1e-3);
    }
}
