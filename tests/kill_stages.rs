//! Each stage run as its own batch job, killed (an abort, like SIGKILL) at
//! several points, then rerun, leaves exactly the stores an uninterrupted
//! job leaves: the same rows and content, nothing stray, no temporary file.
//! (`run` and `train` have their own kill tests in commit.rs and resume.rs;
//! `store::commit` tests that distill's two splits are replaced as one.)

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The stage jobs of iteration 1, in order, each with its kill points:
/// before and after its first commit, and between two of its commits.
const STAGES: &[(&[&str], &[&str])] = &[
    (
        &["tasks", "--iteration", "1"],
        &[
            "before-commit:heldout/family=",
            "after-commit:heldout/family=countdown",
            "before-commit:tasks/iteration=1/family=connect4",
            "after-commit:tasks/iteration=1/family=countdown",
            "before-commit:metrics/stage=tasks",
        ],
    ),
    (
        &["play", "--iteration", "1"],
        &[
            "before-commit:examples/iteration=1",
            "after-commit:examples/iteration=1",
            "after-commit:episodes/iteration=1",
            "before-commit:metrics/stage=play",
        ],
    ),
    (&["train", "--iteration", "1"], &[]),
    (
        &["eval", "--iteration", "1", "--promote"],
        &[
            "before-commit:results/iteration=1",
            "after-commit:results/iteration=1",
            "after-commit:evals/iteration=1",
            "after-commit:metrics/stage=eval",
            "before-commit:metrics/stage=eval",
        ],
    ),
    (
        &["distill", "--search-notes"],
        &[
            "before-commit:traces",
            "after-commit:traces",
            "before-commit:metrics/stage=distill",
        ],
    ),
];

/// Runs the stages uninterrupted from `init`, keeping a copy of the run
/// before each stage; returns the copies.
fn reference(root: &Path) -> Vec<PathBuf> {
    let out = root.join("reference");
    ok(&selfplay(&out, &["init"]));
    let mut before = Vec::new();
    for (k, (args, _)) in STAGES.iter().enumerate() {
        let copy = root.join(format!("before{k}"));
        copy_dir(&out, &copy);
        before.push(copy);
        ok(&selfplay(&out, args));
    }
    before.push(out);
    before
}

#[test]
fn every_stage_killed_at_any_point_then_rerun_gives_the_uninterrupted_stores() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = reference(dir.path());
    for (k, (args, points)) in STAGES.iter().enumerate() {
        let want = digest(&snapshots[k + 1]);
        for (i, point) in points.iter().enumerate() {
            let out = dir.path().join(format!("kill{k}-{i}"));
            copy_dir(&snapshots[k], &out);
            let job = format!("{} at {point}", args.join(" "));
            let mut cmd = command(&out, args);
            let killed = cmd.env("SELFPLAY_FAILPOINT", point).output().unwrap();
            assert!(
                !killed.status.success() && stderr(&killed).contains("failpoint"),
                "{job}: the kill point was never reached: {}",
                stderr(&killed)
            );
            let seen = digest(&out);
            assert_eq!(seen["stray_files"], serde_json::json!([]), "{job}");
            assert_eq!(seen["rows"], seen["footer_rows"], "{job}: {seen}");

            ok(&selfplay(&out, args));
            let got = digest(&out);
            for key in [
                "rows",
                "content",
                "metrics",
                "episodes_digest",
                "stray_files",
            ] {
                assert_eq!(got[key], want[key], "{job}: {key} after the rerun");
            }
            assert!(
                files_with_suffix(&out, ".tmp").is_empty(),
                "{job}: temporary files left"
            );
            let best = |d: &Path| std::fs::read_to_string(d.join("models/BEST")).unwrap();
            assert_eq!(best(&out), best(&snapshots[k + 1]), "{job}: models/BEST");
        }
    }
}
