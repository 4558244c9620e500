//! The `trm` architecture: a Tiny Recursive Model (Jolicoeur-Martineau
//! 2025, "Less is More: Recursive Reasoning with Tiny Networks").
//!
//! One small network `f` (a [`super::recur`] block:
//! `f(u) = rms(u + fc2(relu(fc1(u))))`, two `hidden x hidden` layers,
//! parameters `f.fc1`, `f.fc2`) refines an answer state `y` and a latent
//! state `z`, both `[N, hidden]`:
//!
//! - `x = input(obs)`, a plain linear embedding (`obs_dim -> hidden`, no
//!   ReLU: like the paper's token embedding it only injects the input; `f`
//!   normalises what it sums).
//! - one cycle: `n` times `z <- f(x + y + z)`, then `y <- f(y + z)` (the
//!   same `f` for both updates, as in the paper).
//! - one supervision step: `cycles` (the paper's T) cycles; the first
//!   `T - 1` run without gradients and their states are detached, the last
//!   is backpropagated through its `n + 1` applications of `f`.
//! - `y` and `z` start from the learned vectors `y0`, `z0` (`[hidden]`,
//!   broadcast over the batch) on a minibatch's first supervision step,
//!   from the previous step's (detached) states after that. With `T > 1`
//!   no gradient reaches `y0`, `z0` (only the last cycle has one), so they
//!   stay at their random init: the paper's fixed initial buffers.
//! - heads read `y`: `policy` logits, value
//!   `tanh(value(relu(value_hidden(y))))`, and the halting logit `halt`.
//!
//! Training ([`crate::train`]) runs `n_sup` supervision steps per minibatch
//! (deep supervision), each with its own loss and optimizer step, and
//! exports an EMA of the weights (`ema_decay`). Inference and the ONNX
//! graph unroll `export_steps` supervision steps from `y0`, `z0` (no
//! halting at inference) and read the heads from the last `y`: the graph
//! applies the same `f` initializers `export_steps x cycles x (n + 1)`
//! times.
//!
//! Future work: a token-mixing variant over the grid view (the paper's
//! MLP-over-cells for Sudoku) instead of one flat state vector.

use super::arch::{Architecture, Dims};
use super::onnx::{GraphBuilder, Weights};
use super::recur::{self, graph, reference};
use serde::{Deserialize, Serialize};

/// `[model]` with `arch = "trm"`. Every key has a default.
///
/// The defaults (hidden 128, n 3, cycles 2, 2 exported steps) apply `f`
/// 16 times per inference, about twice the multiply-adds of the default
/// `mlp` (4 layers of 256) but ~15 times its ONNX nodes; with countdown
/// and connect4 (obs_dim 94, action_dim 60) they have 61,630 parameters
/// (the default `mlp`: 319,421).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrmConfig {
    /// Width of `x`, `y`, `z` and of `f`'s layers. Range: [1, 8192].
    /// Default 128.
    pub hidden: usize,
    /// Latent updates `z <- f(x + y + z)` per cycle. Range: [1, 16].
    /// Default 3.
    pub n: usize,
    /// Cycles per supervision step (the paper's T); only the last carries
    /// gradients. Range: [1, 16]. Default 2.
    pub cycles: usize,
    /// Supervision steps per minibatch in training, each its own optimizer
    /// step (the paper's 16, fewer for a CPU budget). Range: [1, 64].
    /// Default 2.
    pub n_sup: usize,
    /// Supervision steps unrolled by inference and the ONNX export.
    /// Range: [1, 64]; at most 1024 applications of `f` in all
    /// (`export_steps x cycles x (n + 1)`). Default 2 (= `n_sup`, so
    /// inference reads the state training last supervised).
    pub export_steps: usize,
    /// Width of the value head's hidden layer. Range: [1, 8192]. Default 64.
    pub value_hidden: usize,
    /// 0: a tanh scalar value; 2-1024: a distribution over that many bins
    /// ([`super::value_head`]). Default 0.
    pub value_bins: usize,
    /// Decay of the weights' EMA that is exported, one update per optimizer
    /// step (0: export the trained weights). Range: [0, 0.99999]. Default
    /// 0.99: an average over ~100 updates, well inside the 1000-4000
    /// updates of an iteration of `train.steps = 1000`, so the export
    /// follows this iteration's training (the paper's 0.999 is for runs of
    /// many thousands of steps and would still be half the parent's
    /// weights after 700 updates).
    pub ema_decay: f64,
}

/// `ema_decay` is range-checked finite, so equality is an equivalence.
impl Eq for TrmConfig {}

impl Default for TrmConfig {
    fn default() -> Self {
        TrmConfig {
            hidden: 128,
            n: 3,
            cycles: 2,
            n_sup: 2,
            export_steps: 2,
            value_hidden: 64,
            value_bins: 0,
            ema_decay: 0.99,
        }
    }
}

impl TrmConfig {
    /// Applications of `f` in the exported forward.
    pub fn unrolled(&self) -> usize {
        self.export_steps * self.cycles * (self.n + 1)
    }
}

impl Architecture for TrmConfig {
    fn name(&self) -> &'static str {
        "trm"
    }

    fn check(&self, _dims: &Dims) -> Result<(), String> {
        recur::check_nonzero(&[
            ("hidden", self.hidden),
            ("n", self.n),
            ("cycles", self.cycles),
            ("n_sup", self.n_sup),
            ("export_steps", self.export_steps),
            ("value_hidden", self.value_hidden),
        ])?;
        recur::check_ema(self.ema_decay)?;
        super::value_head::check_bins(self.value_bins)?;
        recur::check_unrolled(
            "model.export_steps x model.cycles x (model.n + 1)",
            self.unrolled(),
        )
    }

    fn parameters(&self, dims: &Dims) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden;
        let mut out = Vec::with_capacity(18);
        recur::linear_params(&mut out, "input", h, dims.obs_dim);
        out.push(("y0".into(), vec![h]));
        out.push(("z0".into(), vec![h]));
        recur::block_params(&mut out, "f", h);
        recur::head_params(&mut out, dims, h, (self.value_hidden, self.value_bins));
        out
    }

    fn graph(&self, _dims: &Dims, g: &mut GraphBuilder) {
        graph::eps(g);
        let x = g.linear("obs", "input", "x");
        let (mut y, mut z) = (g.param("y0"), g.param("z0"));
        for s in 0..self.export_steps {
            for c in 0..self.cycles {
                for i in 0..self.n {
                    let at = format!("s{s}/c{c}/z{i}");
                    let u = graph::add3(g, &x, &y, &z, &format!("{at}/in"));
                    z = graph::block(g, "f", &u, &at);
                }
                let at = format!("s{s}/c{c}/y");
                let u = g.add(&y, &z, &format!("{at}/in"));
                y = graph::block(g, "f", &u, &at);
            }
        }
        graph::heads(g, &y, self.value_bins);
    }

    fn forward_one(&self, _dims: &Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32) {
        let x = super::arch::reference::linear(w, "input", x);
        let state = |name: &str| w.data(name).expect("checked weights").to_vec();
        let (mut y, mut z) = (state("y0"), state("z0"));
        for _ in 0..self.export_steps * self.cycles {
            for _ in 0..self.n {
                z = reference::block(w, "f", &reference::add3(&x, &y, &z));
            }
            y = reference::block(w, "f", &super::arch::reference::add(&y, &z));
        }
        reference::heads(w, &y, self.value_bins)
    }

    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: &Dims) -> Box<dyn super::arch::Net> {
        Box::new(net::TrmNet::new(vs, self, dims))
    }
}

/// The tch (libtorch) module.
#[cfg(feature = "train")]
pub mod net {
    use super::{Dims, TrmConfig};
    use crate::model::arch::{Carry, Net, Step};
    use crate::model::recur::net::{linear, state, Block, Heads};
    use tch::nn::{self, Module};
    use tch::Tensor;

    pub struct TrmNet {
        input: nn::Linear,
        y0: Tensor,
        z0: Tensor,
        f: Block,
        heads: Heads,
        cfg: TrmConfig,
    }

    impl TrmNet {
        /// Creates the layers in forward order, named as in
        /// [`crate::model::Architecture::parameters`].
        pub fn new(vs: &nn::Path, cfg: &TrmConfig, dims: &Dims) -> TrmNet {
            let h = cfg.hidden;
            TrmNet {
                input: linear(vs / "input", dims.obs_dim, h),
                y0: state(vs, "y0", h),
                z0: state(vs, "z0", h),
                f: Block::new(&(vs / "f"), h),
                heads: Heads::new(vs, h, dims.action_dim, (cfg.value_hidden, cfg.value_bins)),
                cfg: cfg.clone(),
            }
        }

        /// `x = input(obs)`.
        pub fn embed(&self, obs: &Tensor) -> Tensor {
            self.input.forward(obs)
        }

        /// The states to start from: `carry` or the learned `y0`, `z0`.
        pub fn start(&self, carry: Option<&Carry>) -> (Tensor, Tensor) {
            match carry {
                Some(c) => (c[0].shallow_clone(), c[1].shallow_clone()),
                None => (self.y0.shallow_clone(), self.z0.shallow_clone()),
            }
        }

        /// One cycle: `n` times `z <- f(x + y + z)`, then `y <- f(y + z)`.
        fn cycle(&self, x: &Tensor, y: &Tensor, z: &Tensor) -> (Tensor, Tensor) {
            let mut z = z.shallow_clone();
            for _ in 0..self.cfg.n {
                z = self.f.forward(&(x + y + &z));
            }
            (self.f.forward(&(y + &z)), z)
        }

        /// The states entering the last cycle: the first `cycles - 1`
        /// cycles without gradients, detached (the inputs themselves when
        /// there is one cycle).
        pub fn warm(&self, x: &Tensor, y: &Tensor, z: &Tensor) -> (Tensor, Tensor) {
            if self.cfg.cycles == 1 {
                return (y.shallow_clone(), z.shallow_clone());
            }
            let (y, z) = tch::no_grad(|| {
                let (mut y, mut z) = (y.shallow_clone(), z.shallow_clone());
                for _ in 1..self.cfg.cycles {
                    (y, z) = self.cycle(x, &y, &z);
                }
                (y, z)
            });
            (y.detach(), z.detach())
        }

        /// One supervision step's recursion: [`TrmNet::warm`], then the
        /// last cycle with gradients. Returns the new `(y, z)`.
        pub fn step(&self, x: &Tensor, y: &Tensor, z: &Tensor) -> (Tensor, Tensor) {
            let (y, z) = self.warm(x, y, z);
            self.cycle(x, &y, &z)
        }
    }

    impl Net for TrmNet {
        /// `export_steps` supervision steps from `y0`, `z0`; heads on `y`.
        fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
            let x = self.embed(obs);
            let (mut y, mut z) = self.start(None);
            for _ in 0..self.cfg.export_steps {
                (y, z) = self.step(&x, &y, &z);
            }
            self.heads.forward(&y)
        }

        /// One supervision step from `carry` = `[y, z]`.
        fn supervise(&self, obs: &Tensor, carry: Option<&Carry>) -> Step {
            let x = self.embed(obs);
            let (y, z) = self.start(carry);
            let (y, z) = self.step(&x, &y, &z);
            let (policy, value, value_logits) = self.heads.forward_with_logits(&y);
            Step {
                policy,
                value,
                value_logits,
                halt: Some(self.heads.halt(&y)),
                carry: Some(vec![y, z]),
                ownership: None,
            }
        }

        fn supervision_steps(&self) -> usize {
            self.cfg.n_sup
        }

        fn ema_decay(&self) -> f64 {
            self.cfg.ema_decay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArchConfig, ModelSpec};

    fn spec(cfg: TrmConfig) -> ModelSpec {
        ModelSpec::new(Dims::flat(10, 4), ArchConfig::Trm(cfg))
    }

    fn small() -> TrmConfig {
        TrmConfig {
            hidden: 8,
            n: 2,
            cycles: 2,
            n_sup: 2,
            export_steps: 2,
            value_hidden: 4,
            value_bins: 0,
            ema_decay: 0.9,
        }
    }

    #[test]
    fn names_follow_spec() {
        let names = spec(small()).parameters();
        let got: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            got,
            [
                "input.weight",
                "input.bias",
                "y0",
                "z0",
                "f.fc1.weight",
                "f.fc1.bias",
                "f.fc2.weight",
                "f.fc2.bias",
                "policy.weight",
                "policy.bias",
                "value_hidden.weight",
                "value_hidden.bias",
                "value.weight",
                "value.bias",
                "halt.weight",
                "halt.bias",
            ]
        );
        assert_eq!(names[0].1, [8, 10]);
        assert_eq!(names[2].1, [8]);
        assert_eq!(names[8].1, [4, 8]);
        assert_eq!(names[14].1, [1, 8]);
        assert_eq!(
            spec(small()).parameter_count(),
            8 * 10 + 8 + 2 * 8 + 2 * (8 * 8 + 8) + 4 * 8 + 4 + 4 * 8 + 4 + 4 + 1 + 8 + 1
        );
    }

    #[test]
    fn check_names_the_bad_key() {
        for key in [
            "hidden",
            "n",
            "cycles",
            "n_sup",
            "export_steps",
            "value_hidden",
        ] {
            let mut v = serde_json::to_value(small()).unwrap();
            v[key] = 0.into();
            let cfg: TrmConfig = serde_json::from_value(v).unwrap();
            let e = spec(cfg).check().unwrap_err();
            assert_eq!(e, format!("model.{key} = 0: expected > 0"));
        }
        let e = spec(TrmConfig {
            ema_decay: 1.0,
            ..small()
        })
        .check()
        .unwrap_err();
        assert!(e.starts_with("model.ema_decay = 1"), "{e}");
        let e = spec(TrmConfig {
            export_steps: 64,
            cycles: 16,
            ..small()
        })
        .check()
        .unwrap_err();
        assert!(
            e.contains("model.export_steps") && e.contains("3072"),
            "{e}"
        );
        let e = serde_json::from_str::<TrmConfig>(r#"{"blocks": 2}"#).unwrap_err();
        assert!(e.to_string().contains("blocks"), "{e}");
    }

    /// Every `f` application reuses the same two initializers.
    #[test]
    fn the_export_shares_f_across_the_unrolled_steps() {
        let s = spec(small());
        let w = crate::model::onnx::tests::random_weights(&s, 4);
        let bytes = crate::model::onnx::export(&s, &w, None).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("f.fc1.weight").count(), 1 + small().unrolled());
    }

    #[cfg(feature = "train")]
    mod train {
        use super::*;
        use crate::model::arch::Net;
        use crate::model::weights_of;
        use tch::{nn, Device, Kind, Tensor};

        fn built(cfg: TrmConfig) -> (nn::VarStore, net::TrmNet, Dims) {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let dims = Dims::flat(10, 4);
            let net = net::TrmNet::new(&vs.root(), &cfg, &dims);
            (vs, net, dims)
        }

        fn obs(n: i64) -> Tensor {
            Tensor::randn([n, 10], (Kind::Float, Device::Cpu))
        }

        fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
            (a - b).abs().max().double_value(&[])
        }

        /// The module's variables are the parameter list, and its forward
        /// is the reference's.
        #[test]
        fn module_matches_parameters_and_reference() {
            let (vs, net, dims) = built(small());
            let w = weights_of(&vs).unwrap();
            let s = spec(small());
            crate::model::onnx::check_weights(&s, &w).unwrap();
            let o = obs(3);
            let (p, v) = tch::no_grad(|| net.forward(&o));
            assert_eq!((p.size(), v.size()), (vec![3, 4], vec![3, 1]));
            let flat: Vec<f32> = Vec::try_from(o.flatten(0, -1)).unwrap();
            let (pr, vr) = crate::model::onnx::forward_reference(&s, &w, &flat, 3);
            let p: Vec<f32> = Vec::try_from(p.flatten(0, -1)).unwrap();
            let v: Vec<f32> = Vec::try_from(v.flatten(0, -1)).unwrap();
            let d = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max)
            };
            assert!(d(&p, &pr) < 1e-5 && d(&v, &vr) < 1e-5);
            let _ = dims;
        }

        /// Two supervision steps, the second from the first's carry, are
        /// the inference forward of `export_steps = 2`.
        #[test]
        fn supervise_continues_from_its_carry() {
            let (_vs, net, _) = built(small());
            let o = obs(5);
            let first = net.supervise(&o, None);
            assert_eq!(first.halt.as_ref().unwrap().size(), [5]);
            let carry: Vec<Tensor> = first.carry.unwrap().iter().map(Tensor::detach).collect();
            assert_eq!(carry[0].size(), [5, 8]);
            assert_eq!(carry[1].size(), [5, 8]);
            let second = net.supervise(&o, Some(&carry));
            let (p, v) = tch::no_grad(|| net.forward(&o));
            assert!(max_diff(&second.policy, &p) < 1e-6);
            assert!(max_diff(&second.value, &v) < 1e-6);
            assert_eq!(net.supervision_steps(), 2);
            assert_eq!(net.ema_decay(), 0.9);
        }

        /// Only the last cycle carries gradients: the states entering it do
        /// not require grad, and `y0`, `z0` (read by the first cycle only)
        /// get no gradient unless there is a single cycle.
        #[test]
        fn gradients_flow_through_the_last_cycle_only() {
            for (cycles, reaches_init) in [(2, false), (3, false), (1, true)] {
                let (vs, net, _) = built(TrmConfig { cycles, ..small() });
                let o = obs(4);
                let x = net.embed(&o);
                let (y, z) = net.start(None);
                let (wy, wz) = net.warm(&x, &y, &z);
                assert_eq!(wy.requires_grad(), reaches_init, "cycles {cycles}");
                assert_eq!(wz.requires_grad(), reaches_init, "cycles {cycles}");
                let out = net.supervise(&o, None);
                assert!(out.carry.as_ref().unwrap()[0].requires_grad());
                out.policy.sum(Kind::Float).backward();
                let vars = vs.variables();
                assert_eq!(vars["y0"].grad().defined(), reaches_init);
                assert!(vars["f.fc1.weight"].grad().defined());
                assert!(vars["input.weight"].grad().defined());
            }
        }
    }
}
