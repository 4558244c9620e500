//! The whole loop on pipelines/smoke.toml, then every store read back by
//! independent readers (DuckDB, polars, pyarrow, HF datasets) with typed
//! partition columns.

mod common;
use common::*;
use selfplay::store::schema::Store;
use std::process::Command;

#[test]
fn smoke_run_writes_every_store_and_they_read_back_independently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let table = ok(&selfplay(&out, &["run"]));
    assert!(table.contains("countdown success"), "{table}");
    for it in 0..=2 {
        assert!(
            table.lines().any(|l| l
                .trim_start()
                .starts_with(&format!("{it} iteration=00000{it}"))),
            "no table row for iteration {it}: {table}"
        );
    }
    assert!(out.join("models/BEST").is_file());
    for it in 0..=2 {
        let m = out.join(format!("models/iteration=00000{it}"));
        for f in ["model.onnx", "weights.safetensors", "model.json"] {
            assert!(m.join(f).is_file(), "missing {}", m.join(f).display());
        }
    }
    assert!(
        files_with_suffix(&out, ".tmp").is_empty(),
        "temporary files left behind"
    );

    let py = Command::new(python())
        .arg(repo().join("tests/read_stores.py"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "independent readers failed: {}",
        stderr(&py)
    );
    let summary: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    check_readers_agree(&summary);
    // 64 games per iteration (32 + 32), two iterations.
    assert_eq!(summary["episodes"]["rows_pyarrow"], 128);
    assert_eq!(summary["episode_iterations"], serde_json::json!([1, 2]));
    // One metrics row per stage, iteration and shard.
    let metrics: Vec<(String, u64)> = summary["metrics_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    let mut want = vec![("eval".to_string(), 0)];
    for it in 1..=2 {
        for stage in ["eval", "play", "tasks", "train"] {
            want.push((stage.to_string(), it));
        }
    }
    want.sort();
    assert_eq!(metrics, want, "metrics rows");
    // The smoke config turns the evaluation cache on: play reports its hit
    // rate (connect4 games share openings), no other stage does.
    for r in summary["metrics_rows"].as_array().unwrap() {
        let rate = r[4].as_f64();
        if r[0] == "play" {
            assert!(rate.is_some_and(|x| x > 0.0 && x < 1.0), "{r}");
        } else {
            assert!(rate.is_none(), "{r}");
        }
    }

    // A rerun finds everything committed and redoes nothing.
    let again = ok(&selfplay(&out, &["run"]));
    assert!(again.contains("done: 2 iterations"), "{again}");
    let py = Command::new(python())
        .arg(repo().join("tests/read_stores.py"))
        .arg(&out)
        .output()
        .unwrap();
    let summary2: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(
        summary2["episodes"]["rows_pyarrow"], 128,
        "rerun duplicated rows"
    );

    // A results part lost (or never written, by an older selfplay) is
    // rebuilt by a rerun from the models the evals part records, row for
    // row, and the evals part is kept.
    let results = out.join("results/iteration=1/part-00000.parquet");
    let evals = out.join("evals/iteration=1/part-00000.parquet");
    let (before, evals_before) = (table_rows(&results), std::fs::read(&evals).unwrap());
    std::fs::remove_file(&results).unwrap();
    ok(&selfplay(&out, &["run"]));
    assert_eq!(table_rows(&results), before, "rebuilt results");
    assert_eq!(std::fs::read(&evals).unwrap(), evals_before, "evals kept");

    // One line per partition: shards, rows and the model that made them.
    let inspect = ok(&selfplay(&out, &["inspect"]));
    assert!(
        inspect.contains("episodes/iteration=1: 1/1 shards, 64 rows, by iteration=000000"),
        "{inspect}"
    );
    assert!(
        inspect.contains("evals/iteration=2: 1/1 shards"),
        "{inspect}"
    );
}

/// The rows of one Parquet file, as pyarrow reads them.
fn table_rows(file: &std::path::Path) -> String {
    let py = Command::new(python())
        .arg("-c")
        .arg("import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).to_pylist())")
        .arg(file)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", stderr(&py));
    String::from_utf8_lossy(&py.stdout).into_owned()
}

/// DuckDB, polars, pyarrow and HF `datasets` read every store with the
/// same row count and every partition column present and typed.
fn check_readers_agree(summary: &serde_json::Value) {
    for store in [
        "tasks", "heldout", "episodes", "examples", "evals", "results", "metrics", "curves",
    ] {
        let s = &summary[store];
        let rows = s["rows_pyarrow"].as_u64().unwrap_or(0);
        assert!(rows > 0, "{store}: no rows read back: {summary}");
        for reader in ["duckdb", "polars", "hf"] {
            assert_eq!(
                s[format!("rows_{reader}")],
                s["rows_pyarrow"],
                "{store}: {reader} disagrees with pyarrow"
            );
        }
        let name = if store == "heldout" { "tasks" } else { store };
        let want = Store::ALL
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.schema().version.to_string());
        assert_eq!(
            s["schema_version"].as_str(),
            want.as_deref(),
            "{store}: schema version"
        );
        assert_eq!(s["field_doc"], true, "{store}: no field docs");
        let parts = s["partitions"].as_object().unwrap();
        for (col, types) in parts {
            let expect: &[&str] = if col == "iteration" {
                &["BIGINT", "Int32", "int32", "int32"]
            } else {
                &["VARCHAR", "String", "string", "string"]
            };
            let got: Vec<&str> = ["duckdb", "polars", "pyarrow", "hf"]
                .iter()
                .map(|r| types[*r].as_str().unwrap_or("missing"))
                .collect();
            assert_eq!(got, expect, "{store}.{col}: types per reader");
        }
    }
    // One results row per held-out task, agent and colour, tallying to
    // the evals rows.
    assert_eq!(summary["results_duplicates"], 0, "{summary}");
    assert_eq!(summary["results_miscounted"], serde_json::json!([]));
    assert_eq!(summary["results_vs_evals"], serde_json::json!([]));
    assert_eq!(
        summary["results_agents"],
        serde_json::json!(["candidate", "incumbent", "mcts_rollout", "random"])
    );
    assert_eq!(summary["examples_policy_subset_of_legal"], true);
    assert_eq!(summary["examples_visits_inconsistent"], 0, "{summary}");
    assert!(summary["examples_proven"].as_u64() > Some(0), "{summary}");
    let own = &summary["examples_ownership"];
    assert_eq!(
        (&own["bad"], &own["unswapped"]),
        (&0.into(), &0.into()),
        "{own}"
    );
    assert!(own["connect4_rows"].as_u64() > Some(0), "{own}");
    // smoke.toml weighs failed puzzles' examples 0.5; games' are 1.
    for r in summary["examples_weights"].as_array().unwrap() {
        let (family, outcome, weight) = (r[0].as_str(), r[1].as_str(), r[2].as_f64());
        let want = match (family, outcome) {
            (Some("countdown"), Some("failure")) => 0.5,
            _ => 1.0,
        };
        assert_eq!(weight, Some(want), "examples weight of {r}");
    }
    assert!(
        summary["examples_policy_narrower_than_legal"].as_u64() > Some(0),
        "policy_actions should hold visited actions only: {summary}"
    );
}

#[test]
fn show_prints_an_episode_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let text = ok(&selfplay(
        dir.path(),
        &["show", "--family", "math", "--seed", "42"],
    ));
    assert!(text.contains("step 1"), "{text}");
    assert!(text.contains("visits"), "{text}");
    assert!(text.contains("outcome: "), "{text}");
    let text = ok(&selfplay(
        dir.path(),
        &["show", "--family", "connect4", "--seed", "7"],
    ));
    assert!(text.contains("col "), "{text}");
    assert!(text.contains("outcome: "), "{text}");
}

#[test]
fn mixed_run_of_every_family_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mixed");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .arg("--config")
        .arg(repo().join("pipelines/mixed.toml"))
        .arg("--out")
        .arg(&out)
        .args([
            "--iterations",
            "1",
            "--games-per-iteration",
            "120",
            "--num-simulations",
            "8",
        ])
        .args([
            "--set",
            "eval.heldout_tasks=8",
            "--set",
            "eval.games=4",
            "--set",
            "train.steps=5",
        ])
        .args([
            "--set",
            "model.hidden=16",
            "--set",
            "model.value_hidden=8",
            "--set",
            "infer.threads=1",
        ])
        .arg("run")
        .output()
        .unwrap();
    ok(&o);
    let report = ok(&selfplay(&out, &["report"]));
    // pipelines/mixed.toml holds every family but game24, which plays
    // countdown's use-all rules and has its own pipeline (game24.toml).
    let mixed = selfplay::tasks::Family::ALL
        .iter()
        .filter(|f| **f != selfplay::tasks::Family::Game24);
    for f in mixed {
        assert!(
            report.contains(&format!("| {} | {} |", f.name(), f.kind())),
            "{f} missing:\n{report}"
        );
    }
    assert!(
        report.contains("0.00-0.25"),
        "no difficulty buckets:\n{report}"
    );
}
