//! `train`: the model of iteration N, trained from the newest earlier model.

use super::Ctx;
use crate::error::{Error, Result};
use crate::metrics::{report, StageMeter};
use crate::model::ModelMeta;

/// Trains models/iteration=N unless it exists (resumable).
pub fn run_train(ctx: &Ctx, iteration: u32) -> Result<ModelMeta> {
    let dir = ctx.run.model(iteration);
    if dir.join("model.json").is_file() && dir.join("model.onnx").is_file() {
        return ModelMeta::load(&dir);
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
    let meta = crate::train::train_model(&ctx.cfg, &ctx.run, iteration, &parent)?;
    let fig = meter.finish();
    let losses = meta.losses.clone();
    let detail = serde_json::json!({
        "policy_loss": losses.as_ref().map(|l| (l.policy * 1000.0).round() / 1000.0),
        "value_loss": losses.as_ref().map(|l| (l.value * 1000.0).round() / 1000.0),
    });
    report(
        &ctx.run,
        "train",
        iteration,
        0,
        ctx.cfg.train.steps as u64,
        "steps",
        &fig,
        detail,
        &ctx.cfg.hash(),
    )?;
    Ok(meta)
}
