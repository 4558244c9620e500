//! `report`: the per-family results table of one evaluated iteration, as
//! Markdown: the trained model beside uniform-prior rollout MCTS at the same
//! simulation count, random play, and the solver.

use super::eval::read_evals;
use super::{Access, Ctx, StageArgs};
use crate::error::{Error, Result};
use crate::store::rows::EvalRow;
use crate::store::{list_partition, RunDir};
use crate::tasks::Family;
use serde::Serialize;
use std::fmt::Write;
use std::path::PathBuf;

/// `report [--iteration N] [--plot DIR]`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReportArgs {
    #[arg(long)]
    pub iteration: Option<u32>,
    /// Also draw the run's learning curves (held-out success, losses,
    /// throughput) into DIR/curves.png and DIR/curves.svg; DIR is
    /// created if missing.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

impl StageArgs for ReportArgs {
    type Outcome = Reported;

    fn access(&self) -> Access {
        Access::Read
    }
}

/// The Markdown tables, and the figures drawn.
#[derive(Clone, Debug, Serialize)]
pub struct Reported {
    pub markdown: String,
    pub plots: Vec<PathBuf>,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.markdown)?;
        self.plots
            .iter()
            .try_for_each(|file| writeln!(f, "wrote {}", file.display()))
    }
}

/// The command: [`run_report`], then the plots when asked.
pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<Reported> {
    let markdown = run_report(&ctx.run, args.iteration)?;
    let plots = match &args.plot {
        Some(dir) => super::plot::write_plots(&ctx.run, dir)?,
        None => Vec::new(),
    };
    Ok(Reported { markdown, plots })
}

/// Markdown tables for `iteration` (default: the newest evaluated one).
pub fn run_report(run: &RunDir, iteration: Option<u32>) -> Result<String> {
    let evaluated = list_partition(&run.root.join("evals"), "iteration");
    let (it, dir) = match iteration {
        Some(i) => evaluated.into_iter().find(|(n, _)| *n == i),
        None => evaluated.into_iter().last(),
    }
    .ok_or_else(|| {
        Error::Data(format!(
            "{}: no evaluated iteration found; run `selfplay eval` first",
            run.root.display()
        ))
    })?;
    let rows = read_evals(&dir)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Held-out results, iteration {it} ({}):\n",
        run.root.display()
    );
    let _ = writeln!(
        out,
        "| family | kind | trained model | uniform MCTS + rollouts | random | solver |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut families: Vec<Family> = rows.iter().map(|r| r.family).collect();
    families.sort();
    families.dedup();
    for f in &families {
        let _ = writeln!(out, "{}", family_line(&rows, *f));
    }
    let _ = writeln!(
        out,
        "\nBy difficulty bucket (trained model; games: score vs rollout MCTS):\n"
    );
    let _ = writeln!(
        out,
        "| family | bucket | trained model | uniform MCTS + rollouts |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for f in &families {
        let opp = if f.num_players() == 1 {
            "none"
        } else {
            "mcts_rollout"
        };
        let cand = rows.iter().filter(|r| {
            r.family == *f && r.bucket != "all" && r.agent == "candidate" && r.opponent == opp
        });
        for r in cand {
            let base = find(&rows, *f, &r.bucket, "mcts_rollout", "none")
                .map(cell)
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "| {} | {} | {} | {} |", f, r.bucket, cell(r), base);
        }
    }
    Ok(out)
}

fn find<'a>(
    rows: &'a [EvalRow],
    f: Family,
    bucket: &str,
    agent: &str,
    opp: &str,
) -> Option<&'a EvalRow> {
    rows.iter()
        .find(|r| r.family == f && r.bucket == bucket && r.agent == agent && r.opponent == opp)
}

fn cell(r: &EvalRow) -> String {
    format!(
        "{:.1}% [{:.1}-{:.1}] n={}",
        r.rate * 100.0,
        r.ci_low * 100.0,
        r.ci_high * 100.0,
        r.games
    )
}

fn family_line(rows: &[EvalRow], f: Family) -> String {
    let dash = || "-".to_string();
    if f.num_players() == 1 {
        let model = find(rows, f, "all", "candidate", "none")
            .map(cell)
            .unwrap_or_else(dash);
        let rollout = find(rows, f, "all", "mcts_rollout", "none")
            .map(cell)
            .unwrap_or_else(dash);
        let random = find(rows, f, "all", "random", "none")
            .map(cell)
            .unwrap_or_else(dash);
        format!("| {f} | {} | {model} | {rollout} | {random} | 100% (exact; every task proven solvable) |", f.kind())
    } else {
        let vs_rollout = find(rows, f, "all", "candidate", "mcts_rollout")
            .map(|r| format!("score {} vs it", cell(r)))
            .unwrap_or_else(dash);
        let vs_random = find(rows, f, "all", "candidate", "random")
            .map(|r| format!("model scores {}", cell(r)))
            .unwrap_or_else(dash);
        format!("| {f} | {} | {vs_rollout} | (the opponent) | {vs_random} | reference moves in the tasks store |", f.kind())
    }
}
