//! `train`: the model of iteration N, trained from the newest earlier model.

use super::Ctx;
use crate::error::{Error, Result};
use crate::metrics::{commit_metrics, print_summary, StageMeter};
use crate::model::ModelMeta;
use crate::store::is_committed;

/// Trains models/iteration=N unless it exists (resumable); commits the
/// model (model.json last), then its metrics row.
pub fn run_train(ctx: &Ctx, iteration: u32) -> Result<ModelMeta> {
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
