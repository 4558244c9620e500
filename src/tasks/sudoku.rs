//! Sudoku: fill a 4x4, 6x6 or 9x9 grid so that every row, column and box
//! holds each digit once.
//!
//! # Rules
//!
//! A grid of size `n` uses boxes of `2x2` (n = 4), `2x3` (2 rows by 3
//! columns, n = 6) or `3x3` (n = 9). Cells are indexed in a fixed 9x9 layout,
//! `cell = row * 9 + col`, so smaller grids sit in the top-left corner and a
//! cell keeps its index (and observation slots) across sizes. Action
//! `cell * 9 + (d - 1)` writes digit `d` into `cell` ([`ACTION_DIM`] = 729;
//! a 4x4 grid uses the actions of its 16 cells and digits 1..=4).
//!
//! A placement is legal when the cell is empty and `d` is not yet in its
//! row, column or box. Every step fills one empty cell, so the budget is the
//! number of empty cells at the start and an episode lasts at most that
//! many steps. The episode succeeds when the grid is full (every placement
//! was consistent, so a full grid is a solution), and fails at a dead end:
//! an empty cell with no candidate digit. In a dead end no action is legal,
//! so `legal_actions` is empty exactly when the grid is full or stuck.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! The generator fills a random complete grid (the solver with random digit
//! order), then empties cells in random order, keeping a removal only if the
//! puzzle still has exactly one solution (the solver counts up to 2), until
//! the band's drawn number of empty cells is reached or every cell was
//! tried. A cell that could not be emptied never can be later (fewer clues
//! only add solutions), so one pass suffices.
//!
//! | difficulty      | size | box | empty cells (= optimal steps) |
//! |-----------------|------|-----|-------------------------------|
//! | [0.000, 0.125)  | 4x4  | 2x2 | 4..=6                         |
//! | [0.125, 0.250)  | 4x4  | 2x2 | 7..=10                        |
//! | [0.250, 0.375)  | 6x6  | 2x3 | 10..=15                       |
//! | [0.375, 0.500)  | 6x6  | 2x3 | 16..=21                       |
//! | [0.500, 0.625)  | 9x9  | 3x3 | 30..=38                       |
//! | [0.625, 0.750)  | 9x9  | 3x3 | 39..=45                       |
//! | [0.750, 0.875)  | 9x9  | 3x3 | 46..=51                       |
//! | [0.875, 1.000]  | 9x9  | 3x3 | 52..=56                       |
//!
//! The random stream is `ChaCha8Rng::seed_from_u64(seed)` on ChaCha stream
//! number = band index, so one seed gives unrelated grids in different
//! bands. Draws that fall short of the band's minimum are retried from the
//! same stream (a task is a pure function of `(difficulty, seed)`); after
//! [`MAX_ATTEMPTS`] the emptiest draw is kept, which the tests check does
//! not happen in practice.
//!
//! # Observation ([`OBS_DIM`] = 979 floats, all within `[0, 1]`)
//!
//! Cell slots follow the 9x9 layout; cells outside a smaller grid are 0.
//! The last three floats come from constraint propagation (naked and hidden
//! singles applied until nothing changes), the first thing a person does:
//! a wrong placement usually shows up there as a contradiction long before
//! the grid runs into a dead end, so the value can see it and search can
//! steer away from it.
//!
//! | index          | feature                                                        |
//! |----------------|----------------------------------------------------------------|
//! | `p * 81 + cell`| plane `p` in 0..10: `p = 0` cell empty, `p = d` cell holds digit `d` |
//! | 810 + cell     | candidate digits of an empty cell / n (0 when filled)          |
//! | 891 + cell     | empty cell is forced: one candidate, or the only place for some digit in one of its row, column or box |
//! | 972, 973, 974  | size one-hot: 4x4, 6x6, 9x9                                    |
//! | 975            | filled cells / n^2                                             |
//! | 976            | propagation reaches a contradiction (1/0)                      |
//! | 977            | propagation fills the whole grid (1/0)                         |
//! | 978            | cells propagation fills / n^2                                  |
//!
//! With `families.sudoku.observation = "raw"` the grid is all the model
//! sees: only the digit planes and the size one-hot are set, as in the
//! TRM and HRM papers' Sudoku inputs.

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cells of the fixed 9x9 layout.
pub const CELLS: usize = 81;
/// Largest grid side and digit.
pub const MAX_SIZE: usize = 9;
/// One action per (cell, digit) of the 9x9 layout.
pub const ACTION_DIM: usize = CELLS * MAX_SIZE;
/// Supported grid sides.
pub const SIZES: [usize; 3] = [4, 6, 9];
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 50;

const PLANES: usize = MAX_SIZE + 1;
const CAND_BASE: usize = PLANES * CELLS;
const FORCED_BASE: usize = CAND_BASE + CELLS;
pub(crate) const SIZE_BASE: usize = FORCED_BASE + CELLS;
const FILLED_INDEX: usize = SIZE_BASE + SIZES.len();
const PROPAGATION_BASE: usize = FILLED_INDEX + 1;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = PROPAGATION_BASE + 3;
/// The per-cell part of the observation as planes (channels, height,
/// width): the ten digit planes, candidates, forced cells.
pub const GRID: (usize, usize, usize) = (PLANES + 2, MAX_SIZE, MAX_SIZE);
const _: () = assert!(GRID.0 * CELLS == SIZE_BASE);
const _: () = assert!(OBS_DIM <= 1024, "the brief caps sudoku at 1024 features");

/// Cell lists of one grid size: its cells, each cell's box, and its units
/// (rows, then columns, then boxes), all as 9x9-layout indices.
struct Geometry {
    size: usize,
    box_rows: usize,
    box_cols: usize,
    cells: [u8; CELLS],
    box_of: [u8; CELLS],
    units: [[u8; MAX_SIZE]; 3 * MAX_SIZE],
}

impl Geometry {
    fn cells(&self) -> &[u8] {
        &self.cells[..self.size * self.size]
    }

    fn units(&self) -> impl Iterator<Item = &[u8]> {
        self.units[..3 * self.size].iter().map(|u| &u[..self.size])
    }

    /// Digit bits `1..=size`.
    fn full(&self) -> u16 {
        (1 << self.size) - 1
    }
}

const fn geometry(size: usize, box_rows: usize, box_cols: usize) -> Geometry {
    let mut g = Geometry {
        size,
        box_rows,
        box_cols,
        cells: [0; CELLS],
        box_of: [0; CELLS],
        units: [[0; MAX_SIZE]; 3 * MAX_SIZE],
    };
    let mut r = 0;
    while r < size {
        let mut c = 0;
        while c < size {
            let idx = r * MAX_SIZE + c;
            let b = (r / box_rows) * (size / box_cols) + c / box_cols;
            g.cells[r * size + c] = idx as u8;
            g.box_of[idx] = b as u8;
            g.units[r][c] = idx as u8;
            g.units[size + c][r] = idx as u8;
            g.units[2 * size + b][(r % box_rows) * box_cols + c % box_cols] = idx as u8;
            c += 1;
        }
        r += 1;
    }
    g
}

static GEOMETRIES: [Geometry; 3] = [geometry(4, 2, 2), geometry(6, 2, 3), geometry(9, 3, 3)];

/// Geometry of a supported size (4, 6 or 9).
fn geometry_of(size: usize) -> &'static Geometry {
    match size {
        4 => &GEOMETRIES[0],
        6 => &GEOMETRIES[1],
        _ => &GEOMETRIES[2],
    }
}

/// Digits of a grid with used-digit bit masks per row, column and box, the
/// solver's and the game's working representation (`Copy`, 300 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Board {
    size: u8,
    cells: [u8; CELLS],
    rows: [u16; MAX_SIZE],
    cols: [u16; MAX_SIZE],
    boxes: [u16; MAX_SIZE],
    empty: u8,
}

impl Board {
    fn blank(size: usize) -> Board {
        Board {
            size: size as u8,
            cells: [0; CELLS],
            rows: [0; MAX_SIZE],
            cols: [0; MAX_SIZE],
            boxes: [0; MAX_SIZE],
            empty: (size * size) as u8,
        }
    }

    /// A board from digits in 9x9 layout (0 = empty); the error names the
    /// first given that repeats in its row, column or box.
    fn from_cells(size: usize, cells: &[u8; CELLS]) -> Result<Board, String> {
        let mut b = Board::blank(size);
        for &idx in geometry_of(size).cells() {
            let d = cells[usize::from(idx)];
            if d == 0 {
                continue;
            }
            if b.candidates(usize::from(idx)) & (1 << (d - 1)) == 0 {
                return Err(format!(
                    "puzzle: expected no repeated digit in a row, column or box, but {d} at {} repeats",
                    cell_name(usize::from(idx))
                ));
            }
            b.place(usize::from(idx), d);
        }
        Ok(b)
    }

    fn geometry(&self) -> &'static Geometry {
        geometry_of(usize::from(self.size))
    }

    /// Digit bits still allowed in empty cell `idx`.
    fn candidates(&self, idx: usize) -> u16 {
        let g = self.geometry();
        let used = self.rows[idx / MAX_SIZE]
            | self.cols[idx % MAX_SIZE]
            | self.boxes[usize::from(g.box_of[idx])];
        g.full() & !used
    }

    fn place(&mut self, idx: usize, d: u8) {
        let bit = 1 << (d - 1);
        let b = usize::from(self.geometry().box_of[idx]);
        self.cells[idx] = d;
        self.rows[idx / MAX_SIZE] |= bit;
        self.cols[idx % MAX_SIZE] |= bit;
        self.boxes[b] |= bit;
        self.empty -= 1;
    }

    /// Whether some empty cell has no candidate.
    fn is_stuck(&self) -> bool {
        self.geometry()
            .cells()
            .iter()
            .any(|&i| self.cells[usize::from(i)] == 0 && self.candidates(usize::from(i)) == 0)
    }

    /// Digits as text, row by row, `blank` for empty cells.
    fn digits(&self, blank: char) -> String {
        self.geometry()
            .cells()
            .iter()
            .map(|&i| match self.cells[usize::from(i)] {
                0 => blank,
                d => char::from(b'0' + d),
            })
            .collect()
    }
}

/// `"r2c3"`, 1-based.
fn cell_name(idx: usize) -> String {
    format!("r{}c{}", idx / MAX_SIZE + 1, idx % MAX_SIZE + 1)
}

/// A live Sudoku episode. Fixed-size with no heap data, so MCTS can clone
/// it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sudoku {
    board: Board,
    /// The clues, 9x9 layout, 0 = empty.
    givens: [u8; CELLS],
    steps: u8,
    /// Observe the raw grid only (digit planes and size): no candidates,
    /// forced cells or propagation features.
    raw: bool,
}

/// Parses a puzzle of `n * n` characters (16, 36 or 81, giving the size),
/// row by row: digits `1..=n`, and `0` or `.` for empty cells. Surrounding
/// whitespace is ignored. This is the one-line format of public Sudoku sets.
pub fn from_puzzle_string(s: &str) -> Result<Sudoku, String> {
    let s = s.trim();
    let len = s.chars().count();
    let size = SIZES
        .iter()
        .copied()
        .find(|&n| n * n == len)
        .ok_or_else(|| {
            format!("puzzle: expected 16, 36 or 81 characters (4x4, 6x6, 9x9), got {len}")
        })?;
    let g = geometry_of(size);
    let mut givens = [0u8; CELLS];
    for (k, ch) in s.chars().enumerate() {
        let idx = usize::from(g.cells[k]);
        givens[idx] = match ch {
            '0' | '.' => 0,
            '1'..='9' if (ch as usize - '0' as usize) <= size => ch as u8 - b'0',
            _ => {
                return Err(format!(
                    "puzzle[{k}] ({}): expected a digit 1-{size}, '0' or '.', got {ch:?}",
                    cell_name(idx)
                ))
            }
        };
    }
    let board = Board::from_cells(size, &givens)?;
    Ok(Sudoku {
        board,
        givens,
        steps: 0,
        raw: false,
    })
}

impl Sudoku {
    /// Parses `{"size":4,"puzzle":"1.3....2..4.3..."}`; the puzzle follows
    /// [`from_puzzle_string`] and must have `size * size` characters.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"size":4|6|9,"puzzle":"<size*size chars: digits, '0' or '.'>"}"#;
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        if let Some(key) = obj.keys().find(|k| *k != "size" && *k != "puzzle") {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only \"size\" and \"puzzle\""
            ));
        }
        let size = obj
            .get("size")
            .ok_or_else(|| format!("size: missing; expected {SHAPE}"))?;
        let size = size
            .as_u64()
            .and_then(|n| SIZES.iter().copied().find(|&s| s as u64 == n))
            .ok_or_else(|| format!("size: expected 4, 6 or 9, got {size}"))?;
        let puzzle = obj
            .get("puzzle")
            .ok_or_else(|| format!("puzzle: missing; expected {SHAPE}"))?;
        let puzzle = puzzle
            .as_str()
            .ok_or_else(|| format!("puzzle: expected a string of {} characters", size * size))?;
        let len = puzzle.trim().chars().count();
        if len != size * size {
            return Err(format!(
                "puzzle: expected {} characters for size {size}, got {len}",
                size * size
            ));
        }
        from_puzzle_string(puzzle)
    }

    /// The start state's spec, so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        format!(
            "{{\"size\":{},\"puzzle\":\"{}\"}}",
            self.size(),
            self.puzzle_string()
        )
    }

    /// The clues as one line, `.` for empty cells.
    pub fn puzzle_string(&self) -> String {
        let mut start = Board::blank(self.size());
        start.cells = self.givens;
        start.digits('.')
    }

    /// The current grid as one line, `.` for empty cells.
    pub fn grid_string(&self) -> String {
        self.board.digits('.')
    }

    /// Grid side: 4, 6 or 9.
    pub fn size(&self) -> usize {
        usize::from(self.board.size)
    }

    /// Digit at `(row, col)`, 0 = empty (0-based; 0 outside the grid).
    pub fn cell(&self, row: usize, col: usize) -> u8 {
        if row < self.size() && col < self.size() {
            self.board.cells[row * MAX_SIZE + col]
        } else {
            0
        }
    }

    /// Empty cells left.
    pub fn empty_cells(&self) -> usize {
        usize::from(self.board.empty)
    }

    /// Placements made so far.
    pub fn steps(&self) -> usize {
        usize::from(self.steps)
    }

    /// Cell and digit of an action inside this grid (ignores legality).
    fn decode(&self, action: Action) -> Option<(usize, u8)> {
        let a = usize::from(action);
        let (idx, d) = (a / MAX_SIZE, a % MAX_SIZE + 1);
        let n = self.size();
        (a < ACTION_DIM && idx / MAX_SIZE < n && idx % MAX_SIZE < n && d <= n)
            .then_some((idx, d as u8))
    }

    /// Whether `action` may be played now.
    pub fn is_legal(&self, action: Action) -> bool {
        let Some((idx, d)) = self.decode(action) else {
            return false;
        };
        self.board.cells[idx] == 0
            && self.board.candidates(idx) & (1 << (d - 1)) != 0
            && !self.is_terminal()
    }

    /// Every consistent placement, ascending; empty once the grid is full
    /// or some empty cell has no candidate.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_terminal() {
            return;
        }
        for &i in self.board.geometry().cells() {
            let idx = usize::from(i);
            if self.board.cells[idx] != 0 {
                continue;
            }
            let cand = self.board.candidates(idx);
            out.extend(
                (0..MAX_SIZE)
                    .filter(|d| cand & (1 << d) != 0)
                    .map(|d| (idx * MAX_SIZE + d) as Action),
            );
        }
    }

    /// Plays a legal placement. An illegal action is a bug (debug assert)
    /// and is ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let legal = self.is_legal(action);
        debug_assert!(legal, "illegal action {action} in\n{}", self.render());
        let Some((idx, d)) = self.decode(action).filter(|_| legal) else {
            return;
        };
        self.board.place(idx, d);
        self.steps += 1;
    }

    /// The verifier: the grid is complete, every row, column and box holds
    /// each digit once, and the clues are unchanged (checked from scratch).
    pub fn is_success(&self) -> bool {
        let g = self.board.geometry();
        let grid: Vec<u8> = g
            .cells()
            .iter()
            .map(|&i| self.board.cells[usize::from(i)])
            .collect();
        let givens: Vec<u8> = g
            .cells()
            .iter()
            .map(|&i| self.givens[usize::from(i)])
            .collect();
        is_valid_solution(self.size(), &givens, &grid)
    }

    pub fn is_terminal(&self) -> bool {
        self.board.empty == 0 || self.board.is_stuck()
    }

    /// Observe the raw grid only from now on (see [`Sudoku::encode`]).
    pub fn set_raw_view(&mut self) {
        self.raw = true;
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    /// In the raw view only the digit planes and the size one-hot are set.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let b = &self.board;
        let g = b.geometry();
        let n = g.size as f32;
        let k = SIZES.iter().position(|&s| s == g.size).unwrap_or(2);
        out[SIZE_BASE + k] = 1.0;
        for &i in g.cells() {
            let idx = usize::from(i);
            let d = usize::from(b.cells[idx]);
            out[d * CELLS + idx] = 1.0;
            if d == 0 && !self.raw {
                let cand = b.candidates(idx);
                out[CAND_BASE + idx] = cand.count_ones() as f32 / n;
                if cand.count_ones() == 1 {
                    out[FORCED_BASE + idx] = 1.0;
                }
            }
        }
        if self.raw {
            return;
        }
        for unit in g.units() {
            let hidden = hidden_singles(b, unit);
            for &i in unit {
                let idx = usize::from(i);
                if b.cells[idx] == 0 && b.candidates(idx) & hidden != 0 {
                    out[FORCED_BASE + idx] = 1.0;
                }
            }
        }
        out[FILLED_INDEX] = 1.0 - f32::from(b.empty) / (n * n);
        let mut after = *b;
        if propagate(&mut after) {
            out[PROPAGATION_BASE + 1] = flag(after.empty == 0);
            out[PROPAGATION_BASE + 2] = f32::from(b.empty - after.empty) / (n * n);
        } else {
            out[PROPAGATION_BASE] = 1.0;
        }
    }

    /// Human label of an action, e.g. `"r2c3=7"` (1-based).
    pub fn label(&self, action: Action) -> String {
        match self.decode(action) {
            Some((idx, d)) => format!("{}={d}", cell_name(idx)),
            None => format!("illegal action {action}"),
        }
    }

    /// The grid with box separators and `.` for empty cells, then a status
    /// line.
    pub fn render(&self) -> String {
        let g = self.board.geometry();
        let n = g.size;
        let mut s = String::new();
        for r in 0..n {
            if r > 0 && r % g.box_rows == 0 {
                let band: Vec<String> = (0..n / g.box_cols)
                    .map(|_| "-".repeat(2 * g.box_cols - 1))
                    .collect();
                s.push_str(&band.join("-+-"));
                s.push('\n');
            }
            for c in 0..n {
                if c > 0 {
                    s.push_str(if c % g.box_cols == 0 { " | " } else { " " });
                }
                s.push(match self.cell(r, c) {
                    0 => '.',
                    d => char::from(b'0' + d),
                });
            }
            s.push('\n');
        }
        let status = match self.outcome() {
            Some(Outcome::Success) => "solved".to_string(),
            Some(_) => "dead end".to_string(),
            None => format!("{} empty", self.board.empty),
        };
        s.push_str(&format!("{n}x{n} | {} placed | {status}\n", self.steps));
        s
    }

    /// Human statement of the task (start state).
    pub fn statement(&self) -> String {
        let g = self.board.geometry();
        let n = g.size;
        let puzzle = self.puzzle_string();
        let rows: Vec<&str> = (0..n).map(|r| &puzzle[r * n..(r + 1) * n]).collect();
        format!(
            "Fill the {n}x{n} Sudoku ({}x{} boxes) so every row, column and box holds 1-{n} exactly once. Rows top to bottom, '.' = empty: {}",
            g.box_rows,
            g.box_cols,
            rows.join("/")
        )
    }
}

/// Digit bits that have exactly one empty cell left in `unit` and are not
/// yet placed there.
fn hidden_singles(b: &Board, unit: &[u8]) -> u16 {
    let (mut once, mut twice) = (0u16, 0u16);
    for &i in unit {
        let idx = usize::from(i);
        if b.cells[idx] == 0 {
            let c = b.candidates(idx);
            twice |= once & c;
            once |= c;
        }
    }
    once & !twice
}

/// Independent check (no masks, no game code) that `grid` (row by row,
/// `size * size` digits) is a complete valid solution agreeing with
/// `givens` (0 = empty).
fn is_valid_solution(size: usize, givens: &[u8], grid: &[u8]) -> bool {
    let Some(&(_, box_rows, box_cols)) = [(4, 2, 2), (6, 2, 3), (9, 3, 3)]
        .iter()
        .find(|(n, _, _)| *n == size)
    else {
        return false;
    };
    if grid.len() != size * size || givens.len() != size * size {
        return false;
    }
    let in_range = grid.iter().all(|&d| (1..=size as u8).contains(&d));
    let keeps_clues = givens.iter().zip(grid).all(|(&g, &d)| g == 0 || g == d);
    if !in_range || !keeps_clues {
        return false;
    }
    let at = |r: usize, c: usize| grid[r * size + c];
    let rows_ok = (0..size).all(|r| all_distinct((0..size).map(|c| at(r, c))));
    let cols_ok = (0..size).all(|c| all_distinct((0..size).map(|r| at(r, c))));
    let boxes_ok = (0..size).all(|b| {
        let (r0, c0) = (
            b / (size / box_cols) * box_rows,
            b % (size / box_cols) * box_cols,
        );
        all_distinct((0..size).map(|k| at(r0 + k / box_cols, c0 + k % box_cols)))
    });
    rows_ok && cols_ok && boxes_ok
}

/// Whether the digits (each in `1..=9`) are pairwise distinct.
fn all_distinct(digits: impl Iterator<Item = u8>) -> bool {
    let mut seen = [false; MAX_SIZE + 1];
    let mut digits = digits;
    digits.all(|d| !std::mem::replace(&mut seen[usize::from(d)], true))
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// Places forced digits until none is left: naked singles (one candidate)
/// and hidden singles (a digit with one possible cell in a unit). Returns
/// false on a contradiction: an empty cell with no candidate, or a digit
/// with no possible cell in some unit.
fn propagate(b: &mut Board) -> bool {
    let g = b.geometry();
    let full = g.full();
    loop {
        let mut progress = false;
        for &i in g.cells() {
            let idx = usize::from(i);
            if b.cells[idx] != 0 {
                continue;
            }
            let cand = b.candidates(idx);
            if cand == 0 {
                return false;
            }
            if cand.is_power_of_two() {
                b.place(idx, cand.trailing_zeros() as u8 + 1);
                progress = true;
            }
        }
        if b.empty == 0 {
            return true;
        }
        for unit in g.units() {
            let (mut once, mut twice, mut placed) = (0u16, 0u16, 0u16);
            for &i in unit {
                let idx = usize::from(i);
                match b.cells[idx] {
                    0 => {
                        let c = b.candidates(idx);
                        twice |= once & c;
                        once |= c;
                    }
                    d => placed |= 1 << (d - 1),
                }
            }
            if once | placed != full {
                return false;
            }
            let mut hidden = once & !twice;
            while hidden != 0 {
                let bit = hidden & hidden.wrapping_neg();
                hidden ^= bit;
                let spot = unit
                    .iter()
                    .map(|&i| usize::from(i))
                    .find(|&idx| b.cells[idx] == 0 && b.candidates(idx) & bit != 0);
                let Some(idx) = spot else { return false };
                b.place(idx, bit.trailing_zeros() as u8 + 1);
                progress = true;
            }
        }
        if !progress {
            return true;
        }
    }
}

/// The empty cell with the fewest candidates, and its candidates.
fn most_constrained(b: &Board) -> Option<(usize, u16)> {
    b.geometry()
        .cells()
        .iter()
        .map(|&i| usize::from(i))
        .filter(|&idx| b.cells[idx] == 0)
        .map(|idx| (idx, b.candidates(idx)))
        .min_by_key(|&(_, c)| c.count_ones())
}

/// Backtracking over the most constrained cell after propagation, counting
/// solutions up to `limit` and keeping the first one found.
struct Search<'a> {
    limit: usize,
    count: usize,
    first: Option<Board>,
    /// Shuffles the digit order at each branch (for random grids).
    rng: Option<&'a mut ChaCha8Rng>,
}

impl Search<'_> {
    fn run(&mut self, mut b: Board) {
        if !propagate(&mut b) {
            return;
        }
        let Some((idx, cand)) = most_constrained(&b) else {
            self.count += 1;
            self.first.get_or_insert(b);
            return;
        };
        let mut digits = [0u8; MAX_SIZE];
        let mut n = 0;
        for d in 0..MAX_SIZE {
            if cand & (1 << d) != 0 {
                digits[n] = d as u8 + 1;
                n += 1;
            }
        }
        if let Some(rng) = self.rng.as_deref_mut() {
            shuffle(&mut digits[..n], rng);
        }
        for &d in &digits[..n] {
            let mut child = b;
            child.place(idx, d);
            self.run(child);
            if self.count >= self.limit {
                return;
            }
        }
    }
}

/// Solutions of `b`, counted up to `limit`, and the first one found.
fn search(b: Board, limit: usize, rng: Option<&mut ChaCha8Rng>) -> (usize, Option<Board>) {
    let mut s = Search {
        limit,
        count: 0,
        first: None,
        rng,
    };
    s.run(b);
    (s.count, s.first)
}

/// A solution of the current grid as `n * n` digits row by row, or `None`
/// when there is none. Exact: backtracking with naked/hidden-single
/// propagation and most-constrained-cell branching on bit-mask candidates.
pub fn solve(state: &Sudoku) -> Option<String> {
    search(state.board, 1, None).1.map(|b| b.digits('.'))
}

/// Number of solutions of the current grid, counted up to `limit`
/// (`limit = 2` decides uniqueness).
pub fn count_solutions(state: &Sudoku, limit: usize) -> usize {
    search(state.board, limit.max(1), None).0
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// Checks a solved grid given as `n * n` digits row by row against the
/// puzzle in `spec` (whitespace, `|`, `/`, `-` and `+` are ignored, so a
/// rendered grid also passes). Correct when every digit is in `1..=n`,
/// each row, column and box holds each digit once, and every clue is kept.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(puzzle) = Sudoku::from_spec(spec) else {
        return false;
    };
    let n = puzzle.size();
    let mut grid = Vec::with_capacity(n * n);
    for ch in solution.chars() {
        match ch {
            '1'..='9' => grid.push(ch as u8 - b'0'),
            c if c.is_whitespace() || "|/-+".contains(c) => {}
            _ => return false,
        }
    }
    let givens: Vec<u8> = (0..n * n)
        .map(|k| puzzle.givens[k / n * MAX_SIZE + k % n])
        .collect();
    is_valid_solution(n, &givens, &grid)
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    size: usize,
    empty: (usize, usize),
}

#[rustfmt::skip]
const BANDS: [Band; 8] = [
    Band { size: 4, empty: (4, 6) },
    Band { size: 4, empty: (7, 10) },
    Band { size: 6, empty: (10, 15) },
    Band { size: 6, empty: (16, 21) },
    Band { size: 9, empty: (30, 38) },
    Band { size: 9, empty: (39, 45) },
    Band { size: 9, empty: (46, 51) },
    Band { size: 9, empty: (52, 56) },
];

/// `difficulty` clamped to `[0, 1]`, NaN -> 0.
pub fn clamp_difficulty(difficulty: f32) -> f32 {
    if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    }
}

fn band_index(difficulty: f32) -> usize {
    let k = (clamp_difficulty(difficulty) * BANDS.len() as f32) as usize;
    k.min(BANDS.len() - 1)
}

fn band_for(difficulty: f32) -> &'static Band {
    &BANDS[band_index(difficulty)]
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Bands of one size would otherwise dig the same grid for a seed.
    rng.set_stream(band_index(difficulty) as u64);
    let (puzzle, solution) = pick_puzzle(band_for(difficulty), &mut rng);
    let game = Sudoku {
        board: puzzle,
        givens: puzzle.cells,
        steps: 0,
        raw: false,
    };
    Task {
        task_id: format!("sudoku-{seed:016x}"),
        family: Family::Sudoku,
        difficulty,
        seed,
        statement: game.statement(),
        spec: game.to_spec(),
        reference_solution: solution.digits('.'),
        optimal_steps: Some(u32::from(puzzle.empty)),
    }
}

/// Draws until a unique puzzle reaches the band's minimum of empty cells;
/// after [`MAX_ATTEMPTS`] keeps the emptiest. Returns puzzle and solution.
fn pick_puzzle(band: &Band, rng: &mut ChaCha8Rng) -> (Board, Board) {
    let mut best: Option<(Board, Board)> = None;
    for _ in 0..MAX_ATTEMPTS {
        let solution = random_grid(band.size, rng);
        let target = rng.random_range(band.empty.0..=band.empty.1);
        let puzzle = dig(&solution, target, rng);
        if usize::from(puzzle.empty) >= band.empty.0 {
            return (puzzle, solution);
        }
        if best.as_ref().is_none_or(|(p, _)| puzzle.empty > p.empty) {
            best = Some((puzzle, solution));
        }
    }
    best.unwrap_or_else(|| {
        let solution = random_grid(band.size, rng);
        (solution, solution)
    })
}

/// A uniformly shuffled search over the blank grid: a random full grid.
fn random_grid(size: usize, rng: &mut ChaCha8Rng) -> Board {
    let (_, grid) = search(Board::blank(size), 1, Some(rng));
    // A blank grid always has a solution; the fallback is unreachable.
    grid.unwrap_or_else(|| Board::blank(size))
}

/// Empties cells of `solution` in random order while the puzzle keeps a
/// unique solution, stopping at `target` empty cells.
fn dig(solution: &Board, target: usize, rng: &mut ChaCha8Rng) -> Board {
    let g = solution.geometry();
    let mut order: Vec<u8> = g.cells().to_vec();
    shuffle(&mut order, rng);
    let mut cells = solution.cells;
    let mut puzzle = *solution;
    for &i in &order {
        if usize::from(puzzle.empty) >= target {
            break;
        }
        let idx = usize::from(i);
        let keep = cells[idx];
        cells[idx] = 0;
        // Emptying cells of a valid grid never creates a repeat: Ok always.
        match Board::from_cells(g.size, &cells) {
            Ok(b) if search(b, 2, None).0 == 1 => puzzle = b,
            _ => cells[idx] = keep,
        }
    }
    puzzle
}

/// Fisher-Yates shuffle.
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

impl Puzzle for Sudoku {
    fn is_success(&self) -> bool {
        Sudoku::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Sudoku::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    /// Wikipedia's example puzzle and its solution.
    const CLASSIC: &str =
        "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
    const CLASSIC_SOLUTION: &str =
        "534678912672195348198342567859761423426853791713924856961537284287419635345286179";
    /// Arto Inkala's "world's hardest sudoku" (needs real backtracking).
    const INKALA: &str =
        "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..";

    fn puzzle(s: &str) -> Sudoku {
        from_puzzle_string(s).expect("valid test puzzle")
    }

    fn spec_of(s: &str) -> String {
        puzzle(s).to_spec()
    }

    fn legal(g: &Sudoku) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// Action writing `d` at 1-based `(row, col)`.
    fn put(row: usize, col: usize, d: usize) -> Action {
        (((row - 1) * MAX_SIZE + col - 1) * MAX_SIZE + d - 1) as Action
    }

    /// Plays the digits of `solution` into every empty cell, row by row;
    /// None if a placement is illegal.
    fn replay(spec: &str, solution: &str) -> Option<Sudoku> {
        let mut g = Sudoku::from_spec(spec).ok()?;
        let n = g.size();
        for (k, ch) in solution.chars().enumerate() {
            let (r, c) = (k / n, k % n);
            if g.cell(r, c) == 0 {
                let a = put(r + 1, c + 1, ch.to_digit(10)? as usize);
                if !g.is_legal(a) {
                    return None;
                }
                g.step(a);
            }
        }
        Some(g)
    }

    /// Plain backtracking solution count (no masks, no propagation).
    fn brute_force(size: usize, grid: &mut Vec<u8>) -> usize {
        let Some(k) = grid.iter().position(|&d| d == 0) else {
            return 1;
        };
        let mut total = 0;
        for d in 1..=size as u8 {
            grid[k] = d;
            if consistent(size, grid, k) {
                total += brute_force(size, grid);
            }
        }
        grid[k] = 0;
        total
    }

    /// Whether the digit at `k` differs from all its peers (4x4 or 6x6).
    fn consistent(size: usize, grid: &[u8], k: usize) -> bool {
        let (bh, bw) = if size == 6 { (2, 3) } else { (2, 2) };
        let (r, c) = (k / size, k % size);
        (0..size * size).all(|j| {
            let (rj, cj) = (j / size, j % size);
            let peer = rj == r || cj == c || (rj / bh == r / bh && cj / bw == c / bw);
            j == k || !peer || grid[j] != grid[k]
        })
    }

    #[test]
    fn placements_follow_the_rules() {
        let mut g = puzzle("1.3.....2..4.3..");
        assert_eq!(g.size(), 4);
        assert_eq!(g.empty_cells(), 11);
        let acts = legal(&g);
        assert!(acts.windows(2).all(|w| w[0] < w[1]));
        assert!(acts.contains(&put(1, 2, 2)) && acts.contains(&put(1, 2, 4)));
        assert!(!acts.contains(&put(1, 2, 1)), "1 is in row 1");
        assert!(!acts.contains(&put(1, 2, 3)), "3 is in row 1");
        assert!(!acts.contains(&put(1, 1, 2)), "r1c1 is a clue");
        assert!(acts.iter().all(|&a| a % 9 < 4), "digits 1-4 only");
        assert!(
            acts.iter().all(|&a| a / 9 % 9 < 4 && a / 81 < 4),
            "inside the grid"
        );
        assert_eq!(g.label(put(1, 2, 4)), "r1c2=4");
        for outside in [put(1, 5, 1), put(1, 1, 5), ACTION_DIM as Action] {
            assert_eq!(g.label(outside), format!("illegal action {outside}"));
            assert!(!g.is_legal(outside));
        }
        g.step(put(1, 2, 4));
        assert_eq!(g.cell(0, 1), 4);
        assert_eq!(g.cell(0, 8), 0, "outside the grid");
        assert_eq!((g.empty_cells(), g.steps()), (10, 1));
        assert!(!g.is_legal(put(1, 2, 2)), "cell taken");
        assert!(!g.is_legal(put(1, 4, 4)), "4 now in row 1");
        assert!(!g.is_terminal());
        assert_eq!(g.outcome(), None);
        assert_eq!(g.terminal_value(), 0.0);
        assert_eq!(g.to_move(), 0);
        assert_eq!(g.grid_string(), "143.....2..4.3..");
        assert_eq!(g.puzzle_string(), "1.3.....2..4.3..", "the clues stay");
    }

    #[test]
    fn a_full_grid_is_a_success() {
        let mut g = puzzle("123.341221434321");
        assert_eq!(legal(&g), vec![put(1, 4, 4)]);
        g.step(put(1, 4, 4));
        assert!(g.is_terminal() && g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(
            g.render(),
            "1 2 | 3 4\n3 4 | 1 2\n----+----\n2 1 | 4 3\n4 3 | 2 1\n4x4 | 1 placed | solved\n"
        );
        let done = puzzle("1234341221434321");
        assert!(done.is_terminal() && done.is_success(), "no empty cell");
        assert_eq!(solve(&done).as_deref(), Some("1234341221434321"));
    }

    #[test]
    fn a_dead_end_fails() {
        // After r1c3=4, r1c4 must be 3, which column 4 already holds.
        let mut g = puzzle("12.....3........");
        assert!(g.is_legal(put(1, 3, 4)));
        g.step(put(1, 3, 4));
        assert!(g.is_terminal() && !g.is_success(), "{}", g.render());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(!g.is_legal(put(2, 1, 3)), "nothing is legal at a dead end");
        assert!(g.render().ends_with("| dead end\n"));
        assert_eq!(solve(&g), None);
        assert_eq!(count_solutions(&g, 2), 0);
    }

    #[test]
    fn render_and_statement() {
        let g = puzzle(&format!("1........2..{}", ".".repeat(24)));
        let text = g.render();
        assert!(
            text.starts_with("1 . . | . . .\n. . . | 2 . .\n------+------\n"),
            "{text}"
        );
        assert!(text.ends_with("6x6 | 0 placed | 34 empty\n"), "{text}");
        let g = puzzle(CLASSIC);
        let text = g.render();
        assert!(text.starts_with("5 3 . | . 7 . | . . .\n"), "{text}");
        assert!(text.contains("\n------+-------+------\n"), "{text}");
        assert!(g.statement().starts_with("Fill the 9x9 Sudoku (3x3 boxes)"));
        assert!(g.statement().ends_with(": 53..7..../6..195.../.98....6./8...6...3/4..8.3..1/7...2...6/.6....28./...419..5/....8..79"));
    }

    #[test]
    fn puzzle_strings_parse() {
        let g = puzzle(&format!("  {}\n", CLASSIC.replace('.', "0")));
        assert_eq!(g.size(), 9);
        assert_eq!(g.puzzle_string(), CLASSIC);
        assert_eq!(puzzle(&"0".repeat(36)).size(), 6);
        assert_eq!(puzzle(&"0".repeat(16)).empty_cells(), 16);
        let row80 = "0".repeat(80);
        let six_box = format!("1.....{}", "..1...".to_string() + &".".repeat(24));
        let six_ok = format!("1.....{}", "...1..".to_string() + &".".repeat(24));
        assert!(
            from_puzzle_string(&six_ok).is_ok(),
            "2x3 boxes: r2c4 is in the next box"
        );
        let bad = [
            ("", "16, 36 or 81"),
            ("123", "16, 36 or 81"),
            (row80.as_str(), "got 80"),
            ("1x..............", "puzzle[1] (r1c2)"),
            ("5...............", "puzzle[0] (r1c1): expected a digit 1-4"),
            ("1..1............", "1 at r1c4 repeats"),
            ("1...1...........", "1 at r2c1 repeats"),
            ("1....1..........", "1 at r2c2 repeats"),
            (six_box.as_str(), "1 at r2c3 repeats"),
        ];
        for (s, why) in bad {
            let err = from_puzzle_string(s).expect_err(s);
            assert!(err.contains(why) && err.contains("expected"), "{s}: {err}");
        }
    }

    #[test]
    fn spec_round_trips() {
        let g = Sudoku::from_spec(r#"{"puzzle": "1030000020040300", "size": 4}"#).unwrap();
        assert_eq!(g.to_spec(), r#"{"size":4,"puzzle":"1.3.....2..4.3.."}"#);
        let mut h = Sudoku::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(put(1, 2, 4));
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let cases = [
            ("", "spec"),
            ("{", "spec"),
            ("[4]", "spec"),
            ("null", "spec"),
            (r#"{"size":4}"#, "puzzle"),
            (r#"{"puzzle":"1.3.....2..4.3.."}"#, "size"),
            (r#"{"size":5,"puzzle":"1.3.....2..4.3.."}"#, "size"),
            (r#"{"size":"4","puzzle":"1.3.....2..4.3.."}"#, "size"),
            (r#"{"size":4.0,"puzzle":"1.3.....2..4.3.."}"#, "size"),
            (r#"{"size":9,"puzzle":"1.3.....2..4.3.."}"#, "puzzle"),
            (r#"{"size":4,"puzzle":1234}"#, "puzzle"),
            (r#"{"size":4,"puzzle":"1.3.....2..4.3.x"}"#, "puzzle[15]"),
            (r#"{"size":4,"puzzle":"113.....2..4.3.."}"#, "puzzle"),
            (
                r#"{"size":4,"puzzle":"1.3.....2..4.3..","solution":"x"}"#,
                "solution",
            ),
        ];
        for (spec, field) in cases {
            let err = Sudoku::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
    }

    #[test]
    fn solve_known_puzzles() {
        let classic = puzzle(CLASSIC);
        assert_eq!(solve(&classic).as_deref(), Some(CLASSIC_SOLUTION));
        assert_eq!(count_solutions(&classic, 2), 1);
        assert!(verify_solution(&classic.to_spec(), CLASSIC_SOLUTION));
        let hard = puzzle(INKALA);
        let start = std::time::Instant::now();
        let sol = solve(&hard).expect("Inkala's puzzle has a solution");
        assert_eq!(count_solutions(&hard, 2), 1);
        assert!(start.elapsed().as_millis() < 200, "fast on hard 9x9");
        assert!(verify_solution(&hard.to_spec(), &sol));
        assert_eq!(count_solutions(&puzzle(&".".repeat(81)), 2), 2);
        assert_eq!(
            count_solutions(&puzzle(&".".repeat(16)), 1000),
            288,
            "all 4x4 grids"
        );
        let two_ways = puzzle("12..34..........");
        assert_eq!(
            count_solutions(&two_ways, 100),
            brute_force(4, &mut vec_of("12..34.........."))
        );
    }

    fn vec_of(s: &str) -> Vec<u8> {
        s.chars()
            .map(|c| c.to_digit(10).unwrap_or(0) as u8)
            .collect()
    }

    #[test]
    fn solver_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for round in 0..300 {
            let size = if round % 3 == 0 { 6 } else { 4 };
            let full = random_grid(size, &mut rng);
            let mut text: Vec<char> = full.digits('.').chars().collect();
            let blanks = rng.random_range(size..=size * size * 3 / 4);
            for _ in 0..blanks {
                let k = rng.random_range(0..text.len());
                text[k] = '.';
            }
            // Occasionally break the puzzle: a clue that leaves no solution.
            if round % 5 == 0 {
                if let Some(k) = text.iter().position(|&c| c == '.') {
                    text[k] = char::from(b'1' + (round % size) as u8);
                }
            }
            let text: String = text.into_iter().collect();
            let Ok(g) = from_puzzle_string(&text) else {
                continue;
            };
            let expect = brute_force(size, &mut vec_of(&text));
            assert_eq!(count_solutions(&g, 100_000), expect, "{text}");
            assert_eq!(count_solutions(&g, 2), expect.min(2), "{text}");
            match solve(&g) {
                Some(sol) => assert!(verify_solution(&g.to_spec(), &sol), "{text}"),
                None => assert_eq!(expect, 0, "{text}"),
            }
        }
    }

    #[test]
    fn verifier_accepts_layouts_and_rejects_errors() {
        let spec = spec_of(CLASSIC);
        let ok = |s: &str| verify_solution(&spec, s);
        assert!(ok(CLASSIC_SOLUTION));
        let mut rendered = String::new();
        for r in 0..9 {
            rendered.push_str(&CLASSIC_SOLUTION[r * 9..r * 9 + 9]);
            rendered.push_str(" |\n");
        }
        assert!(ok(&rendered), "whitespace and bars are ignored");
        assert!(!ok(&CLASSIC_SOLUTION[..80]), "too short");
        assert!(!ok(&format!("{CLASSIC_SOLUTION}1")), "too long");
        assert!(!ok(&CLASSIC_SOLUTION.replacen('5', "0", 1)), "a zero");
        assert!(!ok(&CLASSIC_SOLUTION.replacen('5', "x", 1)), "a letter");
        assert!(!ok(""));
        // Swapping digits 1 and 2 everywhere is a valid grid, but breaks clues.
        let relabeled: String = CLASSIC_SOLUTION
            .chars()
            .map(|c| match c {
                '1' => '2',
                '2' => '1',
                c => c,
            })
            .collect();
        assert!(!ok(&relabeled));
        assert!(verify_solution(&spec_of(&".".repeat(81)), &relabeled));
        assert!(!verify_solution("{}", CLASSIC_SOLUTION));
    }

    #[test]
    fn encode_is_bounded_and_informative() {
        let g = puzzle("1.3.....2..4.3..");
        let mut obs = vec![0.0; OBS_DIM + 3];
        g.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
        assert_eq!(&obs[OBS_DIM..], &[0.0; 3]);
        let cell = |r: usize, c: usize| r * 9 + c;
        assert_eq!(obs[cell(0, 0) + CELLS], 1.0, "r1c1 holds 1");
        assert_eq!(obs[cell(0, 0)], 0.0, "r1c1 not empty");
        assert_eq!(obs[cell(0, 1)], 1.0, "r1c2 empty");
        assert_eq!(obs[CAND_BASE + cell(0, 1)], 0.5, "r1c2 can be 2 or 4");
        assert_eq!(obs[cell(0, 4)], 0.0, "outside the 4x4 grid");
        assert_eq!(obs[SIZE_BASE..SIZE_BASE + 3], [1.0, 0.0, 0.0]);
        assert!((obs[FILLED_INDEX] - 5.0 / 16.0).abs() < 1e-6);
        // Every cell flagged as forced is a naked or a hidden single.
        let forced: Vec<usize> = (0..CELLS)
            .filter(|&i| obs[FORCED_BASE + i] == 1.0)
            .collect();
        let b = g.board;
        for &i in &forced {
            let single = b.candidates(i).count_ones() == 1;
            let hidden = b
                .geometry()
                .units()
                .any(|u| u.contains(&(i as u8)) && b.candidates(i) & hidden_singles(&b, u) != 0);
            assert!(b.cells[i] == 0 && (single || hidden), "cell {i}");
        }
        let nine = puzzle(CLASSIC);
        let mut obs = vec![0.0; OBS_DIM];
        nine.encode(&mut obs);
        assert_eq!(obs[SIZE_BASE..SIZE_BASE + 3], [0.0, 0.0, 1.0]);
        assert_eq!(obs[5 * CELLS], 1.0, "r1c1 holds 5");
        assert_eq!(obs[PROPAGATION_BASE], 0.0, "no contradiction");
        assert!(obs[PROPAGATION_BASE + 2] > 0.0, "singles fill cells");
        assert!(
            (0..CELLS).any(|i| obs[FORCED_BASE + i] == 1.0),
            "the classic has singles"
        );
    }

    #[test]
    fn bands_of_one_size_draw_different_grids() {
        for seed in 0..20 {
            let a = generate(0.55, seed).reference_solution;
            let b = generate(0.95, seed).reference_solution;
            assert_ne!(a, b, "seed {seed}");
        }
    }

    /// Wrong answers derived from a reference solution.
    fn corruptions(g: &Sudoku, reference: &str) -> Vec<(&'static str, String)> {
        let n = g.size();
        let digits: Vec<char> = reference.chars().collect();
        let mut out = vec![("truncated", reference[..reference.len() - 1].to_string())];
        // Two empty cells of one row swapped: the columns break.
        let empties: Vec<usize> = (0..n).filter(|&c| g.cell(0, c) == 0).collect();
        if let [a, b, ..] = empties[..] {
            let mut swapped = digits.clone();
            swapped.swap(a, b);
            out.push(("row swap", swapped.into_iter().collect()));
        }
        let k = (0..n * n).find(|&k| g.cell(k / n, k % n) == 0).unwrap_or(0);
        let mut changed = digits.clone();
        changed[k] = if digits[k] == '1' { '2' } else { '1' };
        out.push(("one digit changed", changed.into_iter().collect()));
        out
    }

    fn check_task(task: &Task) {
        let g = Sudoku::from_spec(&task.spec).expect("generated spec parses");
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        assert_eq!(count_solutions(&g, 2), 1, "unique: {task:?}");
        assert_eq!(solve(&g).as_deref(), Some(task.reference_solution.as_str()));
        assert_eq!(task.optimal_steps, Some(g.empty_cells() as u32));
        assert!(
            verify_solution(&task.spec, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &task.reference_solution).expect("playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.steps(), g.empty_cells());
        for (what, bad) in corruptions(&g, &task.reference_solution) {
            assert!(!verify_solution(&task.spec, &bad), "{what}: {task:?}");
        }
        let band = band_for(task.difficulty);
        assert_eq!(g.size(), band.size);
        assert!(g.empty_cells() >= band.empty.0, "fallback fired: {task:?}");
        assert!(g.empty_cells() <= band.empty.1, "{task:?}");
        assert!(task.statement.starts_with("Fill the "));
    }

    /// Propagation never contradicts a grid that agrees with the solution,
    /// and often exposes a wrong placement at once.
    #[test]
    fn propagation_features_flag_wrong_placements() {
        let (mut wrong, mut caught) = (0, 0);
        for seed in 0..300u64 {
            let task = generate((seed % 8) as f32 / 8.0, seed);
            let g = Sudoku::from_spec(&task.spec).unwrap();
            let mut obs = vec![0.0; OBS_DIM];
            g.encode(&mut obs);
            assert_eq!(obs[PROPAGATION_BASE], 0.0, "{task:?}");
            let solution: Vec<u8> = task.reference_solution.bytes().map(|c| c - b'0').collect();
            for a in legal(&g) {
                let (idx, d) = g.decode(a).unwrap();
                let (r, c) = (idx / MAX_SIZE, idx % MAX_SIZE);
                let mut child = g.clone();
                child.step(a);
                obs.fill(0.0);
                child.encode(&mut obs);
                if solution[r * g.size() + c] == d {
                    assert_eq!(obs[PROPAGATION_BASE], 0.0, "right placement, {task:?}");
                } else {
                    wrong += 1;
                    caught += usize::from(obs[PROPAGATION_BASE] == 1.0);
                }
            }
        }
        assert!(caught * 2 > wrong, "caught {caught} of {wrong} wrong placements");
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..2400u64 {
            let difficulty = (seed % 17) as f32 / 16.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64)> = [0.05f32, 0.2, 0.3, 0.45, 0.55, 0.7, 0.8, 0.95]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..60).map(|s| generate(d, s)).collect();
                let mean = |f: &dyn Fn(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 60.0;
                let size = mean(&|t| Sudoku::from_spec(&t.spec).unwrap().size() as f64);
                let steps = mean(&|t| f64::from(t.optimal_steps.unwrap_or(0)));
                (size, steps)
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 >= w[0].0, "sizes grow: {stats:?}");
            assert!(w[1].1 > w[0].1, "empty cells grow: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,100}") {
            let _ = Sudoku::from_spec(&spec);
        }

        #[test]
        fn puzzle_strings_never_panic(s in "[0-9. x\u{e9}]{0,90}") {
            if let Ok(g) = from_puzzle_string(&s) {
                prop_assert_eq!(Sudoku::from_spec(&g.to_spec()).ok(), Some(g));
            }
        }

        #[test]
        fn from_spec_checks_the_size(size in 0u64..12, len in 0usize..90) {
            let spec = format!(r#"{{"size":{size},"puzzle":"{}"}}"#, ".".repeat(len));
            let ok = [4, 6, 9].contains(&size) && len as u64 == size * size;
            prop_assert_eq!(Sudoku::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[0-9 |x\n]{0,90}", seed in 0u64..20) {
            let task = generate(0.6, seed);
            let _ = verify_solution(&task.spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Sudoku::from_spec(&task.spec).unwrap();
            let budget = g.empty_cells();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                if acts.is_empty() {
                    break;
                }
                prop_assert!(acts.iter().all(|&a| g.is_legal(a)));
                let a = acts[rng.random_range(0..acts.len())];
                g.step(a);
                prop_assert!(g.steps() <= budget);
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            prop_assert_eq!(verify_solution(&task.spec, &g.grid_string()), g.is_success());
        }
    }
}
