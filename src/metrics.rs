//! Per-stage resource figures (sysinfo): wall time, mean CPU %, peak RSS,
//! printed as one summary line and written to the metrics store.

use crate::error::Result;
use crate::store::lock::Claim;
use crate::store::parquet_io::{read_marker, read_metrics, read_part, stage_part, FileMeta};
use crate::store::rows::{metrics_batch, metrics_from_batch, MetricDetail, MetricRow};
use crate::store::{committed_parts, is_committed, list_partition, RunDir, Store};
use std::path::Path;
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
        let peak = self
            .peak_rss
            .load(Ordering::Relaxed)
            .max(rss)
            .max(kernel_peak_rss().unwrap_or(0));
        StageFigures {
            seconds,
            cpu_pct: (cpu.saturating_sub(self.cpu_ms_start)) as f64 / 10.0 / seconds.max(1e-9),
            peak_rss_mb: peak as f64 / (1024.0 * 1024.0),
        }
    }
}

/// The kernel's high-water mark of this process's resident memory (Linux
/// `VmHWM`), which no sampling interval can miss.
fn kernel_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Drop for StageMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The metrics row of a stage run on a shard.
pub fn metric_row(
    stage: &str,
    iteration: u32,
    shard: u32,
    items: u64,
    unit: &str,
    fig: &StageFigures,
    detail: MetricDetail,
) -> MetricRow {
    MetricRow {
        stage: stage.into(),
        iteration,
        shard,
        items,
        unit: unit.into(),
        seconds: fig.seconds,
        items_per_s: items as f64 / fig.seconds.max(1e-9),
        cpu_pct: fig.cpu_pct,
        peak_rss_mb: fig.peak_rss_mb,
        detail,
    }
}

/// Prints a stage's one-line summary on stderr.
pub fn print_summary(row: &MetricRow) {
    let d = &row.detail;
    let mut extra = String::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            extra += &format!(" {k}={v}");
        }
    };
    add("examples", d.examples.map(|v| v.to_string()));
    add("sims_per_s", d.sims_per_s.map(|v| format!("{v:.0}")));
    add("evals_per_s", d.evals_per_s.map(|v| format!("{v:.0}")));
    add("net_share", d.net_share.map(|v| format!("{v:.2}")));
    add("policy_loss", d.policy_loss.map(|v| format!("{v:.3}")));
    add("value_loss", d.value_loss.map(|v| format!("{v:.3}")));
    add("read_share", d.read_share.map(|v| format!("{v:.2}")));
    add(
        "cache_hit_rate",
        d.cache_hit_rate.map(|v| format!("{v:.3}")),
    );
    if let Some(ranges) = &d.difficulty {
        for r in ranges {
            add(&r.family, Some(format!("[{:.2},{:.2}]", r.lo, r.hi)));
        }
    }
    eprintln!(
        "{} iteration {} shard {}: {} {} in {:.1}s ({:.1} {}/s){extra} | cpu {:.0}% | peak rss {:.0} MB",
        row.stage,
        row.iteration,
        row.shard,
        row.items,
        row.unit,
        row.seconds,
        row.items_per_s,
        row.unit,
        row.cpu_pct,
        row.peak_rss_mb
    );
}

/// Commits the metrics row (the stage's last commit; its data parts carry
/// the same row in their footers).
pub fn commit_metrics(claim: &Claim, row: &MetricRow, config_hash: &str) -> Result<()> {
    let dir = claim.run.metrics(&row.stage, row.iteration);
    let meta = FileMeta {
        stage: row.stage.clone(),
        config_hash: config_hash.into(),
        model_id: None,
        shard: row.shard,
        num_shards: 1,
        seed: 0,
        inputs: Vec::new(),
    };
    let batch = metrics_batch(std::slice::from_ref(row))?;
    stage_part(claim, &dir, &Store::Metrics.schema(), &meta, &[batch], None)?.commit()?;
    Ok(())
}

/// After a crash between a stage's data commit and its metrics commit,
/// rebuilds the metrics row from the data part's footer.
pub fn restore_metrics(
    claim: &Claim,
    stage: &str,
    iteration: u32,
    shard: u32,
    part: &Path,
) -> Result<()> {
    if is_committed(&claim.run.metrics(stage, iteration), shard) {
        return Ok(());
    }
    let Some(row) = read_metrics(part)? else {
        return Ok(());
    };
    let hash = read_marker(part)?.config_hash;
    commit_metrics(claim, &row, &hash)
}

/// Every committed metrics row of `stage`, by iteration then shard. Each
/// shard commits its own row (marked as one of one), so a missing shard is
/// no error here: the rows that exist are returned.
pub fn read_stage(run: &RunDir, stage: &str) -> Result<Vec<MetricRow>> {
    let schema = Store::Metrics.schema();
    let mut rows = Vec::new();
    let stage_dir = run.root.join("metrics").join(format!("stage={stage}"));
    for (_, dir) in list_partition(&stage_dir, "iteration") {
        for part in committed_parts(&dir)? {
            for b in read_part(&part, &schema)? {
                rows.extend(metrics_from_batch(&b)?);
            }
        }
    }
    Ok(rows)
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
