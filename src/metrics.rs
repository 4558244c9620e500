//! Per-stage resource figures (sysinfo): wall time, mean CPU %, peak RSS,
//! printed as one summary line and written to the metrics store.

use crate::error::Result;
use crate::output::{HEARTBEAT, SUMMARY};
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

/// Reports a stage's one-line summary on stderr: an event whose fields are
/// the row's figures and whose message is the text line
/// (`play iteration 1 shard 0: 64 episodes in 3.1s (...) | cpu 97% | peak rss 210 MB`).
pub fn print_summary(row: &MetricRow) {
    let d = &row.detail;
    let difficulty = d.difficulty.as_ref().map(|ranges| {
        ranges
            .iter()
            .map(|r| format!("{}=[{:.2},{:.2}]", r.family, r.lo, r.hi))
            .collect::<Vec<_>>()
            .join(" ")
    });
    tracing::info!(
        target: SUMMARY,
        stage = row.stage.as_str(),
        iteration = row.iteration,
        shard = row.shard,
        count = row.items,
        unit = row.unit.as_str(),
        seconds = row.seconds,
        rate = row.items_per_s,
        cpu_pct = row.cpu_pct,
        rss_mb = row.peak_rss_mb,
        examples = d.examples,
        sims_per_s = d.sims_per_s,
        evals_per_s = d.evals_per_s,
        net_share = d.net_share,
        policy_loss = d.policy_loss,
        value_loss = d.value_loss,
        read_share = d.read_share,
        cache_hit_rate = d.cache_hit_rate,
        difficulty = difficulty.as_deref(),
        "{}",
        summary_line(row)
    );
}

/// A stage's summary as one text line.
pub fn summary_line(row: &MetricRow) -> String {
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
    format!(
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
    )
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

/// Seconds between heartbeats (`--heartbeat`); 0: none. One value per
/// process, set once by the binary.
static HEARTBEAT_SECS: AtomicU64 = AtomicU64::new(30);

/// Sets the heartbeat interval of [`progress`] (0 turns heartbeats off).
pub fn set_heartbeat(seconds: u64) {
    HEARTBEAT_SECS.store(seconds, Ordering::Relaxed);
}

/// A long stage's work, as its progress reports name it.
#[derive(Clone, Debug)]
pub struct Work {
    pub stage: &'static str,
    pub iteration: Option<u32>,
    pub shard: u32,
    /// What is counted (`episodes`, `games`, `steps`); empty when nothing is.
    pub unit: &'static str,
    /// Units in all, when known up front.
    pub total: Option<u64>,
}

/// One heartbeat: units done so far and seconds since the work started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beat {
    pub done: u64,
    pub elapsed: f64,
}

/// A thread that calls `report` every `every` (at start + k x every, beats
/// it fell behind on skipped) with the units [`Heartbeat::add`]ed so far,
/// until dropped; the drop stops it at once.
pub struct Heartbeat {
    done: Arc<AtomicU64>,
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(every: Duration, report: impl Fn(Beat) + Send + 'static) -> Heartbeat {
        let done = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let seen = done.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut next = start + every;
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_deadline(next)
            {
                report(Beat {
                    done: seen.load(Ordering::Relaxed),
                    elapsed: start.elapsed().as_secs_f64(),
                });
                let now = Instant::now();
                while next <= now {
                    next += every;
                }
            }
        });
        Heartbeat {
            done,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Counts `n` more units done.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The text of a heartbeat: `play iteration 1 shard 0: 120/640 episodes after 30s`.
pub fn heartbeat_line(w: &Work, b: &Beat) -> String {
    let mut s = w.stage.to_string();
    if let Some(it) = w.iteration {
        s += &format!(" iteration {it} shard {}", w.shard);
    }
    let elapsed = b.elapsed.round();
    match (w.unit, w.total) {
        ("", _) => s + &format!(": still running after {elapsed:.0}s"),
        (unit, Some(total)) => s + &format!(": {}/{total} {unit} after {elapsed:.0}s", b.done),
        (unit, None) => s + &format!(": {} {unit} after {elapsed:.0}s", b.done),
    }
}

/// Reports a heartbeat on stderr: an event with the work's fields.
fn report_beat(w: &Work, b: Beat) {
    let counted = !w.unit.is_empty();
    tracing::info!(
        target: HEARTBEAT,
        stage = w.stage,
        iteration = w.iteration,
        shard = w.shard,
        done = counted.then_some(b.done),
        total = w.total,
        unit = (counted).then_some(w.unit),
        elapsed = b.elapsed,
        "{}",
        heartbeat_line(w, &b)
    );
}

/// The progress of a long stage: a bar when stderr is a terminal; else a
/// heartbeat event every `--heartbeat` seconds (none when 0).
pub struct Progress {
    bar: indicatif::ProgressBar,
    beat: Option<Heartbeat>,
}

impl Progress {
    /// Counts `n` more units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(beat) = &self.beat {
            beat.add(n);
        }
    }

    /// Clears the bar and stops the heartbeat.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// Starts reporting the progress of `work`.
pub fn progress(work: Work) -> Progress {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        return Progress {
            bar: bar(work.total.unwrap_or(0), work.stage),
            beat: None,
        };
    }
    Progress {
        bar: indicatif::ProgressBar::hidden(),
        beat: heartbeat(work),
    }
}

/// Heartbeat events for `work` every `--heartbeat` seconds while the value
/// lives; None when stderr is a terminal or heartbeats are off.
pub fn heartbeat(work: Work) -> Option<Heartbeat> {
    use std::io::IsTerminal;
    let secs = HEARTBEAT_SECS.load(Ordering::Relaxed);
    (secs > 0 && !std::io::stderr().is_terminal())
        .then(|| Heartbeat::start(Duration::from_secs(secs), move |b| report_beat(&work, b)))
}

/// A progress bar on stderr (a terminal).
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_heartbeat_reports_the_units_done_and_stops_when_dropped() {
        let beats = Arc::new(Mutex::new(Vec::new()));
        let seen = beats.clone();
        let every = Duration::from_millis(40);
        let hb = Heartbeat::start(every, move |b| seen.lock().unwrap().push(b));
        hb.add(5);
        std::thread::sleep(Duration::from_millis(130));
        hb.add(2);
        std::thread::sleep(Duration::from_millis(200));
        let dropped = Instant::now();
        drop(hb);
        assert!(dropped.elapsed() < Duration::from_millis(500), "slow stop");
        let beats = beats.lock().unwrap().clone();
        let after = beats.len();
        assert!(after >= 2, "{beats:?}");
        assert!(
            beats.iter().all(|b| b.done == 5 || b.done == 7),
            "{beats:?}"
        );
        assert!(beats
            .windows(2)
            .all(|w| w[0].done <= w[1].done && w[0].elapsed < w[1].elapsed));
        assert!(beats.iter().all(|b| b.elapsed >= 0.04), "{beats:?}");
        assert_eq!(beats.last().unwrap().done, 7, "{beats:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(beats.len(), after, "beats after the drop");
    }

    #[test]
    fn a_heartbeat_dropped_early_never_beats() {
        let beats = Arc::new(Mutex::new(Vec::new()));
        let seen = beats.clone();
        let started = Instant::now();
        drop(Heartbeat::start(Duration::from_secs(3600), move |b| {
            seen.lock().unwrap().push(b)
        }));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(beats.lock().unwrap().is_empty());
    }

    #[test]
    fn heartbeat_lines_name_the_work() {
        let play = Work {
            stage: "play",
            iteration: Some(1),
            shard: 0,
            unit: "episodes",
            total: Some(640),
        };
        let beat = Beat {
            done: 120,
            elapsed: 30.2,
        };
        assert_eq!(
            heartbeat_line(&play, &beat),
            "play iteration 1 shard 0: 120/640 episodes after 30s"
        );
        let distill = Work {
            stage: "distill",
            iteration: None,
            shard: 0,
            unit: "",
            total: None,
        };
        assert_eq!(
            heartbeat_line(&distill, &beat),
            "distill: still running after 30s"
        );
    }

    #[test]
    fn summary_lines_keep_their_text() {
        let row = MetricRow {
            stage: "play".into(),
            iteration: 1,
            shard: 0,
            items: 64,
            unit: "episodes".into(),
            seconds: 3.12,
            items_per_s: 20.38,
            cpu_pct: 97.4,
            peak_rss_mb: 210.2,
            detail: MetricDetail {
                examples: Some(700),
                cache_hit_rate: Some(0.4567),
                ..MetricDetail::default()
            },
        };
        assert_eq!(
            summary_line(&row),
            "play iteration 1 shard 0: 64 episodes in 3.1s (20.4 episodes/s) examples=700 cache_hit_rate=0.457 | cpu 97% | peak rss 210 MB"
        );
    }
}
