//! The `hrm` architecture: a Hierarchical Reasoning Model (Wang et al.
//! 2025), two recurrent modules at two timescales.
//!
//! A slow high-level module `H` and a fast low-level module `L`, each a
//! [`super::recur`] block (`rms(u + fc2(relu(fc1(u))))`, two
//! `hidden x hidden` layers; parameters `high.*`, `low.*`), update the
//! states `zH` and `zL` (`[N, hidden]`):
//!
//! - `x = input(obs)`, a plain linear embedding (`obs_dim -> hidden`).
//! - one high-level cycle: `t` times `zL <- L(zL + zH + x)`, then
//!   `zH <- H(zH + zL)`; a segment (supervision step) is `cycles` (the
//!   paper's N) such cycles.
//! - the one-step gradient approximation: only the segment's last `L` step
//!   and last `H` update carry gradients; everything before runs without
//!   them and is detached.
//! - `zH`, `zL` start from the learned vectors `zh0`, `zl0` (`[hidden]`)
//!   on a minibatch's first segment, from the previous segment's
//!   (detached) states after that. Unless `t = cycles = 1` no gradient
//!   reaches them: they stay at their random init, as the paper's fixed
//!   initial states.
//! - heads read `zH`: `policy` logits, value
//!   `tanh(value(relu(value_hidden(zH))))`, and `halt`, one logit (the
//!   paper's Q-head reduced to "halt now", trained by deep supervision's
//!   BCE; no ACT halting at inference).
//!
//! Training runs `n_sup` segments per minibatch (deep supervision) and
//! exports an EMA of the weights (`ema_decay`). Inference and the ONNX
//! graph unroll `export_steps` segments from `zh0`, `zl0`, reading the
//! heads from the last `zH`: `export_steps x cycles x (t + 1)` block
//! applications over the same `high`/`low` initializers.

use super::arch::{reference as base, Architecture, Dims};
use super::onnx::{GraphBuilder, Weights};
use super::recur::{self, graph, reference};
use serde::{Deserialize, Serialize};

/// `[model]` with `arch = "hrm"`. Every key has a default.
///
/// The defaults (hidden 128, t 2, cycles 2, 2 exported segments) apply a
/// block 12 times per inference; with countdown and connect4 (obs_dim 94,
/// action_dim 60) they have 94,654 parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrmConfig {
    /// Width of `x`, `zH`, `zL` and of both modules' layers.
    /// Range: [1, 8192]. Default 128.
    pub hidden: usize,
    /// Low-level steps `zL <- L(zL + zH + x)` per high-level cycle (the
    /// paper's T). Range: [1, 16]. Default 2.
    pub t: usize,
    /// High-level cycles per segment (the paper's N). Range: [1, 16].
    /// Default 2.
    pub cycles: usize,
    /// Segments (supervision steps) per minibatch in training, each its
    /// own optimizer step. Range: [1, 64]. Default 2.
    pub n_sup: usize,
    /// Segments unrolled by inference and the ONNX export. Range: [1, 64];
    /// at most 1024 block applications in all
    /// (`export_steps x cycles x (t + 1)`). Default 2 (= `n_sup`).
    pub export_steps: usize,
    /// Width of the value head's hidden layer. Range: [1, 8192]. Default 64.
    pub value_hidden: usize,
    /// 0: a tanh scalar value; 2-1024: a distribution over that many bins
    /// ([`super::value_head`]). Default 0.
    pub value_bins: usize,
    /// Decay of the exported EMA of the weights, one update per optimizer
    /// step (0: off). Range: [0, 0.99999]. Default 0.99, for the reason
    /// given at [`super::trm::TrmConfig::ema_decay`].
    pub ema_decay: f64,
}

/// `ema_decay` is range-checked finite, so equality is an equivalence.
impl Eq for HrmConfig {}

impl Default for HrmConfig {
    fn default() -> Self {
        HrmConfig {
            hidden: 128,
            t: 2,
            cycles: 2,
            n_sup: 2,
            export_steps: 2,
            value_hidden: 64,
            value_bins: 0,
            ema_decay: 0.99,
        }
    }
}

impl HrmConfig {
    /// Block applications in the exported forward.
    pub fn unrolled(&self) -> usize {
        self.export_steps * self.cycles * (self.t + 1)
    }
}

impl Architecture for HrmConfig {
    fn name(&self) -> &'static str {
        "hrm"
    }

    fn check(&self, _dims: &Dims) -> Result<(), String> {
        recur::check_nonzero(&[
            ("hidden", self.hidden),
            ("t", self.t),
            ("cycles", self.cycles),
            ("n_sup", self.n_sup),
            ("export_steps", self.export_steps),
            ("value_hidden", self.value_hidden),
        ])?;
        recur::check_ema(self.ema_decay)?;
        super::value_head::check_bins(self.value_bins)?;
        recur::check_unrolled(
            "model.export_steps x model.cycles x (model.t + 1)",
            self.unrolled(),
        )
    }

    fn parameters(&self, dims: &Dims) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden;
        let mut out = Vec::with_capacity(22);
        recur::linear_params(&mut out, "input", h, dims.obs_dim);
        out.push(("zh0".into(), vec![h]));
        out.push(("zl0".into(), vec![h]));
        recur::block_params(&mut out, "high", h);
        recur::block_params(&mut out, "low", h);
        recur::head_params(&mut out, dims, h, (self.value_hidden, self.value_bins));
        out
    }

    fn graph(&self, _dims: &Dims, g: &mut GraphBuilder) {
        graph::eps(g);
        let x = g.linear("obs", "input", "x");
        let (mut zh, mut zl) = (g.param("zh0"), g.param("zl0"));
        for s in 0..self.export_steps {
            for c in 0..self.cycles {
                for i in 0..self.t {
                    let at = format!("s{s}/c{c}/low{i}");
                    let u = graph::add3(g, &zl, &zh, &x, &format!("{at}/in"));
                    zl = graph::block(g, "low", &u, &at);
                }
                let at = format!("s{s}/c{c}/high");
                let u = g.add(&zh, &zl, &format!("{at}/in"));
                zh = graph::block(g, "high", &u, &at);
            }
        }
        graph::heads(g, &zh, self.value_bins);
    }

    fn forward_one(&self, _dims: &Dims, w: &Weights, x: &[f32]) -> (Vec<f32>, f32) {
        let x = base::linear(w, "input", x);
        let state = |name: &str| w.data(name).expect("checked weights").to_vec();
        let (mut zh, mut zl) = (state("zh0"), state("zl0"));
        for _ in 0..self.export_steps * self.cycles {
            for _ in 0..self.t {
                zl = reference::block(w, "low", &reference::add3(&zl, &zh, &x));
            }
            zh = reference::block(w, "high", &base::add(&zh, &zl));
        }
        reference::heads(w, &zh, self.value_bins)
    }

    #[cfg(feature = "train")]
    fn init(&self, vs: &tch::nn::Path, dims: &Dims) -> Box<dyn super::arch::Net> {
        Box::new(net::HrmNet::new(vs, self, dims))
    }
}

/// The tch (libtorch) module.
#[cfg(feature = "train")]
pub mod net {
    use super::{Dims, HrmConfig};
    use crate::model::arch::{Carry, Net, Step};
    use crate::model::recur::net::{linear, state, Block, Heads};
    use tch::nn::{self, Module};
    use tch::Tensor;

    pub struct HrmNet {
        input: nn::Linear,
        zh0: Tensor,
        zl0: Tensor,
        high: Block,
        low: Block,
        heads: Heads,
        cfg: HrmConfig,
    }

    impl HrmNet {
        /// Creates the layers in forward order, named as in
        /// [`crate::model::Architecture::parameters`].
        pub fn new(vs: &nn::Path, cfg: &HrmConfig, dims: &Dims) -> HrmNet {
            let h = cfg.hidden;
            HrmNet {
                input: linear(vs / "input", dims.obs_dim, h),
                zh0: state(vs, "zh0", h),
                zl0: state(vs, "zl0", h),
                high: Block::new(&(vs / "high"), h),
                low: Block::new(&(vs / "low"), h),
                heads: Heads::new(vs, h, dims.action_dim, (cfg.value_hidden, cfg.value_bins)),
                cfg: cfg.clone(),
            }
        }

        /// `x = input(obs)`.
        pub fn embed(&self, obs: &Tensor) -> Tensor {
            self.input.forward(obs)
        }

        /// The states to start from: `carry` = `[zH, zL]` or `zh0`, `zl0`.
        pub fn start(&self, carry: Option<&Carry>) -> (Tensor, Tensor) {
            match carry {
                Some(c) => (c[0].shallow_clone(), c[1].shallow_clone()),
                None => (self.zh0.shallow_clone(), self.zl0.shallow_clone()),
            }
        }

        fn low_step(&self, x: &Tensor, zh: &Tensor, zl: &Tensor) -> Tensor {
            self.low.forward(&(zl + zh + x))
        }

        fn high_step(&self, zh: &Tensor, zl: &Tensor) -> Tensor {
            self.high.forward(&(zh + zl))
        }

        /// The states before the segment's last `L` step: every step
        /// before it without gradients, detached (the inputs themselves
        /// when `t = cycles = 1`).
        pub fn warm(&self, x: &Tensor, zh: &Tensor, zl: &Tensor) -> (Tensor, Tensor) {
            let (t, cycles) = (self.cfg.t, self.cfg.cycles);
            if t * cycles == 1 {
                return (zh.shallow_clone(), zl.shallow_clone());
            }
            let (zh, zl) = tch::no_grad(|| {
                let (mut zh, mut zl) = (zh.shallow_clone(), zl.shallow_clone());
                for c in 0..cycles {
                    let last = c + 1 == cycles;
                    for _ in 0..if last { t - 1 } else { t } {
                        zl = self.low_step(x, &zh, &zl);
                    }
                    if !last {
                        zh = self.high_step(&zh, &zl);
                    }
                }
                (zh, zl)
            });
            (zh.detach(), zl.detach())
        }

        /// One segment: [`HrmNet::warm`], then the last `L` step and the
        /// last `H` update with gradients. Returns the new `(zH, zL)`.
        pub fn step(&self, x: &Tensor, zh: &Tensor, zl: &Tensor) -> (Tensor, Tensor) {
            let (zh, zl) = self.warm(x, zh, zl);
            let zl = self.low_step(x, &zh, &zl);
            (self.high_step(&zh, &zl), zl)
        }
    }

    impl Net for HrmNet {
        /// `export_steps` segments from `zh0`, `zl0`; heads on `zH`.
        fn forward(&self, obs: &Tensor) -> (Tensor, Tensor) {
            let x = self.embed(obs);
            let (mut zh, mut zl) = self.start(None);
            for _ in 0..self.cfg.export_steps {
                (zh, zl) = self.step(&x, &zh, &zl);
            }
            self.heads.forward(&zh)
        }

        /// One segment from `carry` = `[zH, zL]`.
        fn supervise(&self, obs: &Tensor, carry: Option<&Carry>) -> Step {
            let x = self.embed(obs);
            let (zh, zl) = self.start(carry);
            let (zh, zl) = self.step(&x, &zh, &zl);
            let (policy, value, value_logits) = self.heads.forward_with_logits(&zh);
            Step {
                policy,
                value,
                value_logits,
                halt: Some(self.heads.halt(&zh)),
                carry: Some(vec![zh, zl]),
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

    fn spec(cfg: HrmConfig) -> ModelSpec {
        ModelSpec::new(Dims::flat(10, 4), ArchConfig::Hrm(cfg))
    }

    fn small() -> HrmConfig {
        HrmConfig {
            hidden: 8,
            t: 2,
            cycles: 2,
            n_sup: 3,
            export_steps: 2,
            value_hidden: 4,
            value_bins: 0,
            ema_decay: 0.5,
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
                "zh0",
                "zl0",
                "high.fc1.weight",
                "high.fc1.bias",
                "high.fc2.weight",
                "high.fc2.bias",
                "low.fc1.weight",
                "low.fc1.bias",
                "low.fc2.weight",
                "low.fc2.bias",
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
        assert_eq!(names[2].1, [8]);
        assert_eq!(names[8].1, [8, 8]);
        assert_eq!(
            spec(small()).parameter_count(),
            8 * 10 + 8 + 2 * 8 + 4 * (8 * 8 + 8) + 4 * 8 + 4 + 4 * 8 + 4 + 4 + 1 + 8 + 1
        );
    }

    #[test]
    fn check_names_the_bad_key() {
        for key in [
            "hidden",
            "t",
            "cycles",
            "n_sup",
            "export_steps",
            "value_hidden",
        ] {
            let mut v = serde_json::to_value(small()).unwrap();
            v[key] = 0.into();
            let cfg: HrmConfig = serde_json::from_value(v).unwrap();
            let e = spec(cfg).check().unwrap_err();
            assert_eq!(e, format!("model.{key} = 0: expected > 0"));
        }
        let e = spec(HrmConfig {
            ema_decay: -0.5,
            ..small()
        })
        .check()
        .unwrap_err();
        assert!(e.starts_with("model.ema_decay = -0.5"), "{e}");
        let e = spec(HrmConfig {
            export_steps: 64,
            t: 16,
            ..small()
        })
        .check()
        .unwrap_err();
        assert!(e.contains("model.t + 1") && e.contains("2176"), "{e}");
        let e = serde_json::from_str::<HrmConfig>(r#"{"n": 2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `n`"), "{e}");
    }

    #[cfg(feature = "train")]
    mod train {
        use super::*;
        use crate::model::arch::Net;
        use crate::model::weights_of;
        use tch::{nn, Device, Kind, Tensor};

        fn built(cfg: HrmConfig) -> (nn::VarStore, net::HrmNet) {
            tch::manual_seed(5);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = net::HrmNet::new(&vs.root(), &cfg, &Dims::flat(10, 4));
            (vs, net)
        }

        fn obs(n: i64) -> Tensor {
            Tensor::randn([n, 10], (Kind::Float, Device::Cpu))
        }

        fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
            (a - b).abs().max().double_value(&[])
        }

        #[test]
        fn module_matches_parameters_and_reference() {
            let (vs, net) = built(small());
            let w = weights_of(&vs).unwrap();
            let s = spec(small());
            crate::model::onnx::check_weights(&s, &w).unwrap();
            let o = obs(3);
            let (p, v) = tch::no_grad(|| net.forward(&o));
            assert_eq!((p.size(), v.size()), (vec![3, 4], vec![3, 1]));
            let flat: Vec<f32> = Vec::try_from(o.flatten(0, -1)).unwrap();
            let (pr, vr) = crate::model::onnx::forward_reference(&s, &w, &flat, 3);
            let pr = Tensor::from_slice(&pr).reshape([3, 4]);
            let vr = Tensor::from_slice(&vr).reshape([3, 1]);
            assert!(max_diff(&p, &pr) < 1e-5 && max_diff(&v, &vr) < 1e-5);
        }

        /// Two segments, the second from the first's carry, are the
        /// inference forward of `export_steps = 2`.
        #[test]
        fn supervise_continues_from_its_carry() {
            let (_vs, net) = built(small());
            let o = obs(5);
            let first = net.supervise(&o, None);
            assert_eq!(first.halt.as_ref().unwrap().size(), [5]);
            let carry: Vec<Tensor> = first.carry.unwrap().iter().map(Tensor::detach).collect();
            assert_eq!((carry[0].size(), carry[1].size()), (vec![5, 8], vec![5, 8]));
            let second = net.supervise(&o, Some(&carry));
            let (p, v) = tch::no_grad(|| net.forward(&o));
            assert!(max_diff(&second.policy, &p) < 1e-6);
            assert!(max_diff(&second.value, &v) < 1e-6);
            assert_eq!(net.supervision_steps(), 3);
            assert_eq!(net.ema_decay(), 0.5);
        }

        /// The one-step gradient: the states before the last `L` step do
        /// not require grad; both modules get gradients (from the last `L`
        /// step and `H` update); the initial states only when
        /// `t = cycles = 1`.
        #[test]
        fn gradients_flow_through_the_last_steps_only() {
            for (t, cycles, reaches_init) in
                [(2, 2, false), (1, 2, false), (2, 1, false), (1, 1, true)]
            {
                let (vs, net) = built(HrmConfig {
                    t,
                    cycles,
                    ..small()
                });
                let o = obs(4);
                let x = net.embed(&o);
                let (zh, zl) = net.start(None);
                let (wh, wl) = net.warm(&x, &zh, &zl);
                assert_eq!(wh.requires_grad(), reaches_init, "t {t} cycles {cycles}");
                assert_eq!(wl.requires_grad(), reaches_init, "t {t} cycles {cycles}");
                let out = net.supervise(&o, None);
                out.policy.sum(Kind::Float).backward();
                let vars = vs.variables();
                assert_eq!(vars["zl0"].grad().defined(), reaches_init);
                for name in ["high.fc1.weight", "low.fc2.weight", "input.weight"] {
                    assert!(vars[name].grad().defined(), "{name}");
                }
            }
        }
    }
}
