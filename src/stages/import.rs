//! `tasks --import`: public task sets into a tasks store, so models are
//! measured on benchmarks users know. Formats:
//! - `countdown-parquet`: rows with `target` and `nums` columns (TinyZero's
//!   Countdown layout); use-all rules, as TinyZero scores them;
//! - `game24`: Game of 24 hands, four integers per line (a CSV field
//!   like the `Puzzles` column of public 24 sets works too): `game24`
//!   family tasks (use-all rules), with the hand's hardness rank among the
//!   1362 solvable hands as the difficulty;
//! - `connect4-pons`: `<moves> <score>` lines of Pascal Pons' solver test sets;
//! - `sudoku`: 81-character puzzle strings (`0` or `.` for blanks), one per
//!   line, first CSV field (16 or 36 characters for 4x4 / 6x6).
//!
//! Output: `imported/name=NAME/family=F/part-00000.parquet` under `--out`.

use super::Ctx;
use crate::error::{Error, Result};
use crate::store::parquet_io::{stage_part, FileMeta};
use crate::store::rows::tasks_batch;
use crate::store::Store;
use crate::tasks::{connect4, countdown, game24, sudoku, Family, Task};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The import formats, by `--format` name.
pub const FORMATS: [&str; 4] = ["countdown-parquet", "game24", "connect4-pons", "sudoku"];

/// Where an import named `name` lands. `run_import` refuses unsafe names
/// first ([`validate_store_name`]); here any character such a name could
/// not hold becomes `_`, so the folder is always one path component under
/// `imported/`.
pub fn imported_dir(ctx: &Ctx, name: &str) -> PathBuf {
    let mut safe: String = name
        .chars()
        .map(|c| if name_char(c) { c } else { '_' })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        safe.insert(0, '_');
    }
    ctx.run.root.join("imported").join(format!("name={safe}"))
}

/// The store name of an import without `--name`: the file's stem, with
/// characters a folder name may not hold replaced by `_`.
pub fn default_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| if name_char(c) { c } else { '_' })
        .collect::<String>()
        .replace("..", "_")
        .trim_start_matches('.')
        .chars()
        .take(200)
        .collect();
    if safe.is_empty() {
        "imported".into()
    } else {
        safe
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A store name given by `flag` becomes a path component (`name=NAME`):
/// only `[A-Za-z0-9_.-]`, not empty, no leading `.` and no `..`.
pub fn validate_store_name(flag: &str, name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("is empty".to_string())
    } else if let Some(c) = name.chars().find(|&c| !name_char(c)) {
        Some(format!("has {c:?}"))
    } else if name.starts_with('.') {
        Some("starts with '.'".into())
    } else if name.contains("..") {
        Some("has '..'".into())
    } else if name.len() > 200 {
        Some(format!("is {} characters long", name.len()))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::Config(format!(
            "{flag} {name:?} {why}: expected 1 to 200 of letters, digits, '_', '-' and '.' (not leading, no '..'), as it names the folder name=NAME"
        ))),
    }
}

/// Imports `file` in `format`; returns the family and the rows written.
/// `name` (from `--name`, else the file's stem) must be a safe store name.
pub fn run_import(ctx: &Ctx, file: &Path, format: &str, name: &str) -> Result<(Family, u64)> {
    validate_store_name("--name", name).map_err(|e| match e {
        Error::Config(msg) => {
            Error::Config(format!("{msg}; without --name, the file's stem is used"))
        }
        e => e,
    })?;
    let (family, tasks) = match format {
        "countdown-parquet" => (Family::Countdown, countdown_parquet(file, name)?),
        "game24" => (Family::Game24, game24(file, name)?),
        "connect4-pons" => (Family::Connect4, connect4_pons(file, name)?),
        "sudoku" => (Family::Sudoku, sudoku_lines(file, name)?),
        other => {
            return Err(Error::Config(format!(
                "--format {other}: expected one of {}",
                FORMATS.join(", ")
            )))
        }
    };
    if tasks.is_empty() {
        return Err(Error::Data(format!(
            "{}: no {format} rows found",
            file.display()
        )));
    }
    let dir = imported_dir(ctx, name).join(format!("family={}", family.name()));
    let claim = ctx.claim(&format!("import {name}"))?;
    let meta = FileMeta {
        stage: "import".into(),
        config_hash: ctx.cfg.hash(),
        model_id: None,
        shard: 0,
        num_shards: 1,
        seed: 0,
        inputs: vec![file.display().to_string(), format.into()],
    };
    let batch = tasks_batch(&tasks, None)?;
    let rows = stage_part(&claim, &dir, &Store::Tasks.schema(), &meta, &[batch], None)?.commit()?;
    Ok((family, rows))
}

/// The file as text: binary or non-UTF-8 content is a data error naming
/// the file (a UTF-8 byte-order mark is dropped).
fn read_text(file: &Path, format: &str) -> Result<String> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let parquet = bytes.starts_with(b"PAR1");
    let binary = |at: usize| {
        let hint = if parquet {
            " (this is a Parquet file: use --format countdown-parquet)"
        } else {
            ""
        };
        Error::Data(format!(
            "{}: binary or non-UTF-8 data at byte {at}; expected a UTF-8 text file for --format {format}{hint}",
            file.display()
        ))
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(binary(at));
    }
    let text = String::from_utf8(bytes).map_err(|e| binary(e.utf8_error().valid_up_to()))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// A first line is skipped as a header only when it looks like one: it has
/// letters and no digits (`Rank,Puzzles,...`, `quizzes`).
fn looks_like_header(line: &str) -> bool {
    line.chars().any(|c| c.is_alphabetic()) && !line.chars().any(|c| c.is_ascii_digit())
}

const HEADER_RULE: &str =
    "a first line is skipped as a header only when it has letters and no digits";

/// A Countdown number from a file: `field = value` reported as given.
fn countdown_int(field: &str, value: i64, max: u32) -> std::result::Result<u32, String> {
    u32::try_from(value)
        .ok()
        .filter(|v| (1..=max).contains(v))
        .ok_or_else(|| format!("{field} = {value}: expected a positive integer in 1..={max}"))
}

fn bad_row(file: &Path, row: usize, why: impl std::fmt::Display) -> Error {
    Error::Data(format!("{}: row {row}: {why}", file.display()))
}

/// A use-all Countdown task with the exact solver's reference.
fn countdown_task(
    name: &str,
    row: usize,
    numbers: &[u32],
    target: u32,
) -> std::result::Result<Task, String> {
    let game = countdown::Countdown::new(numbers, target)?.with_use_all(true);
    let solution = countdown::solve_all(numbers, target);
    let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
    Ok(Task {
        task_id: format!("{name}-{row:06}"),
        family: Family::Countdown,
        difficulty: 0.0,
        seed: row as u64,
        statement: format!(
            "Reach {target} using all of {} with + - * /",
            list.join(", ")
        ),
        spec: game.to_spec(),
        reference_solution: solution
            .as_ref()
            .map(|s| countdown::format_solution(s))
            .unwrap_or_else(|| "no solution exists under use-all rules".into()),
        optimal_steps: solution.map(|s| s.len() as u32),
    })
}

fn countdown_parquet(file: &Path, name: &str) -> Result<Vec<Task>> {
    let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::Data(format!(
            "{}: not a readable Parquet file ({e})",
            file.display()
        ))
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| corrupt(&e))?
        .build()
        .map_err(|e| corrupt(&e))?;
    let list_i64 = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
    let mut tasks = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(&e))?;
        let column = |col: &str, to: &DataType| {
            let c = batch.column_by_name(col).ok_or_else(|| {
                Error::Data(format!(
                    "{}: column '{col}' missing; expected 'target' and 'nums' (TinyZero Countdown)",
                    file.display()
                ))
            })?;
            arrow::compute::cast(c, to)
                .map_err(|e| Error::Data(format!("{}: column '{col}': {e}", file.display())))
        };
        let target = column("target", &DataType::Int64)?;
        let nums = column("nums", &list_i64)?;
        let (target, nums) = (target.as_primitive::<Int64Type>(), nums.as_list::<i32>());
        for i in 0..batch.num_rows() {
            let row = tasks.len();
            let bad = |why: String| bad_row(file, row, why);
            if nums.is_null(i) {
                return Err(bad(
                    "nums is null; expected a list of positive integers".into()
                ));
            }
            let values = nums.value(i);
            let values = values.as_primitive::<Int64Type>();
            let numbers = values
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    let field = format!("nums[{k}]");
                    let v =
                        v.ok_or_else(|| format!("{field} is null; expected a positive integer"))?;
                    countdown_int(&field, v, countdown::MAX_INPUT)
                })
                .collect::<std::result::Result<Vec<u32>, String>>()
                .map_err(bad)?;
            if target.is_null(i) {
                return Err(bad("target is null; expected a positive integer".into()));
            }
            let t = countdown_int("target", target.value(i), countdown::MAX_TARGET).map_err(bad)?;
            tasks.push(countdown_task(name, row, &numbers, t).map_err(bad)?);
        }
    }
    Ok(tasks)
}

/// Four integers from a line (or its first CSV field that holds four), as
/// written (signs kept, so a bad value can be reported as it is).
fn hand_of(line: &str) -> Option<Vec<i64>> {
    line.split(',').find_map(|field| {
        let nums: Option<Vec<i64>> = field.split_whitespace().map(|w| w.parse().ok()).collect();
        nums.filter(|n| n.len() == 4)
    })
}

fn game24(file: &Path, name: &str) -> Result<Vec<Task>> {
    let text = read_text(file, "game24")?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (k == 0 && looks_like_header(line)) {
            continue; // blank lines and a header
        }
        let hand = hand_of(line).ok_or_else(|| {
            let rule = if k == 0 {
                format!(" ({HEADER_RULE})")
            } else {
                String::new()
            };
            bad_row(
                file,
                k + 1,
                format!("{line:?}: expected four integers, or a CSV field holding them{rule}"),
            )
        })?;
        let hand = hand
            .iter()
            .enumerate()
            .map(|(i, &v)| countdown_int(&format!("numbers[{i}]"), v, countdown::MAX_INPUT))
            .collect::<std::result::Result<Vec<u32>, String>>()
            .map_err(|e| bad_row(file, k + 1, e))?;
        countdown::Countdown::new(&hand, game24::TARGET).map_err(|e| bad_row(file, k + 1, e))?;
        let row = tasks.len();
        let id = format!("{name}-{row:06}");
        tasks.push(game24::task(&hand, hand_rank(&hand), row as u64, id));
    }
    Ok(tasks)
}

/// Where a hand sits among the solvable hands, easiest 0 to hardest 1
/// (the family's difficulty scale); 0 for a hand outside them.
fn hand_rank(hand: &[u32]) -> f32 {
    let mut sorted = hand.to_vec();
    sorted.sort_unstable();
    let all = game24::hands();
    all.iter()
        .position(|h| h.numbers[..] == sorted[..])
        .map_or(0.0, |k| k as f32 / (all.len() - 1) as f32)
}

fn connect4_pons(file: &Path, name: &str) -> Result<Vec<Task>> {
    let text = read_text(file, "connect4-pons")?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let parsed =
            connect4::Connect4::parse_pons_line(line).map_err(|e| bad_row(file, k + 1, e))?;
        let Some((moves, score)) = parsed else {
            continue;
        };
        let pos = connect4::Connect4::from_moves(moves).map_err(|e| bad_row(file, k + 1, e))?;
        let row = tasks.len();
        tasks.push(Task {
            task_id: format!("{name}-{row:06}"),
            family: Family::Connect4,
            difficulty: 0.0,
            seed: row as u64,
            statement: format!("Connect Four after moves '{moves}': pick the best move"),
            spec: pos.to_spec(),
            reference_solution: format!(
                "position score {score} for the side to move (Pons convention)"
            ),
            optimal_steps: None,
        });
    }
    Ok(tasks)
}

fn sudoku_lines(file: &Path, name: &str) -> Result<Vec<Task>> {
    let text = read_text(file, "sudoku")?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let field = line.split(',').next().unwrap_or("").trim();
        if field.is_empty() || (k == 0 && looks_like_header(field)) {
            continue; // blank lines and a header
        }
        let puzzle = sudoku::from_puzzle_string(field).map_err(|e| {
            let rule = if k == 0 {
                format!(" ({HEADER_RULE})")
            } else {
                String::new()
            };
            bad_row(file, k + 1, format!("{e}{rule}"))
        })?;
        let solution = sudoku::solve(&puzzle).ok_or_else(|| bad_row(file, k + 1, "no solution"))?;
        let row = tasks.len();
        tasks.push(Task {
            task_id: format!("{name}-{row:06}"),
            family: Family::Sudoku,
            difficulty: 0.0,
            seed: row as u64,
            statement: puzzle.statement(),
            spec: puzzle.to_spec(),
            reference_solution: solution,
            optimal_steps: Some(puzzle.empty_cells() as u32),
        });
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_stay_one_path_component() {
        for good in ["24", "game24_v1.0", "a-b", "A.b.c"] {
            validate_store_name("--name", good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/../../../escape",
            "a/b",
            "a\\b",
            "a..b",
            "a b",
            "é",
        ] {
            let err = validate_store_name("--name", bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let msg = err.to_string();
            assert!(msg.starts_with("config: --name "), "{msg}");
            assert_eq!(msg.lines().count(), 1, "{msg}");
            let stem = default_name(Path::new(&format!("/d/{bad}.csv")));
            validate_store_name("--name", &stem).unwrap();
        }
        let ctx = Ctx {
            cfg: crate::config::Config::load(None, &[]).unwrap(),
            run: crate::store::RunDir::new("/runs/r"),
            shard: super::super::Shard::ALL,
            wait: false,
        };
        for (name, want) in [
            ("a/../../../escape", "name=a_.._.._.._escape"),
            ("..", "name=_.."),
            ("", "name=_"),
            ("ok-1", "name=ok-1"),
        ] {
            assert_eq!(
                imported_dir(&ctx, name),
                Path::new("/runs/r/imported").join(want),
                "{name}"
            );
        }
    }

    #[test]
    fn headers_have_letters_and_no_digits() {
        assert!(looks_like_header("Rank,Puzzles,AMT (s),Solved rate"));
        assert!(looks_like_header("quizzes"));
        assert!(!looks_like_header("1 2 x 4"));
        assert!(!looks_like_header("col1,col2"));
        assert!(!looks_like_header("...."));
    }
}
