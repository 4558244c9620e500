//! Training curves: every `train.curve_every` minibatches (and at the end
//! of the iteration) one `train` row (the minibatches since the last
//! point) and `heldout` rows (all families, then each) measured on the
//! held-out slice with the current weights in inference mode. The rows go
//! to the curves store with the model.

use super::batch::{PerRow, Rows};
use crate::model::{ModelSpec, Net};
use crate::store::rows::{CurveRow, TrainExample};
use crate::tasks::Family;
use serde::{Deserialize, Serialize};

/// Held-out rows measured per forward pass.
const CHUNK_ROWS: usize = 512;

/// Sums of the train split since the last point (kept in checkpoints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSums {
    minibatches: u64,
    rows: u64,
    policy_loss: f64,
    value_loss: f64,
    entropy: f64,
    top1: f64,
    value_error: f64,
    grad_norm: f64,
}

impl TrainSums {
    /// Adds one minibatch: its losses (as trained on) and per-row figures.
    pub fn add(&mut self, losses: (f64, f64), rows: &PerRow, grad_norm: f64) {
        let n = rows.len().max(1) as f64;
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n;
        self.minibatches += 1;
        self.rows += rows.len() as u64;
        self.policy_loss += losses.0;
        self.value_loss += losses.1;
        self.entropy += mean(&rows.entropy);
        self.top1 += mean(&rows.top1);
        self.value_error += mean(&rows.value_error);
        self.grad_norm = grad_norm;
    }

    /// The train row of the minibatches added, and a fresh start.
    pub fn take(&mut self, iteration: u32, step: u64, learning_rate: f64) -> Option<CurveRow> {
        let sums = std::mem::take(self);
        let k = sums.minibatches as f64;
        (sums.minibatches > 0).then(|| CurveRow {
            iteration,
            step,
            split: "train".into(),
            family: "all".into(),
            rows: sums.rows.min(u32::MAX as u64) as u32,
            policy_loss: sums.policy_loss / k,
            value_loss: sums.value_loss / k,
            entropy: sums.entropy / k,
            top1: sums.top1 / k,
            value_error: sums.value_error / k,
            learning_rate,
            grad_norm: Some(sums.grad_norm),
        })
    }
}

/// Held-out rows of the curves at `step`: all families, then each family
/// present, measured with `net` in inference mode. Empty without a slice.
pub fn heldout_rows(
    net: &dyn Net,
    spec: &ModelSpec,
    heldout: &[TrainExample],
    iteration: u32,
    step: u64,
    learning_rate: f64,
    device: tch::Device,
) -> Vec<CurveRow> {
    let mut all = PerRow::default();
    let mut families = Vec::new();
    for chunk in heldout.chunks(CHUNK_ROWS) {
        let rows = Rows::from_examples(chunk, spec).to(device);
        let (policy, value) = tch::no_grad(|| net.forward(&rows.obs));
        all.extend(rows.per_row(&policy, &value));
        families.extend(rows.families);
    }
    if all.is_empty() {
        return Vec::new();
    }
    let mut present: Vec<Family> = families.clone();
    present.sort();
    present.dedup();
    let row = |family: String, pick: &dyn Fn(usize) -> bool| {
        summary(&all, pick).map(|s| CurveRow {
            iteration,
            step,
            split: "heldout".into(),
            family,
            learning_rate,
            grad_norm: None,
            ..s
        })
    };
    let mut out: Vec<CurveRow> = row("all".into(), &|_| true).into_iter().collect();
    for f in present {
        out.extend(row(f.name().into(), &|i| families[i] == f));
    }
    out
}

/// Weighted losses and plain means of the figures over the rows `pick`
/// selects (the other fields are left for the caller).
fn summary(all: &PerRow, pick: &dyn Fn(usize) -> bool) -> Option<CurveRow> {
    let idx: Vec<usize> = (0..all.len()).filter(|&i| pick(i)).collect();
    if idx.is_empty() {
        return None;
    }
    let n = idx.len() as f64;
    let w: f64 = idx
        .iter()
        .map(|&i| all.weight[i] as f64)
        .sum::<f64>()
        .max(1e-6);
    let weighted = |v: &[f32]| {
        idx.iter()
            .map(|&i| (v[i] * all.weight[i]) as f64)
            .sum::<f64>()
            / w
    };
    let mean = |v: &[f32]| idx.iter().map(|&i| v[i] as f64).sum::<f64>() / n;
    Some(CurveRow {
        iteration: 0,
        step: 0,
        split: String::new(),
        family: String::new(),
        rows: idx.len() as u32,
        policy_loss: weighted(&all.policy_loss),
        value_loss: weighted(&all.value_loss),
        entropy: mean(&all.entropy),
        top1: mean(&all.top1),
        value_error: mean(&all.value_error),
        learning_rate: 0.0,
        grad_norm: None,
    })
}
