//! Every architecture side by side, measured in one run, at its default
//! config on the default run's input (Countdown and Connect Four):
//! - network rows/s through ONNX Runtime at batch 1 and 256;
//! - training samples/s: whole optimizer steps (every supervision step,
//!   backward and AdamW) on minibatches of 256.
//!
//! `cargo bench --bench models` (scripts/env.sh sourced for libtorch and
//! ORT_DYLIB_PATH). A summary line per architecture gives its parameter
//! count beside the figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use selfplay::config::Config;
use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::model::onnx::export;
use selfplay::model::{weights_of, ArchConfig, ModelSpec};
use selfplay::train::{Rows, Trainer};
use tch::{Device as TchDevice, Kind, Tensor};

/// Training minibatch rows.
const BATCH: i64 = 256;

/// Each architecture's default `[model]` on the default run's families.
fn specs() -> Vec<ModelSpec> {
    let dims = Config::load(None, &[]).unwrap().model_spec().dims();
    ArchConfig::known()
        .into_iter()
        .map(|arch| ModelSpec::new(dims.clone(), arch))
        .collect()
}

/// A seeded tch init of `spec`, exported and loaded into ONNX Runtime.
fn onnx_model(spec: &ModelSpec, dir: &std::path::Path) -> OnnxModel {
    tch::manual_seed(1);
    let trainer = Trainer::new(
        spec,
        &Config::load(None, &[]).unwrap().train,
        1,
        TchDevice::Cpu,
    );
    let path = dir.join(format!("{}.onnx", spec.model.name()));
    let bytes = export(spec, &weights_of(&trainer.vs).unwrap(), None).unwrap();
    std::fs::write(&path, bytes).unwrap();
    init_runtime(None).unwrap();
    OnnxModel::load(&path, Device::Cpu, 0).unwrap()
}

/// Random rows shaped like the replay window's: one-hot family tag and
/// 0/1 features, a legal mask, a softmax target, values in [-1, 1].
fn random_rows(spec: &ModelSpec) -> Rows {
    let opts = (Kind::Float, TchDevice::Cpu);
    let (od, ad) = (spec.obs_dim as i64, spec.action_dim as i64);
    let obs = Tensor::rand([BATCH, od], opts).round();
    Rows {
        obs,
        mask: Tensor::ones([BATCH, ad], opts),
        target: Tensor::randn([BATCH, ad], opts).softmax(-1, Kind::Float),
        z: Tensor::rand([BATCH], opts) * 2.0 - 1.0,
        weight: Tensor::ones([BATCH], opts),
        families: Vec::new(),
    }
}

fn network(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("model_rows");
    for spec in specs() {
        let mut model = onnx_model(&spec, dir.path());
        for batch in [1usize, 256] {
            let obs = vec![0.5f32; batch * spec.obs_dim];
            let (mut p, mut v) = (vec![0.0; batch * spec.action_dim], vec![0.0; batch]);
            group.throughput(Throughput::Elements(batch as u64));
            let id = BenchmarkId::new(spec.model.name(), batch);
            group.bench_with_input(id, &batch, |b, &n| {
                b.iter(|| model.run(&obs, n, &mut p, &mut v).unwrap())
            });
        }
    }
    group.finish();
}

fn training(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("train_samples");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for spec in specs() {
        tch::manual_seed(2);
        let train = Config::load(None, &[]).unwrap().train;
        let mut trainer = Trainer::new(&spec, &train, 1000, TchDevice::Cpu);
        trainer.start_ema();
        let rows = random_rows(&spec);
        let name = spec.model.name();
        group.bench_function(BenchmarkId::new(name, BATCH), |b| {
            b.iter(|| trainer.step(&rows, 0).unwrap())
        });
        println!("summary: {name}: {} parameters", spec.parameter_count());
    }
    group.finish();
}

criterion_group!(benches, network, training);
criterion_main!(benches);
