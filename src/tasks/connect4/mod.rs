//! Connect Four (7 columns x 6 rows), the two-player "search" family.
//!
//! The board is a pair of bitboards laid out like Pascal Pons' solver: bit
//! `col * 7 + row` (row 0 = bottom), with a seventh always-empty sentinel row
//! per column so that shifts never wrap from one column into the next. Moves
//! are written in Pons' format too: one digit 1..=7 per move, X first.
//!
//! The exact solver ([`solve`], [`solve_moves`], [`optimal_moves`], in
//! `solver.rs`) is Pons' negamax: alpha-beta on bitboards with a
//! transposition table of upper and lower bounds, threat-count-then-center
//! move ordering, pruning to "non-losing" moves, and null-window searches
//! that narrow the score interval. Scores follow Pons:
//! from the player to move, `(43 - p) / 2` for a win played when `p` stones
//! are on the board (sooner = larger), 0 for a draw, the negation for a loss.
//!
//! # Generator
//!
//! A task is a start position reached by random legal moves from the empty
//! board, drawn with `ChaCha8Rng::seed_from_u64(seed)`. Openings that are
//! already over, or where the side to move can win at once, are redrawn from
//! the same stream, so the task is a pure function of (difficulty, seed).
//!
//! | difficulty d (clamped to [0, 1], NaN = 0) | random opening plies | side to move |
//! |-------------------------------------------|----------------------|--------------|
//! | d < 0.05                                  | 0 (empty board)      | X            |
//! | 0.05 <= d < 0.15                          | 1                    | O            |
//! | ...                                       | round(10 d)          | X when even  |
//! | 0.95 <= d                                 | 10                   | X            |
//!
//! The reference solution names every optimal move and the exact value when
//! the solver proves them within [`GEN_NODE_BUDGET`] nodes (one solve plus a
//! null-window test per move), e.g. "play col 4 (wins in 9 moves)" or "draw
//! with col 3 or col 5". Otherwise it is the pick of a
//! depth-[`GEN_HEURISTIC_DEPTH`] [`best_move`] search, marked heuristic.
//! `optimal_steps` counts the mover's own moves to force the win, when proven.
//! The budget keeps generation near a millisecond per task, so only positions
//! close to a decision are proven; open ones carry the heuristic reference.

use crate::tasks::{Action, Family, Outcome, Task, TwoPlayer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

mod solver;

pub use solver::{last_search_nodes, optimal_moves, solve, solve_moves, UNBOUNDED};

/// One action per column, 0-based.
pub const ACTION_DIM: usize = 7;
/// Four 6x7 planes from the mover's view: own stones, opponent stones, the
/// empty cells that would complete four for the mover, then for the opponent.
pub const OBS_DIM: usize = 168;

/// Random opening plies at difficulty 1.
pub const MAX_OPENING_PLIES: usize = 10;
/// Solver nodes the generator spends per task before falling back to a heuristic.
pub const GEN_NODE_BUDGET: u64 = 20_000;
/// Depth of the fallback heuristic search in the generator.
pub const GEN_HEURISTIC_DEPTH: u32 = 6;

const WIDTH: usize = 7;
const HEIGHT: usize = 6;
const CELLS: usize = WIDTH * HEIGHT;
/// The observation as planes (channels, height, width): own, opponent,
/// own threats, opponent threats.
pub const GRID: (usize, usize, usize) = (4, HEIGHT, WIDTH);
/// Bits per column: HEIGHT cells plus the empty sentinel row.
const COL_BITS: usize = HEIGHT + 1;
/// Column order tried first when move scores tie: center out.
const CENTER_FIRST: [usize; WIDTH] = [3, 2, 4, 1, 5, 0, 6];

const fn bottom_row() -> u64 {
    let mut mask = 0;
    let mut col = 0;
    while col < WIDTH {
        mask |= 1 << (col * COL_BITS);
        col += 1;
    }
    mask
}

/// The bottom cell of every column.
const BOTTOM: u64 = bottom_row();
/// Every playable cell (no sentinels).
const BOARD: u64 = BOTTOM * ((1 << HEIGHT) - 1);
/// Rows 1, 3, 5 counted from 1 (0, 2, 4 from 0): where X's threats tend to decide endgames.
const ODD_ROWS: u64 = BOTTOM * 0b010101;
/// Rows 2, 4, 6 counted from 1: where O's threats tend to decide endgames.
const EVEN_ROWS: u64 = BOTTOM * 0b101010;

const fn column_mask(col: usize) -> u64 {
    ((1 << HEIGHT) - 1) << (col * COL_BITS)
}

const fn bottom_cell(col: usize) -> u64 {
    1 << (col * COL_BITS)
}

const fn top_cell(col: usize) -> u64 {
    1 << (HEIGHT - 1 + col * COL_BITS)
}

/// Column of a single-bit move.
fn column_of(cell: u64) -> usize {
    cell.trailing_zeros() as usize / COL_BITS
}

/// True when `stones` hold four in a row in any direction.
fn has_four(stones: u64) -> bool {
    // Vertical, "\" diagonal, horizontal, "/" diagonal.
    [1, COL_BITS - 1, COL_BITS, COL_BITS + 1]
        .iter()
        .any(|&shift| {
            let pairs = stones & (stones >> shift);
            pairs & (pairs >> (2 * shift)) != 0
        })
}

/// Empty cells that would complete four in a row for `stones` (Pons' `compute_winning_position`).
fn winning_cells(stones: u64, mask: u64) -> u64 {
    let p = stones;
    // Vertical: only three below can complete it.
    let mut r = (p << 1) & (p << 2) & (p << 3);
    for shift in [COL_BITS, COL_BITS - 1, COL_BITS + 1] {
        let lo = (p << shift) & (p << (2 * shift));
        r |= lo & (p << (3 * shift));
        r |= lo & (p >> shift);
        let hi = (p >> shift) & (p >> (2 * shift));
        r |= hi & (p << shift);
        r |= hi & (p >> (3 * shift));
    }
    r & (BOARD ^ mask)
}

/// A Connect Four game: bitboards, the move record, and the winner if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Connect4 {
    /// Stones of X (index 0) and O (index 1), bit `col * 7 + row`.
    stones: [u64; 2],
    /// Columns played (0-based) in order; a fixed array keeps clones allocation-free.
    history: [u8; CELLS],
    plies: u8,
    /// The player who made four in a row (always the last mover).
    winner: Option<u8>,
    /// Observed without the threat planes (`observation = "raw"`).
    raw: bool,
}

impl Default for Connect4 {
    fn default() -> Self {
        Self::new()
    }
}

/// The JSON spec of a task: `{"moves": "4453"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    moves: String,
}

impl Connect4 {
    /// The empty board, X to move.
    pub fn new() -> Self {
        Connect4 {
            stones: [0; 2],
            history: [0; CELLS],
            plies: 0,
            winner: None,
            raw: false,
        }
    }

    /// Replays moves in Pons' format (digits 1..=7, X first).
    pub fn from_moves(moves: &str) -> Result<Self, String> {
        let mut game = Self::new();
        for (i, ch) in moves.chars().enumerate() {
            let n = i + 1;
            let col = match ch.to_digit(10) {
                Some(d @ 1..=7) => d as usize - 1,
                _ => return Err(format!("move {n}: '{ch}' is not a column digit 1-7")),
            };
            if game.is_terminal() {
                return Err(format!(
                    "move {n} (col {}): the game already ended after {} moves",
                    col + 1,
                    game.plies
                ));
            }
            if !game.can_play(col) {
                return Err(format!("move {n}: column {} is full", col + 1));
            }
            game.play(col);
        }
        Ok(game)
    }

    /// Parses `{"moves": "<digits 1-7>"}`.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        let parsed: Spec = serde_json::from_str(spec)
            .map_err(|e| format!("expected JSON {{\"moves\": \"<digits 1-7>\"}}: {e}"))?;
        Self::from_moves(&parsed.moves).map_err(|e| format!("field \"moves\": {e}"))
    }

    pub fn to_spec(&self) -> String {
        // Moves are digits only, so no JSON escaping is needed.
        format!("{{\"moves\":\"{}\"}}", self.moves())
    }

    /// Parses one line of Pascal Pons' test-set format, `<moves> <score>`:
    /// the moves and the exact score for the side to move; `None` for a
    /// blank line.
    pub fn parse_pons_line(line: &str) -> Result<Option<(&str, i32)>, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [] => Ok(None),
            [moves, score] => score
                .parse()
                .map(|s| Some((moves, s)))
                .map_err(|_| format!("score '{score}': expected an integer")),
            _ => Err(format!("{line:?}: expected '<moves> <score>'")),
        }
    }

    /// The stones of each side: the whole position, whatever order the
    /// moves came in (a transposition key).
    pub fn stones(&self) -> [u64; 2] {
        self.stones
    }

    /// The moves played so far, in Pons' format.
    pub fn moves(&self) -> String {
        self.history[..usize::from(self.plies)]
            .iter()
            .map(|&col| char::from(b'1' + col))
            .collect()
    }

    /// Identifies the position whatever the move order that reached it.
    pub fn position_key(&self) -> u64 {
        Bits::of(self).key()
    }

    /// Appends the playable columns, ascending; none once the game is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_terminal() {
            return;
        }
        let mask = self.mask();
        out.extend((0..WIDTH as Action).filter(|&col| mask & top_cell(usize::from(col)) == 0));
    }

    /// Drops a stone of the player to move into column `action`.
    ///
    /// Panics on an illegal action: that is a caller bug, and playing it
    /// anyway would corrupt the bitboards.
    pub fn step(&mut self, action: Action) {
        let col = usize::from(action);
        assert!(
            col < WIDTH && !self.is_terminal() && self.can_play(col),
            "illegal connect4 action {action} after moves '{}'",
            self.moves()
        );
        self.play(col);
    }

    pub fn is_terminal(&self) -> bool {
        self.winner.is_some() || usize::from(self.plies) == CELLS
    }

    /// Writes own stones to `out[..42]`, opponent stones to `out[42..84]`,
    /// then the threats: empty cells (playable now or not) where a stone
    /// would complete four for the mover (`out[84..126]`) and for the
    /// opponent (`out[126..168]`), which the raw view leaves zero. Index
    /// `row * 7 + col` with row 0 at the bottom; `out` must be zeroed.
    /// Threats and their rows' parity decide most Connect Four endings far
    /// ahead; a small tower given them spends its layers on the rest.
    pub fn encode(&self, out: &mut [f32]) {
        let me = usize::from(self.to_move());
        let (own, opp) = (self.stones[me], self.stones[1 - me]);
        write_plane(own, &mut out[..CELLS]);
        write_plane(opp, &mut out[CELLS..2 * CELLS]);
        if self.raw {
            return;
        }
        let mask = own | opp;
        write_plane(winning_cells(own, mask), &mut out[2 * CELLS..3 * CELLS]);
        write_plane(winning_cells(opp, mask), &mut out[3 * CELLS..4 * CELLS]);
    }

    /// Observe the stones only from now on (see [`Connect4::encode`]).
    pub fn set_raw_view(&mut self) {
        self.raw = true;
    }

    pub fn label(&self, action: Action) -> String {
        format!("col {}", action + 1)
    }

    /// The board top row first, a column footer, and the game status.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(160);
        for row in (0..HEIGHT).rev() {
            for col in 0..WIDTH {
                let cell = 1u64 << (col * COL_BITS + row);
                let ch = if self.stones[0] & cell != 0 {
                    'X'
                } else if self.stones[1] & cell != 0 {
                    'O'
                } else {
                    '.'
                };
                s.push(ch);
                s.push(if col + 1 < WIDTH { ' ' } else { '\n' });
            }
        }
        s.push_str("1 2 3 4 5 6 7\n");
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

    fn mask(&self) -> u64 {
        self.stones[0] | self.stones[1]
    }

    fn can_play(&self, col: usize) -> bool {
        self.mask() & top_cell(col) == 0
    }

    /// Plays a legal column for the player to move and records a win.
    fn play(&mut self, col: usize) {
        let me = usize::from(self.to_move());
        let cell = (self.mask() + bottom_cell(col)) & column_mask(col);
        self.stones[me] |= cell;
        self.history[usize::from(self.plies)] = col as u8;
        self.plies += 1;
        if has_four(self.stones[me]) {
            self.winner = Some(me as u8);
        }
    }
}

fn write_plane(mut stones: u64, plane: &mut [f32]) {
    while stones != 0 {
        let bit = stones.trailing_zeros() as usize;
        stones &= stones - 1;
        plane[(bit % COL_BITS) * WIDTH + bit / COL_BITS] = 1.0;
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
// Search position: Pons' (current, mask) form, which makes a move a XOR.

/// A position as the searches see it: stones of the player to move and all stones.
#[derive(Clone, Copy)]
struct Bits {
    current: u64,
    mask: u64,
    plies: i32,
}

impl Bits {
    fn of(pos: &Connect4) -> Self {
        Bits {
            current: pos.stones[usize::from(pos.to_move())],
            mask: pos.mask(),
            plies: i32::from(pos.plies),
        }
    }

    /// Unique per position: the mover's stones plus a marker above each column.
    fn key(self) -> u64 {
        self.current + self.mask
    }

    /// The lowest empty cell of every non-full column.
    fn possible(self) -> u64 {
        (self.mask + BOTTOM) & BOARD
    }

    fn play(self, cell: u64) -> Self {
        Bits {
            current: self.current ^ self.mask,
            mask: self.mask | cell,
            plies: self.plies + 1,
        }
    }

    fn winning_cells(self) -> u64 {
        winning_cells(self.current, self.mask)
    }

    fn opponent_winning_cells(self) -> u64 {
        winning_cells(self.current ^ self.mask, self.mask)
    }

    fn can_win_next(self) -> bool {
        self.winning_cells() & self.possible() != 0
    }

    /// Moves that do not hand the opponent an immediate win: a forced block
    /// if there is one threat, none if there are two, and never a cell right
    /// below an opponent's winning cell. Assumes the mover cannot win at once.
    fn non_losing_moves(self) -> u64 {
        let mut possible = self.possible();
        let threats = self.opponent_winning_cells();
        let forced = possible & threats;
        if forced != 0 {
            if forced & (forced - 1) != 0 {
                return 0;
            }
            possible = forced;
        }
        possible & !(threats >> 1)
    }

    /// How many winning cells a move leaves its player: good moves make threats.
    fn move_score(self, cell: u64) -> u32 {
        winning_cells(self.current | cell, self.mask | cell).count_ones()
    }
}

/// Up to seven moves, best first.
struct MoveList {
    moves: [u64; WIDTH],
    scores: [u32; WIDTH],
    len: usize,
}

impl MoveList {
    fn as_slice(&self) -> &[u64] {
        &self.moves[..self.len]
    }

    /// Insertion keeps ties in arrival order, so center-first survives as tie-break.
    fn insert(&mut self, cell: u64, score: u32) {
        let mut i = self.len;
        while i > 0 && self.scores[i - 1] < score {
            self.moves[i] = self.moves[i - 1];
            self.scores[i] = self.scores[i - 1];
            i -= 1;
        }
        self.moves[i] = cell;
        self.scores[i] = score;
        self.len += 1;
    }
}

/// `candidates` sorted by threats created, then center-first.
fn ordered_moves(b: Bits, candidates: u64) -> MoveList {
    let mut list = MoveList {
        moves: [0; WIDTH],
        scores: [0; WIDTH],
        len: 0,
    };
    for col in CENTER_FIRST {
        let cell = candidates & column_mask(col);
        if cell != 0 {
            list.insert(cell, b.move_score(cell));
        }
    }
    list
}

// ---------------------------------------------------------------------------
// Heuristic search.

/// Base of heuristic win scores; any static evaluation stays far below it.
const WIN: i32 = 1_000_000;

/// Number of four-cell lines through each cell, row 0 = bottom: the classic static weights.
const CELL_WEIGHTS: [[u32; WIDTH]; HEIGHT] = [
    [3, 4, 5, 7, 5, 4, 3],
    [4, 6, 8, 10, 8, 6, 4],
    [5, 8, 11, 13, 11, 8, 5],
    [5, 8, 11, 13, 11, 8, 5],
    [4, 6, 8, 10, 8, 6, 4],
    [3, 4, 5, 7, 5, 4, 3],
];

/// Bit k of each cell's weight as a bitboard, so a weighted sum is four popcounts.
const WEIGHT_PLANES: [u64; 4] = weight_planes();

const fn weight_planes() -> [u64; 4] {
    let mut planes = [0u64; 4];
    let mut row = 0;
    while row < HEIGHT {
        let mut col = 0;
        while col < WIDTH {
            let mut k = 0;
            while k < 4 {
                if CELL_WEIGHTS[row][col] >> k & 1 == 1 {
                    planes[k] |= 1 << (col * COL_BITS + row);
                }
                k += 1;
            }
            col += 1;
        }
        row += 1;
    }
    planes
}

fn positional(stones: u64) -> i32 {
    WEIGHT_PLANES
        .iter()
        .enumerate()
        .map(|(k, plane)| ((stones & plane).count_ones() << k) as i32)
        .sum()
}

/// Static value for the mover: threats (double on the owner's good row
/// parity, which decides most endgames) plus central stones.
fn evaluate(b: Bits) -> i32 {
    let opponent = b.current ^ b.mask;
    let (my_rows, their_rows) = if b.plies % 2 == 0 {
        (ODD_ROWS, EVEN_ROWS)
    } else {
        (EVEN_ROWS, ODD_ROWS)
    };
    let threat_value = |cells: u64, good_rows: u64| {
        8 * (cells.count_ones() + (cells & good_rows).count_ones()) as i32
    };
    threat_value(b.winning_cells(), my_rows) - threat_value(b.opponent_winning_cells(), their_rows)
        + positional(b.current)
        - positional(opponent)
}

/// Depth-limited fail-soft negamax; wins score `WIN - plies at the winning move`.
fn heuristic(b: Bits, depth: u32, mut alpha: i32, beta: i32) -> i32 {
    let possible = b.possible();
    if possible == 0 {
        return 0;
    }
    if b.winning_cells() & possible != 0 {
        return WIN - b.plies;
    }
    let safe = b.non_losing_moves();
    if safe == 0 {
        return -(WIN - b.plies - 1);
    }
    if b.plies >= CELLS as i32 - 2 {
        return 0;
    }
    if depth == 0 {
        return evaluate(b);
    }
    let mut best = -2 * WIN;
    for &cell in ordered_moves(b, safe).as_slice() {
        let score = -heuristic(b.play(cell), depth - 1, -beta, -alpha);
        best = best.max(score);
        alpha = alpha.max(score);
        if alpha >= beta {
            break;
        }
    }
    best
}

/// A strong heuristic move: depth-limited negamax alpha-beta (immediate wins/blocks, center ordering, simple threat eval).
///
/// Returns column 0 for a finished game, which has no legal move.
pub fn best_move(pos: &Connect4, depth: u32) -> Action {
    if pos.is_terminal() {
        return 0;
    }
    let b = Bits::of(pos);
    let possible = b.possible();
    let wins = possible & b.winning_cells();
    if wins != 0 {
        return column_of(wins) as Action;
    }
    let safe = b.non_losing_moves();
    if safe == 0 {
        // Lost against best play: still block one threat, hoping for a mistake.
        let blocks = possible & b.opponent_winning_cells();
        let pick = if blocks != 0 { blocks } else { possible };
        return column_of(ordered_moves(b, pick).moves[0]) as Action;
    }
    let moves = ordered_moves(b, safe);
    let mut best = (-2 * WIN, moves.moves[0]);
    if moves.len > 1 {
        for &cell in moves.as_slice() {
            let score = -heuristic(b.play(cell), depth.saturating_sub(1), -2 * WIN, -best.0);
            if score > best.0 {
                best = (score, cell);
            }
        }
    }
    column_of(best.1) as Action
}

// ---------------------------------------------------------------------------
// Generator.

/// Generates the task for (difficulty, seed); see the module doc for the parameters.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    generate_with_openings(difficulty, seed, [0, MAX_OPENING_PLIES as u32])
}

/// The most random opening plies a config may ask for (`opening_plies`).
pub const MAX_CONFIG_OPENING_PLIES: u32 = 36;

/// [`generate`] with `lo + round((hi - lo) d)` random opening plies for
/// `[lo, hi]` (at most [`MAX_CONFIG_OPENING_PLIES`]) in place of `round(10 d)`.
pub fn generate_with_openings(difficulty: f32, seed: u64, [lo, hi]: [u32; 2]) -> Task {
    let difficulty = if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    };
    let hi = hi.min(MAX_CONFIG_OPENING_PLIES);
    let lo = lo.min(hi);
    let plies = lo as usize + (difficulty * (hi - lo) as f32).round() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = random_opening(&mut rng, plies);
    let (reference_solution, optimal_steps) = reference_solution(&start);
    Task {
        task_id: format!("connect4-{seed:016x}"),
        family: Family::Connect4,
        difficulty,
        seed,
        statement: statement(&start),
        spec: start.to_spec(),
        reference_solution,
        optimal_steps,
    }
}

/// Redraws bound the loop; with at most 10 plies nearly every draw is
/// accepted, and a few in a hundred still are at 36.
const MAX_OPENING_ATTEMPTS: usize = 10_000;

/// `plies` random legal moves, redrawn until the game is open and the mover
/// has no immediate win (falls back to the empty board, never reached in practice).
fn random_opening(rng: &mut ChaCha8Rng, plies: usize) -> Connect4 {
    let mut legal = Vec::with_capacity(WIDTH);
    for _ in 0..MAX_OPENING_ATTEMPTS {
        let mut game = Connect4::new();
        for _ in 0..plies {
            legal.clear();
            game.legal_actions(&mut legal);
            if legal.is_empty() {
                break;
            }
            game.step(legal[rng.random_range(0..legal.len())]);
        }
        if !game.is_terminal() && !Bits::of(&game).can_win_next() {
            return game;
        }
    }
    Connect4::new()
}

fn statement(start: &Connect4) -> String {
    let from = if start.plies == 0 {
        "the empty board".to_string()
    } else {
        format!("moves '{}'", start.moves())
    };
    format!(
        "Connect Four from {from}: {} to move; get four in a row",
        player_name(start.to_move())
    )
}

/// Own moves the winner needs, counting the current one, given its score at `plies`.
fn steps_to_win(plies: i32, score: i32) -> u32 {
    // Invert score = (43 - p) / 2 for the stone count p at the winning move,
    // whose parity is the winner's.
    let win_at = CELLS as i32 - 2 * score + (plies & 1);
    ((win_at - plies) / 2 + 1) as u32
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Node budget of [`verify_solution`]'s re-solve (every move scored).
pub const VERIFY_NODE_BUDGET: u64 = 2_000_000;

/// Checks a reference claim such as `play col 3 or col 5 (wins in 4 moves)`,
/// `draw with col 4` or `play col 2 (loses against perfect play: ...)`
/// against the spec by full-window solves of the position and of each
/// listed move (not the generator's null-window tests). The claim must
/// state the exact value and list at least one column, each legal and
/// achieving it. Heuristic (unproven) references, positions not solved
/// within [`VERIFY_NODE_BUDGET`] nodes per solve and bad specs fail.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(pos) = Connect4::from_spec(spec) else {
        return false;
    };
    let Some((cols, claim)) = split_claim(solution) else {
        return false;
    };
    if pos.is_terminal() || cols.is_empty() {
        return false;
    }
    let Some(value) = solve(&pos, VERIFY_NODE_BUDGET) else {
        return false;
    };
    let mut legal = Vec::new();
    pos.legal_actions(&mut legal);
    let achieves = |col: Action| {
        if !legal.contains(&col) {
            return false;
        }
        let mut child = pos.clone();
        child.step(col);
        solve(&child, VERIFY_NODE_BUDGET).is_some_and(|v| -v == value)
    };
    let (expected, _) = describe_solved(&pos, value, &cols);
    split_claim(&expected).is_some_and(|e| e.1 == claim) && cols.iter().all(|&c| achieves(c))
}

/// Every optimal column of `pos` with the claim [`verify_solution`]
/// accepts for playing it (`play col 4 (wins in 5 moves)`), from one
/// solve; `None` when the solver does not settle the position within
/// `node_limit` nodes (or the game is over). Distill solves a start
/// position once for all its games.
pub fn claims(pos: &Connect4, node_limit: u64) -> Option<Vec<(Action, String)>> {
    let (value, cols) = optimal_moves(pos, node_limit)?;
    let claims = cols
        .iter()
        .map(|&c| (c, describe_solved(pos, value, &[c]).0))
        .collect();
    Some(claims)
}

/// Splits claim text into its 0-based columns (`col N`, joined by `or`)
/// and the rest, lower-cased with single spaces.
fn split_claim(text: &str) -> Option<(Vec<Action>, String)> {
    let lower = text.trim().to_lowercase();
    let mut tokens = lower.split_whitespace().peekable();
    let (mut cols, mut rest) = (Vec::new(), Vec::new());
    while let Some(t) = tokens.next() {
        if t == "col" {
            let n: usize = tokens.next()?.trim_end_matches(',').parse().ok()?;
            if !(1..=WIDTH).contains(&n) || cols.contains(&((n - 1) as Action)) {
                return None;
            }
            cols.push((n - 1) as Action);
            if tokens.peek() == Some(&"or") {
                tokens.next();
            }
        } else {
            rest.push(t);
        }
    }
    Some((cols, rest.join(" ")))
}

/// Text and optimal steps: exact when the solver finishes in budget, else heuristic.
fn reference_solution(start: &Connect4) -> (String, Option<u32>) {
    match optimal_moves(start, GEN_NODE_BUDGET) {
        Some((value, cols)) => describe_solved(start, value, &cols),
        None => {
            let col = best_move(start, GEN_HEURISTIC_DEPTH) + 1;
            let text = format!(
                "play col {col} (heuristic: depth-{GEN_HEURISTIC_DEPTH} search, value unproven)"
            );
            (text, None)
        }
    }
}

fn describe_solved(start: &Connect4, value: i32, cols: &[Action]) -> (String, Option<u32>) {
    let cols = cols
        .iter()
        .map(|&a| format!("col {}", a + 1))
        .collect::<Vec<_>>()
        .join(" or ");
    let plies = i32::from(start.plies);
    match value {
        0 => (format!("draw with {cols}"), None),
        v if v > 0 => {
            let steps = steps_to_win(plies, v);
            let text = format!("play {cols} (wins in {})", plural(steps, "move"));
            (text, Some(steps))
        }
        v => {
            let steps = steps_to_win(plies + 1, -v);
            let text = format!(
                "play {cols} (loses against perfect play: the opponent wins in {})",
                plural(steps, "move")
            );
            (text, None)
        }
    }
}

impl TwoPlayer for Connect4 {
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
    use rand::Rng;

    pub(super) fn game(moves: &str) -> Connect4 {
        Connect4::from_moves(moves).expect("valid test moves")
    }

    pub(super) fn legal(g: &Connect4) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    #[test]
    fn vertical_win() {
        let g = game("1212121");
        assert!(g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Win));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(!game("121212").is_terminal());
    }

    #[test]
    fn horizontal_win() {
        assert_eq!(game("112233").outcome(), None);
        assert_eq!(game("1122334").outcome(), Some(Outcome::Win));
        // O completes the bottom row 2-5: a loss for the first player.
        assert_eq!(game("1213746").outcome(), None);
        assert_eq!(game("12137465").outcome(), Some(Outcome::Loss));
    }

    #[test]
    fn diagonal_wins() {
        // "/" : X on (c1,r0) (c2,r1) (c3,r2) (c4,r3).
        assert_eq!(game("1223433454").outcome(), None);
        assert_eq!(game("12234334544").outcome(), Some(Outcome::Win));
        // "\" : the mirror image.
        assert_eq!(game("7665455434").outcome(), None);
        assert_eq!(game("76654554344").outcome(), Some(Outcome::Win));
    }

    #[test]
    fn second_player_win_signs() {
        // O completes col 2.
        let g = game("12121232");
        assert_eq!(g.outcome(), Some(Outcome::Loss));
        assert_eq!(g.to_move(), 0);
        assert_eq!(g.terminal_value(), -1.0);
        let running = game("1212123");
        assert_eq!(running.outcome(), None);
        assert_eq!(running.terminal_value(), 0.0);
        assert_eq!(running.to_move(), 1);
    }

    #[test]
    fn full_column_is_illegal() {
        let g = game("111111");
        assert_eq!(legal(&g), vec![1, 2, 3, 4, 5, 6]);
        assert!(Connect4::from_moves("1111111")
            .unwrap_err()
            .contains("column 1 is full"));
    }

    #[test]
    #[should_panic(expected = "illegal connect4 action")]
    fn step_rejects_full_column() {
        game("111111").step(0);
    }

    /// A full board without four in a row (found by search, checked here).
    const DRAWN_GAME: &str = "111111222222333333544444455555666666777777";

    #[test]
    fn draw_on_full_board() {
        let before = game(&DRAWN_GAME[..41]);
        assert!(!before.is_terminal());
        let g = game(DRAWN_GAME);
        assert!(g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Draw));
        assert_eq!(g.terminal_value(), 0.0);
        assert!(legal(&g).is_empty());
        assert_eq!(solve(&before, 1000), Some(0));
        assert_eq!(solve(&g, 1000), Some(0));
    }

    #[test]
    fn from_moves_errors() {
        for bad in ["0", "8", "a", "12x", " 1", "4\n"] {
            let err = Connect4::from_moves(bad).unwrap_err();
            assert!(err.contains("not a column digit"), "{bad:?}: {err}");
        }
        let err = Connect4::from_moves("12121212").unwrap_err();
        assert!(
            err.contains("move 8") && err.contains("already ended"),
            "{err}"
        );
        assert_eq!(game("").moves(), "");
    }

    #[test]
    fn spec_round_trip_and_errors() {
        let g = game("4453");
        assert_eq!(g.to_spec(), r#"{"moves":"4453"}"#);
        assert_eq!(Connect4::from_spec(&g.to_spec()).unwrap(), g);
        assert_eq!(
            Connect4::from_spec(r#"{"moves": ""}"#).unwrap(),
            Connect4::new()
        );
        for (bad, needle) in [
            ("", "moves"),
            ("[]", "moves"),
            ("{}", "missing field `moves`"),
            (r#"{"moves": 44}"#, "string"),
            (r#"{"moves": "44", "x": 1}"#, "unknown field"),
            (r#"{"moves": "49"}"#, "field \"moves\": move 2"),
            (r#"{"moves": "1111111"}"#, "column 1 is full"),
            ("{\"moves\": \"4", "moves"),
        ] {
            let err = Connect4::from_spec(bad).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn encoding_follows_the_mover() {
        let mut out = [0.0; OBS_DIM];
        game("").encode(&mut out);
        assert!(out.iter().all(|&v| v == 0.0));

        // After X plays col 4, O is to move: X's stone is in the opponent plane.
        let mut out = [0.0; OBS_DIM];
        game("4").encode(&mut out);
        let ones: Vec<usize> = (0..OBS_DIM).filter(|&i| out[i] == 1.0).collect();
        assert_eq!(ones, vec![42 + 3]);

        // After "44", X is to move: own stone at (row 0, col 3), O's above it.
        let mut out = [0.0; OBS_DIM];
        game("44").encode(&mut out);
        let ones: Vec<usize> = (0..OBS_DIM).filter(|&i| out[i] == 1.0).collect();
        assert_eq!(ones, vec![3, 42 + 7 + 3]);
    }

    #[test]
    fn encoding_marks_both_sides_threats() {
        // X holds row 0 cols 1-3 and O row 1 cols 1-3, X to move: each
        // completes four at col 4 of its row (col 4 row 1 is not yet playable).
        let mut out = [0.0; OBS_DIM];
        let g = game("112233");
        g.encode(&mut out);
        let ones = |out: &[f32]| -> Vec<usize> { (0..OBS_DIM).filter(|&i| out[i] == 1.0).collect() };
        assert_eq!(
            ones(&out),
            vec![0, 1, 2, 42 + 7, 42 + 8, 42 + 9, 84 + 3, 126 + 7 + 3]
        );

        // The raw view shows the stones alone.
        let mut raw = g.clone();
        raw.set_raw_view();
        let mut out = [0.0; OBS_DIM];
        raw.encode(&mut out);
        assert_eq!(ones(&out), vec![0, 1, 2, 42 + 7, 42 + 8, 42 + 9]);
    }

    #[test]
    fn labels_and_render() {
        let g = game("4453");
        assert_eq!(g.label(3), "col 4");
        let text = g.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), HEIGHT + 2);
        assert_eq!(lines[4], ". . . O . . .");
        assert_eq!(lines[5], ". . O X X . .");
        assert_eq!(lines[6], "1 2 3 4 5 6 7");
        assert_eq!(lines[7], "X to move");
        assert!(game("1212121").render().ends_with("X wins\n"));
    }

    #[test]
    fn generator_is_deterministic_and_clamped() {
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(generate(0.7, seed), generate(0.7, seed));
        }
        let t = generate(0.5, 0xabc);
        assert_eq!(t.task_id, "connect4-0000000000000abc");
        assert_eq!(t.family, Family::Connect4);
        assert_eq!(game_of(&t).moves().len(), 5);
        assert_eq!(generate(f32::NAN, 3).difficulty, 0.0);
        assert_eq!(generate(-1.0, 3).spec, r#"{"moves":""}"#);
        assert_eq!(generate(7.0, 3), generate(1.0, 3));
        let distinct: std::collections::HashSet<String> =
            (0..50).map(|s| generate(1.0, s).spec).collect();
        assert!(distinct.len() > 45);
    }

    fn game_of(task: &Task) -> Connect4 {
        Connect4::from_spec(&task.spec).expect("generated spec parses")
    }

    #[test]
    fn generated_starts_are_open() {
        for seed in 0..3000 {
            let plies = (seed % 11) as usize;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let g = random_opening(&mut rng, plies);
            assert_eq!(usize::from(g.plies), plies, "seed {seed}");
            assert!(!g.is_terminal(), "seed {seed}");
            assert!(!Bits::of(&g).can_win_next(), "seed {seed}");
            assert_eq!(Connect4::from_spec(&g.to_spec()).unwrap(), g);
        }
    }

    #[test]
    fn deep_openings_follow_the_configured_range() {
        for seed in 0..300u64 {
            let d = (seed % 5) as f32 / 4.0;
            let t = generate_with_openings(d, seed, [12, 36]);
            let g = Connect4::from_spec(&t.spec).unwrap();
            assert_eq!(u32::from(g.plies), 12 + (d * 24.0).round() as u32, "seed {seed}");
            assert!(!g.is_terminal() && !Bits::of(&g).can_win_next(), "seed {seed}");
        }
        // The family's own range is [0, 10].
        assert_eq!(generate(0.7, 5), generate_with_openings(0.7, 5, [0, 10]));
    }

    #[test]
    fn generated_tasks_are_consistent() {
        let mut solved = 0;
        for seed in 0..300 {
            let difficulty = (seed % 11) as f32 / 10.0;
            let t = generate(difficulty, seed);
            let g = game_of(&t);
            assert!(!g.is_terminal() && !legal(&g).is_empty());
            assert!(t.statement.contains("to move"), "{}", t.statement);
            assert!(
                t.reference_solution.contains("col "),
                "{}",
                t.reference_solution
            );
            solved += usize::from(!t.reference_solution.contains("heuristic"));
            if let Some(steps) = t.optimal_steps {
                assert!(steps >= 2, "no immediate wins in starts: {t:?}");
                let score = solve(&g, u64::MAX).unwrap();
                assert_eq!(steps_to_win(i32::from(g.plies), score), steps);
            }
        }
        assert!(solved > 0);
    }

    #[test]
    fn verifier_accepts_exact_references_and_rejects_corruptions() {
        let mut checked = 0;
        for seed in 0..150 {
            let t = generate(1.0, seed);
            if t.reference_solution.contains("heuristic") {
                assert!(!verify_solution(&t.spec, &t.reference_solution));
                continue;
            }
            checked += 1;
            assert!(verify_solution(&t.spec, &t.reference_solution), "{t:?}");
            let pos = Connect4::from_spec(&t.spec).unwrap();
            let (cols, _) = split_claim(&t.reference_solution).unwrap();
            let mut legal = Vec::new();
            pos.legal_actions(&mut legal);
            // The reference lists every optimal move: an unlisted legal
            // move in place of the first listed one is worse and fails.
            if let Some(bad) = legal.iter().find(|c| !cols.contains(c)) {
                let text = t
                    .reference_solution
                    .replace(&format!("col {}", cols[0] + 1), &format!("col {}", bad + 1));
                assert!(!verify_solution(&t.spec, &text), "{text}");
            }
            // A wrong claim about the value fails.
            let text = t.reference_solution.replace("wins in", "loses in");
            if text != t.reference_solution {
                assert!(!verify_solution(&t.spec, &text));
            }
            assert!(!verify_solution(&t.spec, "play col 9"));
            assert!(!verify_solution(&t.spec, ""));
        }
        assert!(checked >= 10, "only {checked} exact references");
    }

    #[test]
    fn steps_to_win_inverts_the_score() {
        for plies in 0..42 {
            let immediate = (CELLS as i32 + 1 - plies) / 2;
            assert_eq!(steps_to_win(plies, immediate), 1);
            if plies + 2 < 42 {
                let next = (CELLS as i32 + 1 - plies - 2) / 2;
                assert_eq!(steps_to_win(plies, next), 2);
            }
        }
    }

    #[test]
    fn best_move_wins_and_blocks() {
        // X wins at once in col 1.
        assert_eq!(best_move(&game("121212"), 4), 0);
        // O must block X's vertical three in col 1.
        assert_eq!(best_move(&game("12121"), 4), 0);
        // O must block X's bottom row 2-3-4 at col 5 (col 1 is O's already).
        assert_eq!(best_move(&game("21374"), 6), 4);
        // Winning beats blocking: X completes 4-5-6 at col 3 or 7 while O threatens col 1.
        let win = best_move(&game("415161"), 6);
        assert!(win == 2 || win == 6, "got col {}", win + 1);
    }

    #[test]
    fn best_move_beats_random_play() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut score = 0;
        for i in 0..40 {
            let mut g = Connect4::new();
            let strong = (i % 2) as u8;
            while !g.is_terminal() {
                let a = if g.to_move() == strong {
                    best_move(&g, 4)
                } else {
                    let moves = legal(&g);
                    moves[rng.random_range(0..moves.len())]
                };
                g.step(a);
            }
            let won = match g.outcome() {
                Some(Outcome::Win) => strong == 0,
                Some(Outcome::Loss) => strong == 1,
                _ => false,
            };
            score += usize::from(won);
        }
        assert!(score >= 38, "won {score} of 40");
    }

    proptest! {
        #[test]
        fn random_games_keep_invariants(choices in proptest::collection::vec(0usize..7, 0..60)) {
            let mut g = Connect4::new();
            for c in choices {
                let moves = legal(&g);
                if moves.is_empty() {
                    break;
                }
                let a = moves[c % moves.len()];
                prop_assert!(moves.windows(2).all(|w| w[0] < w[1]));
                let mover = g.to_move();
                g.step(a);
                prop_assert_eq!(g.to_move(), 1 - mover);
                prop_assert_eq!(Connect4::from_moves(&g.moves()).unwrap(), g.clone());
                let mut obs = [0.0f32; OBS_DIM];
                g.encode(&mut obs);
                let own: f32 = obs[..CELLS].iter().sum();
                let theirs: f32 = obs[CELLS..2 * CELLS].iter().sum();
                prop_assert_eq!((own + theirs) as usize, usize::from(g.plies));
                prop_assert!(theirs >= own);
                // Threats lie on empty cells only.
                for cell in 0..CELLS {
                    let threat = obs[2 * CELLS + cell] + obs[3 * CELLS + cell];
                    let stone = obs[cell] + obs[CELLS + cell];
                    prop_assert!(threat == 0.0 || stone == 0.0);
                }
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
            let _ = Connect4::from_spec(&s);
            let _ = Connect4::from_moves(&s);
        }
    }
}
