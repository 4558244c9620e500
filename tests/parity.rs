//! The same weights through tch (libtorch) and through ONNX Runtime agree to 1e-4.
#![cfg(feature = "train")]

use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::model::mlp::{weights_of, MlpNet};
use selfplay::model::onnx::{export_mlp, forward_reference};
use selfplay::model::MlpSpec;
use tch::{nn, Device as TchDevice, Kind, Tensor};

fn check(spec: &MlpSpec, seed: i64, batch: usize) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(TchDevice::Cpu);
    let net = MlpNet::new(&vs.root(), spec);
    let weights = weights_of(&vs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, export_mlp(spec, &weights).unwrap()).unwrap();

    let obs = Tensor::randn(
        [batch as i64, spec.obs_dim as i64],
        (Kind::Float, TchDevice::Cpu),
    );
    let (p_t, v_t) = tch::no_grad(|| net.forward(&obs));
    let obs_v: Vec<f32> = Vec::try_from(obs.flatten(0, -1)).unwrap();
    let p_t: Vec<f32> = Vec::try_from(p_t.flatten(0, -1)).unwrap();
    let v_t: Vec<f32> = Vec::try_from(v_t.flatten(0, -1)).unwrap();

    init_runtime(None).unwrap();
    let mut model = OnnxModel::load(&path, Device::Cpu, 1).unwrap();
    let mut p_o = vec![0.0; batch * spec.action_dim];
    let mut v_o = vec![0.0; batch];
    model.run(&obs_v, batch, &mut p_o, &mut v_o).unwrap();

    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        max_diff(&p_t, &p_o) < 1e-4,
        "policy differs by {}",
        max_diff(&p_t, &p_o)
    );
    assert!(
        max_diff(&v_t, &v_o) < 1e-4,
        "value differs by {}",
        max_diff(&v_t, &v_o)
    );
    // And the plain-Rust reference agrees with both.
    let (p_r, v_r) = forward_reference(spec, &weights, &obs_v, batch);
    assert!(max_diff(&p_t, &p_r) < 1e-4 && max_diff(&v_t, &v_r) < 1e-4);
}

#[test]
fn tch_and_onnx_runtime_agree() {
    let spec = MlpSpec {
        obs_dim: 84,
        action_dim: 60,
        hidden: 128,
        blocks: 2,
        value_hidden: 64,
    };
    for (seed, batch) in [(1, 1), (2, 7), (3, 256)] {
        check(&spec, seed, batch);
    }
    let tiny = MlpSpec {
        obs_dim: 5,
        action_dim: 3,
        hidden: 4,
        blocks: 0,
        value_hidden: 2,
    };
    check(&tiny, 4, 3);
}

#[test]
fn trained_checkpoint_round_trips_through_safetensors() {
    let spec = MlpSpec {
        obs_dim: 10,
        action_dim: 4,
        hidden: 8,
        blocks: 1,
        value_hidden: 4,
    };
    tch::manual_seed(9);
    let vs = nn::VarStore::new(TchDevice::Cpu);
    let _net = MlpNet::new(&vs.root(), &spec);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    vs.save(&path).unwrap();
    let mut vs2 = nn::VarStore::new(TchDevice::Cpu);
    let _net2 = MlpNet::new(&vs2.root(), &spec);
    vs2.load(&path).unwrap();
    assert_eq!(weights_of(&vs).unwrap(), weights_of(&vs2).unwrap());
}
