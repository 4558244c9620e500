//! The optimizer and what goes with it, with every piece of state in named
//! tensors so a checkpoint can hold it and a resumed run continues exactly:
//! AdamW, the learning-rate schedule, gradient-norm clipping and the
//! exponential moving average of the weights.

use crate::config::{LrSchedule, TrainConfig};
use tch::{nn, Kind, TchError, Tensor};

/// AdamW (Loshchilov & Hutter), PyTorch's update: decoupled weight decay
/// `p *= 1 - lr * wd`, then Adam with bias correction. Written here rather
/// than taken from tch, whose C++ optimizer keeps its moments out of reach.
pub struct AdamW {
    weight_decay: f64,
    /// Optimizer steps taken, over every iteration trained so far.
    pub step: i64,
    /// `(name, variable, first moment, second moment)` per trainable tensor.
    params: Vec<(String, Tensor, Tensor, Tensor)>,
}

/// The trainable tensors of `vs` with their names, in name order (batch
/// norm statistics are variables too, but not trained).
fn trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Copies the tensor `key` of `named` into `dst`, in place; errors name a
/// missing tensor or one of another shape.
pub fn restore(
    named: &std::collections::HashMap<String, Tensor>,
    key: &str,
    dst: &mut Tensor,
) -> Result<(), String> {
    let src = named
        .get(key)
        .ok_or_else(|| format!("tensor '{key}' is missing"))?;
    if src.size() != dst.size() {
        return Err(format!(
            "tensor '{key}' has shape {:?}, the network's is {:?}",
            src.size(),
            dst.size()
        ));
    }
    tch::no_grad(|| dst.copy_(src));
    Ok(())
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// Fresh state (zero moments, step 0) for the trainable tensors of `vs`.
    pub fn new(vs: &nn::VarStore, weight_decay: f64) -> AdamW {
        let params = trainable(vs)
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like();
                let v = var.zeros_like();
                (name, var, m, v)
            })
            .collect();
        AdamW {
            weight_decay,
            step: 0,
            params,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, var, _, _) in &mut self.params {
            var.zero_grad();
        }
    }

    /// The L2 norm of all gradients together.
    pub fn grad_norm(&self) -> Result<f64, TchError> {
        let mut sum = 0.0;
        for (_, var, _, _) in &self.params {
            let g = var.grad();
            if g.defined() {
                sum += g.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?;
            }
        }
        Ok(sum.sqrt())
    }

    /// Scales every gradient by `factor` (clipping).
    pub fn scale_grads(&mut self, factor: f64) {
        tch::no_grad(|| {
            for (_, var, _, _) in &self.params {
                let mut g = var.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(factor);
                }
            }
        });
    }

    /// One update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        let decay = 1.0 - lr * self.weight_decay;
        tch::no_grad(|| {
            for (_, var, m, v) in &mut self.params {
                let g = var.grad();
                if !g.defined() {
                    continue;
                }
                // In place where libtorch allows: a step is dozens of small
                // ops per tensor, so allocations and dispatches are its cost.
                let _ = var.g_mul_scalar_(decay);
                let _ = m.lerp_(&g, 1.0 - BETA1);
                let _ = v.g_mul_scalar_(BETA2).addcmul_(&g, &(&g * (1.0 - BETA2)));
                let mut denom = v.sqrt();
                let _ = denom.g_div_scalar_(bc2.sqrt()).g_add_scalar_(EPS);
                let _ = var.addcdiv_(&(&*m * (-lr / bc1)), &denom);
            }
        });
    }

    /// The moments as named tensors, `m/<name>` and `v/<name>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (name, _, m, v) in &self.params {
            out.push((format!("m/{name}"), m.shallow_clone()));
            out.push((format!("v/{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores the moments from [`AdamW::state`] tensors and the step;
    /// errors name a missing or misshapen moment.
    pub fn load_state(
        &mut self,
        named: &std::collections::HashMap<String, Tensor>,
        step: i64,
    ) -> Result<(), String> {
        for (name, _, m, v) in &mut self.params {
            restore(named, &format!("m/{name}"), m)?;
            restore(named, &format!("v/{name}"), v)?;
        }
        self.step = step;
        Ok(())
    }
}

/// The learning rate at optimizer step `step` (0-based) of a run of
/// `total` steps: a linear warm-up over `warmup_steps`, then constant or a
/// cosine decay to `final_lr_ratio` of the base rate at `total`.
pub fn learning_rate(cfg: &TrainConfig, step: u64, total: u64) -> f64 {
    let base = cfg.learning_rate;
    let warmup = cfg.warmup_steps;
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    match cfg.lr_schedule {
        LrSchedule::Constant => base,
        LrSchedule::Cosine => {
            let span = total.saturating_sub(warmup).max(1);
            let progress = ((step - warmup) as f64 / span as f64).min(1.0);
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            let floor = cfg.final_lr_ratio;
            base * (floor + (1.0 - floor) * cosine)
        }
    }
}

/// An exponential moving average of the trainable weights, copied into
/// them when training ends (decay 0: off).
pub struct Ema {
    decay: f64,
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    pub fn off() -> Ema {
        Ema {
            decay: 0.0,
            pairs: Vec::new(),
        }
    }

    /// An average starting from the current trainable weights of `vs`.
    pub fn new(vs: &nn::VarStore, decay: f64) -> Ema {
        if decay <= 0.0 {
            return Ema::off();
        }
        let pairs = trainable(vs)
            .into_iter()
            .map(|(name, v)| {
                let shadow = v.detach().copy();
                (name, v, shadow)
            })
            .collect();
        Ema { decay, pairs }
    }

    pub fn update(&mut self) {
        let d = self.decay;
        tch::no_grad(|| {
            for (_, var, shadow) in &mut self.pairs {
                let _ = shadow.g_mul_scalar_(d).g_add_(&(var.detach() * (1.0 - d)));
            }
        });
    }

    /// The averages as named tensors, `ema/<name>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.pairs
            .iter()
            .map(|(name, _, s)| (format!("ema/{name}"), s.shallow_clone()))
            .collect()
    }

    /// Restores the averages from [`Ema::state`] tensors.
    pub fn load_state(
        &mut self,
        named: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(), String> {
        for (name, _, shadow) in &mut self.pairs {
            restore(named, &format!("ema/{name}"), shadow)?;
        }
        Ok(())
    }

    pub fn is_off(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The averages under the weights' own names.
    pub fn averages(&self) -> Vec<(String, Tensor)> {
        self.pairs
            .iter()
            .map(|(name, _, s)| (name.clone(), s.shallow_clone()))
            .collect()
    }

    pub fn apply(&mut self) {
        tch::no_grad(|| {
            for (_, var, shadow) in &mut self.pairs {
                var.copy_(shadow);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use tch::{nn::OptimizerConfig, Device};

    /// The hand-written AdamW follows tch's (PyTorch's) on the same
    /// gradients, step after step.
    #[test]
    fn adamw_matches_libtorch() {
        let make = || {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let lin = nn::linear(vs.root() / "l", 5, 3, Default::default());
            (vs, lin)
        };
        let (vs_a, lin_a) = make();
        let (mut vs_b, lin_b) = make();
        // The same start, whatever other tests do to the global RNG.
        vs_b.copy(&vs_a).unwrap();
        let mut ours = AdamW::new(&vs_a, 0.01);
        let mut theirs = nn::AdamW {
            wd: 0.01,
            ..Default::default()
        }
        .build(&vs_b, 0.05)
        .unwrap();
        use tch::nn::Module;
        for k in 0..20 {
            let x = Tensor::from_slice(
                &(0..40)
                    .map(|i| ((i * 7 + k * 3) % 11) as f32 / 5.0 - 1.0)
                    .collect::<Vec<f32>>(),
            )
            .reshape([8, 5]);
            ours.zero_grad();
            lin_a.forward(&x).square().mean(Kind::Float).backward();
            ours.step(0.05);
            theirs.zero_grad();
            lin_b.forward(&x).square().mean(Kind::Float).backward();
            theirs.step();
        }
        for (name, a) in vs_a.variables() {
            let b = &vs_b.variables()[&name];
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name}: {diff}");
        }
    }

    #[test]
    fn schedules_warm_up_then_decay() {
        let set = |kv: &[&str]| {
            let set: Vec<String> = kv.iter().map(|s| s.to_string()).collect();
            Config::load(None, &set).unwrap().train
        };
        let constant = set(&["train.learning_rate=0.01"]);
        assert_eq!(learning_rate(&constant, 0, 100), 0.01);
        assert_eq!(learning_rate(&constant, 99, 100), 0.01);
        let cos = set(&[
            "train.learning_rate=0.01",
            "train.lr_schedule=\"cosine\"",
            "train.warmup_steps=10",
            "train.final_lr_ratio=0.1",
        ]);
        assert!((learning_rate(&cos, 0, 110) - 0.001).abs() < 1e-12);
        assert!((learning_rate(&cos, 9, 110) - 0.01).abs() < 1e-12);
        assert!((learning_rate(&cos, 10, 110) - 0.01).abs() < 1e-12);
        assert!((learning_rate(&cos, 60, 110) - 0.0055).abs() < 1e-12);
        assert!((learning_rate(&cos, 110, 110) - 0.001).abs() < 1e-12);
        assert!((learning_rate(&cos, 500, 110) - 0.001).abs() < 1e-12);
    }
}
