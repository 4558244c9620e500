//! Models: the network contract, lineage metadata, and the architectures.
//!
//! Contract: input `obs` f32[N, obs_dim]; outputs `policy` f32[N, action_dim]
//! (logits; masking happens in Rust) and `value` f32[N, 1] (tanh).
//! A model folder holds `model.onnx`, `weights.safetensors` and `model.json`.

#[cfg(feature = "train")]
pub mod mlp;
pub mod onnx;

use crate::error::{Error, Result};
use crate::store::RunDir;
use crate::tasks::Family;
pub use onnx::MlpSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Input layout of current models: the family one-hot
/// ([`crate::tasks::FAMILY_TAG`] floats), then the family's observation.
/// Layout 0 (no tag) models would read shifted inputs, so they are refused.
pub const INPUT_LAYOUT: u32 = 1;

/// `model.json`: what a model is and where it came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    /// `iteration=NNNNNN`, also the folder name.
    pub id: String,
    /// Layout of the input rows the model was trained on; see
    /// [`INPUT_LAYOUT`]. Absent (0) in models from before the family tag.
    #[serde(default)]
    pub input_layout: u32,
    pub iteration: u32,
    pub arch: String,
    pub spec: MlpSpec,
    /// The model training started from (None for a fresh init).
    pub parent: Option<String>,
    /// Example parts trained on.
    pub trained_on: Vec<String>,
    pub config_hash: String,
    pub seed: u64,
    pub train_steps: u64,
    pub examples_seen: u64,
    pub losses: Option<Losses>,
    pub producer: String,
    /// The train stage's metrics row, kept here so a metrics part lost to a
    /// crash after this file's commit is rebuilt exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<crate::store::rows::MetricRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Losses {
    pub policy: f64,
    pub value: f64,
    pub total: f64,
    /// Losses on the first minibatches, to show the drop.
    pub policy_start: f64,
    pub value_start: f64,
}

pub fn model_id(iteration: u32) -> String {
    format!("iteration={iteration:06}")
}

/// The iteration of a model id (`iteration=000003`), if it is one.
pub fn parse_model_id(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("iteration=")?;
    let ok = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| digits.parse().ok()).flatten()
}

impl ModelMeta {
    pub fn load(dir: &Path) -> Result<ModelMeta> {
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| {
            Error::Model(format!(
                "{}: {e}; expected a model.json written by selfplay",
                path.display()
            ))
        })?;
        if meta.input_layout != INPUT_LAYOUT {
            return Err(Error::Model(format!(
                "{}: input_layout {} but this selfplay reads layout {INPUT_LAYOUT} (family one-hot, then the observation); retrain the model",
                path.display(),
                meta.input_layout
            )));
        }
        Ok(meta)
    }

    /// Writes `models/<id>/model.json`: the model's commit point, so it is
    /// written after the weights and the ONNX file.
    pub fn save(&self, run: &RunDir, key: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        let dest = run.model_dir(&self.id).join("model.json");
        crate::store::commit::write_file(run, key, &dest, text.as_bytes())
    }

    /// Errors when a family's observation or action space does not fit.
    pub fn check_family(&self, family: Family) -> Result<()> {
        if family.input_dim() > self.spec.obs_dim || family.action_dim() > self.spec.action_dim {
            return Err(Error::Model(format!(
                "model {} has obs_dim {} / action_dim {}, but family {} needs at least {} / {}",
                self.id,
                self.spec.obs_dim,
                self.spec.action_dim,
                family,
                family.input_dim(),
                family.action_dim()
            )));
        }
        Ok(())
    }
}

/// Resolves a model reference: `best`, `latest`, an id, or a folder path.
pub fn resolve(run: &RunDir, reference: &str) -> Result<std::path::PathBuf> {
    let dir = match reference {
        "best" => {
            let id = run.best()?.ok_or_else(|| {
                Error::Model(format!(
                    "{}: no models/BEST yet; run `selfplay init` first",
                    run.root.display()
                ))
            })?;
            run.model_dir(&id)
        }
        "latest" => {
            let it = run.model_iterations().into_iter().last().ok_or_else(|| {
                Error::Model(format!(
                    "{}: no models yet; run `selfplay init` first",
                    run.root.display()
                ))
            })?;
            run.model(it)
        }
        r if Path::new(r).join("model.json").is_file() => Path::new(r).to_path_buf(),
        id => run.model_dir(id),
    };
    if !dir.join("model.onnx").is_file() || !dir.join("model.json").is_file() {
        return Err(Error::Model(format!(
            "{}: expected a model folder with model.onnx and model.json",
            dir.display()
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ModelMeta {
        ModelMeta {
            id: model_id(3),
            input_layout: INPUT_LAYOUT,
            iteration: 3,
            arch: "mlp".into(),
            spec: MlpSpec {
                obs_dim: 94,
                action_dim: 60,
                hidden: 8,
                blocks: 1,
                value_hidden: 4,
            },
            parent: None,
            trained_on: Vec::new(),
            config_hash: "x".into(),
            seed: 0,
            train_steps: 0,
            examples_seen: 0,
            losses: None,
            producer: "test".into(),
            metrics: None,
        }
    }

    /// A model.json from before the family tag (no `input_layout`) would
    /// read shifted inputs: it is refused with a message naming the file.
    #[test]
    fn models_without_the_family_tag_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        meta().save(&run, "test").unwrap();
        let dir = run.model_dir(&meta().id);
        assert_eq!(ModelMeta::load(&dir).unwrap(), meta());
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let old = text.replace("\"input_layout\": 1,", "");
        assert_ne!(old, text);
        std::fs::write(&path, old).unwrap();
        let err = ModelMeta::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("model.json") && err.contains("input_layout 0"),
            "{err}"
        );
    }
}
