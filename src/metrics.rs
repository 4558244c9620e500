//! Per-stage resource figures (sysinfo): wall time, mean CPU %, peak RSS,
//! printed as one summary line and written to the metrics store.

use crate::error::Result;
use crate::store::parquet_io::{write_part, FileMeta};
use crate::store::rows::{metrics_batch, MetricRow};
use crate::store::{RunDir, Store};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Watches this process while a stage runs.
pub struct StageMeter {
    start: Instant,
    cpu_ms_start: u64,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

/// What a stage measured.
#[derive(Clone, Debug)]
pub struct StageFigures {
    pub seconds: f64,
    pub cpu_pct: f64,
    pub peak_rss_mb: f64,
}

fn sample() -> (u64, u64) {
    let Ok(pid) = sysinfo::get_current_pid() else {
        return (0, 0);
    };
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_memory().with_cpu(),
    );
    sys.process(Pid::from(pid.as_u32() as usize))
        .map(|p| (p.accumulated_cpu_time(), p.memory()))
        .unwrap_or((0, 0))
}

impl StageMeter {
    pub fn start() -> StageMeter {
        let (cpu, rss) = sample();
        let peak_rss = Arc::new(AtomicU64::new(rss));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_rss.clone(), stop.clone());
        let sampler = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(sample().1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        StageMeter {
            start: Instant::now(),
            cpu_ms_start: cpu,
            peak_rss,
            stop,
            sampler: Some(sampler),
        }
    }

    pub fn finish(mut self) -> StageFigures {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
        let (cpu, rss) = sample();
        let seconds = self.start.elapsed().as_secs_f64();
        let peak = self.peak_rss.load(Ordering::Relaxed).max(rss);
        StageFigures {
            seconds,
            cpu_pct: (cpu.saturating_sub(self.cpu_ms_start)) as f64 / 10.0 / seconds.max(1e-9),
            peak_rss_mb: peak as f64 / (1024.0 * 1024.0),
        }
    }
}

impl Drop for StageMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Prints the stage's summary line and writes its metrics row.
#[allow(clippy::too_many_arguments)]
pub fn report(
    run: &RunDir,
    stage: &str,
    iteration: u32,
    shard: u32,
    items: u64,
    unit: &str,
    fig: &StageFigures,
    detail: serde_json::Value,
    config_hash: &str,
) -> Result<()> {
    let rate = items as f64 / fig.seconds.max(1e-9);
    let extra = detail
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    eprintln!(
        "{stage} iteration {iteration} shard {shard}: {items} {unit} in {:.1}s ({rate:.1} {unit}/s){extra} | cpu {:.0}% | peak rss {:.0} MB",
        fig.seconds, fig.cpu_pct, fig.peak_rss_mb
    );
    let row = MetricRow {
        shard,
        items,
        unit: unit.into(),
        seconds: fig.seconds,
        items_per_s: rate,
        cpu_pct: fig.cpu_pct,
        peak_rss_mb: fig.peak_rss_mb,
        detail: detail.to_string(),
    };
    let dir = run.metrics(stage, iteration);
    let meta = FileMeta {
        stage: stage.into(),
        config_hash: config_hash.into(),
        model_id: None,
    };
    write_part(
        &dir,
        shard,
        &Store::Metrics.schema(),
        &meta,
        &[metrics_batch(&[row])?],
    )?;
    crate::store::write_marker(
        &dir,
        &crate::store::Marker {
            stage: stage.into(),
            shard,
            rows: 1,
            seed: 0,
            config_hash: config_hash.into(),
            inputs: Vec::new(),
            producer: crate::store::producer(),
        },
    )
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}
