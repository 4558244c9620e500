//! The `resnet` architecture: the AlphaZero network on the grid view, with
//! the flat features joined before the heads.
//!
//! Shapes for a batch of `N` rows, with the run's [`GridView`] of `P`
//! planes on an `H x W` canvas and `F = filters`:
//!
//! - `canvas` `[N, P, H, W]`: every grid family's planes and the on-board
//!   plane ([`GridView::canvas`]); all zeros on rows of a family without a
//!   grid.
//! - trunk: `stem` (3x3 conv P -> F, batch norm, ReLU), then `blocks`
//!   residual blocks `h = relu(h + bn2(conv2(relu(bn1(conv1(h))))))`, each
//!   conv 3x3 F -> F with zero padding 1: `[N, F, H, W]`.
//! - `flat` `[N, flat_hidden]`: `relu(Linear(obs_dim -> flat_hidden))` of
//!   the whole input row (the family one-hot and non-grid features). Rows
//!   of a family without a grid (countdown, ...) are served by this path
//!   and the heads alone.
//! - policy head: 1x1 conv F -> `policy_channels` (Cp), batch norm, ReLU,
//!   flattened to `[N, Cp*HW]`, joined with `flat`, `policy.fc` ->
//!   `[N, action_dim]` logits.
//! - value head: 1x1 conv F -> `value_channels` (Cv), batch norm, ReLU,
//!   flattened to `[N, Cv*HW]`,
//!   joined with `flat`, `value.fc1` (-> value_hidden, ReLU), `value.fc2`
//!   (-> 1, tanh; or -> `value_bins` logits and their expected bin centre,
//!   see [`super::value_head`]): `[N, 1]`.
//! - ownership head (`ownership = true`, training only): 1x1 conv F -> 3
//!   with bias over the trunk, `[N, 3, H, W]` logits of each cell's
//!   final owner; not in the ONNX graph nor the reference forward.
//!
//! Convolutions have no bias (the batch norm's shift takes its place). The
//! tch module trains with batch statistics and infers with the running
//! ones; the ONNX export folds each batch norm into its convolution
//! (`w * gamma / sqrt(var + eps)` per output channel, bias
//! `beta - mean * gamma / sqrt(var + eps)`), so the graph has no
//! BatchNormalization node. The reference forward applies the batch norms
//! unfolded, so the parity test checks the folding.

use super::arch::{reference, Architecture, Dims, GridView};
use super::onnx::{Attr, GraphBuilder, Weights};
use super::value_head;
use crate::tasks::Family;
use serde::{Deserialize, Serialize};

/// Batch norm epsilon, tch's (and PyTorch's) default.
pub const BN_EPS: f32 = 1e-5;

/// Classes of the ownership head per cell: empty, the mover's stone, the
/// other player's.
pub const OWNERSHIP_CLASSES: usize = 3;

/// `[model]` with `arch = "resnet"`. Every key has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResnetConfig {
    /// Channels of the convolutional trunk. Range: [1, 1024]; with
    /// `blocks`, at most [`crate::config::MAX_PARAMETERS`] parameters.
    /// Default 32.
    pub filters: usize,
    /// Residual blocks (two 3x3 convolutions each). Range: [0, 64].
    /// Default 4.
    pub blocks: usize,
    /// Width of the flat path over the whole input row. Range: [1, 8192].
    /// Default 128.
    pub flat_hidden: usize,
    /// Width of the value head's hidden layer. Range: [1, 8192]. Default 64.
    pub value_hidden: usize,
    /// Channels of the policy head's 1x1 convolution. Range: [1, 1024].
    /// Default 2 (AlphaZero's).
    pub policy_channels: usize,
    /// Channels of the value head's 1x1 convolution. Range: [1, 1024].
    /// Default 1 (AlphaZero's); more keep the trunk's features from being
    /// squeezed to one number per cell before the value is read (Lc0's
    /// heads use 32).
    pub value_channels: usize,
    /// An ownership head (KataGo's auxiliary target): a 1x1 conv F -> 3
    /// over the trunk, per cell the logits of empty / the mover's / the
    /// other player's stone at the episode's end, trained by
    /// cross-entropy weighted by `train.ownership_weight` on the families
    /// with stones ([`crate::tasks::Game::ownership`]). It shapes the
    /// trunk only: search never reads it and the ONNX graph leaves it
    /// out. Default false.
    pub ownership: bool,
    /// 0: the value is a tanh scalar trained by squared error; 2-1024: a
    /// distribution over that many bins of [-1, 1] trained by
    /// cross-entropy (HL-Gauss), whose mean is the value
    /// ([`super::value_head`]). Default 0.
    pub value_bins: usize,
}

impl Default for ResnetConfig {
    fn default() -> Self {
        ResnetConfig {
            filters: 32,
            blocks: 4,
            flat_hidden: 128,
            value_hidden: 64,
            policy_channels: 2,
            value_channels: 1,
            ownership: false,
            value_bins: 0,
        }
    }
}

/// The grid view, which [`ResnetConfig::check`] requires.
fn grid_of(dims: &Dims) -> &GridView {
    dims.grid
        .as_ref()
        .expect("resnet: checked to have a grid view")
}

/// The `(conv, batch norm)` layers of the network in forward order, with
/// (out, in, kernel).
fn conv_layers(cfg: &ResnetConfig, planes: usize) -> Vec<(String, String, [usize; 3])> {
    let f = cfg.filters;
    let mut out = vec![("stem.conv".into(), "stem.bn".into(), [f, planes, 3])];
    for k in 0..cfg.blocks {
        for i in 1..=2 {
            let b = format!("blocks.{k}");
            out.push((format!("{b}.conv{i}"), format!("{b}.bn{i}"), [f, f, 3]));
        }
    }
    let (pc, vc) = (cfg.policy_channels, cfg.value_channels);
    out.push(("policy.conv".into(), "policy.bn".into(), [pc, f, 1]));
    out.push(("value.conv".into(), "value.bn".into(), [vc, f, 1]));
    out
}

impl Architecture for ResnetConfig {
    fn name(&self) -> &'static str {
        "resnet"
    }

    /// Needs a grid view and non-zero widths; zero blocks is valid (the
    /// stem feeds the heads).
    fn check(&self, dims: &Dims) -> Result<(), String> {
        if dims.grid.is_none() {
            let grids: Vec<&str> = Family::ALL
                .iter()
                .filter(|f| f.grid().is_some())
                .map(|f| f.name())
                .collect();
            return Err(format!(
                "model.arch = \"resnet\" reads boards as planes, but none of the run's families has a grid ({}); use arch = \"mlp\"",
                grids.join(", ")
            ));
        }
        let widths = [
            ("filters", self.filters),
            ("flat_hidden", self.flat_hidden),
            ("value_hidden", self.value_hidden),
            ("policy_channels", self.policy_channels),
            ("value_channels", self.value_channels),
        ];
        match widths.iter().find(|(_, d)| *d == 0) {
            Some((key, _)) => Err(format!("model.{key} = 0: expected > 0")),
            None => value_head::check_bins(self.value_bins),
        }
    }

    fn parameters(&self, dims: &Dims) -> Vec<(String, Vec<usize>)> {
        let grid = grid_of(dims);
        let hw = grid.height * grid.width;
        let mut names = Vec::new();
        let linear = |names: &mut Vec<_>, prefix: &str, out: usize, inp: usize| {
            names.push((format!("{prefix}.weight"), vec![out, inp]));
            names.push((format!("{prefix}.bias"), vec![out]));
        };
        linear(&mut names, "flat", self.flat_hidden, dims.obs_dim);
        for (conv, bn, [o, i, k]) in conv_layers(self, grid.planes()) {
            names.push((format!("{conv}.weight"), vec![o, i, k, k]));
            for t in ["weight", "bias", "running_mean", "running_var"] {
                names.push((format!("{bn}.{t}"), vec![o]));
            }
        }
        let fh = self.flat_hidden;
        let (pc, vc) = (self.policy_channels, self.value_channels);
        linear(&mut names, "policy.fc", dims.action_dim, pc * hw + fh);
        linear(&mut names, "value.fc1", self.value_hidden, vc * hw + fh);
        let outputs = value_head::outputs(self.value_bins);
        linear(&mut names, "value.fc2", outputs, self.value_hidden);
        if self.ownership {
            let f = self.filters;
            names.push(("ownership.weight".into(), vec![OWNERSHIP_CLASSES, f, 1, 1]));
            names.push(("ownership.bias".into(), vec![OWNERSHIP_CLASSES]));
        }
        names
    }

    fn graph(&self, dims: &Dims, g: &mut GraphBuilder) {
        let grid = grid_of(dims);
        let canvas = g.grid_canvas("obs", grid, "canvas");
        let flat = g.linear_relu("obs", "flat");
        let stem = conv_bn(g, &canvas, "stem.conv", "stem.bn", "stem/bn");
        let mut h = g.relu(&stem, "stem/relu");
        for k in 0..self.blocks {
            let b = format!("blocks.{k}");
            let c1 = conv_bn(
                g,
                &h,
                &format!("{b}.conv1"),
                &format!("{b}.bn1"),
                &format!("{b}/bn1"),
            );
            let r1 = g.relu(&c1, &format!("{b}/relu1"));
            let c2 = conv_bn(
                g,
                &r1,
                &format!("{b}.conv2"),
                &format!("{b}.bn2"),
                &format!("{b}/bn2"),
            );
            let sum = g.add(&h, &c2, &format!("{b}/add"));
            h = g.relu(&sum, &format!("{b}/relu"));
        }
        let axis1 = [Attr::Int("axis", 1)];
        // Policy head.
        let p = conv_bn(g, &h, "policy.conv", "policy.bn", "policy/bn");
        let p = g.relu(&p, "policy/relu");
        let p = g.node_with("Flatten", &[&p], "policy/flatten", &axis1);
        let p = g.node_with("Concat", &[&p, &flat], "policy/concat", &axis1);
        g.linear(&p, "policy.fc", "policy");
        // Value head.
        let v = conv_bn(g, &h, "value.conv", "value.bn", "value/bn");
        let v = g.relu(&v, "value/relu");
        let v = g.node_with("Flatten", &[&v], "value/flatten", &axis1);
        let v = g.node_with("Concat", &[&v, &flat], "value/concat", &axis1);
        let v = g.linear_relu(&v, "value.fc1");
        let v = g.linear(&v, "value.fc2", "value/out");
        value_head::graph(g, &v, self.value_bins, "value");
    }

    fn forward_one(&self, dims: &Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32) {
        use reference::{add, linear, relu};
        let grid = grid_of(dims);
        let (hgt, wid) = (grid.height, grid.width);
        let layer = |name: &str, bn: &str, x: &[f32]| -> Vec<f32> {
            batch_norm(w, bn, &conv2d(w, name, x, hgt, wid))
        };
        let flat = relu(linear(w, "flat", x));
        let mut h = relu(layer("stem.conv", "stem.bn", &grid.canvas(x)));
        for k in 0..self.blocks {
            let b = format!("blocks.{k}");
            let r1 = relu(layer(&format!("{b}.conv1"), &format!("{b}.bn1"), &h));
            let c2 = layer(&format!("{b}.conv2"), &format!("{b}.bn2"), &r1);
            h = relu(add(&h, &c2));
        }
        let mut p = relu(layer("policy.conv", "policy.bn", &h));
        p.extend_from_slice(&flat);
        let policy = linear(w, "policy.fc", &p);
        let mut v = relu(layer("value.conv", "value.bn", &h));
        v.extend_from_slice(&flat);
        let v = relu(linear(w, "value.fc1", &v));
        let value = value_head::reference(&linear(w, "value.fc2", &v), self.value_bins);
        (policy, value)
    }

    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: &Dims) -> Box<dyn super::arch::Net> {
        Box::new(net::ResnetNet::new(vs, self, dims))
    }
}

/// Per output channel `(scale, shift)` of batch norm `bn` in inference:
/// `y = x * scale + shift`.
fn bn_affine(w: &Weights, bn: &str) -> Vec<(f32, f32)> {
    let t = |s: &str| {
        w.data(&format!("{bn}.{s}"))
            .unwrap_or_else(|| panic!("missing {bn}.{s}"))
    };
    let (gamma, beta, mean, var) = (t("weight"), t("bias"), t("running_mean"), t("running_var"));
    (0..gamma.len())
        .map(|o| {
            let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
            (scale, beta[o] - mean[o] * scale)
        })
        .collect()
}

/// Convolution `conv` (no bias) followed by batch norm `bn`, folded into
/// one ONNX `Conv` with constant weights `{conv}.weight/folded` and bias
/// `{bn}/folded_bias`; returns `output`.
fn conv_bn(g: &mut GraphBuilder, x: &str, conv: &str, bn: &str, output: &str) -> String {
    let weights = g.weights();
    let (shape, data) = &weights.0[&format!("{conv}.weight")];
    let affine = bn_affine(weights, bn);
    let per_out = data.len() / shape[0];
    let folded: Vec<f32> = data
        .chunks_exact(per_out)
        .zip(&affine)
        .flat_map(|(row, (scale, _))| row.iter().map(move |v| v * scale))
        .collect();
    let bias: Vec<f32> = affine.iter().map(|(_, shift)| *shift).collect();
    let wn = g.constant(&format!("{conv}.weight/folded"), shape, &folded);
    let bn_name = g.constant(&format!("{bn}/folded_bias"), &[shape[0]], &bias);
    let kernel = shape[2];
    g.conv(x, &wn, &bn_name, kernel, kernel / 2, output)
}

/// Reference 2-D convolution of `x` `[C, H, W]` with `{name}.weight`
/// `[O, C, k, k]`, stride 1, zero padding `k / 2`, no bias: `[O, H, W]`.
fn conv2d(w: &Weights, name: &str, x: &[f32], h: usize, wd: usize) -> Vec<f32> {
    let (shape, weight) = &w.0[&format!("{name}.weight")];
    let (o, c, k) = (shape[0], shape[1], shape[2]);
    assert_eq!(x.len(), c * h * wd, "conv2d {name}: input length");
    let pad = (k / 2) as isize;
    let mut out = vec![0f32; o * h * wd];
    for oc in 0..o {
        for y in 0..h {
            for xx in 0..wd {
                let mut acc = 0f32;
                for ic in 0..c {
                    for ky in 0..k {
                        let iy = y as isize + ky as isize - pad;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = xx as isize + kx as isize - pad;
                            if ix < 0 || ix >= wd as isize {
                                continue;
                            }
                            let wv = weight[((oc * c + ic) * k + ky) * k + kx];
                            acc += wv * x[(ic * h + iy as usize) * wd + ix as usize];
                        }
                    }
                }
                out[(oc * h + y) * wd + xx] = acc;
            }
        }
    }
    out
}

/// Reference batch norm `bn` with its running statistics on `x` `[C, H, W]`.
fn batch_norm(w: &Weights, bn: &str, x: &[f32]) -> Vec<f32> {
    let affine = bn_affine(w, bn);
    let per = x.len() / affine.len();
    x.chunks_exact(per)
        .zip(&affine)
        .flat_map(|(plane, (scale, shift))| plane.iter().map(move |v| v * scale + shift))
        .collect()
}

/// The tch (libtorch) module.
#[cfg(feature = "train")]
pub mod net {
    use super::{conv_layers, grid_of, value_head, Dims, ResnetConfig, BN_EPS, OWNERSHIP_CLASSES};
    use crate::model::arch::{Carry, Net, Step};
    use tch::nn::{self, Module, ModuleT};
    use tch::Tensor;

    /// A convolution without bias and its batch norm.
    struct ConvBn {
        conv: nn::Conv2D,
        bn: nn::BatchNorm,
    }

    impl ConvBn {
        fn forward(&self, x: &Tensor, train: bool) -> Tensor {
            self.bn.forward_t(&self.conv.forward(x), train)
        }
    }

    /// One grid source: gather indices, 0/1 mask, tag column.
    struct Source {
        index: Tensor,
        mask: Tensor,
        tag: i64,
    }

    pub struct ResnetNet {
        sources: Vec<Source>,
        /// `[-1, planes, H, W]`.
        canvas_shape: [i64; 4],
        flat: nn::Linear,
        stem: ConvBn,
        blocks: Vec<(ConvBn, ConvBn)>,
        policy: ConvBn,
        policy_fc: nn::Linear,
        value: ConvBn,
        value_fc1: nn::Linear,
        value_fc2: nn::Linear,
        value_bins: usize,
        ownership: Option<nn::Conv2D>,
    }

    impl ResnetNet {
        /// Creates the layers in the order of
        /// [`crate::model::Architecture::parameters`] (the order of tch's
        /// seeded init), named as there.
        pub fn new(vs: &nn::Path, cfg: &ResnetConfig, dims: &Dims) -> ResnetNet {
            let grid = grid_of(dims);
            let device = vs.device();
            let sources = grid
                .sources
                .iter()
                .map(|s| {
                    let (index, mask) = grid.gather(s);
                    Source {
                        index: Tensor::from_slice(&index).to_device(device),
                        mask: Tensor::from_slice(&mask).to_device(device),
                        tag: s.tag as i64,
                    }
                })
                .collect();
            let hw = grid.height * grid.width;
            let path = |name: &str| {
                let mut parts = name.split('.');
                let first = parts.next().expect("a non-empty name");
                parts.fold(vs / first, |p, part| &p / part)
            };
            let lin = |name: &str, i: usize, o: usize| {
                nn::linear(path(name), i as i64, o as i64, Default::default())
            };
            let flat = lin("flat", dims.obs_dim, cfg.flat_hidden);
            let layers: Vec<ConvBn> = conv_layers(cfg, grid.planes())
                .into_iter()
                .map(|(conv, bn, [o, i, k])| {
                    let config = nn::ConvConfig {
                        padding: (k / 2) as i64,
                        bias: false,
                        ..Default::default()
                    };
                    let bn_config = nn::BatchNormConfig {
                        eps: BN_EPS as f64,
                        ws_init: nn::Init::Const(1.0),
                        ..Default::default()
                    };
                    ConvBn {
                        conv: nn::conv2d(path(&conv), i as i64, o as i64, k as i64, config),
                        bn: nn::batch_norm2d(path(&bn), o as i64, bn_config),
                    }
                })
                .collect();
            let mut layers = layers.into_iter();
            let stem = layers.next().expect("stem");
            let blocks = (0..cfg.blocks)
                .map(|_| (layers.next().expect("conv1"), layers.next().expect("conv2")))
                .collect();
            let policy = layers.next().expect("policy conv");
            let value = layers.next().expect("value conv");
            let fh = cfg.flat_hidden;
            ResnetNet {
                sources,
                canvas_shape: [
                    -1,
                    grid.planes() as i64,
                    grid.height as i64,
                    grid.width as i64,
                ],
                flat,
                stem,
                blocks,
                policy,
                policy_fc: lin("policy.fc", cfg.policy_channels * hw + fh, dims.action_dim),
                value,
                value_fc1: lin("value.fc1", cfg.value_channels * hw + fh, cfg.value_hidden),
                value_fc2: lin(
                    "value.fc2",
                    cfg.value_hidden,
                    value_head::outputs(cfg.value_bins),
                ),
                value_bins: cfg.value_bins,
                ownership: cfg.ownership.then(|| {
                    let f = cfg.filters as i64;
                    let classes = OWNERSHIP_CLASSES as i64;
                    nn::conv2d(path("ownership"), f, classes, 1, Default::default())
                }),
            }
        }

        /// The grid view of `obs` `[N, obs_dim]`: `[N, planes, H, W]`.
        fn canvas(&self, obs: &Tensor) -> Tensor {
            let parts = self
                .sources
                .iter()
                .map(|s| obs.index_select(1, &s.index) * &s.mask * obs.narrow(1, s.tag, 1));
            let sum = parts
                .reduce(|a, b| a + b)
                .expect("a grid view has at least one source");
            sum.view(self.canvas_shape)
        }

        /// (policy logits, (value `[N, 1]`, the bins' logits if any), the
        /// trunk's output `[N, F, H, W]`).
        fn run(&self, obs: &Tensor, train: bool) -> (Tensor, (Tensor, Option<Tensor>), Tensor) {
            let flat = self.flat.forward(obs).relu();
            let mut h = self.stem.forward(&self.canvas(obs), train).relu();
            for (c1, c2) in &self.blocks {
                let inner = c1.forward(&h, train).relu();
                h = (&h + c2.forward(&inner, train)).relu();
            }
            let join = |head: &ConvBn| {
                let x = head.forward(&h, train).relu().flatten(1, -1);
                Tensor::cat(&[x, flat.shallow_clone()], 1)
            };
            let policy = self.policy_fc.forward(&join(&self.policy));
            let last = self
                .value_fc2
                .forward(&self.value_fc1.forward(&join(&self.value)).relu());
            let value = value_head::train::read(last, self.value_bins);
            (policy, value, h)
        }
    }

    impl Net for ResnetNet {
        /// Inference with the running statistics: `obs` `[N, obs_dim]` ->
        /// (policy logits `[N, action_dim]`, value `[N, 1]`).
        fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
            let (policy, (value, _), _) = self.run(obs, false);
            (policy, value)
        }

        /// Training mode: batch statistics, which update the running ones.
        fn forward_train(&self, obs: &Tensor) -> (Tensor, Tensor) {
            let (policy, (value, _), _) = self.run(obs, true);
            (policy, value)
        }

        /// Training mode, with the bins' logits when the value has bins
        /// and the ownership logits when there is that head.
        fn supervise(&self, obs: &Tensor, _carry: Option<&Carry>) -> Step {
            let (policy, value, trunk) = self.run(obs, true);
            let mut step = Step::one(policy, value);
            step.ownership = self.ownership.as_ref().map(|head| head.forward(&trunk));
            step
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arch::GridSource;
    use crate::model::onnx::forward_reference;
    use crate::model::{ArchConfig, ModelSpec};
    use crate::tasks::FAMILY_TAG;
    use std::collections::BTreeMap;

    fn dims_of(families: &[Family]) -> Dims {
        Dims {
            obs_dim: families.iter().map(|f| f.input_dim()).max().unwrap(),
            action_dim: families.iter().map(|f| f.action_dim()).max().unwrap(),
            grid: GridView::for_families(families),
        }
    }

    fn small() -> ResnetConfig {
        ResnetConfig {
            filters: 4,
            blocks: 1,
            flat_hidden: 8,
            value_hidden: 3,
            policy_channels: 2,
            value_channels: 1,
            ownership: false,
            value_bins: 0,
        }
    }

    #[test]
    fn names_follow_spec() {
        let dims = dims_of(&[Family::Countdown, Family::Connect4]);
        let grid = dims.grid.clone().unwrap();
        let (p, hw) = (grid.planes(), 42);
        // Connect Four's planes and the on-board plane.
        let planes = crate::tasks::connect4::GRID.0 + 1;
        assert_eq!((grid.height, grid.width, p), (6, 7, planes));
        let names = small().parameters(&dims);
        // flat 2, stem 5, one block 10, heads 10, fc 6.
        assert_eq!(names.len(), 2 + 5 + 10 + 10 + 6);
        assert_eq!(names[0], ("flat.weight".into(), vec![8, dims.obs_dim]));
        assert_eq!(names[2], ("stem.conv.weight".into(), vec![4, p, 3, 3]));
        assert_eq!(names[6], ("stem.bn.running_var".into(), vec![4]));
        assert_eq!(names[7], ("blocks.0.conv1.weight".into(), vec![4, 4, 3, 3]));
        assert_eq!(
            names[12],
            ("blocks.0.conv2.weight".into(), vec![4, 4, 3, 3])
        );
        assert_eq!(names[17], ("policy.conv.weight".into(), vec![2, 4, 1, 1]));
        assert_eq!(names[22], ("value.conv.weight".into(), vec![1, 4, 1, 1]));
        assert_eq!(
            names[27],
            ("policy.fc.weight".into(), vec![dims.action_dim, 2 * hw + 8])
        );
        assert_eq!(names[29], ("value.fc1.weight".into(), vec![3, hw + 8]));
        assert_eq!(names.last().unwrap(), &("value.fc2.bias".into(), vec![1]));
        let mut sorted: Vec<&String> = names.iter().map(|(n, _)| n).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "names are unique");
        // Wider heads widen their 1x1 convolutions and what the heads' first
        // linear layers read.
        let names = wide_heads().parameters(&dims);
        assert_eq!(names[17], ("policy.conv.weight".into(), vec![3, 4, 1, 1]));
        assert_eq!(names[22], ("value.conv.weight".into(), vec![5, 4, 1, 1]));
        assert_eq!(
            names[27],
            ("policy.fc.weight".into(), vec![dims.action_dim, 3 * hw + 8])
        );
        assert_eq!(names[29], ("value.fc1.weight".into(), vec![3, 5 * hw + 8]));
        // The ownership head comes last: a 1x1 convolution to 3 classes.
        let names = with_ownership().parameters(&dims);
        assert_eq!(names.len(), 2 + 5 + 10 + 10 + 6 + 2);
        assert_eq!(names[33], ("ownership.weight".into(), vec![3, 4, 1, 1]));
        assert_eq!(names[34], ("ownership.bias".into(), vec![3]));
    }

    fn wide_heads() -> ResnetConfig {
        ResnetConfig {
            policy_channels: 3,
            value_channels: 5,
            ..small()
        }
    }

    fn with_ownership() -> ResnetConfig {
        ResnetConfig {
            ownership: true,
            ..small()
        }
    }

    #[test]
    fn check_names_the_problem() {
        let flat = dims_of(&[Family::Countdown]);
        let e = ResnetConfig::default().check(&flat).unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        for needle in [
            "model.arch = \"resnet\"",
            "connect4",
            "sudoku",
            "arch = \"mlp\"",
        ] {
            assert!(e.contains(needle), "lacks {needle}: {e}");
        }
        let dims = dims_of(&[Family::Connect4]);
        assert_eq!(ResnetConfig::default().check(&dims), Ok(()));
        let zeros = [
            (
                "filters",
                ResnetConfig {
                    filters: 0,
                    ..small()
                },
            ),
            (
                "flat_hidden",
                ResnetConfig {
                    flat_hidden: 0,
                    ..small()
                },
            ),
            (
                "value_channels",
                ResnetConfig {
                    value_channels: 0,
                    ..small()
                },
            ),
        ];
        for (key, zero) in zeros {
            let want = format!("model.{key} = 0: expected > 0");
            assert_eq!(zero.check(&dims).unwrap_err(), want);
        }
        let no_blocks = ResnetConfig {
            blocks: 0,
            ..small()
        };
        assert_eq!(no_blocks.check(&dims), Ok(()));
    }

    /// A connect4 stone lands on its plane and cell; with sudoku in the run
    /// the canvas is 9x9 and the on-board plane marks only the 6x7 board.
    #[test]
    fn connect4_row_on_a_larger_canvas() {
        let dims = dims_of(&[Family::Connect4, Family::Sudoku]);
        let grid = dims.grid.clone().unwrap();
        assert_eq!((grid.height, grid.width), (9, 9));
        // X plays column 4 (index 3): O to move, so X's stone is on the
        // opponent plane (1), row 0 (the bottom), column 3.
        let game = crate::tasks::connect4::Connect4::from_moves("4").unwrap();
        let mut row = vec![0f32; dims.obs_dim];
        row[Family::Connect4 as usize] = 1.0;
        game.encode(&mut row[FAMILY_TAG..]);
        let canvas = grid.canvas(&row);
        let at = |c: usize, y: usize, x: usize| canvas[(c * 9 + y) * 9 + x];
        let stones: Vec<(usize, usize, usize)> = (0..grid.channels)
            .flat_map(|c| (0..9).flat_map(move |y| (0..9).map(move |x| (c, y, x))))
            .filter(|&(c, y, x)| at(c, y, x) != 0.0)
            .collect();
        assert_eq!(stones, [(1, 0, 3)]);
        let on = grid.channels;
        for y in 0..9 {
            for x in 0..9 {
                let want = if y < 6 && x < 7 { 1.0 } else { 0.0 };
                assert_eq!(at(on, y, x), want, "on-board plane at ({y}, {x})");
            }
        }
        // A sudoku row has no connect4 planes and its own on-board plane.
        let mut row = vec![0f32; dims.obs_dim];
        row[Family::Sudoku as usize] = 1.0;
        let canvas = grid.canvas(&row);
        assert!(canvas[on * 81..].iter().all(|&v| v == 1.0));
    }

    /// One plane, a 1x1 board, one filter, no blocks: the 3x3 stem conv
    /// sees only its centre tap, and each step is easy to follow by hand.
    #[test]
    fn reference_matches_hand_computation() {
        let dims = Dims {
            obs_dim: 2,
            action_dim: 1,
            grid: Some(GridView {
                channels: 1,
                height: 1,
                width: 1,
                sources: vec![GridSource {
                    tag: 0,
                    offset: 1,
                    channels: 1,
                    height: 1,
                    width: 1,
                }],
            }),
        };
        let cfg = ResnetConfig {
            filters: 1,
            blocks: 0,
            flat_hidden: 1,
            value_hidden: 1,
            policy_channels: 2,
            value_channels: 1,
            ownership: false,
            value_bins: 0,
        };
        let spec = ModelSpec::new(dims, ArchConfig::Resnet(cfg));
        spec.check().unwrap();
        let t = |shape: &[usize], data: Vec<f32>| (shape.to_vec(), data);
        let mut stem = vec![0f32; 2 * 9];
        stem[4] = 2.0; // plane 0 centre
        stem[9 + 4] = -1.0; // on-board plane centre
                            // Batch norm `name` with the same statistics on each of `n` channels.
        let bn =
            |m: &mut BTreeMap<String, _>, name: &str, n: usize, [g, b, mean, var]: [f32; 4]| {
                for (s, v) in [
                    ("weight", g),
                    ("bias", b),
                    ("running_mean", mean),
                    ("running_var", var),
                ] {
                    m.insert(format!("{name}.{s}"), t(&[n], vec![v; n]));
                }
            };
        let mut m = BTreeMap::new();
        m.insert("flat.weight".into(), t(&[1, 2], vec![0.0, 1.0]));
        m.insert("flat.bias".into(), t(&[1], vec![0.0]));
        m.insert("stem.conv.weight".into(), t(&[1, 2, 3, 3], stem));
        // var + eps = 4 (near enough): scale gamma / 2.
        bn(&mut m, "stem.bn", 1, [2.0, 0.5, 1.0, 4.0 - BN_EPS]);
        m.insert(
            "policy.conv.weight".into(),
            t(&[2, 1, 1, 1], vec![1.0, -1.0]),
        );
        bn(&mut m, "policy.bn", 2, [1.0, 0.0, 0.0, 1.0 - BN_EPS]);
        m.insert("value.conv.weight".into(), t(&[1, 1, 1, 1], vec![1.0]));
        bn(&mut m, "value.bn", 1, [1.0, -1.0, 0.0, 1.0 - BN_EPS]);
        m.insert(
            "policy.fc.weight".into(),
            t(&[1, 3], vec![1.0, 10.0, 100.0]),
        );
        m.insert("policy.fc.bias".into(), t(&[1], vec![0.0]));
        m.insert("value.fc1.weight".into(), t(&[1, 2], vec![1.0, 1.0]));
        m.insert("value.fc1.bias".into(), t(&[1], vec![0.0]));
        m.insert("value.fc2.weight".into(), t(&[1, 1], vec![0.5]));
        m.insert("value.fc2.bias".into(), t(&[1], vec![0.0]));
        let w = Weights(m);
        // Row [tag 1, x 3]: canvas [3, 1]; stem conv 2*3 - 1 = 5, bn
        // (5 - 1) * 2 / 2 + 0.5 = 4.5, relu 4.5. flat = relu(3) = 3.
        // Policy: planes [4.5, -4.5] -> relu [4.5, 0], joined [4.5, 0, 3]
        // -> 4.5 + 300 = 304.5. Value: 4.5 - 1 = 3.5, joined [3.5, 3],
        // fc1 6.5, tanh(3.25).
        // Row [tag 0, x 3]: canvas zero, stem bn (0 - 1) + 0.5 = -0.5 ->
        // relu 0; policy [0, 0, 3] -> 300; value relu(-1) = 0, [0, 3] -> 3,
        // tanh(1.5).
        let (p, v) = forward_reference(&spec, &w, &[1.0, 3.0, 0.0, 3.0], 2);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(&p, &[304.5, 300.0]), "{p:?}");
        assert!(close(&v, &[3.25f32.tanh(), 1.5f32.tanh()]), "{v:?}");
    }

    /// tch in inference mode (running statistics, randomised) agrees with
    /// the reference; training mode uses batch statistics and moves the
    /// running ones, inference leaves them.
    #[cfg(feature = "train")]
    #[test]
    fn tch_modes_and_running_statistics() {
        tch_agrees_with_the_reference(small());
        tch_agrees_with_the_reference(wide_heads());
        tch_agrees_with_the_reference(with_ownership());
    }

    /// The ownership head gives per-cell logits in training and stays out
    /// of the exported graph, which still loads its checked weights.
    #[cfg(feature = "train")]
    #[test]
    fn the_ownership_head_trains_and_is_not_exported() {
        use tch::{nn, Device, Kind, Tensor};
        let dims = dims_of(&[Family::Countdown, Family::Connect4]);
        let with = ModelSpec::new(dims.clone(), ArchConfig::Resnet(with_ownership()));
        let vs = nn::VarStore::new(Device::Cpu);
        let net = with.init(&vs.root());
        let obs = Tensor::randn([4, dims.obs_dim as i64], (Kind::Float, Device::Cpu));
        let own = net
            .supervise(&obs, None)
            .ownership
            .expect("ownership logits");
        assert_eq!(own.size(), [4, 3, 6, 7]);
        let w = crate::model::weights_of(&vs).unwrap();
        let onnx = crate::model::onnx::export(&with, &w, None).unwrap();
        let named = |bytes: &[u8], name: &[u8]| bytes.windows(name.len()).any(|x| x == name);
        assert!(named(&onnx, b"value.fc2.weight") && !named(&onnx, b"ownership.weight"));
        let without = ModelSpec::new(dims, ArchConfig::Resnet(small()));
        let vs = nn::VarStore::new(Device::Cpu);
        let net = without.init(&vs.root());
        assert!(net.supervise(&obs, None).ownership.is_none());
    }

    #[cfg(feature = "train")]
    fn tch_agrees_with_the_reference(cfg: ResnetConfig) {
        use tch::{nn, Device, Kind, Tensor};
        let dims = dims_of(&[Family::Countdown, Family::Connect4]);
        let spec = ModelSpec::new(dims.clone(), ArchConfig::Resnet(cfg));
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = spec.init(&vs.root());
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        let mut expected: Vec<String> = spec.parameters().into_iter().map(|(n, _)| n).collect();
        expected.sort();
        assert_eq!(names, expected);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.ends_with("running_mean") {
                    t.copy_(&(Tensor::randn_like(&t) * 0.1));
                } else if name.ends_with("running_var") {
                    t.copy_(&(Tensor::rand_like(&t) * 1.5 + 0.5));
                }
            }
        });
        let obs = Tensor::randn([4, dims.obs_dim as i64], (Kind::Float, Device::Cpu));
        let stats = || {
            let w = crate::model::weights_of(&vs).unwrap();
            w.data("stem.bn.running_mean").unwrap().to_vec()
        };
        let before = stats();
        let (p, v) = tch::no_grad(|| net.forward(&obs));
        assert_eq!(p.size(), [4, dims.action_dim as i64]);
        assert_eq!(v.size(), [4, 1]);
        assert_eq!(stats(), before, "inference keeps the running statistics");
        let w = crate::model::weights_of(&vs).unwrap();
        let obs_v: Vec<f32> = Vec::try_from(obs.flatten(0, -1)).unwrap();
        let (p_r, v_r) = forward_reference(&spec, &w, &obs_v, 4);
        let p_t: Vec<f32> = Vec::try_from(p.flatten(0, -1)).unwrap();
        let v_t: Vec<f32> = Vec::try_from(v.flatten(0, -1)).unwrap();
        let diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(diff(&p_t, &p_r) < 1e-4, "policy {}", diff(&p_t, &p_r));
        assert!(diff(&v_t, &v_r) < 1e-4, "value {}", diff(&v_t, &v_r));
        let (p2, v2) = net.forward_train(&obs);
        assert_eq!(p2.size(), [4, dims.action_dim as i64]);
        assert_eq!(v2.size(), [4, 1]);
        assert!(p2.requires_grad(), "training mode builds a graph");
        assert_ne!(
            stats(),
            before,
            "training mode moves the running statistics"
        );
        let p2: Vec<f32> = Vec::try_from(p2.detach().flatten(0, -1)).unwrap();
        assert!(
            diff(&p2, &p_t) > 1e-6,
            "batch statistics differ from running ones"
        );
    }
}
