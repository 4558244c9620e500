//! One helper that touches the binary: run `selfplay` with arguments.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn smoke_config() -> PathBuf {
    repo().join("pipelines/smoke.toml")
}

/// `selfplay --config smoke.toml --out <out> <args...>`, not yet run.
pub fn command(out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_selfplay"));
    cmd.arg("--config")
        .arg(smoke_config())
        .arg("--out")
        .arg(out)
        .args(args);
    cmd
}

/// Runs `selfplay --config smoke.toml --out <out> <args...>`.
pub fn selfplay(out: &Path, args: &[&str]) -> Output {
    command(out, args)
        .output()
        .expect("the selfplay binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run directory (in a temp dir) with model 0 and iteration 1's tasks.
pub fn prepared_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&selfplay(&out, &["init"]));
    ok(&selfplay(&out, &["tasks", "--iteration", "1"]));
    (dir, out)
}

/// Asserts success, showing stderr otherwise.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "selfplay failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

/// Asserts a failure with exit code 2 and a one-line error containing all `needles`.
pub fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {err}",
        o.status.code()
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    for n in needles {
        assert!(line.contains(n), "error line lacks '{n}': {line}");
    }
    assert!(!err.contains("panicked"), "panic: {err}");
}

/// Files under `dir` (recursively) whose names end with `suffix`.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_with_suffix(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The venv's python (with pyarrow and duckdb, installed by scripts/setup.sh --test).
pub fn python() -> PathBuf {
    repo().join(".venv/bin/python")
}

/// DuckDB's and the footers' view of a run (tests/store_digest.py), for
/// the kill and concurrency tests.
pub fn digest(out: &Path) -> serde_json::Value {
    let py = Command::new(python())
        .arg(repo().join("tests/store_digest.py"))
        .arg(out)
        .output()
        .unwrap();
    assert!(py.status.success(), "store_digest: {}", stderr(&py));
    serde_json::from_slice(&py.stdout).unwrap()
}

/// `cp -a from to`.
pub fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status();
    assert!(status.unwrap().success());
}

/// Asserts that run directory `got` holds the stores of `want` (the run of
/// `selfplay run --num-shards N`), timing columns aside
/// (tests/store_equal.py).
pub fn assert_same_stores(want: &Path, got: &Path, what: &str) {
    let o = Command::new(python())
        .arg(repo().join("tests/store_equal.py"))
        .arg(want)
        .arg(got)
        .output()
        .expect("python runs tests/store_equal.py");
    assert!(
        o.status.success(),
        "{what}: stores differ from `selfplay run` on the same config and shards:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    eprintln!("{what}: {}", stdout(&o).trim());
}
