//! `train`: the model of iteration N, trained from the newest earlier model.

use super::{Ctx, StageArgs};
use crate::error::{Error, Result};
use crate::model::{Losses, ModelMeta};
use serde::Serialize;
use std::fmt;

/// `train --iteration N`.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainArgs {
    #[arg(long)]
    pub iteration: u32,
}

impl StageArgs for TrainArgs {
    type Outcome = TrainOutcome;
}

/// The trained model (printed as its id).
#[derive(Clone, Debug, Serialize)]
pub struct TrainOutcome {
    pub model: String,
    pub iteration: u32,
    pub parent: Option<String>,
    pub train_steps: u64,
    pub examples_seen: u64,
    pub losses: Option<Losses>,
}

impl TrainOutcome {
    pub fn of(meta: &ModelMeta) -> TrainOutcome {
        TrainOutcome {
            model: meta.id.clone(),
            iteration: meta.iteration,
            parent: meta.parent.clone(),
            train_steps: meta.train_steps,
            examples_seen: meta.examples_seen,
            losses: meta.losses.clone(),
        }
    }
}

impl fmt::Display for TrainOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.model)
    }
}

/// The command: [`run_train`].
pub fn run(ctx: &Ctx, args: &TrainArgs) -> Result<TrainOutcome> {
    run_train(ctx, args.iteration).map(|meta| TrainOutcome::of(&meta))
}

/// Without libtorch there is no training.
#[cfg(not(feature = "train"))]
pub fn run_train(_: &Ctx, _: u32) -> Result<ModelMeta> {
    Err(Error::Config(
        "train needs the `train` feature (libtorch); this binary was built without it".into(),
    ))
}

/// Trains models/iteration=N unless it exists (resumable); commits the
/// model (model.json last), then its metrics row.
#[cfg(feature = "train")]
pub fn run_train(ctx: &Ctx, iteration: u32) -> Result<ModelMeta> {
    use crate::metrics::{commit_metrics, print_summary, StageMeter};
    use crate::store::is_committed;
    let dir = ctx.run.model(iteration);
    let done = || dir.join("model.json").is_file() && dir.join("model.onnx").is_file();
    let metrics_done = || is_committed(&ctx.run.metrics("train", iteration), 0);
    if done() && metrics_done() {
        return ModelMeta::load(&dir);
    }
    let claim = ctx.claim(&format!("train iteration {iteration}"))?;
    if done() {
        let meta = ModelMeta::load(&dir)?;
        if let (false, Some(row)) = (metrics_done(), &meta.metrics) {
            commit_metrics(&claim, row, &meta.config_hash)?;
        }
        return Ok(meta);
    }
    let parent_it = ctx
        .run
        .model_iterations()
        .into_iter()
        .rfind(|&i| i < iteration)
        .ok_or_else(|| {
            Error::Model(format!(
                "{}: no model before iteration {iteration}; run `selfplay init` first",
                ctx.run.root.join("models").display()
            ))
        })?;
    let parent = ModelMeta::load(&ctx.run.model(parent_it))?;
    let meter = StageMeter::start();
    let meta = crate::train::train_model(&ctx.cfg, &claim, iteration, &parent, meter)?;
    if let Some(row) = &meta.metrics {
        commit_metrics(&claim, row, &ctx.cfg.hash())?;
        print_summary(row);
    }
    Ok(meta)
}
