//! `run`: the whole loop in-process — init, then per iteration tasks ->
//! play -> train -> eval -> gate — reporting one line per iteration on
//! stderr as it goes, and the table of every iteration as its outcome.

use super::eval::{evaluate, Judged};
use super::init::run_init;
use super::play::run_play;
use super::tasks::{ensure_heldout, run_tasks};
use super::train::run_train;
use super::{Ctx, Shard, StageArgs};
use crate::error::{Error, Result};
use crate::model::resolve;
use crate::output::NOTE;
use crate::store::rows::EvalRow;
use crate::tasks::Family;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// `run [--num-shards N]`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Run tasks and play as N shards, one after another, writing the
    /// parts N array jobs of `tasks`/`play --num-shards N` write (the
    /// replay window reads parts in shard order, so the shard count is
    /// part of a run's result).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub num_shards: u32,
}

impl StageArgs for RunArgs {
    type Outcome = RunOutcome;

    fn check(&self) -> Result<()> {
        if self.num_shards == 0 {
            return Err(Error::Config(
                "run --num-shards 0: expected at least 1 shard".into(),
            ));
        }
        Ok(())
    }
}

/// The loop's table: one row per iteration, then the closing lines.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub families: Vec<Family>,
    pub iterations: Vec<IterationRow>,
    pub seconds: f64,
    pub best: String,
    pub root: PathBuf,
}

/// One iteration of the loop.
#[derive(Clone, Debug, Serialize)]
pub struct IterationRow {
    pub iteration: u32,
    pub model: String,
    /// Per family, the figure it is judged by (held-out success for
    /// puzzles, score vs rollout MCTS for games).
    pub headline: Vec<Headline>,
    /// Mean advantage over the incumbent (None without one).
    pub advantage: Option<f64>,
    /// Whether this iteration promoted its model (iteration 0: init).
    pub promoted: bool,
    /// BEST after the iteration.
    pub best: String,
    pub policy_loss: Option<f64>,
    pub value_loss: Option<f64>,
    /// Self-play episodes per second (None when play was already done).
    pub play_episodes_per_s: Option<f64>,
    pub seconds: f64,
}

/// A family's headline figure with its Wilson interval.
#[derive(Clone, Debug, Serialize)]
pub struct Headline {
    pub family: Family,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The command: validates, then [`run_loop`].
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<RunOutcome> {
    args.check()?;
    run_loop(ctx, args.num_shards)
}

/// Runs the loop; `shards` > 1 runs tasks and play as that many shards in
/// turn, committing the same parts as `shards` separate jobs.
pub fn run_loop(ctx: &Ctx, shards: u32) -> Result<RunOutcome> {
    let shard = |index| Ctx {
        shard: Shard {
            index,
            count: shards,
        },
        ..ctx.clone()
    };
    let start = Instant::now();
    let meta0 = run_init(ctx)?;
    ensure_heldout(ctx)?;
    let families: Vec<Family> = ctx.cfg.families().into_iter().map(|(f, _)| f).collect();
    let t0 = Instant::now();
    let judged = evaluate(ctx, 0, &ctx.run.model(0), None, false)?;
    let mut rows = vec![row(&families, &judged, true, ctx.run.best()?)];
    rows[0].model = meta0.id.clone();
    rows[0].seconds = t0.elapsed().as_secs_f64();
    report(&rows[0]);
    for iteration in 1..=ctx.cfg.iterations {
        let t = Instant::now();
        for s in 0..shards {
            run_tasks(&shard(s), iteration)?;
        }
        let best_dir = resolve(&ctx.run, "best")?;
        let mut episodes = None;
        for s in 0..shards {
            if let Some(stats) = run_play(&shard(s), iteration, &best_dir)? {
                *episodes.get_or_insert(0) += stats.episodes;
            }
        }
        let play_secs = t.elapsed().as_secs_f64();
        let meta = run_train(ctx, iteration)?;
        let cand_dir = ctx.run.model(iteration);
        let judged = evaluate(ctx, iteration, &cand_dir, Some(&best_dir), true)?;
        let promoted = judged.gate.promoted.is_some();
        let mut r = row(&families, &judged, promoted, ctx.run.best()?);
        r.model = meta.id.clone();
        r.policy_loss = meta.losses.as_ref().map(|l| l.policy);
        r.value_loss = meta.losses.as_ref().map(|l| l.value);
        r.play_episodes_per_s = episodes.map(|e| e as f64 / play_secs);
        r.seconds = t.elapsed().as_secs_f64();
        report(&r);
        rows.push(r);
    }
    Ok(RunOutcome {
        families,
        iterations: rows,
        seconds: start.elapsed().as_secs_f64(),
        best: ctx.run.best()?.unwrap_or_default(),
        root: ctx.run.root.clone(),
    })
}

/// An iteration's row from its evaluation (model, losses, speed and time
/// filled in by the caller).
fn row(families: &[Family], judged: &Judged, promoted: bool, best: Option<String>) -> IterationRow {
    IterationRow {
        iteration: judged.iteration,
        model: judged.candidate.clone(),
        headline: families
            .iter()
            .filter_map(|f| headline(&judged.rows, *f))
            .map(|r| Headline {
                family: r.family,
                rate: r.rate,
                ci_low: r.ci_low,
                ci_high: r.ci_high,
            })
            .collect(),
        advantage: judged.gate.advantage,
        promoted,
        best: best.unwrap_or_default(),
        policy_loss: None,
        value_loss: None,
        play_episodes_per_s: None,
        seconds: 0.0,
    }
}

/// Reports a finished iteration on stderr.
fn report(r: &IterationRow) {
    let adv = r
        .advantage
        .map(|a| format!("{a:+.3}"))
        .unwrap_or_else(|| "-".into());
    let promoted = if r.promoted { "promoted" } else { "kept" };
    tracing::info!(
        target: NOTE,
        stage = "run",
        iteration = r.iteration,
        model = r.model.as_str(),
        advantage = r.advantage,
        promoted = r.promoted,
        best = r.best.as_str(),
        seconds = r.seconds,
        "run iteration {}: {} vs incumbent {adv}, {promoted}; best {} ({:.0}s)",
        r.iteration,
        r.model,
        r.best,
        r.seconds
    );
}

/// The row a family is judged by: puzzles success rate, games score vs
/// rollout MCTS.
fn headline(rows: &[EvalRow], f: Family) -> Option<&EvalRow> {
    let opp = if f.num_players() == 1 {
        "none"
    } else {
        "mcts_rollout"
    };
    rows.iter()
        .find(|r| r.family == f && r.bucket == "all" && r.agent == "candidate" && r.opponent == opp)
}

fn headline_name(f: Family) -> &'static str {
    if f.num_players() == 1 {
        "held-out success"
    } else {
        "score vs mcts_rollout"
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", header(&self.families))?;
        for r in &self.iterations {
            writeln!(f, "{}", line(r, &self.families))?;
        }
        writeln!(
            f,
            "done: {} iterations in {:.0}s; best model {}; stores under {}",
            self.iterations.len().saturating_sub(1),
            self.seconds,
            self.best,
            self.root.display()
        )?;
        let (Some(first), Some(last)) = (self.iterations.first(), self.iterations.last()) else {
            return Ok(());
        };
        for family in &self.families {
            let rate = |r: &IterationRow| {
                r.headline
                    .iter()
                    .find(|h| h.family == *family)
                    .map(|h| h.rate)
            };
            if let (Some(a), Some(b)) = (rate(first), rate(last)) {
                writeln!(
                    f,
                    "{family}: {} {:.1}% at iteration 0 -> {:.1}% at iteration {}",
                    headline_name(*family),
                    a * 100.0,
                    b * 100.0,
                    last.iteration
                )?;
            }
        }
        Ok(())
    }
}

fn header(families: &[Family]) -> String {
    let mut h = format!("{:>4} {:<17}", "iter", "model");
    for f in families {
        let name = if f.num_players() == 1 {
            format!("{f} success")
        } else {
            format!("{f} vs rollout")
        };
        h += &format!(" {name:>22}");
    }
    h += &format!(
        " {:>7} {:>8} {:>7} {:>7} {:>7} {:>6}",
        "vs inc", "promoted", "p_loss", "v_loss", "eps/s", "secs"
    );
    h
}

fn line(r: &IterationRow, families: &[Family]) -> String {
    let mut s = format!("{:>4} {:<17}", r.iteration, r.model);
    for f in families {
        let cell = r
            .headline
            .iter()
            .find(|h| h.family == *f)
            .map(|x| {
                format!(
                    "{:.1}% [{:.0}-{:.0}]",
                    x.rate * 100.0,
                    x.ci_low * 100.0,
                    x.ci_high * 100.0
                )
            })
            .unwrap_or_else(|| "-".into());
        s += &format!(" {cell:>22}");
    }
    let adv = r
        .advantage
        .map(|a| format!("{a:+.3}"))
        .unwrap_or_else(|| "-".into());
    let promoted = if r.promoted {
        format!("yes:{}", &r.best[r.best.len().saturating_sub(3)..])
    } else {
        "no".into()
    };
    let (pl, vl) = match (r.policy_loss, r.value_loss) {
        (Some(p), Some(v)) => (format!("{p:.3}"), format!("{v:.3}")),
        _ => ("-".into(), "-".into()),
    };
    let eps = r
        .play_episodes_per_s
        .map(|e| format!("{e:.1}"))
        .unwrap_or_else(|| "-".into());
    s += &format!(
        " {adv:>7} {promoted:>8} {pl:>7} {vl:>7} {eps:>7} {:>6.0}",
        r.seconds
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> RunOutcome {
        let cell = |family, rate| Headline {
            family,
            rate,
            ci_low: rate - 0.1,
            ci_high: rate + 0.1,
        };
        let it = |iteration: u32, rate, promoted| IterationRow {
            iteration,
            model: format!("iteration={iteration:06}"),
            headline: vec![cell(Family::Countdown, rate)],
            advantage: (iteration > 0).then_some(0.25),
            promoted,
            best: format!("iteration={iteration:06}"),
            policy_loss: (iteration > 0).then_some(1.5),
            value_loss: (iteration > 0).then_some(0.5),
            play_episodes_per_s: (iteration > 0).then_some(12.0),
            seconds: 3.0,
        };
        RunOutcome {
            families: vec![Family::Countdown],
            iterations: vec![it(0, 0.25, true), it(1, 0.5, true)],
            seconds: 7.0,
            best: "iteration=000001".into(),
            root: "runs/x".into(),
        }
    }

    #[test]
    fn the_run_table_is_its_text() {
        let text = outcome().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].contains("countdown success"), "{text}");
        assert!(lines[1].trim_start().starts_with("0 iteration=000000"));
        assert!(lines[2].contains("+0.250") && lines[2].contains("yes:001"));
        assert_eq!(
            lines[3],
            "done: 1 iterations in 7s; best model iteration=000001; stores under runs/x"
        );
        assert_eq!(
            lines[4],
            "countdown: held-out success 25.0% at iteration 0 -> 50.0% at iteration 1"
        );
    }

    #[test]
    fn the_run_outcome_serialises_its_rows() {
        let json = serde_json::to_value(outcome()).unwrap();
        assert_eq!(json["families"], serde_json::json!(["countdown"]));
        let rows = json["iterations"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["iteration"], 1);
        assert_eq!(rows[1]["promoted"], true);
        assert_eq!(rows[1]["headline"][0]["family"], "countdown");
        assert_eq!(rows[1]["headline"][0]["rate"], 0.5);
        assert_eq!(rows[0]["advantage"], serde_json::Value::Null);
        assert_eq!(json["best"], "iteration=000001");
    }
}
