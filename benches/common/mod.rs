//! What the search benches share: a config's model with random weights.

use rand::{Rng, SeedableRng};
use selfplay::config::Config;
use selfplay::model::onnx::{export, Weights};
use std::path::{Path, PathBuf};

/// The config's model with seeded random weights (uniform, scaled by
/// fan-in), written as `dir/model.onnx`.
pub fn random_model(cfg: &Config, dir: &Path) -> PathBuf {
    let spec = cfg.model_spec();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let weights = Weights(
        spec.parameters()
            .into_iter()
            .map(|(name, shape)| {
                let fan_in = *shape.last().unwrap() as f32;
                let n: usize = shape.iter().product();
                let data = (0..n)
                    .map(|_| (rng.random::<f32>() * 2.0 - 1.0) / fan_in.sqrt())
                    .collect();
                (name, (shape, data))
            })
            .collect(),
    );
    let path = dir.join("model.onnx");
    std::fs::write(&path, export(&spec, &weights, None).unwrap()).unwrap();
    path
}
