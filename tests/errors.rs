//! Errors keep one line naming the file, field, flag or variable and what
//! was expected, with exit code 2: import input and names, and shard
//! variables.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn import(out: &Path, file: &Path, format: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "tasks",
        "--import",
        file.to_str().unwrap(),
        "--format",
        format,
    ];
    args.extend_from_slice(extra);
    selfplay(out, &args)
}

#[test]
fn an_import_name_cannot_leave_the_run_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let f = dir.path().join("hands.txt");
    std::fs::write(&f, "1 1 4 6\n").unwrap();
    for name in [
        "a/../../../escape",
        "../escape",
        "..",
        ".hidden",
        "a\\b",
        "a b",
        "",
    ] {
        fails_with(
            &import(&out, &f, "game24", &["--name", name]),
            &["--name", "expected", "letters, digits"],
        );
    }
    assert!(!dir.path().join("escape").exists());
    assert!(!out.join("imported").exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names.iter().all(|n| n == "hands.txt" || n == "run"),
        "{names:?}"
    );
    // A good name still imports.
    let text = ok(&import(&out, &f, "game24", &["--name", "g24_v1.0-a"]));
    assert!(text.contains("name=g24_v1.0-a"), "{text}");
}

#[test]
fn a_binary_import_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let f = dir.path().join("hands.bin");
    std::fs::write(&f, [0x89u8, b'P', b'N', b'G', 0xff, 0xfe, 0, 1, 2]).unwrap();
    for format in ["game24", "sudoku", "connect4-pons"] {
        fails_with(
            &import(&out, &f, format, &[]),
            &[
                "hands.bin",
                "non-UTF-8",
                "expected a UTF-8 text file",
                format,
            ],
        );
    }
    // Valid UTF-8 with NUL bytes is binary too.
    std::fs::write(&f, b"1 2 3 4\n\0\0\0\0").unwrap();
    fails_with(
        &import(&out, &f, "game24", &[]),
        &["hands.bin", "binary", "byte 8"],
    );
    assert!(!out.join("imported").exists());
}

#[test]
fn a_bad_first_line_is_not_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let f = dir.path().join("hands.txt");
    for first in ["1 2 x 4", "1 2 3", "1;2;3;4"] {
        std::fs::write(&f, format!("{first}\n1 1 4 6\n")).unwrap();
        fails_with(
            &import(&out, &f, "game24", &[]),
            &["hands.txt", "row 1", first, "four integers", "header"],
        );
    }
    let su = dir.path().join("sudoku.csv");
    std::fs::write(
        &su,
        "53007000x600195000098000060800060003400803001700020006060000280000419005000080079\n",
    )
    .unwrap();
    fails_with(
        &import(&out, &su, "sudoku", &[]),
        &["sudoku.csv", "row 1", "puzzle[8]", "'x'"],
    );
    assert!(!out.join("imported").exists());
    // A header (letters, no digits) is still skipped.
    std::fs::write(&f, "Puzzles,Solved rate\n1 1 4 6,99%\n").unwrap();
    let text = ok(&import(&out, &f, "game24", &[]));
    assert!(text.contains("1 game24 tasks"), "{text}");
}

/// A TinyZero-layout Countdown Parquet file, written with arrow.
fn countdown_parquet(path: &Path, targets: &[i64], nums: &[&[i64]]) {
    use arrow::array::{ArrayRef, Int64Array, Int64Builder, ListBuilder};
    use arrow::record_batch::RecordBatch;
    let mut list = ListBuilder::new(Int64Builder::new());
    for row in nums {
        list.values().append_slice(row);
        list.append(true);
    }
    let batch = RecordBatch::try_from_iter([
        (
            "target",
            Arc::new(Int64Array::from(targets.to_vec())) as ArrayRef,
        ),
        ("nums", Arc::new(list.finish()) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn negative_countdown_numbers_are_reported_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let f = dir.path().join("hands.txt");
    std::fs::write(&f, "1 1 4 6\n3 -8 8 3\n").unwrap();
    fails_with(
        &import(&out, &f, "game24", &[]),
        &["hands.txt", "row 2", "numbers[1] = -8", "positive integer"],
    );
    let cd = dir.path().join("countdown.parquet");
    countdown_parquet(&cd, &[24, 10], &[&[1, 1, 4, 6], &[2, -3, 4]]);
    fails_with(
        &import(&out, &cd, "countdown-parquet", &[]),
        &[
            "countdown.parquet",
            "row 1",
            "nums[1] = -3",
            "positive integer",
        ],
    );
    countdown_parquet(&cd, &[24, -10], &[&[1, 1, 4, 6], &[2, 3, 4]]);
    fails_with(
        &import(&out, &cd, "countdown-parquet", &[]),
        &[
            "countdown.parquet",
            "row 1",
            "target = -10",
            "positive integer",
        ],
    );
    assert!(!out.join("imported").exists());
}

#[test]
fn an_unparseable_shard_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .arg("--config")
        .arg(smoke_config())
        .arg("--out")
        .arg(&out)
        .args(["tasks", "--iteration", "1"])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env("SLURM_ARRAY_TASK_ID", "abc")
        .output()
        .expect("the selfplay binary runs");
    fails_with(
        &o,
        &[
            "SLURM_ARRAY_TASK_ID",
            "abc",
            "expected a non-negative integer",
        ],
    );
    assert!(!out.join("tasks").exists());
}
