//! Nothing lost, nothing corrupt, nothing misread: crashes at every commit
//! point of the loop, then a rerun, give the stores of an uninterrupted run
//! (metrics included), and a globbing reader never sees an uncommitted row;
//! concurrent writers of one shard never leave a corrupt or duplicated part.

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Output, Stdio};

/// `selfplay run` on the smoke config, crashing at `failpoint` when given.
fn run_with(out: &Path, failpoint: Option<&str>) -> Output {
    let mut cmd = command(out, &["run"]);
    if let Some(f) = failpoint {
        cmd.env("SELFPLAY_FAILPOINT", f);
    }
    cmd.output().unwrap()
}

/// Every point where the loop renames a file into place, before and after.
const COMMIT_POINTS: &[&str] = &[
    "before-commit:heldout/family=",
    "after-commit:heldout/family=",
    "after-commit:tasks/iteration=1/family=",
    "before-commit:metrics/stage=tasks/iteration=1",
    "before-commit:examples/iteration=1",
    "after-commit:examples/iteration=1",
    "after-commit:episodes/iteration=1",
    "after-commit:metrics/stage=play/iteration=1",
    "before-commit:models/iteration=000001/weights",
    "before-commit:models/iteration=000001/model.json",
    "after-commit:models/iteration=000001/model.json",
    "before-commit:results/iteration=1",
    "after-commit:results/iteration=1",
    "before-commit:evals/iteration=1",
    "after-commit:evals/iteration=1",
    "after-commit:metrics/stage=eval/iteration=1",
    "after-commit:episodes/iteration=2",
    "after-commit:models/promotions/iteration=1.json",
    "after-commit:models/BEST",
];

#[test]
fn a_crash_at_any_commit_point_then_a_rerun_gives_the_uninterrupted_stores() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    ok(&run_with(&reference, None));
    let want = digest(&reference);
    assert_eq!(want["stray_files"], serde_json::json!([]));
    for (i, point) in COMMIT_POINTS.iter().enumerate() {
        let out = dir.path().join(format!("crash{i}"));
        let crashed = run_with(&out, Some(point));
        assert!(
            !crashed.status.success(),
            "{point}: the failpoint was never reached: {}",
            stderr(&crashed)
        );
        assert!(stderr(&crashed).contains("failpoint"), "{point}");
        // What a globbing reader sees now: committed parts only, each whole.
        let seen = digest(&out);
        assert_eq!(seen["stray_files"], serde_json::json!([]), "{point}");
        assert_eq!(seen["rows"], seen["footer_rows"], "{point}: {seen}");

        ok(&run_with(&out, None));
        let got = digest(&out);
        for key in ["rows", "metrics", "episodes_digest", "stray_files"] {
            assert_eq!(got[key], want[key], "{point}: {key} after the rerun");
        }
        assert!(
            files_with_suffix(&out, ".tmp").is_empty(),
            "{point}: temporary files left"
        );
    }
}

/// `selfplay ARGS` on the smoke config, as a separate process.
fn spawn(out: &Path, args: &[&str]) -> Child {
    command(out, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn concurrent_writers_of_one_shard_never_corrupt_or_duplicate_it() {
    let (_dir, out) = prepared_run();
    let (mut busy, mut skipped_or_won) = (0, 0);
    for attempt in 0..12 {
        for store in ["episodes/iteration=1", "examples/iteration=1"] {
            let _ = std::fs::remove_dir_all(out.join(store));
        }
        let _ = std::fs::remove_dir_all(out.join("metrics/stage=play"));
        let wait = attempt % 4 == 3;
        let args: &[&str] = if wait {
            &["play", "--iteration", "1", "--wait"]
        } else {
            &["play", "--iteration", "1"]
        };
        let children: Vec<Child> = (0..3).map(|_| spawn(&out, args)).collect();
        for child in children {
            let o = child.wait_with_output().unwrap();
            let err = stderr(&o);
            match o.status.code() {
                Some(0) => skipped_or_won += 1,
                Some(75) if !wait => {
                    busy += 1;
                    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
                    assert!(
                        line.contains("play iteration 1 shard 0")
                            && line.contains("already being written by pid"),
                        "{line}"
                    );
                }
                other => panic!("attempt {attempt}: exit {other:?}: {err}"),
            }
        }
        let d = digest(&out);
        assert_eq!(d["stray_files"], serde_json::json!([]), "{d}");
        assert_eq!(d["rows"]["episodes"], 64, "attempt {attempt}: {d}");
        assert_eq!(d["rows"], d["footer_rows"], "attempt {attempt}: {d}");
        let play_rows = d["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[0] == "play")
            .count();
        assert_eq!(play_rows, 1, "attempt {attempt}: {d}");
    }
    assert!(
        skipped_or_won >= 12,
        "every attempt has a writer that finished"
    );
    eprintln!("concurrent plays: {busy} refused as busy, {skipped_or_won} finished or skipped");
}

#[test]
fn a_read_only_run_dir_names_the_cause() {
    let (_dir, out) = prepared_run();
    let tmp = out.join(".selfplay/tmp");
    // A file where the temporary folder belongs: writing there fails, as on
    // a read-only or full disk (root ignores permission bits).
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, "not a folder").unwrap();
    let o = selfplay(&out, &["play", "--iteration", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(".selfplay/tmp"), "{err}");
    assert!(!err.contains("writer thread stopped"), "{err}");
}

/// Every file under `out/heldout`, path and bytes, sorted.
fn heldout_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![out.join("heldout")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                let rel = e.path().strip_prefix(out).unwrap().display().to_string();
                files.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn concurrent_heldout_jobs_all_succeed_with_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    ok(&selfplay(&reference, &["tasks", "--heldout"]));
    let want = heldout_files(&reference);
    assert!(!want.is_empty());
    assert!(
        !reference.join("tasks").exists(),
        "--heldout writes only heldout/"
    );
    for trial in 0..3 {
        let out = dir.path().join(format!("race{trial}"));
        let jobs: Vec<Child> = (0..4)
            .map(|_| spawn(&out, &["tasks", "--heldout"]))
            .collect();
        for job in jobs {
            let o = job.wait_with_output().unwrap();
            assert!(o.status.success(), "trial {trial}: {}", stderr(&o));
        }
        let got = heldout_files(&out);
        let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "trial {trial}");
        assert!(got == want, "trial {trial}: held-out bytes differ");
        assert!(files_with_suffix(&out, ".tmp").is_empty());
    }
}
