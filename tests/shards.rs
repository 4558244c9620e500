//! Sharding changes where rows go, not what they are: iteration 1's tasks
//! and self-play as 4 shards in 4 concurrent processes hold exactly the
//! rows one process writes as one shard (tasks, episodes and examples
//! compared as sets, by DuckDB through tests/store_digest.py); and train
//! refuses the partition while a shard is missing, naming it.

mod common;
use common::*;
use std::path::Path;

/// Runs `args` with `--shard-index i --num-shards 4` as 4 processes at once.
fn four_at_once(out: &Path, args: &[&str]) {
    let children: Vec<_> = (0..4)
        .map(|i| {
            let index = i.to_string();
            let mut a = args.to_vec();
            a.extend(["--shard-index", &index, "--num-shards", "4"]);
            command(out, &a)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the selfplay binary runs")
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap());
    }
}

#[test]
fn four_concurrent_shards_write_the_rows_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, four) = (dir.path().join("one"), dir.path().join("four"));
    for out in [&one, &four] {
        ok(&selfplay(out, &["init"]));
    }
    ok(&selfplay(&one, &["tasks", "--iteration", "1"]));
    ok(&selfplay(&one, &["play", "--iteration", "1"]));

    four_at_once(&four, &["tasks", "--iteration", "1"]);
    // Three of four play shards: train refuses, naming the missing one.
    for i in ["0", "1", "3"] {
        let args = [
            "play",
            "--iteration",
            "1",
            "--shard-index",
            i,
            "--num-shards",
            "4",
        ];
        ok(&selfplay(&four, &args));
    }
    fails_with(
        &selfplay(&four, &["train", "--iteration", "1"]),
        &["examples/iteration=1", "shard 2 of 4 not committed"],
    );
    // A rerun of all four in parallel skips the committed ones.
    four_at_once(&four, &["play", "--iteration", "1"]);

    let (a, b) = (digest(&one), digest(&four));
    for store in ["tasks", "heldout", "episodes", "examples"] {
        assert_eq!(a["rows"][store], b["rows"][store], "{store} rows");
    }
    assert_eq!(a["episodes_digest"], b["episodes_digest"]);
    for store in ["tasks", "examples"] {
        assert_eq!(a["content"][store], b["content"][store], "{store} content");
    }
    let parts = |out: &Path| files_with_suffix(&out.join("examples"), ".parquet").len();
    assert_eq!((parts(&one), parts(&four)), (1, 4));
}
