//! The value output as a scalar or as a distribution over bins.
//!
//! A value head ends in one pre-activation (`bins = 0`: `value =
//! tanh(x)`, trained by squared error) or in `bins` logits over evenly
//! spaced bin centres in [-1, 1] (`value = sum softmax(logits) *
//! centres`, trained by cross-entropy against a Gaussian-smoothed target
//! histogram, the "HL-Gauss" loss of Farebrother et al. 2024, "Stop
//! Regressing"). The classification loss is meant to keep a gradient for
//! small differences of value, such as a win 20 plies away against one 22
//! plies away under a per-ply discount (0.36 against 0.32 at 0.95), which
//! the squared error all but ignores beside the outcome's own uncertainty
//! (in the Connect Four pipeline it measured level with the scalar: README,
//! "Connect Four strength").
//! Either way the exported graph's `value` is `[N, 1]` in [-1, 1], so
//! search and inference do not know which head made it.

use super::onnx::{Attr, GraphBuilder};

/// Most bins a value head may have.
pub const MAX_BINS: usize = 1024;

/// Standard deviation of the target's Gaussian in bin widths (the paper's
/// recommended 0.75: one bin's neighbours share its mass).
pub const SIGMA_BINS: f32 = 0.75;

/// Checks `model.value_bins`: 0 (scalar) or 2..=[`MAX_BINS`].
pub fn check_bins(bins: usize) -> Result<(), String> {
    match bins {
        0 => Ok(()),
        1 => Err("model.value_bins = 1: expected 0 (a tanh scalar) or 2 to 1024 bins".into()),
        b if b > MAX_BINS => Err(format!(
            "model.value_bins = {b}: expected 0 (a tanh scalar) or 2 to {MAX_BINS} bins"
        )),
        _ => Ok(()),
    }
}

/// Width of the head's last layer: 1 for a scalar, else the bins.
pub fn outputs(bins: usize) -> usize {
    bins.max(1)
}

/// The centres of `bins` equal bins tiling [-1, 1].
pub fn centres(bins: usize) -> Vec<f32> {
    let width = 2.0 / bins as f32;
    (0..bins).map(|i| -1.0 + (i as f32 + 0.5) * width).collect()
}

/// ONNX nodes from the head's last layer `x` (`[N, outputs(bins)]`) to the
/// graph output `output` `[N, 1]`.
pub fn graph(g: &mut GraphBuilder, x: &str, bins: usize, output: &str) -> String {
    if bins == 0 {
        return g.tanh(x, output);
    }
    let probs = g.node_with("Softmax", &[x], "value/probs", &[Attr::Int("axis", 1)]);
    let c = g.constant("value/centres", &[bins, 1], &centres(bins));
    g.node("MatMul", &[&probs, &c], output)
}

/// The reference value of one row's last-layer outputs `x`.
pub fn reference(x: &[f32], bins: usize) -> f32 {
    if bins == 0 {
        return x[0].tanh();
    }
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().zip(centres(bins)).map(|(p, c)| p * c).sum::<f32>() / sum
}

/// The tch side: the value from the last layer, and the loss targets.
#[cfg(feature = "train")]
pub mod train {
    use super::{centres, SIGMA_BINS};
    use tch::{Kind, Tensor};

    /// The value `[N, 1]` from the last layer `x` `[N, outputs(bins)]`.
    pub fn value(x: &Tensor, bins: usize) -> Tensor {
        if bins == 0 {
            return x.tanh();
        }
        let c = Tensor::from_slice(&centres(bins)).to_device(x.device());
        x.softmax(-1, Kind::Float).matmul(&c.view([bins as i64, 1]))
    }

    /// The value `[N, 1]` from the last layer `x`, and `x` itself as the
    /// bins' logits when the head has bins (what the loss trains).
    pub fn read(x: Tensor, bins: usize) -> (Tensor, Option<Tensor>) {
        (value(&x, bins), (bins > 0).then_some(x))
    }

    /// The HL-Gauss target histograms `[N, bins]` of scalar targets `z`
    /// `[N]`: the mass a Gaussian at each target (sigma [`SIGMA_BINS`]
    /// bin widths) puts in each bin, renormalised to [-1, 1].
    pub fn target(z: &Tensor, bins: usize) -> Tensor {
        let width = 2.0 / bins as f64;
        let sigma = SIGMA_BINS as f64 * width;
        let edges: Vec<f32> = (0..=bins)
            .map(|i| (-1.0 + i as f64 * width) as f32)
            .collect();
        let edges = Tensor::from_slice(&edges).to_device(z.device());
        let scaled = (edges.unsqueeze(0) - z.unsqueeze(-1)) / (sigma * std::f64::consts::SQRT_2);
        let cdf = scaled.erf();
        let n = bins as i64;
        let mass = cdf.narrow(1, 1, n) - cdf.narrow(1, 0, n);
        let total = mass.sum_dim_intlist(-1, true, Kind::Float).clamp_min(1e-12);
        mass / total
    }

    /// Per-row cross-entropy `[N]` of `logits` `[N, bins]` against the
    /// target histograms of `z` `[N]`.
    pub fn cross_entropy(logits: &Tensor, z: &Tensor) -> Tensor {
        let bins = logits.size()[1] as usize;
        let logp = logits.log_softmax(-1, Kind::Float);
        -(target(z, bins) * logp).sum_dim_intlist(-1, false, Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_checked() {
        assert!(check_bins(0).is_ok());
        assert!(check_bins(2).is_ok());
        assert!(check_bins(MAX_BINS).is_ok());
        for bad in [1, MAX_BINS + 1] {
            let e = check_bins(bad).unwrap_err();
            assert!(
                e.contains("model.value_bins") && e.contains("expected"),
                "{e}"
            );
        }
    }

    #[test]
    fn centres_tile_the_value_range() {
        let c = centres(4);
        assert_eq!(c, vec![-0.75, -0.25, 0.25, 0.75]);
        assert_eq!(outputs(0), 1);
        assert_eq!(outputs(51), 51);
    }

    #[test]
    fn the_reference_value_is_the_expected_centre() {
        assert!((reference(&[0.3], 0) - 0.3f32.tanh()).abs() < 1e-6);
        // Equal logits: the mean of symmetric centres.
        assert!(reference(&[1.0; 5], 5).abs() < 1e-6);
        // All the mass on the last bin.
        let v = reference(&[0.0, 0.0, 50.0], 3);
        assert!((v - 2.0 / 3.0).abs() < 1e-4, "{v}");
    }

    #[cfg(feature = "train")]
    #[test]
    fn targets_are_histograms_centred_on_the_value() {
        let z = tch::Tensor::from_slice(&[-1.0f32, -0.3, 0.0, 0.358, 0.323, 1.0]);
        let t = train::target(&z, 101);
        let sums = Vec::<f32>::try_from(t.sum_dim_intlist(-1, false, tch::Kind::Float)).unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        let c = tch::Tensor::from_slice(&centres(101));
        let mean = Vec::<f32>::try_from(t.matmul(&c)).unwrap();
        // Interior targets keep their value; the ends are pulled in by
        // at most a bin.
        for (m, z) in mean.iter().zip([-1.0f32, -0.3, 0.0, 0.358, 0.323, 1.0]) {
            let tol = if z.abs() == 1.0 { 0.02 } else { 1e-3 };
            assert!((m - z).abs() < tol, "target of {z} has mean {m}");
        }
        // Two wins two plies apart get distinct most likely bins.
        let top = Vec::<i64>::try_from(t.argmax(-1, false)).unwrap();
        assert_ne!(top[3], top[4]);
        // The cross-entropy is lowest at the target's own histogram.
        let logp = (&t + 1e-9).log();
        let own = train::cross_entropy(&logp, &z);
        let shifted = train::cross_entropy(&logp.roll([3], [1]), &z);
        let (own, shifted) = (
            Vec::<f32>::try_from(own).unwrap(),
            Vec::<f32>::try_from(shifted).unwrap(),
        );
        assert!(own[2] < shifted[2], "{own:?} {shifted:?}");
    }
}
