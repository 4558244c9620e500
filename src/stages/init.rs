//! `init`: a freshly initialised model as iteration 0, promoted to BEST.

use super::Ctx;
#[cfg(not(feature = "train"))]
use crate::error::Error;
use crate::error::Result;
use crate::model::ModelMeta;

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
