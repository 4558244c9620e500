//! Connect Four benchmark sets: Pascal Pons' test sets (samples in
//! tests/data/connect4, see SOURCE.md there) solved exactly, and the
//! `c4-positions` command's own sets re-checked by the solver and imported.
//!
//! Per-set timings: `cargo bench --bench connect4`.

mod common;
use common::*;
use selfplay::tasks::connect4::{self, Connect4};
use selfplay::tasks::Action;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    repo().join("tests/data/connect4").join(name)
}

/// The `(moves, score)` lines of a Pons-format file.
fn read_set(path: &std::path::Path) -> Vec<(String, i32)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| Connect4::parse_pons_line(line).unwrap())
        .map(|(moves, score)| (moves.to_string(), score))
        .collect()
}

fn legal(pos: &Connect4) -> Vec<Action> {
    let mut out = Vec::new();
    pos.legal_actions(&mut out);
    out
}

/// How much of each position [`check_set`] checks.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Check {
    /// The score by [`connect4::solve`].
    Score,
    /// Also the score by [`connect4::optimal_moves`], with legal optimal moves.
    Optimal,
    /// Also the best of [`connect4::solve_moves`], whose optimal moves match.
    EveryMove,
}

/// Checks the first `lines` positions of a set against their scores.
fn check_set(name: &str, lines: usize, check: Check) {
    let set = read_set(&data(name));
    assert!(set.len() >= lines, "{name}: {} lines", set.len());
    for (moves, want) in &set[..lines] {
        let pos = Connect4::from_moves(moves).unwrap();
        assert_eq!(
            connect4::solve(&pos, connect4::UNBOUNDED),
            Some(*want),
            "{name}: {moves}"
        );
        if check < Check::Optimal {
            continue;
        }
        let (value, best) = connect4::optimal_moves(&pos, connect4::UNBOUNDED).unwrap();
        assert_eq!(value, *want, "{name}: {moves}");
        assert!(!best.is_empty() && best.iter().all(|a| legal(&pos).contains(a)));
        if check < Check::EveryMove {
            continue;
        }
        let scores = connect4::solve_moves(&pos, connect4::UNBOUNDED).unwrap();
        assert_eq!(scores.iter().map(|s| s.0).collect::<Vec<_>>(), legal(&pos));
        assert_eq!(scores.iter().map(|s| s.1).max(), Some(*want), "{moves}");
        let optimal: Vec<Action> = scores
            .iter()
            .filter(|s| s.1 == *want)
            .map(|s| s.0)
            .collect();
        assert_eq!(optimal, best, "{name}: {moves}");
    }
}

#[test]
fn pons_end_easy_all_scores_exact() {
    check_set("Test_L3_R1", 1000, Check::EveryMove);
}

#[test]
fn pons_middle_easy_all_scores_exact() {
    check_set("Test_L2_R1", 1000, Check::EveryMove);
}

#[test]
fn pons_middle_medium_all_scores_exact() {
    check_set("Test_L2_R2", 1000, Check::Optimal);
    check_set("Test_L2_R2", 150, Check::EveryMove);
}

#[test]
fn pons_begin_easy_and_medium_samples_scores_exact() {
    check_set("Test_L1_R1", 200, Check::Optimal);
    check_set("Test_L1_R2", 40, Check::Optimal);
}

#[test]
fn pons_begin_hard_first_lines_scores_exact() {
    // Begin-hard positions take up to ten seconds each: the connect4
    // bench runs all 50 checked in.
    check_set("Test_L1_R3", 3, Check::Score);
}
