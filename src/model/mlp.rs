//! The `mlp` architecture: a residual MLP.
//!
//! `input` (obs_dim -> hidden, ReLU), `blocks` residual blocks
//! (`h = relu(h + fc2(relu(fc1(h))))`), a linear `policy` head and a value
//! head `tanh(value(relu(value_hidden(h))))` (or, with `value_bins`, the
//! mean of a distribution over bins, see [`super::value_head`]).

use super::arch::{reference, Architecture, Dims};
use super::onnx::{GraphBuilder, Weights};
use super::value_head;
use serde::{Deserialize, Serialize};

/// `[model]` with `arch = "mlp"`. Every key has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Width of the trunk. Range: [1, 8192]; with `blocks`, at most
    /// [`crate::config::MAX_PARAMETERS`] parameters. Default 256.
    pub hidden: usize,
    /// Residual blocks (two hidden x hidden layers each). Range: [0, 64].
    /// Default 2.
    pub blocks: usize,
    /// Width of the value head's hidden layer. Range: [1, 8192]. Default 64.
    pub value_hidden: usize,
    /// 0: a tanh scalar value; 2-1024: a distribution over that many bins
    /// ([`super::value_head`]). Default 0.
    pub value_bins: usize,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden: 256,
            blocks: 2,
            value_hidden: 64,
            value_bins: 0,
        }
    }
}

impl Architecture for MlpConfig {
    fn name(&self) -> &'static str {
        "mlp"
    }

    /// Every layer needs a non-zero width; zero blocks is a valid (plain) MLP.
    fn check(&self, _dims: &Dims) -> Result<(), String> {
        let widths = [("hidden", self.hidden), ("value_hidden", self.value_hidden)];
        match widths.iter().find(|(_, d)| *d == 0) {
            Some((key, _)) => Err(format!("model.{key} = 0: expected > 0")),
            None => value_head::check_bins(self.value_bins),
        }
    }

    fn parameters(&self, dims: &Dims) -> Vec<(String, Vec<usize>)> {
        let (h, vh) = (self.hidden, self.value_hidden);
        let mut names = Vec::with_capacity(4 * self.blocks + 8);
        let mut linear = |prefix: String, out: usize, inp: usize| {
            names.push((format!("{prefix}.weight"), vec![out, inp]));
            names.push((format!("{prefix}.bias"), vec![out]));
        };
        linear("input".into(), h, dims.obs_dim);
        for k in 0..self.blocks {
            linear(format!("blocks.{k}.fc1"), h, h);
            linear(format!("blocks.{k}.fc2"), h, h);
        }
        linear("policy".into(), dims.action_dim, h);
        linear("value_hidden".into(), vh, h);
        linear("value".into(), value_head::outputs(self.value_bins), vh);
        names
    }

    fn graph(&self, _dims: &Dims, g: &mut GraphBuilder) {
        let mut h = g.linear_relu("obs", "input");
        for k in 0..self.blocks {
            let block = format!("blocks.{k}");
            let inner = g.linear_relu(&h, &format!("{block}.fc1"));
            let fc2 = g.linear(&inner, &format!("{block}.fc2"), &format!("{block}.fc2/out"));
            let sum = g.add(&h, &fc2, &format!("{block}/add"));
            h = g.relu(&sum, &format!("{block}/relu"));
        }
        g.linear(&h, "policy", "policy");
        let vh = g.linear_relu(&h, "value_hidden");
        let v = g.linear(&vh, "value", "value/out");
        value_head::graph(g, &v, self.value_bins, "value");
    }

    fn forward_one(&self, _dims: &Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32) {
        use reference::{add, linear, relu};
        let mut h = relu(linear(w, "input", x));
        for k in 0..self.blocks {
            let inner = relu(linear(w, &format!("blocks.{k}.fc1"), &h));
            let out = linear(w, &format!("blocks.{k}.fc2"), &inner);
            h = relu(add(&h, &out));
        }
        let policy = linear(w, "policy", &h);
        let vh = relu(linear(w, "value_hidden", &h));
        let value = value_head::reference(&linear(w, "value", &vh), self.value_bins);
        (policy, value)
    }

    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: &Dims) -> Box<dyn super::arch::Net> {
        Box::new(net::MlpNet::new(vs, self, dims))
    }
}

/// The tch (libtorch) module.
#[cfg(feature = "train")]
pub mod net {
    use super::{value_head, Dims, MlpConfig};
    use crate::model::arch::{Carry, Net, Step};
    use tch::nn::{self, Module};
    use tch::Tensor;

    pub struct MlpNet {
        input: nn::Linear,
        blocks: Vec<(nn::Linear, nn::Linear)>,
        policy: nn::Linear,
        value_hidden: nn::Linear,
        value: nn::Linear,
        value_bins: usize,
    }

    impl MlpNet {
        /// Creates the layers in forward order (the order of tch's seeded
        /// init), named as in [`crate::model::Architecture::parameters`].
        pub fn new(vs: &nn::Path, cfg: &MlpConfig, dims: &Dims) -> MlpNet {
            let lin = |p: nn::Path, i: usize, o: usize| {
                nn::linear(p, i as i64, o as i64, Default::default())
            };
            let h = cfg.hidden;
            let blocks = (0..cfg.blocks)
                .map(|k| {
                    let b = vs / "blocks" / k;
                    (lin(&b / "fc1", h, h), lin(&b / "fc2", h, h))
                })
                .collect();
            MlpNet {
                input: lin(vs / "input", dims.obs_dim, h),
                blocks,
                policy: lin(vs / "policy", h, dims.action_dim),
                value_hidden: lin(vs / "value_hidden", h, cfg.value_hidden),
                value: lin(
                    vs / "value",
                    cfg.value_hidden,
                    value_head::outputs(cfg.value_bins),
                ),
                value_bins: cfg.value_bins,
            }
        }
    }

    impl MlpNet {
        /// (policy logits, (value `[N, 1]`, the bins' logits if any)).
        fn run(&self, obs: &Tensor) -> (Tensor, (Tensor, Option<Tensor>)) {
            let mut h = self.input.forward(obs).relu();
            for (fc1, fc2) in &self.blocks {
                h = (&h + fc2.forward(&fc1.forward(&h).relu())).relu();
            }
            let policy = self.policy.forward(&h);
            let last = self.value.forward(&self.value_hidden.forward(&h).relu());
            (policy, value_head::train::read(last, self.value_bins))
        }
    }

    impl Net for MlpNet {
        /// `obs` `[N, obs_dim]` -> (policy logits `[N, action_dim]`, value `[N, 1]`).
        fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
            let (policy, (value, _)) = self.run(obs);
            (policy, value)
        }

        /// One step, with the bins' logits when the value has bins.
        fn supervise(&self, obs: &Tensor, _carry: Option<&Carry>) -> Step {
            let (policy, value) = self.run(obs);
            Step::one(policy, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx::forward_reference;
    use crate::model::{ArchConfig, ModelSpec};
    use std::collections::BTreeMap;

    fn spec(obs: usize, act: usize, hidden: usize, blocks: usize, vh: usize) -> ModelSpec {
        crate::model::onnx::tests::spec(obs, act, hidden, blocks, vh)
    }

    #[test]
    fn names_follow_spec() {
        let names = spec(84, 60, 64, 2, 32).parameters();
        assert_eq!(names.len(), 2 + 2 * 4 + 6);
        assert_eq!(names[0], ("input.weight".to_string(), vec![64, 84]));
        assert_eq!(names[2], ("blocks.0.fc1.weight".to_string(), vec![64, 64]));
        assert_eq!(names.last().unwrap(), &("value.bias".to_string(), vec![1]));
    }

    /// The defaults are pipelines/default.toml's, so a `[model]` with only
    /// `arch = "mlp"` is the default model.
    #[test]
    fn defaults_match_the_default_pipeline() {
        let cfg = crate::config::Config::load(None, &[]).unwrap();
        assert_eq!(cfg.model, ArchConfig::Mlp(MlpConfig::default()));
    }

    #[test]
    fn reference_matches_hand_computation() {
        // obs_dim 1, hidden 1, one block: easy to follow by hand.
        let s = spec(1, 2, 1, 1, 1);
        let t = |shape: Vec<usize>, data: Vec<f32>| (shape, data);
        let w = Weights(BTreeMap::from([
            ("input.weight".into(), t(vec![1, 1], vec![2.0])),
            ("input.bias".into(), t(vec![1], vec![-1.0])),
            ("blocks.0.fc1.weight".into(), t(vec![1, 1], vec![1.0])),
            ("blocks.0.fc1.bias".into(), t(vec![1], vec![0.0])),
            ("blocks.0.fc2.weight".into(), t(vec![1, 1], vec![-3.0])),
            ("blocks.0.fc2.bias".into(), t(vec![1], vec![0.5])),
            ("policy.weight".into(), t(vec![2, 1], vec![1.0, -1.0])),
            ("policy.bias".into(), t(vec![2], vec![0.0, 0.25])),
            ("value_hidden.weight".into(), t(vec![1, 1], vec![1.0])),
            ("value_hidden.bias".into(), t(vec![1], vec![0.0])),
            ("value.weight".into(), t(vec![1, 1], vec![0.5])),
            ("value.bias".into(), t(vec![1], vec![0.0])),
        ]));
        // x = 1: h = relu(2 - 1) = 1, block: relu(1 + (-3 + 0.5)) = 0.
        // x = 3: h = 5, block: relu(5 + (-15 + 0.5)) = 0.
        let (p, v) = forward_reference(&s, &w, &[1.0, 3.0], 2);
        assert_eq!(p, [0.0, 0.25, 0.0, 0.25]);
        assert_eq!(v, [0.0, 0.0]);
        // fc2 weight +1: x = 1 gives h = 1, block: relu(1 + (1 + 0.5)) = 2.5,
        // value = tanh(0.5 * relu(2.5)).
        let mut w2 = w.clone();
        w2.0.get_mut("blocks.0.fc2.weight").unwrap().1[0] = 1.0;
        let (p, v) = forward_reference(&s, &w2, &[1.0], 1);
        assert_eq!(p, [2.5, -2.25]);
        assert_eq!(v, [(1.25f32).tanh()]);
    }
}
