//! `report --plot DIR`: the learning-curve figure as PNG and SVG from a run's
//! evals, curves and metrics stores, and a one-line error for a DIR that
//! cannot be made.

mod common;
use common::*;
use selfplay::metrics::commit_metrics;
use selfplay::store::lock::Claim;
use selfplay::store::parquet_io::{stage_part, FileMeta};
use selfplay::store::rows::{
    curves_batch, evals_batch, CurveRow, EvalRow, MetricDetail, MetricRow,
};
use selfplay::store::{RunDir, Store};
use selfplay::tasks::Family;
use std::path::Path;

fn eval_row(family: Family, opponent: &str, rate: f64) -> EvalRow {
    EvalRow {
        model_id: "iteration=000001".into(),
        agent: "candidate".into(),
        opponent: opponent.into(),
        family,
        bucket: "all".into(),
        games: 20,
        wins: (rate * 20.0) as u32,
        draws: 0,
        losses: 20 - (rate * 20.0) as u32,
        rate,
        ci_low: (rate - 0.2).max(0.0),
        ci_high: (rate + 0.2).min(1.0),
        simulations: 16,
    }
}

fn metric(stage: &str, iteration: u32, items: u64, unit: &str) -> MetricRow {
    MetricRow {
        stage: stage.into(),
        iteration,
        shard: 0,
        items,
        unit: unit.into(),
        seconds: 2.0,
        items_per_s: items as f64 / 2.0,
        cpu_pct: 100.0,
        peak_rss_mb: 200.0,
        detail: MetricDetail::default(),
    }
}

fn curve(iteration: u32, step: u64, split: &str) -> CurveRow {
    let t = step as f64;
    // Held-out loss above the training loss, as it is after fitting.
    let gap = if split == "heldout" { 1.15 } else { 1.0 };
    CurveRow {
        iteration,
        step,
        split: split.into(),
        family: "all".into(),
        rows: 64,
        policy_loss: gap * 2.0 / (1.0 + t / 10.0),
        value_loss: gap * 0.8 / (1.0 + t / 20.0),
        entropy: 1.0,
        top1: 0.5,
        value_error: 0.3,
        learning_rate: 0.002,
        grad_norm: (split == "train").then_some(1.0),
    }
}

fn commit(claim: &Claim, dir: &Path, store: Store, stage: &str, batch: arrow::array::RecordBatch) {
    let meta = FileMeta {
        stage: stage.into(),
        num_shards: 1,
        ..FileMeta::default()
    };
    stage_part(claim, dir, &store.schema(), &meta, &[batch], None)
        .unwrap()
        .commit()
        .unwrap();
}

/// A run directory with two evaluated iterations of countdown and connect4,
/// play and train metrics, and (when `curves`) training curves.
fn tiny_run(out: &Path, curves: bool) {
    let run = RunDir::new(out);
    let claim = Claim::acquire(&run, "test plot", false).unwrap();
    for (it, rate) in [(1u32, 0.3), (2, 0.55)] {
        let rows = [
            eval_row(Family::Countdown, "none", rate),
            eval_row(Family::Connect4, "mcts_rollout", rate / 2.0),
            // Neither the candidate nor the headline opponent: not plotted.
            eval_row(Family::Connect4, "random", 0.9),
        ];
        let batch = evals_batch(&rows, Some(it)).unwrap();
        commit(&claim, &run.evals(it), Store::Evals, "eval", batch);
        commit_metrics(&claim, &metric("play", it, 64, "episodes"), "h").unwrap();
        commit_metrics(&claim, &metric("train", it, 30, "steps"), "h").unwrap();
        if curves {
            let rows: Vec<CurveRow> = (0..4)
                .flat_map(|k| {
                    let step = (it as u64 - 1) * 30 + k * 10;
                    [curve(it, step, "train"), curve(it, step, "heldout")]
                })
                .collect();
            commit(
                &claim,
                &run.curves(it),
                Store::Curves,
                "train",
                curves_batch(&rows).unwrap(),
            );
        }
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "PNG too short: {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "no PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The SVG document: an `<svg>` root (after an optional XML header) that closes.
fn svg_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.trim();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .expect("XML header closes")
            .1
            .trim_start(),
        None => body,
    };
    assert!(
        body.starts_with("<svg"),
        "does not start with <svg: {}",
        &body[..body.len().min(80)]
    );
    assert!(body.ends_with("</svg>"), "does not end with </svg>");
    text
}

#[test]
fn report_plot_writes_png_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    tiny_run(&out, true);
    let plots = tmp.path().join("plots/nested");
    let stdout = ok(&selfplay(
        &out,
        &["report", "--plot", plots.to_str().unwrap()],
    ));
    assert!(
        stdout.contains("| countdown |"),
        "the table is still printed: {stdout}"
    );
    let (png, svg) = (plots.join("curves.png"), plots.join("curves.svg"));
    for f in [&png, &svg] {
        assert!(
            stdout.contains(&format!("wrote {}", f.display())),
            "{stdout}"
        );
    }
    let size = png_size(&std::fs::read(&png).unwrap());
    assert_eq!(size, selfplay::stages::plot::SIZE);
    let text = svg_text(&svg);
    for needle in [
        "countdown",
        "connect4",
        "iteration",
        "minibatch step",
        "policy loss, heldout",
        "episodes/s",
    ] {
        assert!(text.contains(needle), "SVG lacks '{needle}'");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&plots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "curves.png" && n != "curves.svg")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_run_without_curves_still_gets_its_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    tiny_run(&out, false);
    let plots = tmp.path().join("plots");
    ok(&selfplay(
        &out,
        &["report", "--plot", plots.to_str().unwrap()],
    ));
    assert_eq!(
        png_size(&std::fs::read(plots.join("curves.png")).unwrap()),
        selfplay::stages::plot::SIZE
    );
    let text = svg_text(&plots.join("curves.svg"));
    assert!(
        text.contains("no curves store"),
        "SVG lacks the missing-store caption"
    );
    assert!(text.contains("countdown"));
}

#[test]
fn plot_dir_under_a_regular_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    tiny_run(&out, false);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let bad = file.join("plots");
    let o = selfplay(&out, &["report", "--plot", bad.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0), "expected a failure");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(&bad.display().to_string()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn report_plot_on_a_run_without_evals_keeps_the_reports_error() {
    let tmp = tempfile::tempdir().unwrap();
    let plots = tmp.path().join("plots");
    let o = selfplay(
        &tmp.path().join("run"),
        &["report", "--plot", plots.to_str().unwrap()],
    );
    fails_with(&o, &["no evaluated iteration"]);
    assert!(!plots.exists(), "nothing written without evals");
}
