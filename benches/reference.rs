//! The reference search workload (issue 12), measured in one run:
//! Connect Four from the empty board, 256 self-play games all in flight,
//! 64 simulations per move, the default residual MLP (width 256, 2
//! blocks) with random weights. Prints network rows/s alone at batch 256,
//! then simulations/s and positions/s of PUCT and Gumbel search with and
//! without the evaluation cache, each beside the network-alone figure, the
//! cache's hit rate, and the process's peak RSS.
//!
//! `cargo bench --bench reference` (scripts/env.sh sourced);
//! `REFERENCE_GAMES=64` for a quicker, smaller run; `REFERENCE_ONLY=puct/0`
//! for the rows whose `search/cache/overlap/lanes` name contains it;
//! `REFERENCE_SET="infer.threads=1"` for config overrides (`;`-separated);
//! `REFERENCE_SET="infer.device=cuda"` runs the network on ONNX Runtime's
//! CUDA provider (scripts/gpu-check.sh).

mod common;

use rand::{Rng, SeedableRng};
use selfplay::config::{parse_device, Algorithm, Config};
use selfplay::infer::{init_runtime, Device, OnnxModel};
use selfplay::mcts::evaluator::Evaluator;
use selfplay::mcts::{Agent, BatchedSearch, EpisodeSpec, SearchParams, SearchStats};
use selfplay::tasks::{Family, Game};
use std::time::Instant;

const CONFIG: &str = "[families.connect4]\nweight = 1.0\ndifficulty = [0.0, 0.0]\n";
const CACHE_ENTRIES: usize = 1 << 20;

fn main() {
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (games, repeats) = (var("REFERENCE_GAMES", 256), var("REFERENCE_REPEATS", 3));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("reference.toml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    // REFERENCE_SET="infer.threads=1;infer.spin=true": config overrides.
    let mut sets = vec!["mcts.num_simulations=64".to_string()];
    let extra = std::env::var("REFERENCE_SET").unwrap_or_default();
    sets.extend(extra.split(';').filter(|s| !s.is_empty()).map(String::from));
    let cfg = Config::load(Some(&cfg_path), &sets).unwrap();
    let model_path = common::random_model(&cfg, dir.path());
    init_runtime(None).unwrap();
    let device = parse_device(&cfg.infer.device).unwrap();
    let threads = (cfg.infer.threads, cfg.infer.spin);
    let load = || OnnxModel::load_with(&model_path, device, threads).unwrap();
    let net = network_rows_per_s(&mut load(), 256);
    let one = network_rows_per_s(
        &mut OnnxModel::load_with(&model_path, device, (1, cfg.infer.spin)).unwrap(),
        128,
    );
    println!(
        "reference: connect4, {games} games, 64 simulations, mlp 256x2, {} threads, network on {}",
        rayon::current_num_threads(),
        cfg.infer.device
    );
    let split = concurrent_rows_per_s(&model_path, device, cores, 256 / cores);
    println!("network alone, batch 256: {net:.0} rows/s (one thread, batch 128: {one:.0})");
    println!(
        "network alone as {cores} one-thread sessions of batch {} at once: {split:.0} rows/s",
        256 / cores
    );
    println!(
        "{:<8} {:>6} {:>8} {:>6} {:>10} {:>9} {:>8} {:>10} {:>9} {:>9} {:>6} {:>8}",
        "search",
        "cache",
        "overlap",
        "lanes",
        "sims/s",
        "x network",
        "pos/s",
        "net rows/s",
        "hit rate",
        "net share",
        "cpu",
        "rss MB"
    );
    // Lanes: one search loop per core, each with a one-thread session.
    let (c, lanes) = (CACHE_ENTRIES, cores);
    let runs = [
        (Algorithm::Puct, 0, false, 1),
        (Algorithm::Puct, 0, true, 1),
        (Algorithm::Puct, c, false, 1),
        (Algorithm::Puct, c, true, 1),
        (Algorithm::Puct, 0, false, lanes),
        (Algorithm::Puct, c, false, lanes),
        (Algorithm::Gumbel, 0, false, 1),
        (Algorithm::Gumbel, c, true, 1),
        (Algorithm::Gumbel, 0, false, lanes),
        (Algorithm::Gumbel, c, false, lanes),
    ];
    let only = std::env::var("REFERENCE_ONLY").unwrap_or_default();
    for (algorithm, cache, overlap, lanes) in runs {
        let name = format!("{algorithm:?}/{cache}/{overlap}/{lanes}").to_lowercase();
        if !name.contains(&only) {
            continue;
        }
        let threads = if lanes > 1 {
            ((cores / lanes).max(1), cfg.infer.spin)
        } else {
            threads
        };
        // The fastest of `repeats` runs: other load on the machine only slows a run down.
        let (s, secs, cpu) = (0..repeats)
            .map(|_| {
                let model = OnnxModel::load_with(&model_path, device, threads).unwrap();
                let specs = episodes(games);
                let (t, cpu) = (Instant::now(), cpu_seconds());
                let s = self_play(model, &cfg, (algorithm, cache, overlap, lanes), specs);
                let secs = t.elapsed().as_secs_f64();
                let cpu = (cpu_seconds() - cpu) / secs / cores as f64;
                (s, secs, cpu)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let sims = s.simulations as f64 / secs;
        println!(
            "{:<8} {:>6} {:>8} {:>6} {:>10.0} {:>9.2} {:>8.0} {:>10.0} {:>9.3} {:>9.2} {:>6.2} {:>8.0}",
            format!("{algorithm:?}").to_lowercase(),
            if cache > 0 { "on" } else { "off" },
            if overlap { "on" } else { "off" },
            lanes,
            sims,
            sims / net,
            s.moves as f64 / secs,
            s.network_rows as f64 / secs,
            s.cache_hit_rate(),
            s.eval_time.as_secs_f64() / secs,
            cpu,
            peak_rss_mb(),
        );
    }
}

/// Rows/s of the network alone at `batch` on random boards: the best of
/// ten half-second spans.
fn network_rows_per_s(model: &mut OnnxModel, batch: usize) -> f64 {
    let mut obs = vec![0.0f32; batch * model.obs_dim()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    obs.iter_mut()
        .for_each(|x| *x = f32::from(rng.random::<bool>()));
    let (mut p, mut v) = (vec![0.0; batch * model.action_dim()], vec![0.0; batch]);
    for _ in 0..20 {
        model.run(&obs, batch, &mut p, &mut v).unwrap();
    }
    (0..10)
        .map(|_| {
            let t = Instant::now();
            let mut reps = 0;
            while t.elapsed().as_secs_f64() < 0.5 {
                model.run(&obs, batch, &mut p, &mut v).unwrap();
                reps += 1;
            }
            (reps * batch) as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn self_play(
    model: OnnxModel,
    cfg: &Config,
    (algorithm, cache, overlap, lanes): (Algorithm, usize, bool, usize),
    specs: Vec<EpisodeSpec>,
) -> SearchStats {
    let games = specs.len();
    let net = Evaluator::network(model, "reference".into(), cfg.rollout_mix(), cache);
    let mut agents = [Agent::search(net, algorithm)];
    let mut search = BatchedSearch {
        params: SearchParams::from_config(&cfg.mcts, true),
        agents: &mut agents,
        obs_dim: cfg.model_spec().obs_dim,
        action_dim: cfg.model_spec().action_dim,
        parallel: games,
        overlap,
        lanes,
    };
    search.run(specs.into_iter(), |_| Ok(())).unwrap()
}

/// Rows/s of `sessions` one-thread sessions, each at `batch`, all
/// running at once on their own threads: the network's rate when each
/// core runs its own calls, as search lanes do.
fn concurrent_rows_per_s(
    path: &std::path::Path,
    device: Device,
    sessions: usize,
    batch: usize,
) -> f64 {
    let rates: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..sessions)
            .map(|_| {
                scope.spawn(|| {
                    let mut m = OnnxModel::load_with(path, device, (1, false)).unwrap();
                    network_rows_per_s(&mut m, batch)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    rates.iter().sum()
}

/// `games` self-play episodes from the empty board, made before timing.
fn episodes(games: usize) -> Vec<EpisodeSpec> {
    (0..games as u64)
        .map(|i| {
            let task = Family::Connect4.generate(0.0, i);
            EpisodeSpec {
                game: Game::from_task(&task).unwrap(),
                task,
                seed: i,
                agents: [0, 0],
            }
        })
        .collect()
}

/// This process's CPU seconds (user and system) so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks of 1/100 s, the Linux default.
    (field(11) + field(12)) / 100.0
}

/// The kernel's high-water mark of this process's resident memory.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
