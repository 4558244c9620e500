//! Models: the network contract, lineage metadata, and the architectures.
//!
//! Contract: input `obs` f32[N, obs_dim]; outputs `policy` f32[N, action_dim]
//! (logits; masking happens in Rust) and `value` f32[N, 1] (tanh).
//! A model folder holds `model.onnx`, `weights.safetensors` and `model.json`.
//!
//! Architectures plug in through [`Architecture`] (src/model/arch.rs), one
//! file each (`mlp.rs`, `resnet.rs`, `trm.rs`, `hrm.rs`; the recursive two
//! share `recur.rs`), and one variant of [`ArchConfig`], the `[model]`
//! config section selected by its `arch` key.

pub mod arch;
pub mod hrm;
pub mod mlp;
pub mod onnx;
pub mod recur;
pub mod resnet;
pub mod trm;
pub mod value_head;

use crate::error::{Error, Result};
use crate::store::RunDir;
use crate::tasks::Family;
#[cfg(feature = "train")]
pub use arch::{weights_of, Carry, Net, Step};
pub use arch::{Architecture, Dims, GridSource, GridView};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[model]`: `arch` selects the architecture, the other keys are its own.
/// Adding an architecture: a variant here, a line in [`ArchConfig::known`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum ArchConfig {
    /// Residual MLP, [`mlp::MlpConfig`].
    Mlp(mlp::MlpConfig),
    /// Convolutional ResNet on the grid view, [`resnet::ResnetConfig`].
    Resnet(resnet::ResnetConfig),
    /// Tiny Recursive Model, [`trm::TrmConfig`].
    Trm(trm::TrmConfig),
    /// Hierarchical Reasoning Model, [`hrm::HrmConfig`].
    Hrm(hrm::HrmConfig),
}

impl ArchConfig {
    /// Every architecture with its default config.
    pub fn known() -> Vec<ArchConfig> {
        vec![
            ArchConfig::Mlp(mlp::MlpConfig::default()),
            ArchConfig::Resnet(resnet::ResnetConfig::default()),
            ArchConfig::Trm(trm::TrmConfig::default()),
            ArchConfig::Hrm(hrm::HrmConfig::default()),
        ]
    }

    /// The default config of the architecture called `name`.
    pub fn default_of(name: &str) -> Option<ArchConfig> {
        Self::known().into_iter().find(|a| a.name() == name)
    }

    /// The known `arch` names, for messages: `mlp, resnet`.
    pub fn known_names() -> String {
        let names: Vec<&str> = Self::known().iter().map(|a| a.name()).collect();
        names.join(", ")
    }

    /// The architecture behind this config.
    pub fn arch(&self) -> &dyn Architecture {
        match self {
            ArchConfig::Mlp(c) => c,
            ArchConfig::Resnet(c) => c,
            ArchConfig::Trm(c) => c,
            ArchConfig::Hrm(c) => c,
        }
    }

    pub fn name(&self) -> &'static str {
        self.arch().name()
    }

    /// The network trains an ownership head (`model.ownership`, resnet).
    pub fn has_ownership_head(&self) -> bool {
        matches!(self, ArchConfig::Resnet(r) if r.ownership)
    }
}

/// What a network is: its dims and its architecture config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub obs_dim: usize,
    pub action_dim: usize,
    /// Where the run's grid families' planes sit in the input, for
    /// architectures that read boards as images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridView>,
    /// The `[model]` section it was built from.
    pub model: ArchConfig,
}

impl ModelSpec {
    pub fn new(dims: Dims, model: ArchConfig) -> ModelSpec {
        ModelSpec {
            obs_dim: dims.obs_dim,
            action_dim: dims.action_dim,
            grid: dims.grid,
            model,
        }
    }

    pub fn dims(&self) -> Dims {
        Dims {
            obs_dim: self.obs_dim,
            action_dim: self.action_dim,
            grid: self.grid.clone(),
        }
    }

    pub fn arch(&self) -> &dyn Architecture {
        self.model.arch()
    }

    /// Errors naming a zero dim or a config key that cannot build a network.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (field, d) in [("obs_dim", self.obs_dim), ("action_dim", self.action_dim)] {
            if d == 0 {
                return Err(format!("model spec field `{field}` must be > 0"));
            }
        }
        if let Some(grid) = &self.grid {
            grid.check(self.obs_dim)?;
        }
        self.arch().check(&self.dims())
    }

    /// Parameter tensors `(name, shape)`, see [`Architecture::parameters`].
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        self.arch().parameters(&self.dims())
    }

    /// Number of parameters (weights and biases).
    pub fn parameter_count(&self) -> usize {
        self.parameters()
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// Creates the tch module under `vs`, see [`Architecture::init`].
    #[cfg(feature = "train")]
    pub fn init(&self, vs: &tch::nn::Path) -> Box<dyn Net> {
        self.arch().init(vs, &self.dims())
    }
}

/// The families of the one-hot tag, in tag order ([`Family::ALL`]); a
/// model records the list it was trained with.
pub fn input_families() -> Vec<String> {
    Family::ALL.iter().map(|f| f.name().to_string()).collect()
}

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
    /// The families of the input's one-hot tag, in tag order
    /// ([`input_families`]); a model with another list would read shifted
    /// inputs, so it is refused. Absent in older models.
    #[serde(default)]
    pub families: Vec<String>,
    pub iteration: u32,
    /// Dims and the `[model]` config (with its `arch`).
    pub spec: ModelSpec,
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
    /// The ownership head's cross-entropy (`model.ownership`), smoothed
    /// like the others over this run of the stage; absent without the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<f64>,
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
        let bad = |e: serde_json::Error| {
            Error::Model(format!(
                "{}: {e}; expected a model.json written by selfplay",
                path.display()
            ))
        };
        // The layout first, so an older model.json (other fields too) is
        // refused for what matters: it reads other inputs.
        #[derive(Deserialize)]
        struct Layout {
            #[serde(default)]
            input_layout: u32,
            #[serde(default)]
            families: Vec<String>,
        }
        let layout: Layout = serde_json::from_str(&text).map_err(bad)?;
        if layout.input_layout != INPUT_LAYOUT {
            return Err(Error::Model(format!(
                "{}: input_layout {} but this selfplay reads layout {INPUT_LAYOUT} (family one-hot, then the observation); retrain the model",
                path.display(),
                layout.input_layout
            )));
        }
        let expected = input_families();
        if layout.families != expected {
            let has = match layout.families.is_empty() {
                true => "no family list".to_string(),
                false => format!("families [{}]", layout.families.join(",")),
            };
            return Err(Error::Model(format!(
                "{}: {has} for the input's one-hot tag, but this selfplay expects [{}]; retrain the model",
                path.display(),
                expected.join(",")
            )));
        }
        serde_json::from_str(&text).map_err(bad)
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
            families: input_families(),
            iteration: 3,
            spec: onnx::tests::spec(94, 60, 8, 1, 4),
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

    /// The family list of the one-hot tag is checked: a model trained with
    /// a reordered, shorter or absent list would read shifted inputs.
    #[test]
    fn models_with_another_family_order_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let dir = run.model_dir(&meta().id);
        let mut reordered = input_families();
        reordered.swap(0, 1);
        let mut shorter = input_families();
        shorter.pop();
        let expected = format!("[{}]", input_families().join(","));
        for (families, has) in [
            (
                reordered.clone(),
                format!("families [{}]", reordered.join(",")),
            ),
            (shorter.clone(), format!("families [{}]", shorter.join(","))),
            (Vec::new(), "no family list".to_string()),
        ] {
            ModelMeta { families, ..meta() }.save(&run, "test").unwrap();
            let err = ModelMeta::load(&dir).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
            for needle in ["model.json", &has, &expected, "retrain the model"] {
                assert!(err.contains(needle), "lacks '{needle}': {err}");
            }
        }
        // And without the key at all, as in models from before the list.
        meta().save(&run, "test").unwrap();
        let path = dir.join("model.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("families");
        std::fs::write(&path, json.to_string()).unwrap();
        let err = ModelMeta::load(&dir).unwrap_err().to_string();
        assert!(err.contains("no family list"), "{err}");
    }

    /// `ArchConfig` itself (as read from model.json) refuses an unknown
    /// arch and a key of no architecture, and round-trips with `arch` first.
    #[test]
    fn arch_config_is_tagged_and_strict() {
        let spec = meta().spec;
        let json = serde_json::to_string(&spec.model).unwrap();
        assert!(json.starts_with(r#"{"arch":"mlp","#), "{json}");
        assert_eq!(
            serde_json::from_str::<ArchConfig>(&json).unwrap(),
            spec.model
        );
        let e = serde_json::from_str::<ArchConfig>(r#"{"arch":"cnn"}"#).unwrap_err();
        assert!(e.to_string().contains("cnn"), "{e}");
        let e = serde_json::from_str::<ArchConfig>(r#"{"arch":"mlp","filters":3}"#).unwrap_err();
        assert!(e.to_string().contains("filters"), "{e}");
        let names: Vec<&str> = ArchConfig::known().iter().map(|a| a.name()).collect();
        assert_eq!(ArchConfig::known_names(), names.join(", "));
        for arch in ArchConfig::known() {
            assert_eq!(ArchConfig::default_of(arch.name()), Some(arch));
        }
        assert_eq!(
            spec.parameter_count(),
            94 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 60 + 60 + 8 * 4 + 4 + 4 + 1
        );
    }
}
