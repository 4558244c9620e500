//! A minibatch as dense tensors, and the losses and per-row figures
//! computed on it.

use crate::model::{ModelSpec, Step};
use crate::store::rows::TrainExample;
use crate::tasks::Family;
use tch::{Device, Kind, Tensor};

/// One minibatch: input rows `[N, obs_dim]`, legal-move mask and policy
/// target `[N, action_dim]`, value target and example weight `[N]`, and
/// each row's family (for per-family figures; may be empty).
pub struct Rows {
    pub obs: Tensor,
    pub mask: Tensor,
    pub target: Tensor,
    pub z: Tensor,
    pub weight: Tensor,
    pub families: Vec<Family>,
}

impl Rows {
    /// Dense rows of checked examples (see `example_problem`): the
    /// family's input row (tag and observation, zero-padded), the legal
    /// mask, the sparse policy target spread out.
    pub fn from_examples(examples: &[TrainExample], spec: &ModelSpec) -> Rows {
        let (n, od, ad) = (examples.len(), spec.obs_dim, spec.action_dim);
        let mut obs = vec![0f32; n * od];
        let mut mask = vec![0f32; n * ad];
        let mut policy = vec![0f32; n * ad];
        for (i, e) in examples.iter().enumerate() {
            e.family.write_input(&e.obs, &mut obs[i * od..(i + 1) * od]);
            e.legal
                .iter()
                .for_each(|&a| mask[i * ad + a as usize] = 1.0);
            for (&a, &p) in e.policy_actions.iter().zip(&e.policy_probs) {
                policy[i * ad + a as usize] = p;
            }
        }
        let t = |v: &[f32], cols: usize| Tensor::from_slice(v).reshape([n as i64, cols as i64]);
        let column = |get: fn(&TrainExample) -> f32| {
            Tensor::from_slice(&examples.iter().map(get).collect::<Vec<f32>>())
        };
        Rows {
            obs: t(&obs, od),
            mask: t(&mask, ad),
            target: t(&policy, ad),
            z: column(|e| e.value),
            weight: column(|e| e.weight),
            families: examples.iter().map(|e| e.family).collect(),
        }
    }

    /// The rows on `device` (where the network is).
    pub fn to(self, device: Device) -> Rows {
        if device == Device::Cpu {
            return self;
        }
        Rows {
            obs: self.obs.to_device(device),
            mask: self.mask.to_device(device),
            target: self.target.to_device(device),
            z: self.z.to_device(device),
            weight: self.weight.to_device(device),
            families: self.families,
        }
    }

    /// Rows `start..end` (a chunk, for measuring a large set).
    pub fn slice(&self, start: i64, end: i64) -> Rows {
        let cut = |t: &Tensor| t.narrow(0, start, end - start);
        Rows {
            obs: cut(&self.obs),
            mask: cut(&self.mask),
            target: cut(&self.target),
            z: cut(&self.z),
            weight: cut(&self.weight),
            families: self
                .families
                .get(start as usize..end as usize)
                .unwrap_or_default()
                .to_vec(),
        }
    }

    /// Policy logits with illegal moves pushed far below the legal ones.
    fn masked(&self, policy: &Tensor) -> Tensor {
        policy + (&self.mask - 1.0) * 1e9
    }

    /// Policy cross-entropy over legal actions and value MSE (or, for a
    /// value head with bins, its cross-entropy), weighted
    /// means over the `active` rows (a 0/1 `[N]` float) by example weight;
    /// with a halting head, its BCE against "the policy's top legal move is
    /// the target's" and the rows still active after this step (those that
    /// did not halt).
    pub fn losses(
        &self,
        out: &Step,
        active: &Tensor,
    ) -> (Tensor, Tensor, Option<(Tensor, Tensor)>) {
        let masked = self.masked(&out.policy);
        let logp = masked.log_softmax(-1, Kind::Float);
        let w = active * &self.weight;
        let denom = w.sum(Kind::Float).clamp_min(1e-6);
        let mean = |per_row: Tensor| (per_row * &w).sum(Kind::Float) / &denom;
        let policy = mean(-(&self.target * logp).sum_dim_intlist(-1, false, Kind::Float));
        let value = mean(match &out.value_logits {
            Some(logits) => crate::model::value_head::train::cross_entropy(logits, &self.z),
            None => (out.value.squeeze_dim(-1) - &self.z).square(),
        });
        let halt = out.halt.as_ref().map(|h| {
            let right = self.top1(&masked);
            let bce = mean(h.binary_cross_entropy_with_logits::<Tensor>(
                &right,
                None,
                None,
                tch::Reduction::None,
            ));
            let still = active * h.detach().lt(0.0).to_kind(Kind::Float);
            (bce, still)
        });
        (policy, value, halt)
    }

    /// 1.0 where the top legal move of `masked` logits is the target's.
    fn top1(&self, masked: &Tensor) -> Tensor {
        masked
            .argmax(-1, false)
            .eq_tensor(&self.target.argmax(-1, false))
            .to_kind(Kind::Float)
    }

    /// The curves' figures of each row, for outputs `policy` `[N, A]` and
    /// `value` `[N, 1]`.
    pub fn per_row(&self, policy: &Tensor, value: &Tensor) -> PerRow {
        tch::no_grad(|| {
            let masked = self.masked(&policy.detach());
            let logp = masked.log_softmax(-1, Kind::Float);
            let p = logp.exp();
            let v = value.detach().squeeze_dim(-1);
            let vec =
                |t: Tensor| Vec::<f32>::try_from(t.to_device(Device::Cpu)).unwrap_or_default();
            PerRow {
                policy_loss: vec(-(&self.target * &logp).sum_dim_intlist(-1, false, Kind::Float)),
                value_loss: vec((&v - &self.z).square()),
                entropy: vec(-(&p * &logp * &self.mask).sum_dim_intlist(-1, false, Kind::Float)),
                top1: vec(self.top1(&masked)),
                value_error: vec((&v - &self.z).abs()),
                weight: vec(self.weight.shallow_clone()),
            }
        })
    }
}

/// Per-row figures of one forward pass (see the curves store's schema).
#[derive(Clone, Debug, Default)]
pub struct PerRow {
    pub policy_loss: Vec<f32>,
    pub value_loss: Vec<f32>,
    pub entropy: Vec<f32>,
    pub top1: Vec<f32>,
    pub value_error: Vec<f32>,
    pub weight: Vec<f32>,
}

impl PerRow {
    pub fn len(&self) -> usize {
        self.weight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }

    pub fn extend(&mut self, other: PerRow) {
        self.policy_loss.extend(other.policy_loss);
        self.value_loss.extend(other.value_loss);
        self.entropy.extend(other.entropy);
        self.top1.extend(other.top1);
        self.value_error.extend(other.value_error);
        self.weight.extend(other.weight);
    }
}
