//! Pieces shared by the recursive architectures ([`super::trm`],
//! [`super::hrm`]): the residual block they apply over and over, the
//! heads, and the learned initial states, each as a parameter list, ONNX
//! nodes, a plain-Rust reference and (behind `train`) a tch module.
//!
//! The block is the paper's post-norm residual MLP without learned norm
//! scales: `block(u) = rms(u + fc2(relu(fc1(u))))`, `fc1`, `fc2` both
//! `hidden x hidden`, `rms(v) = v / sqrt(mean(v^2) + 1e-5)`. The norm keeps
//! every state at unit RMS however often the block is applied, so the
//! recursion neither explodes nor dies out.
//!
//! The heads read one `[hidden]` state: `policy` (linear, logits), value
//! `tanh(value(relu(value_hidden(s))))` (or, with `value_bins`, the mean of
//! a distribution over bins, see [`super::value_head`]), and `halt`
//! (linear, one logit: the halting head trained in deep supervision; not
//! exported).

use super::arch::{reference as base, Dims};
use super::onnx::{Attr, GraphBuilder, Weights};
use super::value_head;

/// The epsilon of the RMS norm (the paper's).
pub const RMS_EPS: f32 = 1e-5;

/// Most block applications one exported forward may unroll.
pub const MAX_UNROLLED: usize = 1024;

/// `(name, shape)` of a linear layer's weight and bias.
pub fn linear_params(out: &mut Vec<(String, Vec<usize>)>, layer: &str, o: usize, i: usize) {
    out.push((format!("{layer}.weight"), vec![o, i]));
    out.push((format!("{layer}.bias"), vec![o]));
}

/// The two layers of block `name` (`{name}.fc1`, `{name}.fc2`).
pub fn block_params(out: &mut Vec<(String, Vec<usize>)>, name: &str, hidden: usize) {
    linear_params(out, &format!("{name}.fc1"), hidden, hidden);
    linear_params(out, &format!("{name}.fc2"), hidden, hidden);
}

/// The heads: `policy`, `value_hidden`, `value`, `halt`.
pub fn head_params(
    out: &mut Vec<(String, Vec<usize>)>,
    dims: &Dims,
    hidden: usize,
    (value_hidden, value_bins): (usize, usize),
) {
    linear_params(out, "policy", dims.action_dim, hidden);
    linear_params(out, "value_hidden", value_hidden, hidden);
    let outputs = value_head::outputs(value_bins);
    linear_params(out, "value", outputs, value_hidden);
    linear_params(out, "halt", 1, hidden);
}

/// Errors naming the first key whose value is 0, as `model.KEY = 0`.
pub fn check_nonzero(keys: &[(&str, usize)]) -> Result<(), String> {
    match keys.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(format!("model.{key} = 0: expected > 0")),
        None => Ok(()),
    }
}

/// Errors unless `model.ema_decay` is in [0, 1).
pub fn check_ema(decay: f64) -> Result<(), String> {
    match (0.0..1.0).contains(&decay) {
        true => Ok(()),
        false => Err(format!(
            "model.ema_decay = {decay}: expected a number in [0, 1)"
        )),
    }
}

/// Errors when the export would unroll more than [`MAX_UNROLLED`] blocks.
pub fn check_unrolled(what: &str, blocks: usize) -> Result<(), String> {
    match blocks <= MAX_UNROLLED {
        true => Ok(()),
        false => Err(format!(
            "{what} = {blocks} block applications in the exported forward, expected at most {MAX_UNROLLED}"
        )),
    }
}

/// Plain-Rust pieces, one sample at a time.
pub mod reference {
    use super::{base, Weights, RMS_EPS};

    /// `v / sqrt(mean(v^2) + eps)`.
    pub fn rms(v: Vec<f32>) -> Vec<f32> {
        let ms = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        let inv = 1.0 / (ms + RMS_EPS).sqrt();
        v.into_iter().map(|x| x * inv).collect()
    }

    /// `rms(u + fc2(relu(fc1(u))))` with the layers of block `name`.
    pub fn block(w: &Weights, name: &str, u: &[f32]) -> Vec<f32> {
        let inner = base::relu(base::linear(w, &format!("{name}.fc1"), u));
        let out = base::linear(w, &format!("{name}.fc2"), &inner);
        rms(base::add(u, &out))
    }

    /// `a + b + c`, added left to right as the graph does.
    pub fn add3(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
        base::add(&base::add(a, b), c)
    }

    /// (policy logits, value) read from state `s`.
    pub fn heads(w: &Weights, s: &[f32], bins: usize) -> (Vec<f32>, f32) {
        let policy = base::linear(w, "policy", s);
        let vh = base::relu(base::linear(w, "value_hidden", s));
        let value = super::value_head::reference(&base::linear(w, "value", &vh), bins);
        (policy, value)
    }
}

/// ONNX pieces; every node's output name starts with a caller's `prefix`
/// unique in the graph, while the weights are the same initializers
/// wherever a block is applied.
pub mod graph {
    use super::{Attr, GraphBuilder, RMS_EPS};

    /// Name of the epsilon constant; [`eps`] defines it once per graph.
    const EPS: &str = "rms/eps";

    /// Defines the RMS epsilon constant (call once, before [`block`]).
    pub fn eps(g: &mut GraphBuilder) -> String {
        g.constant(EPS, &[1], &[RMS_EPS])
    }

    /// `v / sqrt(ReduceMean(v * v, last axis) + eps)`, output `prefix`.
    pub fn rms(g: &mut GraphBuilder, v: &str, prefix: &str) -> String {
        let sq = g.mul(v, v, &format!("{prefix}/sq"));
        let ms = g.node_with(
            "ReduceMean",
            &[&sq],
            &format!("{prefix}/ms"),
            &[Attr::Ints("axes", vec![-1]), Attr::Int("keepdims", 1)],
        );
        let ms = g.add(&ms, EPS, &format!("{prefix}/ms_eps"));
        let root = g.node("Sqrt", &[&ms], &format!("{prefix}/root"));
        g.node("Div", &[v, &root], prefix)
    }

    /// Block `name` applied to `u`, output `prefix`.
    pub fn block(g: &mut GraphBuilder, name: &str, u: &str, prefix: &str) -> String {
        let fc1 = g.linear(u, &format!("{name}.fc1"), &format!("{prefix}/fc1"));
        let inner = g.relu(&fc1, &format!("{prefix}/relu"));
        let fc2 = g.linear(&inner, &format!("{name}.fc2"), &format!("{prefix}/fc2"));
        let res = g.add(u, &fc2, &format!("{prefix}/res"));
        rms(g, &res, &format!("{prefix}/rms"))
    }

    /// `(a + b) + c`, output `prefix`.
    pub fn add3(g: &mut GraphBuilder, a: &str, b: &str, c: &str, prefix: &str) -> String {
        let ab = g.add(a, b, &format!("{prefix}/ab"));
        g.add(&ab, c, prefix)
    }

    /// The graph outputs `policy` and `value` read from state `s`.
    pub fn heads(g: &mut GraphBuilder, s: &str, bins: usize) {
        g.linear(s, "policy", "policy");
        let vh = g.linear_relu(s, "value_hidden");
        let v = g.linear(&vh, "value", "value/out");
        super::value_head::graph(g, &v, bins, "value");
    }
}

/// The tch pieces.
#[cfg(feature = "train")]
pub mod net {
    use super::{value_head, RMS_EPS};
    use tch::nn::{self, Module};
    use tch::{Kind, Tensor};

    pub fn linear(p: nn::Path, i: usize, o: usize) -> nn::Linear {
        nn::linear(p, i as i64, o as i64, Default::default())
    }

    /// `v / sqrt(mean(v^2, last axis) + eps)`.
    pub fn rms(v: &Tensor) -> Tensor {
        let ms = v.square().mean_dim(-1, true, Kind::Float);
        v / (ms + RMS_EPS as f64).sqrt()
    }

    /// A learned initial state `[hidden]` (unit normal, the scale of an
    /// RMS-normed state), broadcast over the batch.
    pub fn state(vs: &nn::Path, name: &str, hidden: usize) -> Tensor {
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        vs.var(name, &[hidden as i64], init)
    }

    /// `rms(u + fc2(relu(fc1(u))))`.
    pub struct Block {
        fc1: nn::Linear,
        fc2: nn::Linear,
    }

    impl Block {
        pub fn new(vs: &nn::Path, hidden: usize) -> Block {
            Block {
                fc1: linear(vs / "fc1", hidden, hidden),
                fc2: linear(vs / "fc2", hidden, hidden),
            }
        }

        pub fn forward(&self, u: &Tensor) -> Tensor {
            rms(&(u + self.fc2.forward(&self.fc1.forward(u).relu())))
        }
    }

    /// Policy, value and halting heads.
    pub struct Heads {
        policy: nn::Linear,
        value_hidden: nn::Linear,
        value: nn::Linear,
        halt: nn::Linear,
        bins: usize,
    }

    impl Heads {
        /// Heads on a `hidden` state; the value head `vh` wide, with
        /// `bins` bins (0: a tanh scalar).
        pub fn new(
            vs: &nn::Path,
            hidden: usize,
            action_dim: usize,
            (vh, bins): (usize, usize),
        ) -> Heads {
            Heads {
                policy: linear(vs / "policy", hidden, action_dim),
                value_hidden: linear(vs / "value_hidden", hidden, vh),
                value: linear(vs / "value", vh, value_head::outputs(bins)),
                halt: linear(vs / "halt", hidden, 1),
                bins,
            }
        }

        /// (policy logits `[N, action_dim]`, value `[N, 1]`).
        pub fn forward(&self, s: &Tensor) -> (Tensor, Tensor) {
            let (policy, value, _) = self.forward_with_logits(s);
            (policy, value)
        }

        /// [`Heads::forward`] and the value bins' logits `[N, bins]` when
        /// the value has bins.
        pub fn forward_with_logits(&self, s: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
            let policy = self.policy.forward(s);
            let last = self.value.forward(&self.value_hidden.forward(s).relu());
            let (value, logits) = value_head::train::read(last, self.bins);
            (policy, value, logits)
        }

        /// Halting logits `[N]`.
        pub fn halt(&self, s: &Tensor) -> Tensor {
            self.halt.forward(s).squeeze_dim(-1)
        }
    }
}
