//! `distill` end to end: a tiny run of every family (one iteration of
//! self-play with the initial model), distilled with search notes and
//! solver references, read back by Hugging Face `datasets` and pyarrow
//! (tests/read_traces.py), and every completion re-verified here with its
//! family's verifier on the answer read out of the text. Bad input (an
//! episodes part of an older schema, an unknown family, an empty
//! selection) fails with one line and exit 2, and writes nothing.

mod common;

use common::{fails_with, ok, python, repo};
use selfplay::distill::render::answer_in;
use selfplay::stages::tasks::read_tasks;
use selfplay::store::RunDir;
use selfplay::tasks::{Family, Task};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

/// Every family, a few tasks each; Connect Four from later openings so
/// the solver settles its positions.
const RUN: &[&str] = &[
    "--config",
    "pipelines/mixed.toml",
    "--set",
    "games_per_iteration=110",
    "--set",
    "parallel_batch_size=55",
    "--set",
    "mcts.num_simulations=16",
    "--set",
    "eval.heldout_tasks=4",
    "--set",
    "model.hidden=32",
    "--set",
    "families.game24.weight=1.0",
    "--set",
    "families.game24.difficulty=[0.0,0.5]",
    "--set",
    "families.connect4.opening_plies=[14,22]",
];

fn selfplay(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .current_dir(repo())
        .args(RUN)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("the selfplay binary runs")
}

#[derive(serde::Deserialize)]
struct Readback {
    hf_rows: usize,
    hf_split_rows: HashMap<String, usize>,
    hf_features: HashMap<String, String>,
    pyarrow_rows: usize,
    pyarrow_types: HashMap<String, String>,
    messages_ok: bool,
    hf_messages_ok: bool,
    rows: Vec<Row>,
}

#[derive(serde::Deserialize)]
struct Row {
    family: String,
    iteration: i32,
    task_id: String,
    source: String,
    split: String,
    completion: String,
    prompt: String,
    notes: bool,
}

fn read_back(out: &Path) -> Readback {
    let py = Command::new(python())
        .arg(repo().join("tests/read_traces.py"))
        .arg(out.join("traces"))
        .output()
        .expect("the venv python runs");
    assert!(
        py.status.success(),
        "read_traces.py failed: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).expect("read_traces.py prints JSON")
}

#[test]
fn distilled_traces_load_and_every_completion_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&selfplay(&out, &["init"]));
    ok(&selfplay(&out, &["tasks", "--iteration", "1"]));
    ok(&selfplay(&out, &["play", "--iteration", "1"]));

    // Bad flags and empty selections: one line, exit 2, nothing written.
    fails_with(
        &selfplay(&out, &["distill", "--family", "chess"]),
        &["--family chess", "expected one of"],
    );
    fails_with(
        &selfplay(&out, &["distill", "--solver-nodes", "0"]),
        &["--solver-nodes 0", "expected 1 to 2000000"],
    );
    fails_with(
        &selfplay(&out, &["distill", "--iteration", "7"]),
        &["episodes", "empty selection", "iterations 7-7"],
    );
    fails_with(
        &selfplay(
            &out,
            &["distill", "--difficulty", "0.9-0.95", "--family", "sudoku"],
        ),
        &["empty selection"],
    );
    assert!(!out.join("traces").exists());

    let stdout = ok(&selfplay(
        &out,
        &["distill", "--search-notes", "--solver-references"],
    ));
    assert!(
        stdout.contains("wrote ") && stdout.contains("split=train"),
        "{stdout}"
    );

    let back = read_back(&out);
    let total = back.rows.len();
    assert!(total > 0);
    assert_eq!(back.hf_rows, total);
    assert_eq!(back.pyarrow_rows, total);
    assert_eq!(back.hf_split_rows.values().sum::<usize>(), total);
    for column in ["prompt", "completion"] {
        assert_eq!(back.pyarrow_types[column], "string", "{column}");
        assert!(back.hf_features[column].contains("string"), "{column}");
    }
    assert!(back.pyarrow_types["messages"].starts_with("list<"));
    assert!(back.messages_ok && back.hf_messages_ok);

    // Every completion's answer, read from its text, passes its family's
    // verifier; every family of the run has rows; self-play rows carry notes.
    let run = RunDir::new(&out);
    let mut tasks: HashMap<(i32, String), Task> = HashMap::new();
    let mut families = HashSet::new();
    let mut split_of_task: HashMap<String, String> = HashMap::new();
    for row in &back.rows {
        let family = Family::parse(&row.family).unwrap();
        families.insert(family);
        if !tasks.contains_key(&(row.iteration, row.task_id.clone())) {
            for t in read_tasks(&run.tasks(row.iteration as u32, family.name()), family).unwrap() {
                tasks.insert((row.iteration, t.task_id.clone()), t);
            }
        }
        let task = &tasks[&(row.iteration, row.task_id.clone())];
        let answer = answer_in(&row.completion).expect("an answer tag");
        assert!(task.verify(answer), "{}: {answer}", row.task_id);
        assert!(row.prompt.contains(task.statement.trim_end()));
        assert!(row.prompt.contains("<answer>"));
        if row.source == "selfplay" {
            assert!(row.notes);
        } else {
            assert_eq!(row.source, "solver");
        }
        // The split follows the task: never both.
        let split = split_of_task
            .entry(row.task_id.clone())
            .or_insert_with(|| row.split.clone());
        assert_eq!(*split, row.split, "{} in both splits", row.task_id);
    }
    assert_eq!(families.len(), Family::ALL.len(), "{families:?}");
    assert!(back
        .rows
        .iter()
        .any(|r| r.completion.contains("| considered ")));
    assert!(back.rows.iter().any(|r| r.source == "selfplay"));

    // The per-family summary is in the metrics store.
    let metrics = selfplay::metrics::read_stage(&run, "distill").unwrap();
    let traces = metrics[0].detail.traces.as_ref().unwrap();
    assert_eq!(traces.len(), Family::ALL.len());
    assert_eq!(traces.iter().map(|f| f.rows).sum::<u64>(), total as u64);

    // An episodes part of an older schema version is refused by name.
    let old = dir.path().join("old");
    let part = "episodes/iteration=1/part-00000.parquet";
    std::fs::create_dir_all(old.join("episodes/iteration=1")).unwrap();
    let py = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1])\n\
             m = dict(pq.read_metadata(sys.argv[1]).metadata)\n\
             m[b'selfplay.schema_version'] = b'1'\n\
             pq.write_table(t.replace_schema_metadata(m), sys.argv[2])",
        )
        .arg(out.join(part))
        .arg(old.join(part))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    fails_with(
        &selfplay(&old, &["distill"]),
        &[part, "v1", "expected store 'episodes' v2"],
    );
    assert!(!old.join("traces").exists());
}
