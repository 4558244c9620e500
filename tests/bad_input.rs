//! Bad input gets a one-line error naming the thing and what was expected,
//! exit code 2, and no committed partial output; a killed `play` reruns
//! to completion without duplicated rows.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tasks_part(out: &Path) -> std::path::PathBuf {
    out.join("tasks/iteration=1/family=countdown/part-00000.parquet")
}

fn assert_no_play_commit(out: &Path) {
    for store in ["episodes", "examples"] {
        let d = out.join(store).join("iteration=1");
        assert!(
            !d.join("part-00000.parquet").exists(),
            "{store}: part committed after a failure"
        );
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &selfplay(dir.path(), &["--set", "mcts.num_simulatoins=3", "run"]),
        &["num_simulatoins"],
    );
    fails_with(
        &selfplay(dir.path(), &["--set", "mcts.c_puct=-1", "run"]),
        &["mcts.c_puct"],
    );
}

#[test]
fn unknown_family_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &selfplay(dir.path(), &["show", "--family", "chess"]),
        &["chess", "countdown"],
    );
    let o = selfplay(
        dir.path(),
        &[
            "--set",
            "families.chess.weight=1",
            "--set",
            "families.chess.difficulty=[0.0, 1.0]",
            "run",
        ],
    );
    fails_with(&o, &["chess"]);
}

#[test]
fn missing_tasks_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&selfplay(&out, &["init"]));
    fails_with(
        &selfplay(&out, &["play", "--iteration", "1"]),
        &["no committed tasks", "tasks --iteration 1"],
    );
    assert_no_play_commit(&out);
}

#[test]
fn corrupt_parquet_is_reported_with_its_path() {
    let (_dir, out) = prepared_run();
    std::fs::write(tasks_part(&out), b"PAR1 this is not parquet").unwrap();
    let o = selfplay(&out, &["play", "--iteration", "1"]);
    fails_with(&o, &["part-00000.parquet", "not a readable Parquet file"]);
    assert_no_play_commit(&out);
}

#[test]
fn schema_mismatch_names_expected_and_found() {
    let (_dir, out) = prepared_run();
    let metrics = files_with_suffix(&out.join("metrics"), ".parquet");
    let eval_like = out.join("heldout/family=countdown/part-00000.parquet");
    assert!(eval_like.exists());
    // A valid Parquet file of another store where tasks belong.
    let other = metrics.first().cloned().unwrap_or(eval_like);
    std::fs::copy(&other, tasks_part(&out)).unwrap();
    let o = selfplay(&out, &["play", "--iteration", "1"]);
    if other.to_string_lossy().contains("metrics") {
        let v = |s: selfplay::store::schema::Store| s.schema().version;
        use selfplay::store::schema::Store::{Metrics, Tasks};
        let found = format!("store 'metrics' v{}", v(Metrics));
        let expected = format!("expected store 'tasks' v{}", v(Tasks));
        fails_with(&o, &["part-00000.parquet", &found, &expected]);
    } else {
        ok(&o);
    }
}

#[test]
fn model_too_small_for_a_family_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A countdown-only config makes a model with countdown's dims only.
    let small = std::fs::read_to_string(smoke_config()).unwrap().replace(
        "[families.connect4]\nweight = 1.0\ndifficulty = [0.0, 0.4]\n",
        "",
    );
    let cfg = dir.path().join("countdown.toml");
    std::fs::write(&cfg, small).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_selfplay"))
            .arg("--config")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap()
    };
    ok(&run(&["init"]));
    // The smoke config differs from the run's: the guard refuses it...
    let o = selfplay(&out, &["tasks", "--iteration", "1"]);
    fails_with(
        &o,
        &[
            "config.toml",
            "families.connect4.weight - -> 1.0",
            "--force",
        ],
    );
    // ...and, forced, the model itself is refused for the family it lacks.
    ok(&selfplay(&out, &["--force", "tasks", "--iteration", "1"]));
    let o = selfplay(&out, &["--force", "play", "--iteration", "1"]);
    fails_with(&o, &["iteration=000000", "connect4", "needs at least"]);
    assert_no_play_commit(&out);
}

#[test]
fn killed_play_reruns_without_duplicates() {
    let (_dir, out) = prepared_run();
    // Bigger tasks for a play long enough to kill mid-run.
    let dir2 = out.join("big");
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a: Vec<&str> = vec!["--games-per-iteration", "3000", "--num-simulations", "64"];
        a.extend_from_slice(extra);
        a
    }
    ok(&selfplay(&dir2, &with(&["init"])));
    ok(&selfplay(&dir2, &with(&["tasks", "--iteration", "1"])));
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .arg("--config")
        .arg(smoke_config())
        .arg("--out")
        .arg(&dir2)
        .args(with(&["play", "--iteration", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let writing = || {
        std::fs::read_dir(dir2.join(".selfplay/tmp"))
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("play-iteration-1-shard-0.")
                })
            })
            .unwrap_or(false)
    };
    let start = Instant::now();
    while !writing() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "play finished before it could be killed; make the test workload bigger"
    );
    let ep = dir2.join("episodes/iteration=1");
    assert!(!ep.join("part-00000.parquet").exists());

    ok(&selfplay(&dir2, &with(&["play", "--iteration", "1"])));
    assert!(ep.join("part-00000.parquet").exists());
    let py = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, duckdb; p = sys.argv[1] + '/episodes/**/*.parquet'; \
             print(*duckdb.connect().execute(f\"select count(*), count(distinct task_id) from read_parquet('{p}')\").fetchone())",
        )
        .arg(&dir2)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", stderr(&py));
    assert_eq!(stdout(&py).trim(), "3000 3000", "rows after rerun");
    // A further rerun is a no-op.
    ok(&selfplay(&dir2, &with(&["play", "--iteration", "1"])));
    assert!(files_with_suffix(&dir2, ".tmp").is_empty());
}

#[test]
fn a_partition_with_a_shard_missing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&selfplay(&out, &["init"]));
    for shard in ["0", "1"] {
        let args = [
            "tasks",
            "--iteration",
            "1",
            "--shard-index",
            shard,
            "--num-shards",
            "2",
        ];
        ok(&selfplay(&out, &args));
    }
    std::fs::remove_file(out.join("tasks/iteration=1/family=countdown/part-00001.parquet"))
        .unwrap();
    let o = selfplay(&out, &["play", "--iteration", "1"]);
    fails_with(
        &o,
        &[
            "family=countdown",
            "shard 1 of 2 not committed",
            "--wait-inputs",
        ],
    );
    assert_no_play_commit(&out);
    // Waiting: the consumer starts first and sees the shard commit later.
    let mut play = command(&out, &["play", "--iteration", "1", "--wait-inputs", "120"]);
    let waiting = std::thread::spawn(move || play.output().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let args = [
        "tasks",
        "--iteration",
        "1",
        "--shard-index",
        "1",
        "--num-shards",
        "2",
    ];
    ok(&selfplay(&out, &args));
    ok(&waiting.join().unwrap());
}

#[test]
fn hand_edited_task_spec_is_rejected_naming_the_task() {
    for (bad, needle) in [
        ("{\"numbers\": [3, 5", "EOF"),
        ("{\"numbers\": [3, 5000], \"target\": 8}", "numbers[1]"),
    ] {
        let (_dir, out) = prepared_run();
        let part = tasks_part(&out);
        let py = Command::new(python())
            .arg("-c")
            .arg(
                "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
                 t = pq.read_table(sys.argv[1])\n\
                 specs = t.column('spec').to_pylist(); ids = t.column('task_id').to_pylist()\n\
                 specs[0] = sys.argv[2]\n\
                 t = t.set_column(t.schema.get_field_index('spec'), t.schema.field('spec'), pa.array(specs, pa.string()))\n\
                 kv = {k: v for k, v in pq.read_metadata(sys.argv[1]).metadata.items() if not k.startswith(b'ARROW')}\n\
                 pq.write_table(t.replace_schema_metadata(kv), sys.argv[1])\n\
                 print(ids[0])",
            )
            .arg(&part)
            .arg(bad)
            .output()
            .unwrap();
        assert!(py.status.success(), "{}", stderr(&py));
        let task_id = stdout(&py).trim().to_string();
        let o = selfplay(&out, &["play", "--iteration", "1"]);
        fails_with(
            &o,
            &[&format!("task {task_id}"), "bad countdown spec", needle],
        );
        assert_no_play_commit(&out);
    }
}

#[test]
fn a_garbage_best_is_named_and_never_dropped() {
    let (_dir, out) = prepared_run();
    std::fs::write(out.join("models/BEST"), "garbage\n").unwrap();
    for args in [
        &["eval", "--iteration", "0", "--promote"][..],
        &["play", "--iteration", "1"][..],
    ] {
        fails_with(&selfplay(&out, args), &["models/BEST", "garbage"]);
    }
    assert_no_play_commit(&out);
    assert_eq!(
        std::fs::read_to_string(out.join("models/BEST")).unwrap(),
        "garbage\n",
        "BEST left as the user wrote it"
    );
}

#[test]
fn a_stage_with_another_config_is_refused_unless_forced() {
    let (_dir, out) = prepared_run();
    let recorded = std::fs::read_to_string(out.join("config.toml")).unwrap();
    // `config` prints the recorded config after comment lines on its size.
    let printed = ok(&selfplay(&out, &["config"]));
    let body: String = printed
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(body, recorded);
    assert!(printed.starts_with("# model mlp: "), "{printed}");
    assert!(printed.contains(" parameters\n"), "{printed}");
    let o = selfplay(
        &out,
        &[
            "--set",
            "train.learning_rate=0.5",
            "train",
            "--iteration",
            "1",
        ],
    );
    fails_with(
        &o,
        &["config.toml", "train.learning_rate 0.002 -> 0.5", "--force"],
    );
    // Speed-only keys may differ.
    let o = selfplay(
        &out,
        &["--set", "infer.threads=1", "play", "--iteration", "1"],
    );
    ok(&o);
    let o = selfplay(
        &out,
        &[
            "--force",
            "--set",
            "train.learning_rate=0.5",
            "train",
            "--iteration",
            "1",
        ],
    );
    ok(&o);
    assert!(stderr(&o).contains("warning: ") && stderr(&o).contains("train.learning_rate"));
    assert_eq!(
        std::fs::read_to_string(out.join("config.toml")).unwrap(),
        recorded
    );
}
