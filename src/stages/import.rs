//! `tasks --import`: public task sets into a tasks store, so models are
//! measured on benchmarks users know. Formats:
//! - `countdown-parquet`: rows with `target` and `nums` columns (TinyZero's
//!   Countdown layout); use-all rules, as TinyZero scores them;
//! - `game24`: Game of 24 hands, four integers per line (a CSV field
//!   like the `Puzzles` column of public 24 sets works too); use-all rules;
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
use crate::tasks::{connect4, countdown, sudoku, Family, Task};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The import formats, by `--format` name.
pub const FORMATS: [&str; 4] = ["countdown-parquet", "game24", "connect4-pons", "sudoku"];

/// Where an import named `name` lands.
pub fn imported_dir(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.run.root.join(format!("imported/name={name}"))
}

/// Imports `file` in `format`; returns the family and the rows written.
pub fn run_import(ctx: &Ctx, file: &Path, format: &str, name: &str) -> Result<(Family, u64)> {
    let (family, tasks) = match format {
        "countdown-parquet" => (Family::Countdown, countdown_parquet(file, name)?),
        "game24" => (Family::Countdown, game24(file, name)?),
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

fn read_text(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|e| Error::io(file, e))
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
            .unwrap_or_else(|| {
                "no solution under selfplay's rules (positive integer steps)".into()
            }),
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
            let values = nums.value(i);
            let values = values.as_primitive::<Int64Type>();
            let numbers: Vec<u32> = values
                .iter()
                .map(|v| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
                .collect();
            let t = if target.is_null(i) {
                0
            } else {
                u32::try_from(target.value(i)).unwrap_or(0)
            };
            tasks.push(countdown_task(name, row, &numbers, t).map_err(|e| bad_row(file, row, e))?);
        }
    }
    Ok(tasks)
}

/// Four integers from a line (or its first CSV field that holds four).
fn hand_of(line: &str) -> Option<Vec<u32>> {
    line.split(',').find_map(|field| {
        let nums: Option<Vec<u32>> = field.split_whitespace().map(|w| w.parse().ok()).collect();
        nums.filter(|n| n.len() == 4)
    })
}

fn game24(file: &Path, name: &str) -> Result<Vec<Task>> {
    let text = read_text(file)?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (k == 0 && hand_of(line).is_none()) {
            continue; // blank lines and a header
        }
        let hand = hand_of(line)
            .ok_or_else(|| bad_row(file, k + 1, format!("'{line}': expected four integers")))?;
        tasks.push(
            countdown_task(name, tasks.len(), &hand, 24).map_err(|e| bad_row(file, k + 1, e))?,
        );
    }
    Ok(tasks)
}

fn connect4_pons(file: &Path, name: &str) -> Result<Vec<Task>> {
    let text = read_text(file)?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [moves, score] = fields[..] else {
            if fields.is_empty() {
                continue;
            }
            return Err(bad_row(
                file,
                k + 1,
                format!("'{line}': expected '<moves> <score>'"),
            ));
        };
        let score: i32 = score
            .parse()
            .map_err(|_| bad_row(file, k + 1, format!("score '{score}': expected an integer")))?;
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
    let text = read_text(file)?;
    let mut tasks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let field = line.split(',').next().unwrap_or("").trim();
        if field.is_empty() || (k == 0 && !field.chars().all(|c| c.is_ascii_digit() || c == '.')) {
            continue; // blank lines and a header
        }
        let puzzle = sudoku::from_puzzle_string(field).map_err(|e| bad_row(file, k + 1, e))?;
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
