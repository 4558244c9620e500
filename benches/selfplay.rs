//! Throughput of the self-play hot path, measured in one run:
//! - network rows/s through ONNX Runtime at batch sizes 1 to 256;
//! - batched self-play simulations/s and positions (moves)/s at the default batch;
//! - the ratio of search throughput to the network-bound limit.
//!
//! `cargo bench --bench selfplay` (scripts/env.sh sourced for ORT_DYLIB_PATH).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use selfplay::config::Config;
use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::mcts::evaluator::Evaluator;
use selfplay::mcts::{Agent, BatchedSearch, EpisodeSpec, SearchParams, SearchStats};
use selfplay::model::ModelSpec;
use selfplay::tasks::{Family, Game};
use std::path::PathBuf;
use std::time::Instant;

/// A model of the default config's shape with random weights.
fn default_model(dir: &std::path::Path) -> (PathBuf, ModelSpec, Config) {
    let cfg = Config::load(None, &[]).unwrap();
    (common::random_model(&cfg, dir), cfg.model_spec(), cfg)
}

fn load(path: &std::path::Path, cfg: &Config) -> OnnxModel {
    init_runtime(None).unwrap();
    OnnxModel::load_with(
        path,
        Device::Cpu,
        (cfg.infer.session_threads(), cfg.infer.spin),
    )
    .unwrap()
}

fn network(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (path, spec, cfg) = default_model(dir.path());
    let mut model = load(&path, &cfg);
    let mut group = c.benchmark_group("network_rows");
    for batch in [1usize, 4, 16, 64, 256] {
        let obs = vec![0.5f32; batch * spec.obs_dim];
        let (mut p, mut v) = (vec![0.0; batch * spec.action_dim], vec![0.0; batch]);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &n| {
            b.iter(|| model.run(&obs, n, &mut p, &mut v).unwrap())
        });
    }
    group.finish();
}

/// Mixed Countdown and Connect Four self-play episodes, as `play` builds them.
fn episodes(cfg: &Config, n: usize) -> Vec<EpisodeSpec> {
    (0..n as u64)
        .map(|i| {
            let family = if i % 2 == 0 {
                Family::Countdown
            } else {
                Family::Connect4
            };
            let fc = &cfg.families[family.name()];
            let d = (fc.difficulty[0] + fc.difficulty[1]) / 2.0;
            let task = family.generate(d, i);
            EpisodeSpec {
                game: Game::from_task(&task).unwrap(),
                task,
                seed: i,
                agents: [0, 0],
            }
        })
        .collect()
}

fn self_play(model: OnnxModel, cfg: &Config, spec: &ModelSpec, n: usize) -> SearchStats {
    let cache = cfg.mcts.cache_entries as usize;
    let network = Evaluator::network(model, "bench".into(), cfg.rollout_mix(), cache);
    let mut agents = [Agent::search(network, cfg.mcts.algorithm)];
    let mut search = BatchedSearch {
        params: SearchParams::from_config(&cfg.mcts, true),
        agents: &mut agents,
        obs_dim: spec.obs_dim,
        action_dim: spec.action_dim,
        parallel: cfg.parallel_batch_size,
        overlap: cfg.infer.overlap,
        lanes: cfg.infer.lanes(),
    };
    search
        .run(episodes(cfg, n).into_iter(), |_| Ok(()))
        .unwrap()
}

fn search(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (path, spec, cfg) = default_model(dir.path());
    // Two slot-fulls of episodes, so finished slots are refilled as in `play`.
    let n = 2 * cfg.parallel_batch_size;
    let probe = self_play(load(&path, &cfg), &cfg, &spec, n);
    let mut group = c.benchmark_group("self_play");
    group.sample_size(10);
    group.throughput(Throughput::Elements(probe.simulations));
    group.bench_function(BenchmarkId::new("simulations", n), |b| {
        b.iter(|| self_play(load(&path, &cfg), &cfg, &spec, n))
    });
    group.throughput(Throughput::Elements(probe.moves));
    group.bench_function(BenchmarkId::new("positions", n), |b| {
        b.iter(|| self_play(load(&path, &cfg), &cfg, &spec, n))
    });
    group.finish();

    // The ratio, timed in this same run: search sims/s over network rows/s
    // at the wave's batch size (the network-bound limit).
    let mut model = load(&path, &cfg);
    let rows = cfg.parallel_batch_size;
    let obs = vec![0.5f32; rows * spec.obs_dim];
    let (mut p, mut v) = (vec![0.0; rows * spec.action_dim], vec![0.0; rows]);
    let t = Instant::now();
    let reps = 400;
    for _ in 0..reps {
        model.run(&obs, rows, &mut p, &mut v).unwrap();
    }
    let net_rows_per_s = (reps * rows) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let stats = self_play(model, &cfg, &spec, n);
    let secs = t.elapsed().as_secs_f64();
    let sims_per_s = stats.simulations as f64 / secs;
    println!(
        "summary: network {net_rows_per_s:.0} rows/s at batch {rows}; self-play {sims_per_s:.0} simulations/s, {:.0} positions/s, {:.0} network rows/s; search at {:.0}% of the network-bound limit; network share of wall time {:.0}%",
        stats.moves as f64 / secs,
        stats.evaluations as f64 / secs,
        100.0 * (stats.evaluations as f64 / secs) / net_rows_per_s,
        100.0 * stats.eval_time.as_secs_f64() / secs,
    );
}

criterion_group!(benches, network, search);
criterion_main!(benches);
