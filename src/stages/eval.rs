//! `eval`: measures a candidate on the held-out set against the incumbent
//! and the baselines (uniform-prior MCTS with random rollouts at the same
//! simulation count; random play), with Wilson 95% intervals, writes the
//! evals store (aggregates) and the results store (one row per episode),
//! and puts the candidate to the gate (`stages::promote`, which decides and
//! records promotions). `eval --tasks` measures the candidate, and its
//! network alone, on any tasks store.

use super::promote::{decide, Decision};
use super::tasks::{ensure_heldout, read_tasks};
use super::{derive_seed, load_evaluator, Ctx, StageArgs};
use crate::config::Algorithm;
use crate::error::{Error, Result};
use crate::mcts::evaluator::Evaluator;
use crate::mcts::{Agent, BatchedSearch, EpisodeSpec, Finished, SearchParams};
use crate::metrics::{
    commit_metrics, metric_row, print_summary, progress, restore_metrics, Progress, StageMeter,
    Work,
};
use crate::model::{model_id, resolve, ModelMeta};
use crate::output::NOTE;
use crate::store::lock::Claim;
use crate::store::parquet_io::{read_marker, read_part, stage_part, FileMeta};
use crate::store::rows::{
    evals_batch, evals_from_batch, results_batch, EvalRow, MetricDetail, MetricRow, ResultRow,
    LINE_SEPARATOR,
};
use crate::store::{complete_parts, is_committed, part_path, Store};
use crate::tasks::{Action, Family, Game, Outcome, Task};
use serde::Serialize;
use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// `eval`: a model on the held-out set (`--iteration`), or on any tasks
/// store (`--tasks`).
#[derive(clap::Args, Clone, Debug)]
pub struct EvalArgs {
    /// Required unless --tasks.
    #[arg(long)]
    pub iteration: Option<u32>,
    /// The candidate (default: the model of this iteration).
    #[arg(long)]
    pub model: Option<String>,
    /// The incumbent to gate against (default: best).
    #[arg(long, default_value = "best")]
    pub incumbent: String,
    /// Write models/BEST when the candidate passes the gate.
    #[arg(long)]
    pub promote: bool,
    /// Evaluate on this tasks store instead (e.g. OUT/imported/name=NAME).
    #[arg(long)]
    pub tasks: Option<PathBuf>,
}

impl StageArgs for EvalArgs {
    type Outcome = EvalOutcome;

    fn check(&self) -> Result<()> {
        if self.iteration.is_none() && self.tasks.is_none() {
            return Err(Error::Config(
                "eval: expected --iteration N (or --tasks DIR)".into(),
            ));
        }
        Ok(())
    }
}

/// What an evaluation measured, and for the held-out set the gate.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum EvalOutcome {
    Heldout(Judged),
    /// `--tasks`: the rows and the two folders written (evals, results).
    Tasks {
        rows: Vec<EvalRow>,
        written: Vec<PathBuf>,
    },
}

/// A held-out evaluation and the gate's decision on it.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    pub iteration: u32,
    pub candidate: String,
    /// The incumbent measured (None: none, or the candidate itself).
    pub incumbent: Option<String>,
    pub rows: Vec<EvalRow>,
    pub gate: Decision,
}

impl fmt::Display for EvalOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalOutcome::Heldout(j) => {
                f.write_str(&rows_text(&j.rows))?;
                match &j.gate.promoted {
                    Some(id) => writeln!(f, "promoted {id}"),
                    None => Ok(()),
                }
            }
            EvalOutcome::Tasks { rows, written } => {
                f.write_str(&rows_text(rows))?;
                written
                    .iter()
                    .try_for_each(|dir| writeln!(f, "wrote {}", dir.display()))
            }
        }
    }
}

/// Evals rows as text, one line each; every command that prints them
/// (`eval`, `eval --tasks`) prints them so.
pub fn rows_text(rows: &[EvalRow]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{:<10} {:<9} {:<12} {:<17} vs {:<12} {:>5.1}% [{:.1}-{:.1}] n={}\n",
                r.family.name(),
                r.bucket,
                r.agent,
                r.model_id,
                r.opponent,
                r.rate * 100.0,
                r.ci_low * 100.0,
                r.ci_high * 100.0,
                r.games
            )
        })
        .collect()
}

/// The command: resolves the models, then evaluates on `--tasks`, or on
/// the held-out set with the gate (and with `--promote` its record).
pub fn run(ctx: &Ctx, args: &EvalArgs) -> Result<EvalOutcome> {
    args.check()?;
    if let Some(dir) = &args.tasks {
        let cand = resolve(&ctx.run, args.model.as_deref().unwrap_or("best"))?;
        let (rows, written) = run_eval_tasks(ctx, dir, &cand)?;
        return Ok(EvalOutcome::Tasks {
            rows,
            written: written.to_vec(),
        });
    }
    let iteration = args.iteration.unwrap_or_default();
    let cand = resolve(
        &ctx.run,
        args.model.as_deref().unwrap_or(&model_id(iteration)),
    )?;
    // No BEST yet means no incumbent; a BEST that names no model is an
    // error (it would silently drop the incumbent).
    let inc = match args.incumbent.as_str() {
        "best" => ctx
            .run
            .best()?
            .map(|_| resolve(&ctx.run, "best"))
            .transpose()?,
        other => Some(resolve(&ctx.run, other)?),
    };
    evaluate(ctx, iteration, &cand, inc.as_deref(), args.promote).map(EvalOutcome::Heldout)
}

/// Evaluates `candidate` against `incumbent` on the held-out set
/// ([`run_eval`]) and puts it to the gate, promoting it when `promote`
/// and it passes: what `eval --iteration N [--promote]` and each
/// iteration of `run` do.
pub fn evaluate(
    ctx: &Ctx,
    iteration: u32,
    candidate: &Path,
    incumbent: Option<&Path>,
    promote: bool,
) -> Result<Judged> {
    let summary = run_eval(ctx, iteration, candidate, incumbent)?;
    let cand = ModelMeta::load(candidate)?.id;
    let inc = match incumbent {
        Some(dir) => Some(ModelMeta::load(dir)?.id).filter(|id| *id != cand),
        None => None,
    };
    let gate = decide(ctx, iteration, &cand, summary.advantage, promote)?;
    Ok(Judged {
        iteration,
        candidate: cand,
        incumbent: inc,
        rows: summary.rows,
        gate,
    })
}

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

/// Who plays at an agent index: the role its rows name, its model id
/// and its simulations per move.
struct Entrant {
    role: &'static str,
    model_id: String,
    simulations: u32,
}

impl Entrant {
    fn new(role: &'static str, model_id: impl Into<String>, simulations: u32) -> Entrant {
        Entrant {
            role,
            model_id: model_id.into(),
            simulations,
        }
    }
}

/// The candidate's index in every evaluation: the agent games measure.
const CANDIDATE: usize = 0;
/// The incumbent's index in a held-out evaluation (after the baselines).
const INCUMBENT: usize = 3;

/// Difficulty buckets of the per-bucket rows.
const BUCKETS: [(f32, f32); 4] = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)];

/// One finished evaluation episode: agent `a` measured against `b`.
struct Played {
    a: usize,
    b: usize,
    outcome: Outcome,
    /// The player `a` was: 0 the game's first player.
    colour: u8,
    difficulty: f32,
    task_id: String,
    /// `a`'s first move and its label.
    first: Option<(Action, String)>,
    /// Every move's label, both sides.
    labels: Vec<String>,
}

impl Played {
    /// The episode as a results row (no solver verdict yet).
    fn result(&self, entrants: &[Entrant], family: Family) -> ResultRow {
        let e = &entrants[self.a];
        ResultRow {
            model_id: e.model_id.clone(),
            agent: e.role.into(),
            opponent: opponent_name(entrants, self.a, self.b).into(),
            family,
            task_id: self.task_id.clone(),
            difficulty: self.difficulty,
            colour: self.colour.into(),
            first_action: self.first.as_ref().map(|f| f.0),
            first_move: self.first.as_ref().map(|f| f.1.clone()),
            line: self.labels.join(LINE_SEPARATOR),
            outcome: seen_by(self.outcome, self.colour).name().into(),
            steps: self.labels.len() as u32,
            simulations: e.simulations,
            solver_score: None,
            optimal: None,
            move_score: None,
            scored: true,
        }
    }
}

/// `none` for an agent playing alone, else the other agent's role.
fn opponent_name(entrants: &[Entrant], a: usize, b: usize) -> &'static str {
    if a == b {
        "none"
    } else {
        entrants[b].role
    }
}

/// `outcome` from the view of player `colour`: games record wins and
/// losses from the first player's view.
fn seen_by(outcome: Outcome, colour: u8) -> Outcome {
    match (outcome, colour) {
        (Outcome::Win, 1) => Outcome::Loss,
        (Outcome::Loss, 1) => Outcome::Win,
        (o, _) => o,
    }
}

/// Result of one evaluation: its rows and the candidate's advantage.
#[derive(Clone, Debug)]
pub struct EvalSummary {
    pub rows: Vec<EvalRow>,
    /// Mean advantage of candidate over incumbent (None without an incumbent).
    pub advantage: Option<f64>,
}

/// What one evaluation measured: aggregate rows, the per-episode rows
/// they tally, the agents' model ids and the games played.
struct Measured {
    rows: Vec<EvalRow>,
    results: Vec<ResultRow>,
    ids: Vec<String>,
    games: u64,
}

/// Evaluates `candidate` (and `incumbent`, when given and different).
pub fn run_eval(
    ctx: &Ctx,
    iteration: u32,
    candidate: &Path,
    incumbent: Option<&Path>,
) -> Result<EvalSummary> {
    let dir = ctx.run.evals(iteration);
    let results_dir = ctx.run.results(iteration);
    let done = || is_committed(&dir, 0) && is_committed(&results_dir, 0);
    if done() && is_committed(&ctx.run.metrics("eval", iteration), 0) {
        return Ok(summarise(ctx, read_evals(&dir)?));
    }
    let claim = ctx.claim(&format!("eval iteration {iteration}"))?;
    if done() {
        restore_metrics(&claim, "eval", iteration, 0, &part_path(&dir, 0))?;
        return Ok(summarise(ctx, read_evals(&dir)?));
    }
    ensure_heldout(ctx)?;
    let meter = StageMeter::start();
    // Evals committed without results (an older selfplay): replay the
    // models they record, so the results tally the committed rows, and
    // keep those rows and their gate.
    let rebuild = is_committed(&dir, 0);
    let m = if rebuild {
        let (cand, inc) = recorded_models(ctx, &part_path(&dir, 0))?;
        measure_heldout(ctx, iteration, &cand, inc.as_deref())?
    } else {
        measure_heldout(ctx, iteration, candidate, incumbent)?
    };
    let target = |dir| EvalTarget {
        claim: &claim,
        dir,
        stage: "eval",
        iteration: Some(iteration),
    };
    // Results first: a committed evals part always has its results.
    write_results(ctx, &target(&results_dir), &m.ids, &m.results)?;
    if rebuild {
        restore_metrics(&claim, "eval", iteration, 0, &part_path(&dir, 0))?;
        return Ok(summarise(ctx, read_evals(&dir)?));
    }
    let fig = meter.finish();
    let row = metric_row(
        "eval",
        iteration,
        0,
        m.games,
        "games",
        &fig,
        MetricDetail::default(),
    );
    write_rows(ctx, &target(&dir), &m.ids, &m.rows, Some(&row))?;
    commit_metrics(&claim, &row, &ctx.cfg.hash())?;
    print_summary(&row);
    Ok(summarise(ctx, m.rows))
}

/// The candidate and incumbent model folders an evals part was measured
/// with: its marker's inputs are the entrants' ids, the incumbent fourth.
fn recorded_models(ctx: &Ctx, part: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let inputs = read_marker(part)?.inputs;
    let model = |i: usize| inputs.get(i).map(|id| ctx.run.model_dir(id));
    let cand = model(CANDIDATE)
        .ok_or_else(|| Error::Data(format!("{}: its marker names no candidate", part.display())))?;
    Ok((cand, model(INCUMBENT)))
}

/// Plays the held-out set: every family's tasks by each agent (puzzles)
/// or the candidate against each other agent with both colours (games).
fn measure_heldout(
    ctx: &Ctx,
    iteration: u32,
    candidate: &Path,
    incumbent: Option<&Path>,
) -> Result<Measured> {
    let (cand, cand_meta) = load_evaluator(&ctx.cfg, candidate)?;
    let sims = ctx.cfg.eval_simulations();
    // The baselines keep PUCT whatever the candidate searches with.
    let algorithm = ctx.cfg.mcts.algorithm;
    let mut agents = vec![
        Agent::search(cand, algorithm),
        Agent::search(Evaluator::Rollout, Algorithm::Puct),
        Agent::Random,
    ];
    let mut entrants = vec![
        Entrant::new("candidate", cand_meta.id.clone(), sims),
        Entrant::new("mcts_rollout", "mcts_rollout", sims),
        Entrant::new("random", "random", 0),
    ];
    // The incumbent comes last, at INCUMBENT.
    if let Some(inc) = incumbent.filter(|p| *p != candidate) {
        let (e, m) = load_evaluator(&ctx.cfg, inc)?;
        if m.id != cand_meta.id {
            agents.push(Agent::search(e, algorithm));
            entrants.push(Entrant::new("incumbent", m.id, sims));
        }
    }
    let dims = (cand_meta.spec.obs_dim, cand_meta.spec.action_dim);
    let mut m = Measured {
        rows: Vec::new(),
        results: Vec::new(),
        ids: entrants.iter().map(|e| e.model_id.clone()).collect(),
        games: 0,
    };
    let mut matches = Vec::new();
    for (family, _) in ctx.cfg.families() {
        let tasks = read_tasks(&ctx.run.heldout(family.name()), family)?;
        let pairings = pairings(family, agents.len());
        let specs = match_specs(ctx, &tasks, &pairings)?;
        m.games += specs.len() as u64;
        matches.push((family, pairings, specs));
    }
    let bar = progress(Work {
        stage: "eval",
        iteration: Some(iteration),
        shard: 0,
        unit: "games",
        total: Some(m.games),
    });
    for (family, pairings, specs) in matches {
        let played = play_all(ctx, dims, &mut agents, specs, (sims, &bar))?;
        for (a, b) in pairings {
            let res: Vec<&Played> = played.iter().filter(|r| (r.a, r.b) == (a, b)).collect();
            m.rows.push(tally(&entrants, family, (a, b), "all", &res));
            for (lo, hi) in BUCKETS {
                let name = format!("{lo:.2}-{hi:.2}");
                let inside: Vec<&Played> = res
                    .iter()
                    .copied()
                    .filter(|r| r.difficulty >= lo && (r.difficulty < hi || hi >= 1.0))
                    .collect();
                if !inside.is_empty() {
                    m.rows
                        .push(tally(&entrants, family, (a, b), &name, &inside));
                }
            }
        }
        m.results
            .extend(played.iter().map(|p| p.result(&entrants, family)));
    }
    bar.finish();
    Ok(m)
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

/// Episodes for every pairing; games between two agents are played from
/// each start with both colours, an agent alone plays both sides once.
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

/// Plays all episodes greedily, counting them on `bar`; the episodes in
/// a fixed order (agents, task, colour), whatever order they ended in.
fn play_all(
    ctx: &Ctx,
    dims: (usize, usize),
    agents: &mut [Agent],
    specs: Vec<EpisodeSpec>,
    (sims, bar): (u32, &Progress),
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
        lanes: ctx.cfg.infer.lanes(),
    };
    let mut out = Vec::new();
    search.run(specs.into_iter(), |f| {
        bar.inc(1);
        out.push(played(f));
        Ok(())
    })?;
    out.sort_by(|x, y| (x.a, x.b, &x.task_id, x.colour).cmp(&(y.a, y.b, &y.task_id, y.colour)));
    Ok(out)
}

/// A finished episode from its measured agent's side: the candidate in a
/// game against another agent, else the one agent playing, measured from
/// the side to move at the start.
fn played(f: Finished) -> Played {
    let [p0, p1] = f.agents;
    let start = f.steps.first().map_or(0, |s| s.mover);
    let (a, b, colour) = if p0 == p1 {
        (p0, p1, start)
    } else if p1 == CANDIDATE {
        (p1, p0, 1)
    } else {
        (p0, p1, 0)
    };
    let first = f
        .steps
        .iter()
        .find(|s| s.mover == colour)
        .map(|s| (s.action, s.label.clone()));
    Played {
        a,
        b,
        outcome: f.outcome,
        colour,
        difficulty: f.task.difficulty,
        first,
        labels: f.steps.into_iter().map(|s| s.label).collect(),
        task_id: f.task.task_id,
    }
}

/// The evals row of pairing `(a, b)` over `res`.
fn tally(
    entrants: &[Entrant],
    family: Family,
    (a, b): (usize, usize),
    bucket: &str,
    res: &[&Played],
) -> EvalRow {
    let (mut wins, mut draws, mut losses) = (0u32, 0u32, 0u32);
    for p in res {
        match seen_by(p.outcome, p.colour) {
            Outcome::Success | Outcome::Win => wins += 1,
            Outcome::Draw => draws += 1,
            _ => losses += 1,
        }
    }
    let opponent = opponent_name(entrants, a, b);
    counts_row(
        &entrants[a],
        opponent,
        family,
        bucket,
        (wins, draws, losses),
    )
}

/// An evals row from its counts, with the rate and its Wilson interval.
fn counts_row(
    e: &Entrant,
    opponent: &str,
    family: Family,
    bucket: &str,
    (wins, draws, losses): (u32, u32, u32),
) -> EvalRow {
    let games = wins + draws + losses;
    let rate = if games == 0 {
        0.0
    } else {
        (wins as f64 + 0.5 * draws as f64) / games as f64
    };
    let (ci_low, ci_high) = wilson(rate, games);
    EvalRow {
        model_id: e.model_id.clone(),
        agent: e.role.into(),
        opponent: opponent.into(),
        family,
        bucket: bucket.into(),
        games,
        wins,
        draws,
        losses,
        rate,
        ci_low,
        ci_high,
        simulations: e.simulations,
    }
}

/// The candidate's mean advantage over the incumbent across families
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
    EvalSummary { rows, advantage }
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
/// `family=F` parts, searching and as the network alone (its policy's
/// argmax): puzzles by success rate; games by the share of positions
/// whose first chosen move is game-theoretically optimal (solver-checked),
/// with rows per class (win / draw / loss for the side to move). Writes
/// the evals rows and the per-position results beside them; returns the
/// evals rows and the two folders written.
pub fn run_eval_tasks(
    ctx: &Ctx,
    dir: &Path,
    candidate: &Path,
) -> Result<(Vec<EvalRow>, [PathBuf; 2])> {
    let families: Vec<(Family, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .filter_map(|e| {
            super::tasks::family_of_dir(&e.path())
                .ok()
                .map(|f| (f, e.path()))
        })
        .collect();
    if families.is_empty() {
        return Err(Error::Data(format!(
            "{}: no family=NAME folders; expected a tasks store such as imported/name=NAME",
            dir.display()
        )));
    }
    let (cand, meta) = load_evaluator(&ctx.cfg, candidate)?;
    let (net, _) = load_evaluator(&ctx.cfg, candidate)?;
    let mut agents = vec![
        Agent::search(cand, ctx.cfg.mcts.algorithm),
        Agent::Policy { evaluator: net },
    ];
    let sims = ctx.cfg.eval_simulations();
    let entrants = [
        Entrant::new("candidate", meta.id.clone(), sims),
        Entrant::new("network", meta.id.clone(), 0),
    ];
    let dims = (meta.spec.obs_dim, meta.spec.action_dim);
    let (mut rows, mut results) = (Vec::new(), Vec::new());
    let mut matches = Vec::new();
    for (family, fdir) in families {
        meta.check_family(family)?;
        let tasks = read_tasks(&fdir, family)?;
        let alone: Vec<(usize, usize)> = (0..agents.len()).map(|a| (a, a)).collect();
        let specs = match_specs(ctx, &tasks, &alone)?;
        matches.push((family, tasks, specs));
    }
    let bar = progress(Work {
        stage: "eval_tasks",
        iteration: None,
        shard: 0,
        unit: "games",
        total: Some(matches.iter().map(|m| m.2.len() as u64).sum()),
    });
    for (family, tasks, specs) in matches {
        let played = play_all(ctx, dims, &mut agents, specs, (sims, &bar))?;
        let mut mine: Vec<ResultRow> = played.iter().map(|p| p.result(&entrants, family)).collect();
        if family.num_players() == 2 {
            check_first_moves(family, &tasks, &mut mine)?;
        }
        for (a, e) in entrants.iter().enumerate() {
            if family.num_players() == 1 {
                let res: Vec<&Played> = played.iter().filter(|p| p.a == a).collect();
                rows.push(tally(&entrants, family, (a, a), "all", &res));
            } else {
                let res: Vec<&ResultRow> = mine.iter().filter(|r| r.agent == e.role).collect();
                rows.extend(optimal_move_rows(e, family, &res));
            }
        }
        results.extend(mine);
    }
    bar.finish();
    let name = store_name(dir);
    let out = ctx.run.imported_evals(&name, &meta.id);
    let claim = ctx.claim(&format!("eval tasks {name} {}", meta.id))?;
    let target = |dir| EvalTarget {
        claim: &claim,
        dir,
        stage: "eval_tasks",
        iteration: None,
    };
    let ids = vec![meta.id.clone()];
    let results_dir = ctx.run.imported_results(&name, &meta.id);
    write_results(ctx, &target(&results_dir), &ids, &results)?;
    write_rows(ctx, &target(&out), &ids, &rows, None)?;
    Ok((rows, [out, results_dir]))
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

impl EvalTarget<'_> {
    /// The part's footer facts; `agents[0]` is the candidate.
    fn meta(&self, ctx: &Ctx, agents: &[String]) -> FileMeta {
        FileMeta {
            stage: self.stage.into(),
            config_hash: ctx.cfg.hash(),
            model_id: agents.first().cloned(),
            shard: 0,
            num_shards: 1,
            seed: ctx.cfg.seed,
            inputs: agents.to_vec(),
        }
    }
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
    let batch = evals_batch(rows, t.iteration)?;
    let schema = Store::Evals.schema();
    stage_part(
        t.claim,
        t.dir,
        &schema,
        &t.meta(ctx, agents),
        &[batch],
        metrics,
    )?
    .commit()?;
    Ok(())
}

/// Commits `rows` as the results part of `t.dir` (replacing an earlier one).
fn write_results(ctx: &Ctx, t: &EvalTarget, agents: &[String], rows: &[ResultRow]) -> Result<()> {
    let batch = results_batch(rows, t.iteration)?;
    let schema = Store::Results.schema();
    stage_part(
        t.claim,
        t.dir,
        &schema,
        &t.meta(ctx, agents),
        &[batch],
        None,
    )?
    .commit()?;
    Ok(())
}

/// The exact value of a game position for its mover and the moves that
/// keep it; `None` when the solver cannot settle it within its budget.
fn optimal_first_moves(game: &Game) -> Option<(i32, Vec<Action>)> {
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

/// The exact score of one legal move of a game position for its mover,
/// in [`optimal_first_moves`]' convention; `None` past the solver's budget.
/// Only misses need it: a Connect Four move scores minus its child (a
/// finished child scores as lost for its mover).
fn first_move_score(game: &Game, action: Action) -> Option<i32> {
    match game {
        Game::Connect4(pos) => {
            let mut child = pos.clone();
            child.step(action);
            crate::tasks::connect4::solve(&child, C4_CHECK_NODES).map(|s| -s)
        }
        Game::TicTacToe(pos) => crate::tasks::tictactoe::solve_moves(pos)
            .into_iter()
            .find(|s| s.0 == action)
            .map(|s| s.1),
        _ => None,
    }
}

/// Gives each game row the solver's verdict on its first move: the
/// position's exact score, whether the move keeps it and the move's own
/// score, or `scored = false` when the solver gives up. Each position is
/// solved once, however many agents played it.
fn check_first_moves(family: Family, tasks: &[Task], results: &mut [ResultRow]) -> Result<()> {
    let by_id: HashMap<&str, &Task> = tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let mut verdicts: HashMap<String, Option<(i32, Vec<Action>)>> = HashMap::new();
    for r in results.iter_mut() {
        r.opponent = "solver".into();
        let (Some(task), Some(action)) = (by_id.get(r.task_id.as_str()), r.first_action) else {
            continue;
        };
        let verdict = match verdicts.entry(r.task_id.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(optimal_first_moves(&Game::from_task(task)?)),
        };
        match verdict {
            Some((best, moves)) => {
                let optimal = moves.contains(&action);
                r.solver_score = Some(*best);
                r.optimal = Some(optimal);
                r.move_score = if optimal {
                    Some(*best)
                } else {
                    first_move_score(&Game::from_task(task)?, action)
                };
            }
            None => r.scored = false,
        }
    }
    let unscored = verdicts.values().filter(|v| v.is_none()).count();
    if unscored > 0 {
        tracing::info!(
            target: NOTE,
            stage = "eval",
            family = family.name(),
            unscored,
            positions = verdicts.len(),
            "eval: {family}: {unscored} of {} positions could not be scored within {C4_CHECK_NODES} solver nodes (row `unscored`)",
            verdicts.len()
        );
    }
    Ok(())
}

/// One agent's rows of the optimal-first-move share, overall and per
/// position class, and the share of positions left unscored, tallied
/// from its results rows (positions where it made no move are left out).
fn optimal_move_rows(e: &Entrant, family: Family, results: &[&ResultRow]) -> Vec<EvalRow> {
    let moved: Vec<&ResultRow> = results
        .iter()
        .copied()
        .filter(|r| r.first_action.is_some())
        .collect();
    let checked: Vec<(&str, bool)> = moved
        .iter()
        .filter_map(|r| Some((score_class(r.solver_score?), r.optimal?)))
        .collect();
    let row = |bucket: &str, xs: &[bool]| {
        let wins = xs.iter().filter(|&&ok| ok).count() as u32;
        counts_row(
            e,
            "solver",
            family,
            bucket,
            (wins, 0, xs.len() as u32 - wins),
        )
    };
    let all: Vec<bool> = checked.iter().map(|c| c.1).collect();
    // The share of positions the solver could not score: never dropped
    // silently, so a rate is read against what it covers.
    let gaps: Vec<bool> = moved.iter().map(|r| !r.scored).collect();
    // The weaker measure beside it: the move keeps the position's outcome
    // (win, draw or loss), whatever its distance.
    let kept: Vec<bool> = moved
        .iter()
        .filter_map(|r| Some(score_class(r.move_score?) == score_class(r.solver_score?)))
        .collect();
    let mut rows = vec![
        row("all", &all),
        row("unscored", &gaps),
        row("same_outcome", &kept),
    ];
    for class in ["win", "draw", "loss"] {
        let xs: Vec<bool> = checked
            .iter()
            .filter(|c| c.0 == class)
            .map(|c| c.1)
            .collect();
        if !xs.is_empty() {
            rows.push(row(class, &xs));
        }
    }
    rows
}

/// The class of a position by its exact score for the side to move.
fn score_class(score: i32) -> &'static str {
    match score.signum() {
        1 => "win",
        0 => "draw",
        _ => "loss",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_seen_from_the_measured_player() {
        assert_eq!(seen_by(Outcome::Win, 0), Outcome::Win);
        assert_eq!(seen_by(Outcome::Win, 1), Outcome::Loss);
        assert_eq!(seen_by(Outcome::Loss, 1), Outcome::Win);
        for o in [Outcome::Success, Outcome::Failure, Outcome::Draw] {
            assert_eq!(seen_by(o, 1), o);
        }
    }

    /// A position's row: its exact score and the first move's (optimal
    /// when they are equal), `None` when unscored.
    fn position(score: Option<i32>, move_score: Option<i32>, moved: bool) -> ResultRow {
        ResultRow {
            model_id: "m".into(),
            agent: "network".into(),
            opponent: "solver".into(),
            family: Family::Connect4,
            task_id: "t".into(),
            difficulty: 0.0,
            colour: 0,
            first_action: moved.then_some(3),
            first_move: moved.then(|| "col 4".into()),
            line: String::new(),
            outcome: "draw".into(),
            steps: 1,
            simulations: 0,
            solver_score: score,
            optimal: score.zip(move_score).map(|(s, m)| s == m),
            move_score,
            scored: score.is_some() || !moved,
        }
    }

    /// The aggregate rows are tallies of the results rows: optimal first
    /// moves over the scored positions, per class, the unscored share and
    /// the moves that keep the outcome.
    #[test]
    fn optimal_move_rows_tally_the_results_rows() {
        let results = [
            position(Some(5), Some(5), true),
            position(Some(5), Some(-2), true),
            position(Some(0), Some(0), true),
            position(Some(-3), Some(-5), true),
            position(None, None, true),
            position(None, None, false),
        ];
        let refs: Vec<&ResultRow> = results.iter().collect();
        let e = Entrant::new("network", "m", 0);
        let rows = optimal_move_rows(&e, Family::Connect4, &refs);
        let got: Vec<(&str, u32, u32)> = rows
            .iter()
            .map(|r| (r.bucket.as_str(), r.games, r.wins))
            .collect();
        let want = [
            ("all", 4, 2),
            ("unscored", 5, 1),
            ("same_outcome", 4, 3),
            ("win", 2, 1),
            ("draw", 1, 1),
            ("loss", 1, 0),
        ];
        assert_eq!(got, want);
        assert!(rows
            .iter()
            .all(|r| r.agent == "network" && r.opponent == "solver" && r.simulations == 0));
    }

    /// A first move's own score is the one the solver gives every move,
    /// along random games to their end: immediate wins, moves that let the
    /// opponent win and a full board's draw included.
    #[test]
    fn a_first_move_scores_as_the_solver_scores_every_move() {
        use crate::tasks::connect4::{solve_moves, Connect4};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut checked = 0;
        for _ in 0..6 {
            let mut pos = Connect4::from_moves("4453").unwrap();
            let mut legal = Vec::new();
            while !pos.is_terminal() {
                let game = Game::Connect4(pos.clone());
                if pos.moves().len() >= 12 {
                    for (a, want) in solve_moves(&pos, C4_CHECK_NODES).unwrap() {
                        let moves = pos.moves();
                        assert_eq!(first_move_score(&game, a), Some(want), "{moves} + {a}");
                        checked += 1;
                    }
                }
                pos.legal_actions(&mut legal);
                pos.step(legal[rng.random_range(0..legal.len())]);
            }
        }
        assert!(checked > 100, "{checked} moves");
        let mut pos = crate::tasks::tictactoe::TicTacToe::new();
        pos.step(4);
        let game = Game::TicTacToe(pos.clone());
        for (a, want) in crate::tasks::tictactoe::solve_moves(&pos) {
            assert_eq!(first_move_score(&game, a), Some(want));
        }
    }

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
