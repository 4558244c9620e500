//! The same weights through tch (libtorch), ONNX Runtime and the plain-Rust
//! reference agree to 1e-4, for every architecture in [`MODELS`].
#![cfg(feature = "train")]

use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::model::onnx::{export, forward_reference};
use selfplay::model::{weights_of, ArchConfig, Dims, GridView, ModelSpec};
use selfplay::tasks::Family;
use tch::{nn, Device as TchDevice, Kind, Tensor};

/// `[model]` sections (inline TOML) with the families whose inputs they
/// read (which fix the dims and the grid view): a new architecture adds
/// its lines here.
const MODELS: &[(&str, &[&str])] = &[
    (
        r#"{ arch = "mlp", hidden = 128, blocks = 2, value_hidden = 64 }"#,
        &["countdown", "connect4"],
    ),
    (
        r#"{ arch = "mlp", hidden = 16, blocks = 1, value_hidden = 8, value_bins = 33 }"#,
        &["countdown"],
    ),
    (
        r#"{ arch = "mlp", hidden = 4, blocks = 0, value_hidden = 2 }"#,
        &["tictactoe"],
    ),
    (
        r#"{ arch = "resnet", filters = 8, blocks = 2, flat_hidden = 16, value_hidden = 8 }"#,
        &["countdown", "connect4"],
    ),
    (
        r#"{ arch = "resnet", filters = 8, blocks = 1, flat_hidden = 8, value_hidden = 8, value_bins = 51 }"#,
        &["connect4"],
    ),
    (
        r#"{ arch = "resnet", filters = 4, blocks = 1, flat_hidden = 4, value_hidden = 2 }"#,
        &["sudoku", "tictactoe"],
    ),
    (
        r#"{ arch = "trm", hidden = 32, n = 2, cycles = 2, export_steps = 2, value_hidden = 16 }"#,
        &["countdown", "connect4"],
    ),
    (
        r#"{ arch = "hrm", hidden = 24, t = 2, cycles = 2, export_steps = 3, value_hidden = 8 }"#,
        &["sudoku"],
    ),
    (
        r#"{ arch = "trm", hidden = 16, n = 1, cycles = 1, export_steps = 1, value_hidden = 8, value_bins = 11 }"#,
        &["tictactoe"],
    ),
];

fn spec_of(model: &str, families: &[&str]) -> ModelSpec {
    let text = format!("model = {model}");
    let table: toml::Table = text.parse().unwrap();
    let arch: ArchConfig = table["model"].clone().try_into().unwrap();
    let families: Vec<Family> = families.iter().map(|f| Family::parse(f).unwrap()).collect();
    let dims = Dims {
        obs_dim: families.iter().map(|f| f.input_dim()).max().unwrap(),
        action_dim: families.iter().map(|f| f.action_dim()).max().unwrap(),
        grid: GridView::for_families(&families),
    };
    let spec = ModelSpec::new(dims, arch);
    spec.check().unwrap();
    spec
}

/// Batch norms start with mean 0 and variance 1, which would not test how
/// the export folds them: every `running_mean` becomes `randn * 0.1`, every
/// `running_var` uniform in [0.5, 2] (nothing for architectures without).
fn randomise_running_statistics(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.ends_with("running_mean") {
                t.copy_(&(Tensor::randn_like(&t) * 0.1));
            } else if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand_like(&t) * 1.5 + 0.5));
            }
        }
    });
}

fn check(spec: &ModelSpec, seed: i64, batch: usize) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(TchDevice::Cpu);
    let net = spec.init(&vs.root());
    randomise_running_statistics(&vs);
    let weights = weights_of(&vs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, export(spec, &weights, None).unwrap()).unwrap();

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
    let arch = spec.model.name();
    assert_eq!(p_t.len(), batch * spec.action_dim, "{arch}: policy shape");
    assert_eq!(v_t.len(), batch, "{arch}: value shape");
    assert!(
        max_diff(&p_t, &p_o) < 1e-4,
        "{arch}: policy differs by {}",
        max_diff(&p_t, &p_o)
    );
    assert!(
        max_diff(&v_t, &v_o) < 1e-4,
        "{arch}: value differs by {}",
        max_diff(&v_t, &v_o)
    );
    // And the plain-Rust reference agrees with both.
    let (p_r, v_r) = forward_reference(spec, &weights, &obs_v, batch);
    assert!(
        max_diff(&p_t, &p_r) < 1e-4 && max_diff(&v_t, &v_r) < 1e-4,
        "{arch}: the reference differs"
    );
}

#[test]
fn tch_and_onnx_runtime_agree() {
    for (k, &(model, families)) in MODELS.iter().enumerate() {
        let spec = spec_of(model, families);
        for (seed, batch) in [(1, 1), (2, 7), (3, 256)] {
            check(&spec, seed + 10 * k as i64, batch);
        }
    }
}

#[test]
fn trained_checkpoint_round_trips_through_safetensors() {
    for &(model, families) in MODELS {
        let spec = spec_of(model, families);
        tch::manual_seed(9);
        let vs = nn::VarStore::new(TchDevice::Cpu);
        let _net = spec.init(&vs.root());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.safetensors");
        vs.save(&path).unwrap();
        let mut vs2 = nn::VarStore::new(TchDevice::Cpu);
        let _net2 = spec.init(&vs2.root());
        vs2.load(&path).unwrap();
        let (w1, w2) = (weights_of(&vs).unwrap(), weights_of(&vs2).unwrap());
        assert_eq!(w1, w2, "{model}");
        let names: Vec<String> = spec.parameters().into_iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(w1.0.keys().cloned().collect::<Vec<_>>(), sorted, "{model}");
    }
}

/// The `onnx` package's full checker (shape inference included) accepts
/// every architecture's export, and its metadata says what the model is.
#[test]
fn onnx_checker_accepts_every_export() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    for &(model, families) in MODELS {
        let spec = spec_of(model, families);
        tch::manual_seed(5);
        let vs = nn::VarStore::new(TchDevice::Cpu);
        let _net = spec.init(&vs.root());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        let bytes = export(&spec, &weights_of(&vs).unwrap(), Some("iteration=000007")).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let o = std::process::Command::new(&python)
            .arg("-c")
            .arg(
                "import json, sys, onnx\n\
                 m = onnx.load(sys.argv[1])\n\
                 onnx.checker.check_model(m, full_check=True)\n\
                 print(json.dumps({p.key: p.value for p in m.metadata_props}))",
            )
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{model}: onnx checker: {err}");
        let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(meta["model_id"], "iteration=000007", "{model}: {meta}");
        assert_eq!(meta["arch"], spec.model.name(), "{model}: {meta}");
        assert_eq!(meta["policy"], "logits", "{model}: {meta}");
        let families: Vec<&str> = selfplay::tasks::Family::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        assert_eq!(meta["families"], families.join(","), "{model}: {meta}");
    }
}
