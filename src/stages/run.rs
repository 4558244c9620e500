//! `run`: the whole loop in-process — init, then per iteration tasks ->
//! play -> train -> eval -> gate — printing one table row per iteration.

use super::eval::{run_eval, EvalSummary};
use super::init::run_init;
use super::play::run_play;
use super::tasks::{ensure_heldout, run_tasks};
use super::{Ctx, Shard};
use crate::error::Result;
use crate::model::{resolve, ModelMeta};
use crate::tasks::Family;
use std::time::Instant;

/// One line of the per-iteration table.
struct Row {
    iteration: u32,
    model: String,
    summary: EvalSummary,
    promoted: bool,
    best: String,
    losses: Option<(f64, f64)>,
    play_eps: Option<f64>,
    seconds: f64,
}

/// Runs the loop; `shards` > 1 runs tasks and play as that many shards in
/// turn, committing the same parts as `shards` separate jobs.
pub fn run_loop(ctx: &Ctx, shards: u32) -> Result<()> {
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
    println!("{}", header(&families));
    let t0 = Instant::now();
    let dir0 = ctx.run.model(0);
    let summary = run_eval(ctx, 0, &dir0, None)?;
    let mut rows = vec![Row {
        iteration: 0,
        model: meta0.id.clone(),
        summary,
        promoted: true,
        best: ctx.run.best()?.unwrap_or_default(),
        losses: None,
        play_eps: None,
        seconds: t0.elapsed().as_secs_f64(),
    }];
    println!("{}", line(&rows[0], &families));
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
        let meta = train_stage(ctx, iteration)?;
        let cand_dir = ctx.run.model(iteration);
        let summary = run_eval(ctx, iteration, &cand_dir, Some(&best_dir))?;
        let promoted = summary.promote;
        if promoted {
            ctx.run.promote(iteration, &meta.id)?;
        }
        let row = Row {
            iteration,
            model: meta.id.clone(),
            summary,
            promoted,
            best: ctx.run.best()?.unwrap_or_default(),
            losses: meta.losses.as_ref().map(|l| (l.policy, l.value)),
            play_eps: episodes.map(|e| e as f64 / play_secs),
            seconds: t.elapsed().as_secs_f64(),
        };
        println!("{}", line(&row, &families));
        rows.push(row);
    }
    println!(
        "done: {} iterations in {:.0}s; best model {}; stores under {}",
        ctx.cfg.iterations,
        start.elapsed().as_secs_f64(),
        ctx.run.best()?.unwrap_or_default(),
        ctx.run.root.display()
    );
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        for f in &families {
            let (a, b) = (headline(&first.summary, *f), headline(&last.summary, *f));
            if let (Some(a), Some(b)) = (a, b) {
                println!(
                    "{f}: {} {:.1}% at iteration 0 -> {:.1}% at iteration {}",
                    headline_name(*f),
                    a * 100.0,
                    b * 100.0,
                    last.iteration
                );
            }
        }
    }
    Ok(())
}

#[cfg(feature = "train")]
fn train_stage(ctx: &Ctx, iteration: u32) -> Result<ModelMeta> {
    super::train::run_train(ctx, iteration)
}

#[cfg(not(feature = "train"))]
fn train_stage(_: &Ctx, _: u32) -> Result<ModelMeta> {
    Err(crate::error::Error::Config(
        "run needs the `train` feature (libtorch); this binary was built without it".into(),
    ))
}

/// The figure a family is judged by: puzzles success rate, games score vs rollout MCTS.
fn headline(s: &EvalSummary, f: Family) -> Option<f64> {
    let opp = if f.num_players() == 1 {
        "none"
    } else {
        "mcts_rollout"
    };
    s.rows
        .iter()
        .find(|r| r.family == f && r.bucket == "all" && r.agent == "candidate" && r.opponent == opp)
        .map(|r| r.rate)
}

fn headline_name(f: Family) -> &'static str {
    if f.num_players() == 1 {
        "held-out success"
    } else {
        "score vs mcts_rollout"
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

fn line(r: &Row, families: &[Family]) -> String {
    let mut s = format!("{:>4} {:<17}", r.iteration, r.model);
    for f in families {
        let opp = if f.num_players() == 1 {
            "none"
        } else {
            "mcts_rollout"
        };
        let cell = r
            .summary
            .rows
            .iter()
            .find(|x| {
                x.family == *f && x.bucket == "all" && x.agent == "candidate" && x.opponent == opp
            })
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
        .summary
        .advantage
        .map(|a| format!("{a:+.3}"))
        .unwrap_or_else(|| "-".into());
    let promoted = if r.promoted {
        format!("yes:{}", &r.best[r.best.len().saturating_sub(3)..])
    } else {
        "no".into()
    };
    let (pl, vl) = r
        .losses
        .map(|(p, v)| (format!("{p:.3}"), format!("{v:.3}")))
        .unwrap_or(("-".into(), "-".into()));
    let eps = r
        .play_eps
        .map(|e| format!("{e:.1}"))
        .unwrap_or_else(|| "-".into());
    s += &format!(
        " {adv:>7} {promoted:>8} {pl:>7} {vl:>7} {eps:>7} {:>6.0}",
        r.seconds
    );
    s
}
