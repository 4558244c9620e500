//! The architecture seam: what every network architecture provides.
//!
//! An architecture is a config struct (the keys of `[model]` besides
//! `arch`) that implements [`Architecture`]. Given the dims it names its
//! parameter tensors, writes its ONNX graph through the shared
//! [`GraphBuilder`], computes a plain-Rust reference forward, and (behind the
//! `train` feature) builds its tch module. Export, training, `model.json`
//! and the parity test only go through this trait and [`super::ArchConfig`].

use super::onnx::{GraphBuilder, Weights};
use serde::{Deserialize, Serialize};

/// The network's input and output widths, fixed by the run's families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dims {
    /// Floats per input row (family one-hot, then the observation).
    pub obs_dim: usize,
    /// Policy logits per row.
    pub action_dim: usize,
}

/// One network architecture. The contract (see [`super`]): input `obs`
/// `[N, obs_dim]`; outputs `policy` `[N, action_dim]` (logits) and `value`
/// `[N, 1]` (tanh).
pub trait Architecture {
    /// The `arch` value that selects it in `[model]`.
    fn name(&self) -> &'static str;

    /// Errors naming the config key that cannot build a network (a zero
    /// width, say); the dims are checked by the caller.
    fn check(&self, dims: Dims) -> Result<(), String>;

    /// Every parameter tensor, `(name, shape)`, in PyTorch layout (a linear
    /// layer's weight is `[out, in]`). Names match the tch module's
    /// VarStore paths, so export and checkpoints are lookups by name.
    fn parameters(&self, dims: Dims) -> Vec<(String, Vec<usize>)>;

    /// Appends the ONNX nodes from graph input `obs` to outputs `policy`
    /// and `value`; the parameters are initializers under their names.
    fn graph(&self, dims: Dims, g: &mut GraphBuilder);

    /// Plain-Rust forward of one input row `x` (`obs_dim` floats):
    /// (policy logits, `action_dim` floats; value). The reference for tests;
    /// `w` has been checked against [`Architecture::parameters`].
    fn forward_one(&self, dims: Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32);

    /// Creates the tch module under `vs`, its variables named as in
    /// [`Architecture::parameters`] and initialised from tch's seeded RNG.
    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: Dims) -> Box<dyn Net>;
}

/// A network built by [`Architecture::init`].
#[cfg(feature = "train")]
pub trait Net {
    /// `obs` `[N, obs_dim]` -> (policy logits `[N, action_dim]`, value `[N, 1]`).
    fn forward(&self, obs: &tch::Tensor) -> (tch::Tensor, tch::Tensor);
}

/// Copies a VarStore's tensors into exporter weights.
#[cfg(feature = "train")]
pub fn weights_of(vs: &tch::nn::VarStore) -> crate::error::Result<Weights> {
    use crate::error::Error;
    let mut out = std::collections::BTreeMap::new();
    for (name, t) in vs.variables() {
        let t = t.to_kind(tch::Kind::Float).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let data: Vec<f32> = Vec::<f32>::try_from(t.flatten(0, -1))
            .map_err(|e| Error::Model(format!("reading tensor {name}: {e}")))?;
        out.insert(name, (shape, data));
    }
    Ok(Weights(out))
}

/// Building blocks of reference forwards, one sample at a time.
pub mod reference {
    use super::Weights;

    /// `y = W x + b` for one sample, `W` stored `[out, in]` under
    /// `{layer}.weight`, `b` under `{layer}.bias`.
    pub fn linear(w: &Weights, layer: &str, x: &[f32]) -> Vec<f32> {
        let weight = &w.0[&format!("{layer}.weight")].1;
        let bias = &w.0[&format!("{layer}.bias")].1;
        weight
            .chunks_exact(x.len())
            .zip(bias)
            .map(|(row, b)| b + row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>())
            .collect()
    }

    pub fn relu(mut v: Vec<f32>) -> Vec<f32> {
        v.iter_mut().for_each(|x| *x = x.max(0.0));
        v
    }

    /// Elementwise `a + b`.
    pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }
}
