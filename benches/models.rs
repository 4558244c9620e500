//! Every architecture side by side, measured in one run, at its default
//! config on the default run's input (Countdown and Connect Four):
//! - network rows/s through ONNX Runtime at batch 1 and 256;
//! - training samples/s: whole optimizer steps (every supervision step,
//!   backward and AdamW) on minibatches of 256;
//! - the whole train stage of the default model on a stored window of
//!   100k examples, loaded whole and streamed through a 10k-row shuffle
//!   buffer: samples/s and the share of its wall time spent reading
//!   Parquet and assembling minibatches (a summary line each).
//!
//! `cargo bench --bench models` (scripts/env.sh sourced for libtorch and
//! ORT_DYLIB_PATH). A summary line per architecture gives its parameter
//! count beside the figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use selfplay::config::Config;
use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::metrics::StageMeter;
use selfplay::model::onnx::export;
use selfplay::model::ModelMeta;
use selfplay::model::{weights_of, ArchConfig, ModelSpec};
use selfplay::store::lock::Claim;
use selfplay::store::parquet_io::{stage_part, FileMeta};
use selfplay::store::rows::{examples_batch, ExampleRow};
use selfplay::store::{RunDir, Store};
use selfplay::tasks::Family;
use selfplay::train::{train_model, Rows, Trainer};
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
        own: None,
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

/// A run with model 0 and 100k random Countdown and Connect Four example
/// rows for iteration 1 (valid shapes, moves and targets).
fn stored_window(cfg: &Config) -> (tempfile::TempDir, RunDir, ModelMeta) {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path().join("run"));
    let parent = selfplay::train::init_model(cfg, &run, 0, "bench").unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let batches: Vec<_> = (0..10)
        .map(|b| {
            let rows: Vec<ExampleRow> = (0..10_000)
                .map(|i| {
                    let family = [Family::Countdown, Family::Connect4][i % 2];
                    let legal: Vec<u16> = (0..family.action_dim().min(7) as u16).collect();
                    ExampleRow {
                        task_id: format!("t{b}-{}", i / 10),
                        family,
                        step: (i % 10) as u32,
                        obs: (0..family.obs_dim()).map(|_| rng.random::<f32>()).collect(),
                        policy_probs: vec![1.0 / legal.len() as f32; legal.len()],
                        visit_counts: vec![1; legal.len()],
                        policy_actions: legal.clone(),
                        legal,
                        value: rng.random_range(-1.0..1.0),
                        weight: 1.0,
                        proven: false,
                        model_id: "iteration=000000".into(),
                        ownership: match family {
                            Family::Connect4 => (0..42).map(|c| (c % 3) as u8).collect(),
                            _ => Vec::new(),
                        },
                    }
                })
                .collect();
            examples_batch(&rows, 1).unwrap()
        })
        .collect();
    let claim = Claim::acquire(&run, "bench examples", false).unwrap();
    let meta = FileMeta {
        stage: "play".into(),
        num_shards: 1,
        ..FileMeta::default()
    };
    stage_part(
        &claim,
        &run.examples(1),
        &Store::Examples.schema(),
        &meta,
        &batches,
        None,
    )
    .unwrap()
    .commit()
    .unwrap();
    (tmp, run, parent)
}

fn stage(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_stage");
    group.sample_size(10);
    const STEPS: u64 = 100;
    group.throughput(Throughput::Elements(STEPS * BATCH as u64));
    for (name, buffer) in [("whole_window", 200_000), ("streamed", 10_000)] {
        let set: Vec<String> = vec![
            format!("train.steps={STEPS}"),
            format!("train.shuffle_buffer={buffer}"),
            "train.checkpoint_every=0".into(),
        ];
        let cfg = Config::load(None, &set).unwrap();
        let (_tmp, run, parent) = stored_window(&cfg);
        let claim = Claim::acquire(&run, "bench train", false).unwrap();
        let mut shares = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                let meta = train_model(&cfg, &claim, 1, &parent, StageMeter::start()).unwrap();
                let share = meta.metrics.and_then(|m| m.detail.read_share);
                shares.push(share.unwrap_or(f64::NAN));
            })
        });
        let mean = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
        println!(
            "summary: train stage, {name} (100k rows, shuffle buffer {buffer}): {:.1}% of wall time reading Parquet and assembling minibatches",
            100.0 * mean
        );
    }
    group.finish();
}

criterion_group!(benches, network, training, stage);
criterion_main!(benches);
