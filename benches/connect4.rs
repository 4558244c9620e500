//! Connect Four solver timings on Pascal Pons' test sets (samples in
//! tests/data/connect4), one position at a time, each from an empty table,
//! every score checked: milliseconds per call (mean / max) of `solve`,
//! `optimal_moves` and `solve_moves`, and how many positions need more
//! nodes than eval's check allows.
//!
//! `cargo bench --bench connect4` (scripts/env.sh sourced). `C4_SETS="Test_L2_R2
//! ..."` picks sets, `C4_LINES=N` caps the lines per set, `C4_EVERY_MOVE=1`
//! also times `solve_moves` on the begin sets (exact scores of bad opening
//! moves can take a minute), and `C4_FILE=PATH` adds a file of the same
//! format, e.g. a `c4-positions` set. Run it on an otherwise idle core.

use selfplay::tasks::connect4::{self, Connect4};
use std::path::PathBuf;
use std::time::Instant;

/// Pons' sets: file, stage of the game and difficulty, as he names them.
const SETS: [(&str, &str); 6] = [
    ("Test_L3_R1", "end easy"),
    ("Test_L2_R1", "middle easy"),
    ("Test_L2_R2", "middle medium"),
    ("Test_L1_R1", "begin easy"),
    ("Test_L1_R2", "begin medium"),
    ("Test_L1_R3", "begin hard"),
];

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/connect4")
        .join(name)
}

/// The `(moves, score)` lines of a Pons-format file.
fn read_set(path: &std::path::Path) -> Vec<(String, i32)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| Connect4::parse_pons_line(line).unwrap())
        .map(|(moves, score)| (moves.to_string(), score))
        .collect()
}

fn main() {
    let cap: usize = std::env::var("C4_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let only = std::env::var("C4_SETS").unwrap_or_default();
    let every_begin = std::env::var("C4_EVERY_MOVE").is_ok_and(|v| v == "1");
    println!(
        "{:<12} {:<13} {:>5}  {:>21}  {:>21}  {:>21}  over {EVAL_NODES} nodes",
        "set", "stage", "n", "solve ms (mean/max)", "optimal_moves ms", "solve_moves ms"
    );
    for (name, stage) in SETS {
        if !only.is_empty() && !only.split_whitespace().any(|s| s == name) {
            continue;
        }
        let set = read_set(&data(name));
        let every_move = every_begin || !stage.starts_with("begin");
        time_set(name, stage, &set[..set.len().min(cap)], every_move);
    }
    if let Ok(file) = std::env::var("C4_FILE") {
        let path = PathBuf::from(file);
        let set = read_set(&path);
        let name = path.file_name().unwrap().to_string_lossy();
        time_set(&name, "own", &set[..set.len().min(cap)], true);
    }
}

/// Mean and max of a sequence, the mean scaled by `scale`.
fn mean_max(xs: &[f64], scale: f64) -> String {
    if xs.is_empty() {
        return format!("{:>21}", "-");
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let max = xs.iter().cloned().fold(0.0, f64::max);
    format!("{:>9.3} / {:>9.1}", scale * mean, scale * max)
}

/// Nodes eval's check may spend per position (`C4_CHECK_NODES`).
const EVAL_NODES: u64 = 50_000_000;

/// Times each position of `set` on its own (a budget too large to reach
/// starts every search from an empty table), checking every score, and
/// prints one row: milliseconds per call (mean / max) for [`connect4::solve`],
/// [`connect4::optimal_moves`] and, when `every_move`,
/// [`connect4::solve_moves`], then how many positions need more nodes than
/// eval's check allows.
fn time_set(name: &str, stage: &str, set: &[(String, i32)], every_move: bool) {
    let cold = connect4::UNBOUNDED - 1;
    let (mut solve, mut optimal, mut every) = (Vec::new(), Vec::new(), Vec::new());
    let (mut over_optimal, mut over_every) = (0, 0);
    for (moves, want) in set {
        let pos = Connect4::from_moves(moves).unwrap();
        let t = Instant::now();
        assert_eq!(connect4::solve(&pos, cold), Some(*want), "{moves}");
        solve.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        assert_eq!(connect4::optimal_moves(&pos, cold).unwrap().0, *want);
        optimal.push(t.elapsed().as_secs_f64());
        over_optimal += usize::from(connect4::last_search_nodes() > EVAL_NODES);
        if every_move {
            let t = Instant::now();
            let scores = connect4::solve_moves(&pos, cold).unwrap();
            every.push(t.elapsed().as_secs_f64());
            over_every += usize::from(connect4::last_search_nodes() > EVAL_NODES);
            assert_eq!(scores.iter().map(|s| s.1).max(), Some(*want), "{moves}");
        }
    }
    let every_over = if every_move {
        over_every.to_string()
    } else {
        "-".into()
    };
    println!(
        "{name:<12} {stage:<13} {:>5}  {}  {}  {}  {over_optimal:>4} / {every_over}",
        set.len(),
        mean_max(&solve, 1e3),
        mean_max(&optimal, 1e3),
        mean_max(&every, 1e3),
    );
}

#[test]
fn c4_positions_writes_a_verified_importable_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let file = dir.path().join("mid.txt");
    let f = file.to_str().unwrap();
    let args = [
        "--seed",
        "7",
        "c4-positions",
        "--plies",
        "12-30",
        "--count",
        "60",
        "--output",
        f,
    ];
    let text = ok(&selfplay(&out, &args));
    assert!(text.contains("wrote 60 positions"), "{text}");
    let first = std::fs::read_to_string(&file).unwrap();
    // Deterministic given the seed; another seed draws another set.
    ok(&selfplay(&out, &args));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    let other = dir.path().join("other.txt");
    let mut args8 = args;
    args8[1] = "8";
    args8[8] = other.to_str().unwrap();
    ok(&selfplay(&out, &args8));
    assert_ne!(std::fs::read_to_string(&other).unwrap(), first);

    let set = read_set(&file);
    assert_eq!(set.len(), 60);
    let mut keys = std::collections::HashSet::new();
    for (moves, score) in &set {
        let pos = Connect4::from_moves(moves).unwrap();
        assert!((12..=30).contains(&moves.len()), "{moves}");
        assert!(!pos.is_terminal(), "{moves}");
        assert!(keys.insert(pos.position_key()), "repeated position {moves}");
        assert_eq!(connect4::solve(&pos, connect4::UNBOUNDED), Some(*score));
        let scores = connect4::solve_moves(&pos, connect4::UNBOUNDED).unwrap();
        assert_eq!(scores.iter().map(|s| s.1).max(), Some(*score), "{moves}");
        assert!(
            scores.iter().any(|s| s.1 < *score),
            "{moves}: every move is optimal"
        );
    }
    // The importer reads the set back.
    ok(&selfplay(&out, &["init"]));
    let text = ok(&selfplay(
        &out,
        &["tasks", "--import", f, "--format", "connect4-pons"],
    ));
    assert!(text.contains("60 connect4 tasks"), "{text}");
}

#[test]
fn c4_positions_refuses_bad_flags_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let file = dir.path().join("set.txt");
    let f = file.to_str().unwrap();
    let run = |plies: &str, count: &str, output: &str| {
        selfplay(
            &out,
            &[
                "c4-positions",
                "--plies",
                plies,
                "--count",
                count,
                "--output",
                output,
            ],
        )
    };
    fails_with(
        &run("30-42", "5", f),
        &["--plies", "30-42", "0 <= A <= B <= 41"],
    );
    fails_with(&run("22-10", "5", f), &["--plies", "22-10"]);
    fails_with(&run("ten", "5", f), &["--plies", "ten"]);
    fails_with(&run("10-22", "0", f), &["--count 0", "at least 1"]);
    // With 41 stones on the board a single move is left: no choice matters.
    fails_with(&run("41", "3", f), &["found 0 of 3", "widen --plies"]);
    let under_a_file = file.join("x.txt");
    std::fs::write(&file, "keep me\n").unwrap();
    fails_with(
        &run("10-12", "2", under_a_file.to_str().unwrap()),
        &["--output", "does not exist"],
    );
    fails_with(
        &run("10-12", "2", dir.path().to_str().unwrap()),
        &["--output", "not a folder"],
    );
    let o = selfplay(&out, &["c4-positions", "--plies", "10-12", "--output", f]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--count"), "{}", stderr(&o));
    // Nothing replaced, nothing left behind.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "run")
        .collect();
    assert_eq!(names, vec!["set.txt"]);
}
