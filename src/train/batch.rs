//! A minibatch as dense tensors, and the losses and per-row figures
//! computed on it.

use crate::model::{ModelSpec, Step};
use crate::store::rows::TrainExample;
use crate::tasks::Family;
use tch::{Device, Kind, Tensor};

/// One minibatch: input rows `[N, obs_dim]`, legal-move mask and policy
/// target `[N, action_dim]`, value target and example weight `[N]`, the
/// ownership target `[N, H*W]` on the grid canvas when a row has one, and
/// each row's family (for per-family figures; may be empty).
pub struct Rows {
    pub obs: Tensor,
    pub mask: Tensor,
    pub target: Tensor,
    pub z: Tensor,
    pub weight: Tensor,
    /// Class of each canvas cell's final owner (int64), [`NO_OWNER`]
    /// where the row has no map or the cell is off its board.
    pub own: Option<Tensor>,
    pub families: Vec<Family>,
}

/// The ownership target of a cell without one (cross-entropy's ignore index).
pub const NO_OWNER: i64 = -100;

/// The ownership targets of `examples` on the canvas of `spec`'s grid view:
/// `[N, H*W]` classes, `None` when the network has no ownership head (no
/// work for it on every minibatch), no grid, or no row has a map.
fn ownership_targets(examples: &[TrainExample], spec: &ModelSpec) -> Option<Tensor> {
    let grid = spec.grid.as_ref()?;
    if !spec.model.has_ownership_head() || examples.iter().all(|e| e.ownership.is_empty()) {
        return None;
    }
    let cells = grid.height * grid.width;
    let mut own = vec![NO_OWNER; examples.len() * cells];
    for (i, e) in examples.iter().enumerate() {
        let Some(g) = e
            .family
            .grid()
            .filter(|g| g.height * g.width == e.ownership.len())
        else {
            continue;
        };
        for (c, &class) in e.ownership.iter().enumerate() {
            let (y, x) = (c / g.width, c % g.width);
            own[i * cells + y * grid.width + x] = i64::from(class);
        }
    }
    Some(Tensor::from_slice(&own).reshape([examples.len() as i64, cells as i64]))
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
            own: ownership_targets(examples, spec),
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
            own: self.own.map(|t| t.to_device(device)),
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
            own: self.own.as_ref().map(cut),
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

    /// The ownership head's cross-entropy, per row the mean over the cells
    /// with a target, then the rows' weighted mean as in [`Rows::losses`]
    /// (rows without a map left out); `None` without the head or targets.
    pub fn ownership_loss(&self, out: &Step, active: &Tensor) -> Option<Tensor> {
        let (logits, target) = (out.ownership.as_ref()?, self.own.as_ref()?);
        let ce = logits.flatten(2, -1).cross_entropy_loss::<Tensor>(
            target,
            None,
            tch::Reduction::None,
            NO_OWNER,
            0.0,
        );
        let valid = target.ne(NO_OWNER).to_kind(Kind::Float);
        let cells = valid.sum_dim_intlist(-1, false, Kind::Float);
        let per_row = (ce * &valid).sum_dim_intlist(-1, false, Kind::Float) / cells.clamp_min(1.0);
        let w = active * &self.weight * cells.gt(0.0).to_kind(Kind::Float);
        Some((per_row * &w).sum(Kind::Float) / w.sum(Kind::Float).clamp_min(1e-6))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::arch::{Dims, GridView};
    use crate::model::resnet::ResnetConfig;
    use crate::model::ArchConfig;

    /// A blank training row of `family` (all-zero observation, one legal
    /// move all the target is on) with the ownership map given.
    pub(crate) fn example(family: Family, ownership: Vec<u8>) -> TrainExample {
        TrainExample {
            task_key: 0,
            family,
            obs: vec![0.0; family.obs_dim()],
            legal: vec![0],
            policy_actions: vec![0],
            policy_probs: vec![1.0],
            value: 0.0,
            weight: 1.0,
            ownership,
        }
    }

    /// Maps land on the canvas (tic-tac-toe's 3x3 top-left of Connect
    /// Four's 6x7), a row without one is left out of the loss, and the
    /// loss is the mean cross-entropy per cell: ln 3 for uniform logits,
    /// about 0 for confident right ones.
    #[test]
    fn ownership_targets_sit_on_the_canvas_and_score_by_cell() {
        let families = [Family::Connect4, Family::TicTacToe, Family::Countdown];
        let dims = Dims {
            obs_dim: families.iter().map(|f| f.input_dim()).max().unwrap(),
            action_dim: families.iter().map(|f| f.action_dim()).max().unwrap(),
            grid: GridView::for_families(&families),
        };
        let resnet = ResnetConfig {
            ownership: true,
            ..ResnetConfig::default()
        };
        let spec = ModelSpec::new(dims, ArchConfig::Resnet(resnet));
        let c4: Vec<u8> = (0..42).map(|c| (c * 7 % 3) as u8).collect();
        let ttt = vec![1, 2, 0, 0, 1, 2, 2, 0, 1];
        let rows = Rows::from_examples(
            &[
                example(Family::Connect4, c4.clone()),
                example(Family::TicTacToe, ttt),
                example(Family::Countdown, Vec::new()),
            ],
            &spec,
        );
        let own = rows.own.as_ref().expect("targets");
        let flat: Vec<i64> = Vec::try_from(own.flatten(0, -1)).unwrap();
        assert_eq!(flat.len(), 3 * 42);
        assert!(flat[..42].iter().zip(&c4).all(|(&a, &b)| a == i64::from(b)));
        // Tic-tac-toe's cell 5 (row 1, column 2) is canvas cell 7 + 2.
        assert_eq!((flat[42 + 9], flat[42 + 3]), (2, NO_OWNER));
        assert!(flat[84..].iter().all(|&c| c == NO_OWNER));

        let loss = |logits: Tensor| {
            let mut step = Step::one(Tensor::zeros([3, 7], (Kind::Float, Device::Cpu)), {
                (Tensor::zeros([3, 1], (Kind::Float, Device::Cpu)), None)
            });
            step.ownership = Some(logits);
            let active = Tensor::ones([3], (Kind::Float, Device::Cpu));
            rows.ownership_loss(&step, &active)
                .unwrap()
                .double_value(&[])
        };
        let uniform = loss(Tensor::zeros([3, 3, 6, 7], (Kind::Float, Device::Cpu)));
        assert!((uniform - 3f64.ln()).abs() < 1e-5, "{uniform}");
        // Row 0 confident and right, row 1 uniform: half of ln 3.
        let right = own
            .get(0)
            .one_hot(3)
            .permute([1, 0])
            .to_kind(Kind::Float)
            .reshape([1, 3, 6, 7])
            * 30.0;
        let rest = Tensor::zeros([2, 3, 6, 7], (Kind::Float, Device::Cpu));
        let half = loss(Tensor::cat(&[right, rest], 0));
        assert!((half - 3f64.ln() / 2.0).abs() < 1e-4, "{half}");
    }
}
