//! Residual MLP in tch (libtorch), the `mlp` architecture.
//! Parameter names match [`super::onnx::mlp_names`], so export is a lookup.

use super::onnx::{MlpSpec, Weights};
use crate::error::{Error, Result};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

pub struct MlpNet {
    input: nn::Linear,
    blocks: Vec<(nn::Linear, nn::Linear)>,
    policy: nn::Linear,
    value_hidden: nn::Linear,
    value: nn::Linear,
}

impl MlpNet {
    pub fn new(vs: &nn::Path, spec: &MlpSpec) -> MlpNet {
        let lin =
            |p: nn::Path, i: usize, o: usize| nn::linear(p, i as i64, o as i64, Default::default());
        let h = spec.hidden;
        let blocks = (0..spec.blocks)
            .map(|k| {
                let b = vs / "blocks" / k;
                (lin(&b / "fc1", h, h), lin(&b / "fc2", h, h))
            })
            .collect();
        MlpNet {
            input: lin(vs / "input", spec.obs_dim, h),
            blocks,
            policy: lin(vs / "policy", h, spec.action_dim),
            value_hidden: lin(vs / "value_hidden", h, spec.value_hidden),
            value: lin(vs / "value", spec.value_hidden, 1),
        }
    }

    /// (policy logits [N, action_dim], value [N, 1]).
    pub fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let mut h = self.input.forward(obs).relu();
        for (fc1, fc2) in &self.blocks {
            h = (&h + fc2.forward(&fc1.forward(&h).relu())).relu();
        }
        let policy = self.policy.forward(&h);
        let value = self
            .value
            .forward(&self.value_hidden.forward(&h).relu())
            .tanh();
        (policy, value)
    }
}

/// Copies a VarStore's tensors into exporter weights.
pub fn weights_of(vs: &nn::VarStore) -> Result<Weights> {
    let mut out = std::collections::BTreeMap::new();
    for (name, t) in vs.variables() {
        let t = t.to_kind(Kind::Float).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let data: Vec<f32> = Vec::<f32>::try_from(t.flatten(0, -1))
            .map_err(|e| Error::Model(format!("reading tensor {name}: {e}")))?;
        out.insert(name, (shape, data));
    }
    Ok(Weights(out))
}
