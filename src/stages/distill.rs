//! `distill`: self-play episodes into reasoning traces for fine-tuning
//! (`traces/split=train|test/`), each re-verified from its own text by the
//! family verifier before it is written (see `crate::distill`). Reads the
//! episodes store (and the tasks store for statements and specs; the
//! examples store for `--search-notes`); writes both splits, then one
//! metrics row with per-family figures. Everything is read and checked
//! before the first commit, so a bad input writes nothing.

use super::tasks::read_tasks;
use super::{Access, Ctx, StageArgs};
use crate::distill::notes::{notes, Policy};
use crate::distill::select::Selection;
use crate::distill::{solver_line, split_of, trace, trace_with, Dropped, Memo, Trace};
use crate::error::{Error, Result};
use crate::metrics::{commit_metrics, heartbeat, metric_row, print_summary, StageMeter, Work};
use crate::store::commit::commit_folder;
use crate::store::parquet_io::{read_columns, read_part, stage_part, FileMeta};
use crate::store::rows::{
    episodes_from_batch, policies_from_batch, traces_batch, EpisodeLineage, EpisodeRow,
    FamilyTraces, MetricDetail, TraceRow,
};
use crate::store::{complete_parts, list_partition, Store};
use crate::tasks::{Family, Game, Task};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// `distill [--iteration N|A-B] [--family F] [--outcome O] ...`.
#[derive(clap::Args, Clone, Debug)]
pub struct DistillArgs {
    /// Iterations of the episodes store to read: N or A-B (default: all).
    #[arg(long, value_name = "N|A-B")]
    pub iteration: Option<String>,
    /// Families (or kinds) to keep, repeatable or comma-separated (default: all).
    #[arg(long, value_name = "NAME")]
    pub family: Vec<String>,
    /// Episode outcomes to keep: success, failure, win, loss, draw
    /// (default: all but failure).
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Vec<String>,
    /// Task difficulty range, LO-HI within [0, 1] (default: 0-1).
    #[arg(long, value_name = "LO-HI")]
    pub difficulty: Option<String>,
    /// Only episodes played by this model id (e.g. iteration=000003).
    #[arg(long)]
    pub model: Option<String>,
    /// Annotate each step with the alternatives the search weighed
    /// (visit shares, from the examples store) and the position's value.
    #[arg(long)]
    pub search_notes: bool,
    /// Add the solver's reference solution (source = solver) for each
    /// selected task whose episodes gave no verified trace.
    #[arg(long)]
    pub solver_references: bool,
    /// Share of tasks in the test split, in [0, 1].
    #[arg(long, default_value_t = 0.1)]
    pub test_share: f64,
    /// Solver nodes for a Connect Four game's start position; games
    /// from a start it does not settle give no trace (lower: faster).
    #[arg(long, default_value_t = DEFAULT_SOLVER_NODES)]
    pub solver_nodes: u64,
}

impl DistillArgs {
    /// The request the flags make.
    pub fn request(&self) -> Result<Request> {
        if !(0.0..=1.0).contains(&self.test_share) {
            return Err(Error::Config(format!(
                "--test-share {}: expected a share in [0, 1]",
                self.test_share
            )));
        }
        if !(1..=MAX_SOLVER_NODES).contains(&self.solver_nodes) {
            return Err(Error::Config(format!(
                "--solver-nodes {}: expected 1 to {MAX_SOLVER_NODES} (the verifier's budget)",
                self.solver_nodes
            )));
        }
        let selection = Selection::parse(&crate::distill::select::Flags {
            iterations: self.iteration.as_deref(),
            families: &self.family,
            outcomes: &self.outcome,
            difficulty: self.difficulty.as_deref(),
            model: self.model.as_deref(),
        })?;
        Ok(Request {
            selection,
            notes: self.search_notes,
            solver_references: self.solver_references,
            test_share: self.test_share,
            solver_nodes: self.solver_nodes,
        })
    }
}

impl StageArgs for DistillArgs {
    type Outcome = DistillOutcome;

    /// Distill reads stores only: its config plays no part in what it
    /// writes, so a run's config.toml is neither checked nor made.
    fn access(&self) -> Access {
        Access::Read
    }

    fn check(&self) -> Result<()> {
        self.request().map(drop)
    }
}

/// What `distill` wrote: the per-family table and the splits.
#[derive(Clone, Debug, Serialize)]
pub struct DistillOutcome {
    pub figures: Vec<FamilyTraces>,
    pub written: Vec<WrittenSplit>,
}

/// One split's folder and rows.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenSplit {
    pub split: String,
    pub path: PathBuf,
    pub rows: u64,
}

impl std::fmt::Display for DistillOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&summary_table(&self.figures))?;
        for w in &self.written {
            writeln!(f, "wrote {} ({} rows)", w.path.display(), w.rows)?;
        }
        Ok(())
    }
}

/// The command: [`run_distill`] on the flags' request, with heartbeats.
pub fn run(ctx: &Ctx, args: &DistillArgs) -> Result<DistillOutcome> {
    let req = args.request()?;
    let beat = heartbeat(Work {
        stage: "distill",
        iteration: None,
        shard: 0,
        unit: "",
        total: None,
    });
    let done = run_distill(ctx, &req);
    drop(beat);
    let done = done?;
    Ok(DistillOutcome {
        figures: done.figures,
        written: done
            .written
            .into_iter()
            .map(|(split, rows)| WrittenSplit {
                path: ctx.run.traces(&split),
                split,
                rows,
            })
            .collect(),
    })
}

/// What a distill is asked for.
#[derive(Clone, Debug)]
pub struct Request {
    pub selection: Selection,
    /// Annotate each step with the search's alternatives and value.
    pub notes: bool,
    /// Add the solver's reference for tasks without a verified trace.
    pub solver_references: bool,
    /// Share of tasks in the test split.
    pub test_share: f64,
    /// Solver nodes for a Connect Four game's start; a start it does not
    /// settle gives no trace (fewer: faster, and fewer game traces).
    pub solver_nodes: u64,
}

/// `--solver-nodes` by default: on the default run's games a tenth of the
/// time of the verifier's budget for 99% of the traces (README).
pub const DEFAULT_SOLVER_NODES: u64 = 200_000;

/// The most `--solver-nodes` may be: the verifier's own budget, which
/// every answer must then pass.
pub const MAX_SOLVER_NODES: u64 = crate::tasks::connect4::VERIFY_NODE_BUDGET;

/// The splits in the order they are committed.
pub const SPLITS: [&str; 2] = ["test", "train"];

/// One selected episode with where it came from.
struct Episode {
    iteration: u32,
    part: u32,
    row: EpisodeRow,
}

/// What a distill wrote.
#[derive(Clone, Debug)]
pub struct Distilled {
    /// Per family: rows, mean length, verified share, drops.
    pub figures: Vec<FamilyTraces>,
    /// Rows committed per split.
    pub written: Vec<(String, u64)>,
}

/// Distills the selected episodes into both splits, then the metrics row.
pub fn run_distill(ctx: &Ctx, req: &Request) -> Result<Distilled> {
    let claim = ctx.claim("distill")?;
    let meter = StageMeter::start();
    let episodes = read_episodes(ctx, &req.selection)?;
    let tasks = read_needed_tasks(ctx, &episodes)?;
    let policies = if req.notes {
        read_policies(ctx, &episodes)?
    } else {
        HashMap::new()
    };
    let built = build(&episodes, &tasks, &policies, req);
    let total: usize = built.rows.values().map(Vec::len).sum();
    if total == 0 {
        return Err(Error::Data(format!(
            "{}: none of the {} selected episodes gave a verified trace ({}); nothing written",
            ctx.run.root.join("episodes").display(),
            episodes.len(),
            req.selection.describe()
        )));
    }
    let figures = built.figures();
    let newest = episodes.iter().map(|e| e.iteration).max().unwrap_or(0);
    let detail = MetricDetail {
        traces: Some(figures.clone()),
        ..MetricDetail::default()
    };
    let row = metric_row(
        "distill",
        newest,
        0,
        total as u64,
        "traces",
        &meter.finish(),
        detail,
    );
    let meta = FileMeta {
        stage: "distill".into(),
        config_hash: ctx.cfg.hash(),
        model_id: None,
        shard: 0,
        num_shards: 1,
        seed: 0,
        inputs: vec![
            req.selection.describe(),
            format!(
                "search_notes={} solver_references={} test_share={}",
                req.notes, req.solver_references, req.test_share
            ),
        ],
    };
    let schema = Store::Traces.schema();
    let mut staged = Vec::new();
    for split in SPLITS {
        let rows = built.rows.get(split).map(Vec::as_slice).unwrap_or(&[]);
        let batch = traces_batch(rows, split)?;
        let dir = ctx.run.traces(split);
        staged.push((
            split,
            stage_part(&claim, &dir, &schema, &meta, &[batch], Some(&row))?,
        ));
    }
    // Both splits at once: a reader never sees one distill's test split
    // beside another's train split.
    let (splits, parts): (Vec<&str>, Vec<_>) = staged.into_iter().unzip();
    let rows = commit_folder(&ctx.run, &claim.key, &ctx.run.root.join("traces"), parts)?;
    let written = splits.into_iter().map(String::from).zip(rows).collect();
    commit_metrics(&claim, &row, &ctx.cfg.hash())?;
    print_summary(&row);
    Ok(Distilled { figures, written })
}

/// The selected episodes, by iteration, part and row; an empty selection
/// is an error naming the store and the selection.
fn read_episodes(ctx: &Ctx, sel: &Selection) -> Result<Vec<Episode>> {
    let root = ctx.run.root.join("episodes");
    let schema = Store::Episodes.schema();
    let mut out = Vec::new();
    let mut scanned = 0usize;
    for (iteration, dir) in list_partition(&root, "iteration") {
        if !sel.keeps_iteration(iteration) {
            continue;
        }
        for path in complete_parts(&dir)? {
            let part = part_index(&path);
            for b in read_part(&path, &schema)? {
                let rows = episodes_from_batch(&b)
                    .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
                scanned += rows.len();
                out.extend(
                    rows.into_iter()
                        .filter(|r| sel.keeps_task(r.family, r.difficulty, &r.model_id))
                        .map(|row| Episode {
                            iteration,
                            part,
                            row,
                        }),
                );
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Data(format!(
            "{}: empty selection: none of {scanned} episodes matches {}; expected at least one (run `selfplay play`, or widen --iteration/--family/--difficulty/--model)",
            root.display(),
            sel.describe()
        )));
    }
    Ok(out)
}

/// `part-00003.parquet` -> 3.
fn part_index(path: &Path) -> u32 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| {
            n.strip_prefix("part-")?
                .strip_suffix(".parquet")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Tasks by (iteration, task id), for the families and iterations the
/// episodes need; a task missing from its folder is an error naming it.
fn read_needed_tasks(ctx: &Ctx, episodes: &[Episode]) -> Result<HashMap<(u32, String), Task>> {
    let needed: HashSet<(u32, Family)> = episodes
        .iter()
        .map(|e| (e.iteration, e.row.family))
        .collect();
    let mut tasks = HashMap::new();
    for (iteration, family) in needed {
        for t in read_tasks(&ctx.run.tasks(iteration, family.name()), family)? {
            tasks.insert((iteration, t.task_id.clone()), t);
        }
    }
    if let Some(e) = episodes
        .iter()
        .find(|e| !tasks.contains_key(&(e.iteration, e.row.task_id.clone())))
    {
        return Err(Error::Data(format!(
            "{}: no task {} (episodes/iteration={} part {} names it); expected the tasks store the episodes were played from",
            ctx.run.tasks(e.iteration, e.row.family.name()).display(),
            e.row.task_id,
            e.iteration,
            e.part
        )));
    }
    Ok(tasks)
}

/// Search policies by (iteration, task id, step) from the examples store,
/// for the selected episodes' tasks only.
fn read_policies(ctx: &Ctx, episodes: &[Episode]) -> Result<HashMap<(u32, String, u32), Policy>> {
    let wanted: HashSet<(u32, &str)> = episodes
        .iter()
        .map(|e| (e.iteration, e.row.task_id.as_str()))
        .collect();
    let iterations: HashSet<u32> = episodes.iter().map(|e| e.iteration).collect();
    let schema = Store::Examples.schema();
    let columns = ["task_id", "step", "policy_actions", "policy_probs"];
    let mut out = HashMap::new();
    for iteration in iterations {
        for path in complete_parts(&ctx.run.examples(iteration))? {
            for b in read_columns(&path, &schema, &columns)? {
                let rows = policies_from_batch(&b)
                    .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
                for (task_id, step, actions, shares) in rows {
                    if wanted.contains(&(iteration, task_id.as_str())) {
                        out.insert((iteration, task_id, step), Policy { actions, shares });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Per-family tallies of one distill.
#[derive(Default)]
struct Tally {
    candidates: u64,
    unverified: u64,
    duplicates: u64,
    rows: u64,
    solver_rows: u64,
    chars: u64,
}

/// Rows by split and tallies by family.
#[derive(Default)]
struct Built {
    rows: BTreeMap<&'static str, Vec<TraceRow>>,
    tally: BTreeMap<Family, Tally>,
    seen: HashSet<String>,
}

impl Built {
    /// Counts a candidate line's fate and keeps its row when it is new.
    fn add(
        &mut self,
        got: std::result::Result<Trace, Dropped>,
        make: impl FnOnce(Trace) -> TraceRow,
        family: Family,
        task: &Task,
        share: f64,
    ) -> bool {
        let tally = self.tally.entry(family).or_default();
        tally.candidates += 1;
        let t = match got {
            Ok(t) => t,
            Err(_) => {
                tally.unverified += 1;
                return false;
            }
        };
        if !self.seen.insert(t.key.clone()) {
            tally.duplicates += 1;
            return true;
        }
        tally.rows += 1;
        tally.chars += t.completion.chars().count() as u64;
        let row = make(t);
        tally.solver_rows += u64::from(row.source == "solver");
        self.rows
            .entry(split_of(task, share))
            .or_default()
            .push(row);
        true
    }

    fn figures(&self) -> Vec<FamilyTraces> {
        self.tally
            .iter()
            .map(|(family, t)| FamilyTraces {
                family: family.name().into(),
                rows: t.rows,
                mean_chars: t.chars as f64 / t.rows.max(1) as f64,
                verified_share: (t.candidates - t.unverified) as f64 / t.candidates.max(1) as f64,
                unverified: t.unverified,
                duplicates: t.duplicates,
                solver_rows: t.solver_rows,
            })
            .collect()
    }
}

/// Traces of the selected episodes (outcome filter applied), then, when
/// asked, the solver's reference for every selected task left without one.
fn build(
    episodes: &[Episode],
    tasks: &HashMap<(u32, String), Task>,
    policies: &HashMap<(u32, String, u32), Policy>,
    req: &Request,
) -> Built {
    let mut built = Built::default();
    let mut covered: HashSet<(u32, &str)> = HashSet::new();
    // Tracing (solving game starts, verifying) runs in parallel; rows are
    // then added in episode order, so the output does not depend on threads.
    let memo = Memo::new(req.solver_nodes);
    let traced: Vec<_> = episodes
        .par_iter()
        .map(|e| {
            let task = tasks.get(&(e.iteration, e.row.task_id.clone()))?;
            if !req.selection.keeps_outcome(&e.row.outcome) {
                return None;
            }
            let step_notes = if req.notes {
                episode_notes(e, task, policies)
            } else {
                Vec::new()
            };
            Some((task, trace_with(task, &e.row.actions, &step_notes, &memo)))
        })
        .collect();
    for (e, got) in episodes.iter().zip(traced) {
        let Some((task, got)) = got else {
            continue;
        };
        let make = |t: Trace| row_of(t, task, e.iteration, Some(lineage(e)), req.notes);
        if built.add(got, make, task.family, task, req.test_share) {
            covered.insert((e.iteration, e.row.task_id.as_str()));
        }
    }
    if req.solver_references {
        let mut done: HashSet<(u32, &str)> = HashSet::new();
        for e in episodes {
            let id = (e.iteration, e.row.task_id.as_str());
            if covered.contains(&id) || !done.insert(id) {
                continue;
            }
            let Some(task) = tasks.get(&(e.iteration, e.row.task_id.clone())) else {
                continue;
            };
            let got = solver_line(task)
                .ok_or(Dropped::Unverified)
                .and_then(|line| trace(task, &line, &[]));
            let make = |t: Trace| row_of(t, task, e.iteration, None, false);
            built.add(got, make, task.family, task, req.test_share);
        }
    }
    built
}

/// The notes of an episode's steps: the examples' policies and the
/// episode's root values.
fn episode_notes(
    e: &Episode,
    task: &Task,
    policies: &HashMap<(u32, String, u32), Policy>,
) -> Vec<crate::distill::render::Note> {
    let Ok(start) = Game::from_task(task) else {
        return Vec::new();
    };
    if crate::distill::answer::replay(&start, &e.row.actions).is_none() {
        return Vec::new();
    }
    let steps: Vec<Option<&Policy>> = (0..e.row.actions.len())
        .map(|k| policies.get(&(e.iteration, e.row.task_id.clone(), k as u32)))
        .collect();
    notes(&start, &e.row.actions, &steps, &e.row.root_values)
}

fn lineage(e: &Episode) -> EpisodeLineage {
    EpisodeLineage {
        seed: e.row.seed,
        model_id: e.row.model_id.clone(),
        part: e.part,
        simulations: e.row.simulations,
        outcome: e.row.outcome.clone(),
    }
}

fn row_of(
    t: Trace,
    task: &Task,
    iteration: u32,
    episode: Option<EpisodeLineage>,
    notes: bool,
) -> TraceRow {
    TraceRow {
        source: if episode.is_some() {
            "selfplay"
        } else {
            "solver"
        },
        prompt: t.prompt,
        completion: t.completion,
        answer: t.answer,
        task_id: task.task_id.clone(),
        family: task.family,
        difficulty: task.difficulty,
        task_seed: task.seed,
        episode,
        iteration,
        steps: t.steps,
        notes,
    }
}

/// The per-family table `distill` prints.
pub fn summary_table(figures: &[FamilyTraces]) -> String {
    let mut s = format!(
        "{:<10} {:>6} {:>10} {:>9} {:>10} {:>10} {:>6}\n",
        "family", "rows", "mean_chars", "verified", "unverified", "duplicates", "solver"
    );
    for f in figures {
        s += &format!(
            "{:<10} {:>6} {:>10.1} {:>8.1}% {:>10} {:>10} {:>6}\n",
            f.family,
            f.rows,
            f.mean_chars,
            f.verified_share * 100.0,
            f.unverified,
            f.duplicates,
            f.solver_rows
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_give_their_shard() {
        assert_eq!(
            part_index(Path::new("/r/episodes/iteration=1/part-00003.parquet")),
            3
        );
    }

    #[test]
    fn duplicates_are_counted_once_and_not_written() {
        let task = Family::Countdown.generate(0.4, 2);
        let line = solver_line(&task).unwrap();
        let mut built = Built::default();
        for _ in 0..2 {
            let make = |t: Trace| row_of(t, &task, 1, None, false);
            assert!(built.add(trace(&task, &line, &[]), make, task.family, &task, 0.0));
        }
        built.add(
            Err(Dropped::Unverified),
            |t| row_of(t, &task, 1, None, false),
            task.family,
            &task,
            0.0,
        );
        let f = &built.figures()[0];
        assert_eq!(
            (f.rows, f.duplicates, f.unverified, f.solver_rows),
            (1, 1, 1, 1)
        );
        assert!((f.verified_share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(built.rows["train"].len(), 1);
    }
}
