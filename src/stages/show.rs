//! `show`: plays one episode greedily and prints it step by step: the state,
//! the root's visit counts, values and priors, the move, and the outcome.

use super::{derive_seed, load_evaluator, Access, Ctx, StageArgs};
use crate::error::{Error, Result};
use crate::mcts::evaluator::Evaluator;
use crate::mcts::{Agent, BatchedSearch, EpisodeSpec, Finished, SearchParams};
use crate::tasks::{Family, Game};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// `show --family F [--seed N] [--difficulty D] [--model M]`.
#[derive(clap::Args, Clone, Debug)]
pub struct ShowArgs {
    /// A family (countdown, linear, listdsl, deduction, sudoku, knapsack,
    /// sokoban, gridpath, tictactoe, connect4, game24) or a kind (its
    /// first family).
    #[arg(long)]
    pub family: String,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.5)]
    pub difficulty: f32,
    /// best, latest, an id or a folder; uniform-prior rollout MCTS when absent.
    #[arg(long)]
    pub model: Option<String>,
}

impl StageArgs for ShowArgs {
    type Outcome = Shown;

    fn access(&self) -> Access {
        Access::Read
    }

    fn check(&self) -> Result<()> {
        Family::parse(&self.family)?;
        if !(0.0..=1.0).contains(&self.difficulty) {
            return Err(Error::Config(format!(
                "--difficulty {}: expected a value in [0, 1]",
                self.difficulty
            )));
        }
        Ok(())
    }
}

/// One episode, step by step.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    pub family: Family,
    pub seed: u64,
    pub difficulty: f32,
    pub model: Option<String>,
    pub text: String,
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The command: checks, resolves `--model`, then [`run_show`].
pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<Shown> {
    args.check()?;
    let family = Family::parse(&args.family)?;
    let dir = args
        .model
        .as_deref()
        .map(|m| crate::model::resolve(&ctx.run, m))
        .transpose()?;
    let text = run_show(ctx, family, args.seed, args.difficulty, dir.as_deref())?;
    Ok(Shown {
        family,
        seed: args.seed,
        difficulty: args.difficulty,
        model: args.model.clone(),
        text,
    })
}

/// Plays `family`'s task for `seed` at `difficulty`; with no model, uniform-prior
/// MCTS with random rollouts plays.
pub fn run_show(
    ctx: &Ctx,
    family: Family,
    seed: u64,
    difficulty: f32,
    model: Option<&Path>,
) -> Result<String> {
    let task = family.generate(difficulty, seed);
    let game = ctx.cfg.game(&task)?;
    // The search works in the model's spaces, or the family's own without one.
    let (evaluator, name, (obs_dim, action_dim)) = match model {
        Some(dir) => {
            let (e, m) = load_evaluator(&ctx.cfg, dir)?;
            m.check_family(family)?;
            (e, m.id, (m.spec.obs_dim, m.spec.action_dim))
        }
        None => (
            Evaluator::Rollout,
            "mcts_rollout (no model given)".to_string(),
            (family.input_dim(), family.action_dim()),
        ),
    };
    let mut params = SearchParams::from_config(&ctx.cfg.mcts, false);
    params.num_simulations = ctx.cfg.eval_simulations();
    params.record_stats = true;
    let mut agents = [Agent::search(evaluator, ctx.cfg.mcts.algorithm)];
    let mut search = BatchedSearch {
        params,
        agents: &mut agents,
        obs_dim,
        action_dim,
        parallel: 1,
        overlap: false,
        lanes: 1,
    };
    let spec = EpisodeSpec {
        task: task.clone(),
        game: game.clone(),
        seed: derive_seed(&[seed]),
        agents: [0, 0],
    };
    let mut finished = None;
    search.run(std::iter::once(spec), |f| {
        finished = Some(f);
        Ok(())
    })?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "task {} ({}, difficulty {:.2})",
        task.task_id,
        family.kind(),
        task.difficulty
    );
    let _ = writeln!(out, "{}", task.statement);
    let _ = writeln!(
        out,
        "agent: {name}, {} simulations per move",
        ctx.cfg.eval_simulations()
    );
    if let Some(f) = finished {
        render_episode(&mut out, game, &f);
    }
    let _ = writeln!(out, "reference: {}", task.reference_solution);
    Ok(out)
}

fn render_episode(out: &mut String, mut game: Game, f: &Finished) {
    for (i, s) in f.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nstep {} ({} to move)\n{}",
            i + 1,
            if s.mover == 0 { "first" } else { "second" },
            game.render()
        );
        let mut stats = s.stats.clone();
        stats.sort_by(|a, b| b.visits.cmp(&a.visits).then(b.prior.total_cmp(&a.prior)));
        for c in stats.iter().take(6) {
            let _ = writeln!(
                out,
                "  {:<14} visits {:>4}  q {:+.3}  prior {:.3}",
                game.label(c.action),
                c.visits,
                c.q,
                c.prior
            );
        }
        let _ = writeln!(out, "  -> {} (root value {:+.3})", s.label, s.root_value);
        game.step(s.action);
    }
    let _ = writeln!(out, "\nfinal\n{}", game.render());
    let _ = writeln!(
        out,
        "outcome: {} (reward {:+.1}) after {} moves",
        f.outcome.name(),
        f.outcome.reward(),
        f.steps.len()
    );
}
