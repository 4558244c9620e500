//! Tic-tac-toe (3x3, three in a row), a two-player "search" family.
//!
//! Cells are numbered 1..=9 row by row from the top left (actions 0..=8):
//!
//! ```text
//! 1 2 3
//! 4 5 6
//! 7 8 9
//! ```
//!
//! Moves are written as one digit per move, X first (`"5193"`), like
//! Connect Four's column strings.
//!
//! The exact solver is a negamax over every reachable position (5478 of
//! them), memoized once per process in a table indexed by the base-3 board
//! code. Scores follow the Connect Four module: from the player to move,
//! `10 - k` for a win completed by the `k`-th stone on the board (sooner =
//! larger, 1..=5), 0 for a draw, the negation for a loss.
//!
//! # Generator
//!
//! A task is a start position reached by random legal moves from the empty
//! board, drawn with `ChaCha8Rng::seed_from_u64(seed)`. Starts that are
//! decided already are redrawn from the same stream: finished games,
//! positions where the side to move can win at once, and positions it has
//! lost against perfect play (nothing left to choose). So every start is a
//! draw or a forced win for the side to move, needing at least two of its
//! moves.
//!
//! | difficulty d (clamped to [0, 1], NaN = 0) | random opening plies | side to move |
//! |-------------------------------------------|----------------------|--------------|
//! | d < 0.125                                 | 0 (empty board)      | X            |
//! | 0.125 <= d < 0.375                        | 1                    | O            |
//! | 0.375 <= d < 0.625                        | 2                    | X            |
//! | 0.625 <= d < 0.875                        | 3                    | O            |
//! | 0.875 <= d                                | 4                    | X            |
//!
//! More plies give more varied starts, closer to a decision, where fewer of
//! the legal moves keep the value. Measured over 2000 seeds per band:
//!
//! | plies | share of legal moves that are optimal | mover can force a win | distinct starts |
//! |-------|---------------------------------------|-----------------------|-----------------|
//! | 0     | 1.00 (all nine draw)                  | 0%                    | 1               |
//! | 1     | 0.33                                  | 0%                    | 9               |
//! | 2     | 0.53                                  | 68%                   | 72              |
//! | 3     | 0.28                                  | 24%                   | 375             |
//! | 4     | 0.34                                  | 63%                   | 1067            |
//!
//! The share falls with the plies for each side to move, but not across
//! sides: O's starts (odd plies) usually ask for the one or two replies that
//! hold the draw, while X's next start often follows a random O blunder that
//! leaves several winning moves. The reference solution states the exact value and every optimal move,
//! e.g. `"draw with cells 1, 3, 7, 9"` or `"X wins in 2 with cell 5"`;
//! `optimal_steps` counts the mover's own moves to force the win (None for
//! a draw).
//!
//! # Observation ([`OBS_DIM`] = 18 floats)
//!
//! From the mover's view: `out[cell]` = 1 for the mover's stones, then
//! `out[9 + cell]` = 1 for the opponent's, cell index 0..=8 as above.

use crate::tasks::{Action, Family, Outcome, Task, TwoPlayer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::sync::OnceLock;

/// One action per cell, 0-based.
pub const ACTION_DIM: usize = CELLS;
/// Two 3x3 planes from the mover's view: own stones, then opponent stones.
pub const OBS_DIM: usize = 2 * CELLS;
/// Random opening plies at difficulty 1.
pub const MAX_OPENING_PLIES: usize = 4;

pub const CELLS: usize = 9;
/// The observation as planes (channels, height, width): own, opponent.
pub const GRID: (usize, usize, usize) = (2, 3, 3);
/// The eight lines, as cell bitmasks (bit = cell index).
const LINES: [u16; 8] = [
    0b000_000_111,
    0b000_111_000,
    0b111_000_000,
    0b001_001_001,
    0b010_010_010,
    0b100_100_100,
    0b100_010_001,
    0b001_010_100,
];
/// Score numerator: a win with the `k`-th stone scores `WIN_BASE - k`.
const WIN_BASE: i32 = 10;

fn has_line(stones: u16) -> bool {
    // A line is complete when none of its cells is missing.
    LINES.iter().any(|&line| line & !stones == 0)
}

/// A tic-tac-toe game: bitboards, the move record, and the winner if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TicTacToe {
    /// Stones of X (index 0) and O (index 1), bit = cell index.
    stones: [u16; 2],
    /// Cells played (0-based) in order.
    history: [u8; CELLS],
    plies: u8,
    /// The player who made three in a row (always the last mover).
    winner: Option<u8>,
}

impl Default for TicTacToe {
    fn default() -> Self {
        Self::new()
    }
}

/// The JSON spec of a task: `{"moves": "51"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    moves: String,
}

impl TicTacToe {
    /// The empty board, X to move.
    pub fn new() -> Self {
        TicTacToe {
            stones: [0; 2],
            history: [0; CELLS],
            plies: 0,
            winner: None,
        }
    }

    /// Replays moves, one cell digit 1..=9 each, X first.
    pub fn from_moves(moves: &str) -> Result<Self, String> {
        let mut game = Self::new();
        for (i, ch) in moves.chars().enumerate() {
            let n = i + 1;
            let cell = match ch.to_digit(10) {
                Some(d @ 1..=9) => d as usize - 1,
                _ => return Err(format!("move {n}: '{ch}' is not a cell digit 1-9")),
            };
            if game.is_terminal() {
                return Err(format!(
                    "move {n} (cell {}): the game already ended after {} moves",
                    cell + 1,
                    game.plies
                ));
            }
            if !game.is_empty(cell) {
                return Err(format!("move {n}: cell {} is taken", cell + 1));
            }
            game.play(cell);
        }
        Ok(game)
    }

    /// Parses `{"moves": "<digits 1-9>"}`.
    /// The stones of each side (a transposition key).
    pub fn stones(&self) -> [u16; 2] {
        self.stones
    }

    pub fn from_spec(spec: &str) -> Result<Self, String> {
        let parsed: Spec = serde_json::from_str(spec)
            .map_err(|e| format!("expected JSON {{\"moves\": \"<digits 1-9>\"}}: {e}"))?;
        Self::from_moves(&parsed.moves).map_err(|e| format!("field \"moves\": {e}"))
    }

    pub fn to_spec(&self) -> String {
        // Moves are digits only, so no JSON escaping is needed.
        format!("{{\"moves\":\"{}\"}}", self.moves())
    }

    /// The moves played so far, one cell digit each.
    pub fn moves(&self) -> String {
        self.history[..usize::from(self.plies)]
            .iter()
            .map(|&cell| char::from(b'1' + cell))
            .collect()
    }

    /// Stones on the board.
    pub fn plies(&self) -> u32 {
        u32::from(self.plies)
    }

    /// Appends the empty cells, ascending; none once the game is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_terminal() {
            return;
        }
        out.extend(
            (0..CELLS)
                .filter(|&c| self.is_empty(c))
                .map(|c| c as Action),
        );
    }

    /// Puts a stone of the player to move on cell `action`.
    ///
    /// Panics on an illegal action: that is a caller bug, and playing it
    /// anyway would corrupt the board.
    pub fn step(&mut self, action: Action) {
        let cell = usize::from(action);
        assert!(
            cell < CELLS && !self.is_terminal() && self.is_empty(cell),
            "illegal tictactoe action {action} after moves '{}'",
            self.moves()
        );
        self.play(cell);
    }

    pub fn is_terminal(&self) -> bool {
        self.winner.is_some() || usize::from(self.plies) == CELLS
    }

    /// Writes own stones to `out[..9]` and opponent stones to `out[9..18]`;
    /// `out` must be zeroed.
    pub fn encode(&self, out: &mut [f32]) {
        let me = usize::from(self.to_move());
        for cell in 0..CELLS {
            if self.stones[me] >> cell & 1 == 1 {
                out[cell] = 1.0;
            }
            if self.stones[1 - me] >> cell & 1 == 1 {
                out[CELLS + cell] = 1.0;
            }
        }
    }

    pub fn label(&self, action: Action) -> String {
        format!("cell {}", action + 1)
    }

    /// The board (`X`, `O`, `.`) and the game status.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(32);
        for cell in 0..CELLS {
            s.push(match self.cell_owner(cell) {
                Some(p) => player_name(p),
                None => '.',
            });
            s.push(if cell % 3 == 2 { '\n' } else { ' ' });
        }
        let status = match self.outcome() {
            Some(Outcome::Win) => "X wins".to_string(),
            Some(Outcome::Loss) => "O wins".to_string(),
            Some(_) => "draw".to_string(),
            None => format!("{} to move", player_name(self.to_move())),
        };
        s.push_str(&status);
        s.push('\n');
        s
    }

    /// Who holds `cell` (0-based), if anyone.
    pub fn cell_owner(&self, cell: usize) -> Option<u8> {
        (0..2u8).find(|&p| self.stones[usize::from(p)] >> cell & 1 == 1)
    }

    fn is_empty(&self, cell: usize) -> bool {
        (self.stones[0] | self.stones[1]) >> cell & 1 == 0
    }

    /// Plays an empty cell for the player to move and records a win.
    fn play(&mut self, cell: usize) {
        let me = usize::from(self.to_move());
        self.stones[me] |= 1 << cell;
        self.history[usize::from(self.plies)] = cell as u8;
        self.plies += 1;
        if has_line(self.stones[me]) {
            self.winner = Some(me as u8);
        }
    }

    /// Base-3 board code (0 empty, 1 X, 2 O): the memo table index.
    fn code(&self) -> usize {
        (0..CELLS).rev().fold(0, |k, cell| {
            3 * k + self.cell_owner(cell).map_or(0, |p| usize::from(p) + 1)
        })
    }
}

fn player_name(player: u8) -> char {
    if player == 0 {
        'X'
    } else {
        'O'
    }
}

// ---------------------------------------------------------------------------
// Solver

/// Marks table entries of unreachable boards.
const UNKNOWN: i8 = i8::MIN;

/// Scores of every reachable position, filled once by a full negamax.
fn table() -> &'static [i8] {
    static TABLE: OnceLock<Vec<i8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![UNKNOWN; 3usize.pow(CELLS as u32)];
        fill(&mut table, &TicTacToe::new());
        table
    })
}

/// Negamax with memo; returns the score of `pos` for its player to move.
fn fill(table: &mut [i8], pos: &TicTacToe) -> i8 {
    let code = pos.code();
    if table[code] != UNKNOWN {
        return table[code];
    }
    let score = match finished_score(pos) {
        Some(score) => score as i8,
        None => (0..CELLS)
            .filter(|&c| pos.is_empty(c))
            .map(|c| {
                let mut child = pos.clone();
                child.play(c);
                -fill(table, &child)
            })
            .max()
            .unwrap_or(0),
    };
    table[code] = score;
    score
}

/// Score of a finished game for the player to move (who lost, or drew), or
/// None while it runs.
fn finished_score(pos: &TicTacToe) -> Option<i32> {
    match pos.winner {
        Some(_) => Some(-(WIN_BASE - i32::from(pos.plies))),
        None if usize::from(pos.plies) == CELLS => Some(0),
        None => None,
    }
}

/// Exact score of any position for the player to move (finished games
/// included): `10 - k` for a win with the `k`-th stone, 0 draw, negative loss.
pub fn value(pos: &TicTacToe) -> i32 {
    let score = table()[pos.code()];
    if score == UNKNOWN {
        // Unreachable: every state comes from legal play from the empty board.
        return finished_score(pos).unwrap_or(0);
    }
    i32::from(score)
}

/// Scores of every legal move from the mover's view (same convention as
/// [`value`]), ascending by action; empty once the game is over. A move is
/// optimal when its score equals the maximum.
pub fn solve_moves(pos: &TicTacToe) -> Vec<(Action, i32)> {
    let mut moves = Vec::with_capacity(CELLS);
    pos.legal_actions(&mut moves);
    moves
        .into_iter()
        .map(|a| {
            let mut child = pos.clone();
            child.play(usize::from(a));
            (a, -value(&child))
        })
        .collect()
}

/// The exact value of a running game and every move that achieves it,
/// ascending; None once the game is over.
pub fn solve(pos: &TicTacToe) -> Option<(i32, Vec<Action>)> {
    let moves = solve_moves(pos);
    let best = moves.iter().map(|m| m.1).max()?;
    let optimal = moves.iter().filter(|m| m.1 == best).map(|m| m.0).collect();
    Some((best, optimal))
}

/// Own moves the winner needs, counting the current one, when the player
/// to move at `plies` stones has a winning `score` (`10 - k`).
fn moves_to_win(plies: u32, score: i32) -> u32 {
    let k = (WIN_BASE - score) as u32;
    (k - plies).div_ceil(2)
}

/// Moves the opponent needs to win against the mover's best defence, for a
/// losing `score` at `plies` stones.
fn moves_to_lose(plies: u32, score: i32) -> u32 {
    let k = (WIN_BASE + score) as u32;
    (k - plies) / 2
}

fn cell_list(cells: &[Action]) -> String {
    let list: Vec<String> = cells.iter().map(|&a| (a + 1).to_string()).collect();
    let noun = if cells.len() == 1 { "cell" } else { "cells" };
    format!("{noun} {}", list.join(", "))
}

/// `"X wins in 2 with cell 5"`, `"draw with cells 1, 3"` or
/// `"O loses in 1 with cells 2, 4"`, plus the mover's moves to force a win.
pub fn describe(pos: &TicTacToe) -> Option<(String, Option<u32>)> {
    let (score, cells) = solve(pos)?;
    let me = player_name(pos.to_move());
    let cells = cell_list(&cells);
    let plies = pos.plies();
    Some(match score {
        0 => (format!("draw with {cells}"), None),
        s if s > 0 => {
            let n = moves_to_win(plies, s);
            (format!("{me} wins in {n} with {cells}"), Some(n))
        }
        s => {
            let n = moves_to_lose(plies, s);
            (format!("{me} loses in {n} with {cells}"), None)
        }
    })
}

/// Every optimal cell of `pos` with the claim [`verify_solution`] accepts
/// for playing it; `None` for a finished game.
pub fn claims(pos: &TicTacToe) -> Option<Vec<(Action, String)>> {
    let cells = solve(pos)?.1;
    let text = describe(pos)?.0;
    let head = text.split(" with ").next()?;
    let claims = cells
        .into_iter()
        .map(|c| (c, format!("{head} with {}", cell_list(&[c]))))
        .collect();
    Some(claims)
}

// ---------------------------------------------------------------------------
// Verifier

/// A claim parsed from solution text.
#[derive(Debug, PartialEq)]
enum Claim {
    Draw,
    Wins(u32),
    Loses(u32),
}

/// Checks solution text against the task spec, independently of the memo
/// table (a plain alpha-beta negamax on a fresh board). Accepted forms, case
/// and commas free: `draw with cells 1, 3`, `X wins in 2 with cell 5`,
/// `O loses in 1 with cells 2 or 4` (the opponent then wins in that many of
/// its moves at best). The player named must be the one to move, the claim
/// must be the exact value (win/loss distances included), and every listed
/// cell (at least one, no repeats) must be an empty cell that achieves it;
/// listing only some of the optimal cells is fine. A finished game or a bad
/// spec fails.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(pos) = TicTacToe::from_spec(spec) else {
        return false;
    };
    let Some((claim, cells)) = parse_claim(solution, player_name(pos.to_move())) else {
        return false;
    };
    if pos.is_terminal() || cells.is_empty() {
        return false;
    }
    let mut board = [0u8; CELLS];
    for (cell, slot) in board.iter_mut().enumerate() {
        *slot = pos.cell_owner(cell).map_or(0, |p| p + 1);
    }
    let me = pos.to_move() + 1;
    let plies = pos.plies() as i32;
    let move_score = |cell: usize| -> i32 {
        let mut b = board;
        b[cell] = me;
        if board_has_line(&b, me) {
            WIN_BASE - (plies + 1)
        } else {
            -plain_negamax(&mut b, 3 - me, plies + 1, -WIN_BASE, WIN_BASE)
        }
    };
    let best = (0..CELLS).filter(|&c| board[c] == 0).map(move_score).max();
    let Some(best) = best else { return false };
    let expected = match best {
        0 => Claim::Draw,
        s if s > 0 => Claim::Wins(moves_to_win(plies as u32, s)),
        s => Claim::Loses(moves_to_lose(plies as u32, s)),
    };
    let mut listed = [false; CELLS];
    claim == expected
        && cells.iter().all(|&c| {
            let fresh = !std::mem::replace(&mut listed[c], true);
            fresh && board[c] == 0 && move_score(c) == best
        })
}

/// `(claim, 0-based cells)` from text like `"X wins in 2 with cells 1, 3"`,
/// where `me` must name the player to move.
fn parse_claim(text: &str, me: char) -> Option<(Claim, Vec<usize>)> {
    let lower = text.to_lowercase().replace(',', " ");
    let mut words = lower.split_whitespace();
    let claim = match words.next()? {
        "draw" => Claim::Draw,
        who if who == me.to_ascii_lowercase().to_string() => {
            let verb = words.next()?;
            if words.next()? != "in" {
                return None;
            }
            let n: u32 = words.next()?.parse().ok().filter(|&n| n >= 1)?;
            match verb {
                "wins" => Claim::Wins(n),
                "loses" => Claim::Loses(n),
                _ => return None,
            }
        }
        _ => return None,
    };
    let mut word = words.next()?;
    if matches!(word, "move" | "moves") {
        word = words.next()?;
    }
    if word != "with" || !matches!(words.next()?, "cell" | "cells") {
        return None;
    }
    let cells = words
        .filter(|w| !matches!(*w, "or" | "and"))
        .map(|w| match w.parse::<usize>() {
            Ok(d @ 1..=9) => Some(d - 1),
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()?;
    Some((claim, cells))
}

fn board_has_line(board: &[u8; CELLS], player: u8) -> bool {
    let stones = (0..CELLS).fold(0u16, |m, c| m | (u16::from(board[c] == player) << c));
    has_line(stones)
}

/// Fail-hard alpha-beta negamax on a plain board, scores as in [`value`];
/// `player` (1 = X, 2 = O) is to move with `plies` stones down and no line
/// on the board yet.
fn plain_negamax(
    board: &mut [u8; CELLS],
    player: u8,
    plies: i32,
    mut alpha: i32,
    beta: i32,
) -> i32 {
    if plies == CELLS as i32 {
        return 0;
    }
    let mut best = -WIN_BASE;
    for cell in 0..CELLS {
        if board[cell] != 0 {
            continue;
        }
        board[cell] = player;
        let score = if board_has_line(board, player) {
            WIN_BASE - (plies + 1)
        } else {
            -plain_negamax(board, 3 - player, plies + 1, -beta, -alpha)
        };
        board[cell] = 0;
        best = best.max(score);
        alpha = alpha.max(score);
        if alpha >= beta {
            break;
        }
    }
    best
}

// ---------------------------------------------------------------------------
// Generator

/// Generates the task for (difficulty, seed); see the module doc for the parameters.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    };
    let plies = (difficulty * MAX_OPENING_PLIES as f32).round() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = random_opening(&mut rng, plies);
    let (reference_solution, optimal_steps) =
        describe(&start).unwrap_or_else(|| ("game over".to_string(), None));
    Task {
        task_id: format!("tictactoe-{seed:016x}"),
        family: Family::TicTacToe,
        difficulty,
        seed,
        statement: statement(&start),
        spec: start.to_spec(),
        reference_solution,
        optimal_steps,
    }
}

/// Redraws bound the loop; at most a few percent of openings are rejected.
const MAX_OPENING_ATTEMPTS: usize = 1000;

/// Whether a start leaves the mover something to decide (module docs).
fn is_open_start(pos: &TicTacToe) -> bool {
    let Some((score, _)) = solve(pos) else {
        return false;
    };
    let immediate = WIN_BASE - (pos.plies() as i32 + 1);
    score >= 0 && score < immediate
}

/// `plies` random legal moves, redrawn until the start is open (falls back
/// to the empty board, never reached in practice).
fn random_opening(rng: &mut ChaCha8Rng, plies: usize) -> TicTacToe {
    let mut legal = Vec::with_capacity(CELLS);
    for _ in 0..MAX_OPENING_ATTEMPTS {
        let mut game = TicTacToe::new();
        for _ in 0..plies {
            legal.clear();
            game.legal_actions(&mut legal);
            if legal.is_empty() {
                break;
            }
            game.step(legal[rng.random_range(0..legal.len())]);
        }
        if is_open_start(&game) {
            return game;
        }
    }
    TicTacToe::new()
}

fn statement(start: &TicTacToe) -> String {
    let from = if start.plies == 0 {
        "the empty board".to_string()
    } else {
        format!("moves '{}'", start.moves())
    };
    format!(
        "Tic-tac-toe from {from} (cells 1-9 row by row from the top left): {} to move. \
         Give the value with perfect play and the optimal cells",
        player_name(start.to_move())
    )
}

impl TwoPlayer for TicTacToe {
    fn winner(&self) -> Option<u8> {
        self.winner
    }

    fn plies(&self) -> u32 {
        u32::from(self.plies)
    }

    fn cells(&self) -> u32 {
        CELLS as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn game(moves: &str) -> TicTacToe {
        TicTacToe::from_moves(moves).expect("valid test moves")
    }

    fn legal(g: &TicTacToe) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    fn spec(moves: &str) -> String {
        game(moves).to_spec()
    }

    /// Plain minimax over the game API, no memo and no pruning.
    fn brute_force(g: &TicTacToe) -> i32 {
        if let Some(score) = finished_score(g) {
            return score;
        }
        legal(g)
            .into_iter()
            .map(|a| {
                let mut child = g.clone();
                child.step(a);
                -brute_force(&child)
            })
            .max()
            .unwrap_or(0)
    }

    /// Every position reachable by legal play, once each.
    fn all_positions() -> Vec<TicTacToe> {
        let mut seen = HashSet::new();
        let mut stack = vec![TicTacToe::new()];
        let mut out = Vec::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g.code()) {
                continue;
            }
            for a in legal(&g) {
                let mut child = g.clone();
                child.step(a);
                stack.push(child);
            }
            out.push(g);
        }
        out
    }

    #[test]
    fn rows_columns_and_diagonals_win() {
        for (moves, outcome) in [
            ("14253", Outcome::Win),
            ("41526", Outcome::Win),
            ("172869", Outcome::Loss),
            ("12437", Outcome::Win),
            ("21538", Outcome::Win),
            ("12539", Outcome::Win),
            ("31527", Outcome::Win),
            ("315497", Outcome::Loss),
        ] {
            let g = game(moves);
            assert_eq!(g.outcome(), Some(outcome), "{moves}");
            assert_eq!(g.terminal_value(), -1.0);
            assert!(g.is_terminal() && legal(&g).is_empty());
            let before = game(&moves[..moves.len() - 1]);
            assert_eq!(before.outcome(), None, "{moves}");
            assert_eq!(before.terminal_value(), 0.0);
        }
    }

    #[test]
    fn full_board_draws() {
        let g = game("123546879");
        assert!(g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Draw));
        assert_eq!(g.terminal_value(), 0.0);
        assert!(legal(&g).is_empty());
        assert_eq!(value(&g), 0);
        assert_eq!(solve(&g), None);
        assert!(solve_moves(&g).is_empty());
        assert_eq!(g.render(), "X O X\nX O O\nO X X\ndraw\n");
    }

    #[test]
    fn turns_and_legal_moves() {
        let mut g = TicTacToe::new();
        assert_eq!(legal(&g), (0..9).collect::<Vec<Action>>());
        assert_eq!(g.to_move(), 0);
        g.step(4);
        assert_eq!(g.to_move(), 1);
        assert_eq!(legal(&g), vec![0, 1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(g.label(4), "cell 5");
        assert_eq!(g.moves(), "5");
        assert_eq!(g.render(), ". . .\n. X .\n. . .\nO to move\n");
    }

    #[test]
    #[should_panic(expected = "illegal tictactoe action")]
    fn step_rejects_taken_cell() {
        game("5").step(4);
    }

    #[test]
    fn from_moves_errors() {
        for bad in ["0", "a", "12x", " 1", "5\n", "10"] {
            let err = TicTacToe::from_moves(bad).unwrap_err();
            assert!(err.contains("not a cell digit"), "{bad:?}: {err}");
        }
        let err = TicTacToe::from_moves("55").unwrap_err();
        assert!(err.contains("cell 5 is taken"), "{err}");
        let err = TicTacToe::from_moves("142536").unwrap_err();
        assert!(
            err.contains("move 6") && err.contains("already ended"),
            "{err}"
        );
        assert_eq!(game("").moves(), "");
    }

    #[test]
    fn spec_round_trip_and_errors() {
        let g = game("519");
        assert_eq!(g.to_spec(), r#"{"moves":"519"}"#);
        assert_eq!(TicTacToe::from_spec(&g.to_spec()).unwrap(), g);
        assert_eq!(
            TicTacToe::from_spec(r#"{"moves": ""}"#).unwrap(),
            TicTacToe::new()
        );
        for (bad, needle) in [
            ("", "moves"),
            ("[]", "moves"),
            ("{}", "missing field `moves`"),
            (r#"{"moves": 5}"#, "string"),
            (r#"{"moves": "5", "x": 1}"#, "unknown field"),
            (r#"{"moves": "50"}"#, "field \"moves\": move 2"),
            (r#"{"moves": "1212"}"#, "cell 1 is taken"),
            ("{\"moves\": \"4", "moves"),
        ] {
            let err = TicTacToe::from_spec(bad).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn encoding_follows_the_mover() {
        let mut out = [0.0; OBS_DIM];
        game("").encode(&mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        // After X plays 5, O is to move: X's stone is in the opponent plane.
        let mut out = [0.0; OBS_DIM];
        game("5").encode(&mut out);
        let ones: Vec<usize> = (0..OBS_DIM).filter(|&i| out[i] == 1.0).collect();
        assert_eq!(ones, vec![9 + 4]);
        // After "51", X is to move: own stone at 4, O's at 0.
        let mut out = [0.0; OBS_DIM + 2];
        game("51").encode(&mut out);
        let ones: Vec<usize> = (0..OBS_DIM + 2).filter(|&i| out[i] == 1.0).collect();
        assert_eq!(ones, vec![4, 9]);
    }

    #[test]
    fn solver_matches_brute_force_everywhere() {
        let positions = all_positions();
        assert_eq!(positions.len(), 5478);
        for g in &positions {
            let v = value(g);
            assert_eq!(v, brute_force(g), "{}", g.moves());
            let moves = solve_moves(g);
            assert_eq!(moves.iter().map(|m| m.0).collect::<Vec<_>>(), legal(g));
            if let Some((best, optimal)) = solve(g) {
                assert_eq!(best, v);
                for (a, score) in moves {
                    let mut child = g.clone();
                    child.step(a);
                    assert_eq!(score, -brute_force(&child));
                    assert_eq!(optimal.contains(&a), score == v);
                }
            } else {
                assert!(g.is_terminal());
            }
        }
        assert_eq!(value(&TicTacToe::new()), 0, "perfect play draws");
    }

    #[test]
    fn solver_hand_made_positions() {
        // X to move wins at once on cell 3 (top row), the 5th stone.
        assert_eq!(solve(&game("1425")), Some((5, vec![2])));
        assert_eq!(
            describe(&game("1425")).unwrap().0,
            "X wins in 1 with cell 3"
        );
        // O must answer a corner opening in the center.
        assert_eq!(solve(&game("1")), Some((0, vec![4])));
        assert_eq!(
            describe(&game("1")).unwrap(),
            ("draw with cell 5".into(), None)
        );
        // O on an edge next to X's corner loses: X wins in 3 of its moves at best.
        let (text, steps) = describe(&game("12")).unwrap();
        assert_eq!(steps, Some(3));
        assert!(text.starts_with("X wins in 3 with cells"), "{text}");
        // O to move after X forks: O loses in 1, whatever it plays.
        let g = game("15937");
        assert_eq!(
            describe(&g).unwrap().0.split(" with").next(),
            Some("O loses in 1")
        );
        assert_eq!(moves_to_win(4, 5), 1);
        assert_eq!(moves_to_win(2, 3), 3);
        assert_eq!(moves_to_lose(5, -3), 1);
        assert_eq!(solve(&g).unwrap().1.len(), 4);
    }

    #[test]
    fn verifier_checks_claims() {
        let s = spec("12");
        let reference = describe(&game("12")).unwrap().0;
        assert!(verify_solution(&s, &reference), "{reference}");
        assert!(verify_solution(&s, "x wins in 3 with cell 5"));
        assert!(verify_solution(&s, "X wins in 3 moves with cells 4 or 5"));
        assert!(!verify_solution(&s, "X wins in 2 with cell 5"), "too fast");
        assert!(
            !verify_solution(&s, "O wins in 3 with cell 5"),
            "wrong player"
        );
        assert!(!verify_solution(&s, "draw with cell 5"));
        let (_, optimal) = solve(&game("12")).unwrap();
        let bad = legal(&game("12"))
            .into_iter()
            .find(|a| !optimal.contains(a))
            .unwrap();
        let text = format!("X wins in 3 with cell {}", bad + 1);
        assert!(!verify_solution(&s, &text), "not optimal");
        assert!(!verify_solution(&s, "X wins in 3 with cell 1"), "taken");
        assert!(
            !verify_solution(&s, "X wins in 3 with cells 5, 5"),
            "repeat"
        );
        assert!(!verify_solution(&s, "X wins in 3 with cells"), "no cell");
        assert!(!verify_solution(&s, "X wins in 3 with cell 10"));
        assert!(!verify_solution(&s, "X wins in 3"));
        assert!(!verify_solution(&s, ""));
        let empty = spec("");
        assert!(verify_solution(
            &empty,
            "draw with cells 1, 2, 3, 4, 5, 6, 7, 8, 9"
        ));
        assert!(verify_solution(&empty, "Draw with cell 5"));
        assert!(!verify_solution(&empty, "X wins in 4 with cell 5"));
        let lost = spec("15937");
        assert!(verify_solution(&lost, &describe(&game("15937")).unwrap().0));
        assert!(
            !verify_solution(&spec("14253"), "draw with cell 6"),
            "game over"
        );
        assert!(!verify_solution("{}", "draw with cell 5"));
    }

    #[test]
    fn generator_is_deterministic_and_clamped() {
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(generate(0.7, seed), generate(0.7, seed));
        }
        let t = generate(0.5, 0xabc);
        assert_eq!(t.task_id, "tictactoe-0000000000000abc");
        assert_eq!(t.family, Family::TicTacToe);
        assert_eq!(game_of(&t).moves().len(), 2);
        assert_eq!(generate(f32::NAN, 3).difficulty, 0.0);
        assert_eq!(generate(-1.0, 3).spec, r#"{"moves":""}"#);
        assert_eq!(generate(7.0, 3), generate(1.0, 3));
    }

    fn game_of(task: &Task) -> TicTacToe {
        TicTacToe::from_spec(&task.spec).expect("generated spec parses")
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..3000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            let t = generate(difficulty, seed);
            let g = game_of(&t);
            let plies = (difficulty * 4.0).round() as usize;
            assert_eq!(g.moves().len(), plies, "{t:?}");
            assert!(!g.is_terminal() && !legal(&g).is_empty());
            assert!(t.statement.contains("to move"), "{}", t.statement);
            let score = value(&g);
            assert!(score >= 0, "mover not lost: {t:?}");
            assert!(verify_solution(&t.spec, &t.reference_solution), "{t:?}");
            match t.optimal_steps {
                Some(n) => {
                    assert!(n >= 2, "no immediate wins: {t:?}");
                    assert_eq!(n, moves_to_win(g.plies(), score));
                    assert!(t.reference_solution.contains(&format!("wins in {n} with")));
                }
                None => assert!(t.reference_solution.starts_with("draw with")),
            }
            // Naming a non-optimal cell, or the wrong value, fails.
            let (best, optimal) = solve(&g).unwrap();
            if let Some(&bad) = legal(&g).iter().find(|a| !optimal.contains(a)) {
                let claim = t.reference_solution.split(" with").next().unwrap();
                let text = format!("{claim} with cell {}", bad + 1);
                assert!(!verify_solution(&t.spec, &text), "{text}: {t:?}");
            }
            if best > 0 {
                assert!(!verify_solution(
                    &t.spec,
                    &format!("draw with {}", cell_list(&optimal))
                ));
            }
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        // Per band: the mean share of legal moves that keep the value, and
        // the number of distinct starts.
        let stats: Vec<(f64, usize)> = [0.0f32, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|&d| {
                let games: Vec<TicTacToe> = (0..400).map(|s| game_of(&generate(d, s))).collect();
                let share: f64 = games
                    .iter()
                    .map(|g| solve(g).unwrap().1.len() as f64 / legal(g).len() as f64)
                    .sum();
                let distinct: HashSet<String> = games.iter().map(TicTacToe::moves).collect();
                (share / games.len() as f64, distinct.len())
            })
            .collect();
        let share: Vec<f64> = stats.iter().map(|s| s.0).collect();
        assert_eq!(share[0], 1.0, "the empty board: every move draws");
        assert!(share[1..].iter().all(|&s| s < 0.6), "{stats:?}");
        // Sharper with more plies for each side to move (X: 0, 2, 4; O: 1, 3).
        assert!(share[0] > share[2] && share[2] > share[4], "{stats:?}");
        assert!(share[1] > share[3], "{stats:?}");
        assert!(stats.windows(2).all(|w| w[1].1 > w[0].1), "{stats:?}");
    }

    proptest! {
        #[test]
        fn random_games_keep_invariants(choices in proptest::collection::vec(0usize..9, 0..12)) {
            let mut g = TicTacToe::new();
            for c in choices {
                let moves = legal(&g);
                prop_assert_eq!(moves.is_empty(), g.is_terminal());
                if moves.is_empty() {
                    break;
                }
                let a = moves[c % moves.len()];
                prop_assert!(moves.windows(2).all(|w| w[0] < w[1]));
                let mover = g.to_move();
                let before = value(&g);
                let after = solve_moves(&g).into_iter().find(|m| m.0 == a).unwrap().1;
                prop_assert!(after <= before);
                g.step(a);
                prop_assert_eq!(-value(&g), after);
                prop_assert_eq!(g.to_move(), 1 - mover);
                prop_assert_eq!(TicTacToe::from_moves(&g.moves()).unwrap(), g.clone());
                let mut obs = [0.0f32; OBS_DIM];
                g.encode(&mut obs);
                let own: f32 = obs[..CELLS].iter().sum();
                let theirs: f32 = obs[CELLS..].iter().sum();
                prop_assert_eq!((own + theirs) as u32, g.plies());
                prop_assert!(theirs >= own);
                match g.outcome() {
                    Some(Outcome::Draw) => prop_assert_eq!(g.terminal_value(), 0.0),
                    Some(o) => {
                        prop_assert_eq!(g.terminal_value(), -1.0);
                        prop_assert_eq!(o == Outcome::Win, mover == 0);
                    }
                    None => prop_assert!(!legal(&g).is_empty()),
                }
            }
        }

        #[test]
        fn from_spec_never_panics(s in ".{0,40}") {
            let _ = TicTacToe::from_spec(&s);
            let _ = TicTacToe::from_moves(&s);
        }

        #[test]
        fn verify_never_panics(text in "(draw|x|o|wins|loses|in|with|cells?|[0-9]|,| ){0,12}", moves in "[1-9]{0,4}") {
            if let Ok(g) = TicTacToe::from_moves(&moves) {
                let _ = verify_solution(&g.to_spec(), &text);
            }
        }
    }
}
