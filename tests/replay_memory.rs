//! The replay window streams through a bounded shuffle buffer: training on
//! a store sixteen times larger than the buffer peaks at about the memory
//! of training on a small one, while loading the large window whole (the
//! buffer raised above it) takes visibly more, so the test can tell.
#![cfg(feature = "train")]

mod common;
use common::*;
use selfplay::store::lock::Claim;
use selfplay::store::parquet_io::{stage_part, FileMeta};
use selfplay::store::rows::{examples_batch, ExampleRow};
use selfplay::store::{RunDir, Store};
use selfplay::tasks::Family;
use std::path::Path;

/// Rows held in memory by the streaming runs.
const BUFFER: usize = 20_000;

/// A committed examples part for iteration 1 with `rows` Connect Four rows
/// (random 0/1 boards, all seven moves legal, a uniform policy).
fn write_examples(out: &Path, rows: usize) {
    let run = RunDir::new(out);
    let claim = Claim::acquire(&run, "test examples", false).unwrap();
    let schema = Store::Examples.schema();
    let meta = FileMeta {
        stage: "play".into(),
        num_shards: 1,
        ..FileMeta::default()
    };
    let f = Family::Connect4;
    let batches: Vec<_> = (0..rows)
        .collect::<Vec<_>>()
        .chunks(50_000)
        .map(|chunk| {
            let part: Vec<ExampleRow> = chunk
                .iter()
                .map(|&k| ExampleRow {
                    task_id: format!("t{}", k / 20),
                    family: f,
                    step: (k % 20) as u32,
                    obs: (0..f.obs_dim())
                        .map(|i| ((k * 31 + i * 7) % 3 == 0) as u8 as f32)
                        .collect(),
                    legal: (0..7).collect(),
                    policy_actions: (0..7).collect(),
                    policy_probs: vec![1.0 / 7.0; 7],
                    value: if k % 2 == 0 { 1.0 } else { -1.0 },
                    weight: 1.0,
                    proven: false,
                    visit_counts: vec![1; 7],
                    model_id: "iteration=000000".into(),
                    ownership: (0..42).map(|c| ((k + c) % 3) as u8).collect(),
                })
                .collect();
            examples_batch(&part, 1).unwrap()
        })
        .collect();
    let dir = run.examples(1);
    stage_part(&claim, &dir, &schema, &meta, &batches, None)
        .unwrap()
        .commit()
        .unwrap();
}

/// Peak RSS (MB) of `train --iteration 1` on a fresh run holding `rows`
/// examples, with the shuffle buffer at `buffer` rows.
fn train_peak(dir: &Path, rows: usize, buffer: usize) -> f64 {
    let out = dir.join(format!("run-{rows}-{buffer}"));
    let set = |s: String| ["--set".to_string(), s];
    let flags: Vec<String> = [
        set(format!("train.shuffle_buffer={buffer}")),
        set("max_buffer_size=10000000".into()),
        set("train.steps=20".into()),
    ]
    .concat();
    let args = |cmd: &[&str]| -> Vec<String> {
        flags
            .iter()
            .cloned()
            .chain(cmd.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |cmd: &[&str]| {
        let all = args(cmd);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        selfplay(&out, &refs)
    };
    ok(&run(&["init"]));
    write_examples(&out, rows);
    let trained = run(&["train", "--iteration", "1"]);
    ok(&trained);
    assert_eq!(
        stderr(&trained).contains("streaming a window"),
        rows > buffer,
        "{}",
        stderr(&trained)
    );
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("models/iteration=000001/model.json")).unwrap(),
    )
    .unwrap();
    meta["metrics"]["peak_rss_mb"].as_f64().unwrap()
}

#[test]
fn peak_memory_is_bounded_by_the_shuffle_buffer_not_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let small = train_peak(dir.path(), 2 * BUFFER, BUFFER);
    let large = train_peak(dir.path(), 16 * BUFFER, BUFFER);
    let whole = train_peak(dir.path(), 16 * BUFFER, 32 * BUFFER);
    eprintln!("peak RSS: window 2x buffer {small:.0} MB, 16x {large:.0} MB, 16x loaded whole {whole:.0} MB");
    assert!(
        large - small < 40.0,
        "streaming a window 8 times larger took {:.0} MB more",
        large - small
    );
    assert!(
        whole - large > 100.0,
        "loading the window whole took only {:.0} MB more than streaming it",
        whole - large
    );
}
