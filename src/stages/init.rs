//! `init`: a freshly initialised model as iteration 0, promoted to BEST.

use super::{Ctx, StageArgs};
#[cfg(not(feature = "train"))]
use crate::error::Error;
use crate::error::Result;
use crate::model::ModelMeta;
use serde::Serialize;
use std::fmt;

/// `init` takes no arguments of its own.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InitArgs {}

impl StageArgs for InitArgs {
    type Outcome = InitOutcome;
}

/// The initial model, and BEST (which names it unless a later promotion does).
#[derive(Clone, Debug, Serialize)]
pub struct InitOutcome {
    pub model: String,
    pub best: Option<String>,
}

impl fmt::Display for InitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.model)
    }
}

/// The command: [`run_init`].
pub fn run(ctx: &Ctx, _: &InitArgs) -> Result<InitOutcome> {
    let meta = run_init(ctx)?;
    Ok(InitOutcome {
        model: meta.id,
        best: ctx.run.best()?,
    })
}

/// Creates models/iteration=000000 unless it exists; sets BEST if unset.
pub fn run_init(ctx: &Ctx) -> Result<ModelMeta> {
    let dir = ctx.run.model(0);
    let done = || dir.join("model.json").is_file() && dir.join("model.onnx").is_file();
    let meta = if done() {
        ModelMeta::load(&dir)?
    } else {
        let claim = ctx.claim("init")?;
        if done() {
            ModelMeta::load(&dir)?
        } else {
            init_model(ctx, &claim.key)?
        }
    };
    if ctx.run.best()?.is_none() {
        ctx.run.promote(0, &meta.id)?;
    }
    Ok(meta)
}

#[cfg(feature = "train")]
fn init_model(ctx: &Ctx, key: &str) -> Result<ModelMeta> {
    crate::train::init_model(&ctx.cfg, &ctx.run, 0, key)
}

#[cfg(not(feature = "train"))]
fn init_model(_: &Ctx, _: &str) -> Result<ModelMeta> {
    Err(Error::Config(
        "init needs the `train` feature (libtorch); this binary was built without it".into(),
    ))
}
