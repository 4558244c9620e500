//! The architecture seam: what every network architecture provides.
//!
//! An architecture is a config struct (the keys of `[model]` besides
//! `arch`) that implements [`Architecture`]. Given the dims it names its
//! parameter tensors, writes its ONNX graph through the shared
//! [`GraphBuilder`], computes a plain-Rust reference forward, and (behind the
//! `train` feature) builds its tch module. Export, training, `model.json`
//! and the parity test only go through this trait and [`super::ArchConfig`].

use super::onnx::{GraphBuilder, Weights};
use crate::tasks::{Family, FAMILY_TAG};
use serde::{Deserialize, Serialize};

/// The network's input and output widths, fixed by the run's families,
/// and where the families' boards sit in the input row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dims {
    /// Floats per input row (family one-hot, then the observation).
    pub obs_dim: usize,
    /// Policy logits per row.
    pub action_dim: usize,
    /// The board planes of the run's grid families, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridView>,
}

impl Dims {
    /// Dims without a grid view (flat inputs only).
    pub fn flat(obs_dim: usize, action_dim: usize) -> Dims {
        Dims {
            obs_dim,
            action_dim,
            grid: None,
        }
    }
}

/// The grid view of an input row: every grid family's planes (see
/// [`Family::grid`]) placed top-left on one canvas of
/// `planes() x height x width`, zero elsewhere. The last plane marks the
/// cells of the row's board (KataGo's on-board plane), so padding is never
/// mistaken for empty cells. Rows of a family without a grid read an
/// all-zero canvas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridView {
    /// Most planes of any source; the canvas has one more (on-board).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// One per grid family of the run.
    pub sources: Vec<GridSource>,
}

/// Where one family's planes sit in the input row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridSource {
    /// Input column of the family's one-hot tag (1 on its rows, else 0).
    pub tag: usize,
    /// Input column of the family's first plane value.
    pub offset: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl GridView {
    /// The canvas for `families`, `None` when none has a grid.
    pub fn for_families(families: &[Family]) -> Option<GridView> {
        let sources: Vec<GridSource> = families
            .iter()
            .filter_map(|&f| {
                let g = f.grid()?;
                Some(GridSource {
                    tag: f as usize,
                    offset: FAMILY_TAG,
                    channels: g.channels,
                    height: g.height,
                    width: g.width,
                })
            })
            .collect();
        let max = |field: fn(&GridSource) -> usize| sources.iter().map(field).max();
        Some(GridView {
            channels: max(|s| s.channels)?,
            height: max(|s| s.height)?,
            width: max(|s| s.width)?,
            sources,
        })
    }

    /// Canvas planes: the sources' planes and the on-board plane.
    pub fn planes(&self) -> usize {
        self.channels + 1
    }

    /// Floats of one canvas.
    pub fn canvas_len(&self) -> usize {
        self.planes() * self.height * self.width
    }

    /// Errors naming what cannot be read from an `obs_dim`-wide row.
    pub fn check(&self, obs_dim: usize) -> Result<(), String> {
        for s in &self.sources {
            let end = s.offset + s.channels * s.height * s.width;
            if s.tag >= obs_dim || end > obs_dim {
                return Err(format!(
                    "grid source at columns {}..{end} (tag {}) does not fit obs_dim {obs_dim}",
                    s.offset, s.tag
                ));
            }
            if s.channels > self.channels || s.height > self.height || s.width > self.width {
                return Err(format!("grid source {s:?} is larger than the canvas"));
            }
        }
        Ok(())
    }

    /// For source `s`: the input column each canvas value is gathered from
    /// (canvas order) and a 0/1 mask of the values that belong to it. The
    /// on-board plane gathers the tag column itself. Canvas of a row =
    /// sum over sources of `row[index] * mask * row[tag]`.
    pub fn gather(&self, s: &GridSource) -> (Vec<i64>, Vec<f32>) {
        let (h, w) = (self.height, self.width);
        let mut index = vec![0i64; self.canvas_len()];
        let mut mask = vec![0f32; self.canvas_len()];
        for c in 0..self.planes() {
            for y in 0..s.height {
                for x in 0..s.width {
                    let at = (c * h + y) * w + x;
                    let col = if c < s.channels {
                        s.offset + (c * s.height + y) * s.width + x
                    } else if c == self.channels {
                        s.tag
                    } else {
                        continue;
                    };
                    index[at] = col as i64;
                    mask[at] = 1.0;
                }
            }
        }
        (index, mask)
    }

    /// The canvas of one input row `x`, `planes() x height x width` floats.
    pub fn canvas(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.canvas_len()];
        for s in &self.sources {
            let (index, mask) = self.gather(s);
            let tag = x[s.tag];
            for ((o, &i), m) in out.iter_mut().zip(&index).zip(&mask) {
                *o += x[i as usize] * m * tag;
            }
        }
        out
    }
}

/// One network architecture. The contract (see [`super`]): input `obs`
/// `[N, obs_dim]`; outputs `policy` `[N, action_dim]` (logits) and `value`
/// `[N, 1]` (tanh).
pub trait Architecture {
    /// The `arch` value that selects it in `[model]`.
    fn name(&self) -> &'static str;

    /// Errors naming the config key that cannot build a network (a zero
    /// width, say); the dims are checked by the caller.
    fn check(&self, dims: &Dims) -> Result<(), String>;

    /// Every parameter tensor, `(name, shape)`, in PyTorch layout (a linear
    /// layer's weight is `[out, in]`). Names match the tch module's
    /// VarStore paths, so export and checkpoints are lookups by name.
    fn parameters(&self, dims: &Dims) -> Vec<(String, Vec<usize>)>;

    /// Appends the ONNX nodes from graph input `obs` to outputs `policy`
    /// and `value`. Parameters become initializers as the builder's ops
    /// name them ([`GraphBuilder::param`]); tensors derived at export (a
    /// batch norm folded into its convolution, gather indices) are
    /// [`GraphBuilder::constant`]s.
    fn graph(&self, dims: &Dims, g: &mut GraphBuilder);

    /// Plain-Rust forward of one input row `x` (`obs_dim` floats):
    /// (policy logits, `action_dim` floats; value). The reference for tests;
    /// `w` has been checked against [`Architecture::parameters`].
    fn forward_one(&self, dims: &Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32);

    /// Creates the tch module under `vs`, its variables named as in
    /// [`Architecture::parameters`] and initialised from tch's seeded RNG.
    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: &Dims) -> Box<dyn Net>;
}

/// A network built by [`Architecture::init`].
///
/// Training runs [`Net::supervise`] up to [`Net::supervision_steps`] times
/// per minibatch, each with its own loss and optimizer step, passing the
/// returned carry (detached) to the next step: deep supervision for the
/// recursive models, one plain step for the others.
#[cfg(feature = "train")]
pub trait Net {
    /// Inference: `obs` `[N, obs_dim]` -> (policy logits `[N, action_dim]`,
    /// value `[N, 1]`), the function the ONNX export computes.
    fn forward(&self, obs: &tch::Tensor) -> (tch::Tensor, tch::Tensor);

    /// One supervision step in training mode from `carry` (None on the
    /// first step of a minibatch).
    fn supervise(&self, obs: &tch::Tensor, carry: Option<&Carry>) -> Step {
        let _ = carry;
        let (policy, value) = self.forward_train(obs);
        Step::one(policy, (value, None))
    }

    /// Forward in training mode (batch statistics, where there are any).
    fn forward_train(&self, obs: &tch::Tensor) -> (tch::Tensor, tch::Tensor) {
        self.forward(obs)
    }

    /// Supervision steps per minibatch (1: ordinary training).
    fn supervision_steps(&self) -> usize {
        1
    }

    /// Decay of the exponential moving average of the weights that is
    /// exported (0: the trained weights themselves).
    fn ema_decay(&self) -> f64 {
        0.0
    }
}

/// State a recursive network carries from one supervision step to the next.
#[cfg(feature = "train")]
pub type Carry = Vec<tch::Tensor>;

/// What one supervision step returns.
#[cfg(feature = "train")]
pub struct Step {
    /// `[N, action_dim]` logits.
    pub policy: tch::Tensor,
    /// `[N, 1]` in [-1, 1].
    pub value: tch::Tensor,
    /// `[N, bins]` logits of a value head with bins, trained by
    /// cross-entropy instead of `value`'s squared error
    /// ([`super::value_head`]).
    pub value_logits: Option<tch::Tensor>,
    /// `[N]` halting logits, trained to predict that the policy's top move
    /// already matches the target's (BCE); rows that halt are left out of
    /// later steps.
    pub halt: Option<tch::Tensor>,
    /// The state for the next step (detached by the trainer).
    pub carry: Option<Carry>,
    /// `[N, 3, H, W]` logits of each canvas cell's owner at the episode's
    /// end (the resnet's ownership head), trained by cross-entropy.
    pub ownership: Option<tch::Tensor>,
}

#[cfg(feature = "train")]
impl Step {
    /// The step of a network trained one step per minibatch: no halting
    /// head, no carry; `value` with the bins' logits where it has bins.
    pub fn one(policy: tch::Tensor, value: (tch::Tensor, Option<tch::Tensor>)) -> Step {
        Step {
            policy,
            value: value.0,
            value_logits: value.1,
            halt: None,
            carry: None,
            ownership: None,
        }
    }
}

/// Copies a VarStore's tensors into exporter weights.
#[cfg(feature = "train")]
pub fn weights_of(vs: &tch::nn::VarStore) -> crate::error::Result<Weights> {
    use crate::error::Error;
    let mut out = std::collections::BTreeMap::new();
    for (name, t) in vs.variables() {
        let t = t
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous();
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
