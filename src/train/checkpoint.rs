//! Resumable training: a checkpoint every `train.checkpoint_every`
//! minibatches holds the weights, the optimizer's moments and step, the
//! weight average and the position in the iteration (minibatch indices
//! are a pure function of seed, iteration and position, so no RNG state is
//! needed). One safetensors file per iteration in `.selfplay/checkpoints`,
//! committed like any part (temp file, fsync, rename); a rerun of the same
//! training (same parent, same config) continues from it and ends with the
//! weights of an uninterrupted run. Removed once the model is committed.

use super::{torch_error, Trainer};
use crate::error::{Error, Result};
use crate::store::commit::{temp_file_ending, Staged};
use crate::store::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Kind, Tensor};

/// Where training stands, stored as JSON in the checkpoint's `meta` tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The model training started from; a checkpoint of another parent is
    /// not resumed.
    pub parent: String,
    pub config_hash: String,
    /// Minibatches done in this iteration.
    pub done: usize,
    /// The optimizer's step count (over every iteration so far).
    pub adam_step: i64,
    /// The first minibatch's (policy, value) losses and the smoothed ones.
    pub first: Option<(f64, f64)>,
    pub smooth: (f64, f64),
    /// The train split's sums since the last curve point.
    pub sums: super::curves::TrainSums,
    /// Curve rows measured so far.
    pub curves: Vec<crate::store::rows::CurveRow>,
}

/// The checkpoint file of `iteration`'s training.
pub fn path(run: &RunDir, iteration: u32) -> PathBuf {
    run.root
        .join(".selfplay/checkpoints")
        .join(format!("train-iteration={iteration}.safetensors"))
}

/// Commits the trainer's state and `progress` as `iteration`'s checkpoint.
pub fn save(
    run: &RunDir,
    key: &str,
    iteration: u32,
    trainer: &Trainer,
    progress: &Progress,
) -> Result<()> {
    let meta = serde_json::to_vec(progress).map_err(|e| Error::Other(e.to_string()))?;
    let mut tensors = super::on_cpu(trainer.state());
    tensors.push(("meta".into(), Tensor::from_slice(&meta)));
    let (file, tmp) = temp_file_ending(run, key, ".safetensors")?;
    Tensor::write_safetensors(&tensors, &tmp)
        .map_err(|e| torch_error("writing a training checkpoint", &tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    Staged::new(tmp, path(run, iteration), 0).commit()?;
    Ok(())
}

/// The checkpoint of `iteration`'s training from `parent` under config
/// `config_hash`, if there is one; one of other training is ignored.
pub fn load(
    run: &RunDir,
    iteration: u32,
    parent: &str,
    config_hash: &str,
) -> Result<Option<(HashMap<String, Tensor>, Progress)>> {
    let file = path(run, iteration);
    if !file.is_file() {
        return Ok(None);
    }
    let unreadable = |why: String| {
        Error::Model(format!(
            "{}: {why}; expected a training checkpoint written by selfplay (delete it to train from the start)",
            file.display()
        ))
    };
    let named: HashMap<String, Tensor> = Tensor::read_safetensors(&file)
        .map_err(|e| torch_error("reading a training checkpoint", &file, e))?
        .into_iter()
        .collect();
    let meta = named
        .get("meta")
        .filter(|t| t.kind() == Kind::Uint8)
        .ok_or_else(|| unreadable("no `meta` tensor".into()))?;
    let bytes = Vec::<u8>::try_from(meta).map_err(|e: tch::TchError| unreadable(e.to_string()))?;
    let progress: Progress =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(format!("meta: {e}")))?;
    if progress.parent != parent || progress.config_hash != config_hash {
        return Ok(None);
    }
    Ok(Some((named, progress)))
}

/// Removes `iteration`'s checkpoint (after its model is committed).
pub fn remove(run: &RunDir, iteration: u32) -> Result<()> {
    let file = path(run, iteration);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&file, e)),
    }
}
