//! `--log-format json` on a tiny loop: every stderr line is one JSON
//! object (summaries with their figures as fields), the outcome on stdout
//! is one JSON object, an error is a JSON event with its exit code; and
//! `inspect --json` parses and its counts are the store's.

mod common;
use common::*;
use selfplay::store::parquet_io::read_part;
use selfplay::store::Store;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The tiny loop: one iteration of 16 games, a 4-task held-out set; the
/// gate always promotes (what is checked is logging, not learning).
const TINY: &[&str] = &[
    "--set",
    "eval.gate_threshold=-1",
    "--iterations",
    "1",
    "--games-per-iteration",
    "16",
    "--set",
    "eval.heldout_tasks=4",
    "--set",
    "eval.games=2",
    "--set",
    "train.steps=5",
];

fn tiny(out: &Path, args: &[&str]) -> std::process::Output {
    let all: Vec<&str> = TINY.iter().chain(args).copied().collect();
    selfplay(out, &all)
}

/// Every stderr line as a JSON object with the fields all events carry.
fn json_lines(o: &std::process::Output) -> Vec<Value> {
    stderr(o)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
            for key in ["timestamp", "level", "target", "message"] {
                assert!(v.get(key).is_some(), "no {key}: {line}");
            }
            v
        })
        .collect()
}

#[test]
fn json_logs_and_outcomes_parse_and_inspect_counts_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tiny(&out, &["--log-format", "json", "--heartbeat", "1", "run"]);
    ok(&o);
    let events = json_lines(&o);
    // One summary per stage run, with its figures as fields.
    let mut summaries = BTreeSet::new();
    for e in events.iter().filter(|e| e["target"] == "selfplay::summary") {
        for key in [
            "stage",
            "iteration",
            "shard",
            "count",
            "unit",
            "seconds",
            "rate",
            "cpu_pct",
            "rss_mb",
        ] {
            assert!(e.get(key).is_some(), "summary without {key}: {e}");
        }
        assert!(
            e["message"].as_str().unwrap().contains(" | peak rss "),
            "{e}"
        );
        summaries.insert((
            e["stage"].as_str().unwrap().to_string(),
            e["iteration"].as_u64().unwrap(),
        ));
    }
    let want: BTreeSet<(String, u64)> = [
        ("eval", 0),
        ("tasks", 1),
        ("play", 1),
        ("train", 1),
        ("eval", 1),
    ]
    .iter()
    .map(|(s, i)| (s.to_string(), *i))
    .collect();
    assert_eq!(summaries, want);
    let play = events
        .iter()
        .find(|e| e["stage"] == "play" && e["target"] == "selfplay::summary")
        .unwrap();
    assert_eq!(play["count"], 16);
    assert!(play["examples"].as_u64() > Some(0), "{play}");
    // Heartbeats (if a stage outlasted a second) carry their counts.
    for e in events
        .iter()
        .filter(|e| e["target"] == "selfplay::heartbeat")
    {
        assert!(e["elapsed"].as_f64() >= Some(1.0), "{e}");
        assert!(e["done"].as_u64() <= e["total"].as_u64(), "{e}");
    }
    // The outcome: one JSON line with a row per iteration.
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    let outcome: Value = serde_json::from_str(&text).unwrap();
    let rows = outcome["iterations"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{outcome}");
    assert_eq!(rows[1]["model"], "iteration=000001");
    assert_eq!(outcome["best"], rows[1]["best"]);

    // A stage whose work is done reports the same outcome shape, and an
    // eval without --promote records nothing.
    let o = tiny(&out, &["--log-format", "json", "eval", "--iteration", "1"]);
    ok(&o);
    json_lines(&o);
    let eval: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["mode"], "heldout");
    assert_eq!(eval["gate"]["promoted"], Value::Null);
    assert!(eval["rows"].as_array().is_some_and(|r| !r.is_empty()));

    // An error: a JSON event with the exit code, nothing on stdout.
    let o = tiny(&out, &["--log-format", "json", "eval"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let errors = json_lines(&o);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["level"], "ERROR");
    assert_eq!(errors[0]["exit_code"], 2);
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("expected --iteration N"));

    // Shard 1 of 2 of iteration 2's tasks alone, and a staged file left
    // by a killed writer: inspect names shard 0 missing and the file.
    ok(&tiny(
        &out,
        &[
            "tasks",
            "--iteration",
            "2",
            "--shard-index",
            "1",
            "--num-shards",
            "2",
        ],
    ));
    let tmp = out.join(".selfplay/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("play-iteration-2-shard-0.Xy12ab.tmp"), b"12345").unwrap();

    let o = tiny(&out, &["inspect", "--json"]);
    let inv: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(inv["kind"], "run");
    assert_eq!(inv["best"], "iteration=000001");
    assert_eq!(inv["models"], serde_json::json!([0, 1]));
    assert_eq!(inv["promotions"], serde_json::json!([0, 1]));
    assert_eq!(
        inv["staged"],
        serde_json::json!([{"claim": "play-iteration-2-shard-0", "files": 1, "bytes": 5}])
    );
    let mut partitions = 0;
    for store in inv["stores"].as_array().unwrap() {
        let name = store["store"].as_str().unwrap();
        let schema = Store::ALL
            .iter()
            .find(|s| s.name() == name || (name == "heldout" && s.name() == "tasks"))
            .unwrap_or_else(|| panic!("unknown store {name}"))
            .schema();
        for p in store["partitions"].as_array().unwrap() {
            partitions += 1;
            let folder = out.join(p["path"].as_str().unwrap());
            let files = files_with_suffix(&folder, ".parquet");
            let rows: usize = files
                .iter()
                .flat_map(|f| read_part(f, &schema).unwrap())
                .map(|b| b.num_rows())
                .sum();
            assert_eq!(p["rows"].as_u64(), Some(rows as u64), "{p}");
            assert_eq!(p["committed"].as_u64(), Some(files.len() as u64), "{p}");
            let parts = p["parts"].as_array().unwrap();
            assert_eq!(parts.len(), files.len(), "{p}");
            if name == "episodes" || name == "examples" {
                assert!(
                    parts.iter().all(|x| x["model_id"] == "iteration=000000"),
                    "{p}"
                );
            }
            if p["path"]
                .as_str()
                .unwrap()
                .starts_with("tasks/iteration=2/")
            {
                assert_eq!(p["num_shards"], 2, "{p}");
                assert_eq!(p["missing"], serde_json::json!([0]), "{p}");
            } else {
                assert_eq!(p["missing"], serde_json::json!([]), "{p}");
            }
        }
    }
    let names: Vec<&str> = inv["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    for want in [
        "episodes", "examples", "evals", "heldout", "metrics", "results", "tasks",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    // `--log-format json` prints the same inventory; text is one line per
    // partition after the run's line, and the staged files.
    let o = tiny(&out, &["--log-format", "json", "inspect"]);
    assert_eq!(serde_json::from_str::<Value>(&ok(&o)).unwrap(), inv);
    let text = ok(&tiny(&out, &["inspect"]));
    assert_eq!(text.lines().count(), 1 + partitions + 1, "{text}");
    assert!(
        text.contains("tasks/iteration=2/family=countdown: 1/2 shards (missing 0), "),
        "{text}"
    );
    assert!(text.contains("uncommitted: play-iteration-2-shard-0 (1 temporary files"));
}

#[test]
fn text_logs_stay_lines_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tiny(&out, &["run"]);
    let table = ok(&o);
    assert!(table.contains("done: 1 iterations"), "{table}");
    let err = stderr(&o);
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err}");
    assert!(
        err.lines().any(
            |l| l.starts_with("play iteration 1 shard 0: 16 episodes in ")
                && l.contains(" | cpu ")
                && l.ends_with(" MB")
        ),
        "{err}"
    );
    assert!(err.lines().all(|l| !l.starts_with('{')), "{err}");
}
