//! Training that resumes: `train` killed at any moment (before the first
//! checkpoint, right after one, between two, while committing the model)
//! and rerun ends with exactly the weights and optimizer state of an
//! uninterrupted run, for an architecture without and one with a weight
//! average and deep supervision, and for a replay that streams through a
//! shuffle buffer smaller than its window. The curves part is identical too.
#![cfg(feature = "train")]

mod common;
use common::*;
use std::path::Path;

/// Flags of every command in these runs: the architecture (and `extra`
/// settings), a checkpoint every 7 of the smoke config's 30 minibatches,
/// and a curve point every 5.
fn flags(arch: &str) -> Vec<String> {
    let (arch, extra) = arch.split_once(' ').unwrap_or((arch, ""));
    let mut flags: Vec<String> = vec![
        "--set".into(),
        format!("model.arch=\"{arch}\""),
        "--set".into(),
        "train.checkpoint_every=7".into(),
        "--set".into(),
        "train.curve_every=5".into(),
    ];
    for set in extra.split_whitespace() {
        flags.extend(["--set".into(), set.into()]);
    }
    flags
}

fn run(out: &Path, arch: &str, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut all: Vec<String> = flags(arch);
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut cmd = command(out, &refs);
    if let Some(f) = failpoint {
        cmd.env("SELFPLAY_FAILPOINT", f);
    }
    cmd.output().unwrap()
}

/// The files a finished training leaves, byte for byte (model.json without
/// its timing figures).
fn trained(out: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = out.join("models/iteration=000001");
    let mut files: Vec<(String, Vec<u8>)> =
        ["weights.safetensors", "optimizer.safetensors", "model.onnx"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
            .collect();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("metrics");
    meta.as_object_mut().unwrap().remove("producer");
    files.push(("model.json".into(), meta.to_string().into_bytes()));
    let curves = out.join("curves/iteration=1/part-00000.parquet");
    files.push(("curves".into(), std::fs::read(curves).unwrap()));
    files
}

/// Kill points: before the first checkpoint, right after the checkpoint
/// at step 7 is committed, mid-way, just before the last step, and while
/// the model's files are committed.
/// With the step the rerun must resume after (None: from the start).
const KILLS: &[(&str, Option<usize>)] = &[
    ("train-step:iteration=1/step=3/", None),
    ("after-commit:checkpoints/train-iteration=1", Some(7)),
    ("train-step:iteration=1/step=16/", Some(14)),
    ("train-step:iteration=1/step=29/", Some(28)),
    ("before-commit:models/iteration=000001/model.json", Some(28)),
];

fn resumes_exactly(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let played = dir.path().join("played");
    ok(&run(&played, arch, &["init"], None));
    ok(&run(&played, arch, &["tasks", "--iteration", "1"], None));
    ok(&run(&played, arch, &["play", "--iteration", "1"], None));

    let reference = dir.path().join("reference");
    copy_dir(&played, &reference);
    let first = run(&reference, arch, &["train", "--iteration", "1"], None);
    ok(&first);
    assert_eq!(
        stderr(&first).contains("streaming a window"),
        arch.contains("shuffle_buffer"),
        "{arch}: {}",
        stderr(&first)
    );
    let want = trained(&reference);

    for (k, &(point, resume)) in KILLS.iter().enumerate() {
        let out = dir.path().join(format!("kill{k}"));
        copy_dir(&played, &out);
        let killed = run(&out, arch, &["train", "--iteration", "1"], Some(point));
        assert!(
            !killed.status.success() && stderr(&killed).contains("failpoint"),
            "{arch} {point}: the failpoint was never reached: {}",
            stderr(&killed)
        );
        let rerun = run(&out, arch, &["train", "--iteration", "1"], None);
        ok(&rerun);
        let said = stderr(&rerun);
        match resume {
            Some(step) => assert!(
                said.contains(&format!("resuming after step {step} of 30")),
                "{arch} {point}: {said}"
            ),
            None => assert!(!said.contains("resuming"), "{arch} {point}: {said}"),
        }
        let got = trained(&out);
        for ((name, a), (_, b)) in want.iter().zip(&got) {
            assert!(
                a == b,
                "{arch} {point}: {name} differs from the uninterrupted run"
            );
        }
        assert!(
            !out.join(".selfplay/checkpoints/train-iteration=1.safetensors")
                .exists(),
            "{arch} {point}: the checkpoint outlived its model"
        );
    }
}

#[test]
fn a_killed_mlp_training_resumes_to_the_same_weights() {
    resumes_exactly("mlp");
}

#[test]
fn a_killed_trm_training_resumes_to_the_same_weights() {
    resumes_exactly("trm");
}

/// A window several times the shuffle buffer: the stream is replayed to
/// the checkpoint's position on resume.
#[test]
fn a_killed_streaming_training_resumes_to_the_same_weights() {
    resumes_exactly("mlp train.shuffle_buffer=300");
}
