//! Grid path finding: walk from `S` to `G` around walls within a step budget.
//!
//! # Rules
//!
//! The grid has 1..=[`MAX_SIDE`] rows and columns of floor (`.`) and walls
//! (`#`), with one start (`S`) and one goal (`G`). The agent moves one cell
//! per action, `0:up 1:down 2:left 3:right`, onto floor inside the grid
//! (letters `U D L R` in solutions). The episode succeeds as soon as the agent
//! stands on the goal, and fails when the step budget is spent or the agent
//! has no legal move (a walled-in start, which the generator never makes).
//! The budget is part of the spec.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! Every cell of a `side x side` grid is a wall with probability `walls`;
//! the start is a random floor cell, and the goal a random floor cell whose
//! BFS distance `dist` from the start is at least `min path` and at least
//! `min detour` times the manhattan distance (so harder tasks need longer
//! walks around more walls). The budget is `dist + slack`.
//!
//! | difficulty   | side | walls | min path | min detour | slack |
//! |--------------|------|-------|----------|------------|-------|
//! | [0.0, 0.2)   | 5    | 0.10  | 3        | 1.0        | 8     |
//! | [0.2, 0.4)   | 6    | 0.20  | 5        | 1.0        | 6     |
//! | [0.4, 0.6)   | 7    | 0.25  | 7        | 1.2        | 4     |
//! | [0.6, 0.8)   | 9    | 0.30  | 10       | 1.4        | 2     |
//! | [0.8, 1.0]   | 10   | 0.35  | 14       | 1.6        | 0     |
//!
//! Slack is even because every walk between two cells has the parity of the
//! shortest one: an odd slack would buy nothing. At slack 0 only shortest
//! paths succeed. Draws without a qualifying goal are retried from the same
//! seeded stream; after [`MAX_ATTEMPTS`] the best draw seen is kept (the
//! tests check that this fallback does not fire in practice).
//!
//! # Observation ([`OBS_DIM`] = 403 floats, all within `[-1, 1]`)
//!
//! Four planes over the 10x10 frame, cell `(r, c)` at `plane * 100 + r * 10 + c`,
//! then three scalars:
//!
//! | index   | feature                                                   |
//! |---------|-----------------------------------------------------------|
//! | 0..100  | wall: 1 for walls and for frame cells outside the grid     |
//! | 100..200| agent                                                     |
//! | 200..300| goal                                                      |
//! | 300..400| visited (the start and every cell entered so far)          |
//! | 400     | budget left / budget                                      |
//! | 401     | (goal row - agent row) / 10                               |
//! | 402     | (goal col - agent col) / 10                               |

use crate::tasks::{Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Largest number of rows or columns.
pub const MAX_SIDE: usize = 10;
/// Cells of the frame every grid sits in (top-left aligned).
const CELLS: usize = MAX_SIDE * MAX_SIDE;
/// Move letters in action order: up, down, left, right.
pub const MOVES: [char; 4] = ['U', 'D', 'L', 'R'];
/// One action per direction.
pub const ACTION_DIM: usize = MOVES.len();
/// Largest step budget accepted in a spec.
pub const MAX_BUDGET: u32 = 200;
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 500;
const PLANES: usize = 4;
/// The planes of the observation (channels, height, width).
pub const GRID: (usize, usize, usize) = (PLANES, MAX_SIDE, MAX_SIDE);
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = PLANES * CELLS + 3;

/// Frame cell index `r * 10 + c`.
type Cell = u8;

fn bit(cell: Cell) -> u128 {
    1u128 << cell
}

/// The frame cell one step from `cell` in direction `dir`, if inside the frame.
fn neighbor(cell: Cell, dir: usize) -> Option<Cell> {
    let side = MAX_SIDE as Cell;
    let (r, c) = (cell / side, cell % side);
    match dir {
        0 if r > 0 => Some(cell - side),
        1 if r + 1 < side => Some(cell + side),
        2 if c > 0 => Some(cell - 1),
        3 if c + 1 < side => Some(cell + 1),
        _ => None,
    }
}

fn manhattan(a: Cell, b: Cell) -> u32 {
    let side = MAX_SIDE as Cell;
    u32::from((a / side).abs_diff(b / side)) + u32::from((a % side).abs_diff(b % side))
}

/// A live episode: bitmasks over the 10x10 frame, so clones are cheap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridPath {
    rows: u8,
    cols: u8,
    /// Floor cells inside the grid (the start and goal included).
    open: u128,
    start: Cell,
    goal: Cell,
    agent: Cell,
    visited: u128,
    budget: u16,
    steps: u16,
}

impl GridPath {
    /// Start state from grid rows (`.` floor, `#` wall, one `S`, one `G`,
    /// equal lengths, at most 10x10) and a budget in `1..=200`.
    pub fn new<S: AsRef<str>>(grid: &[S], budget: u32) -> Result<Self, String> {
        if !(1..=MAX_BUDGET).contains(&budget) {
            return Err(format!(
                "budget: expected an integer in 1..={MAX_BUDGET}, got {budget}"
            ));
        }
        if !(1..=MAX_SIDE).contains(&grid.len()) {
            return Err(format!(
                "grid: expected 1..={MAX_SIDE} rows, got {}",
                grid.len()
            ));
        }
        let cols = grid[0].as_ref().chars().count();
        let (mut open, mut start, mut goal) = (0u128, None, None);
        for (r, row) in grid.iter().enumerate() {
            let row = row.as_ref();
            let len = row.chars().count();
            if !(1..=MAX_SIDE).contains(&len) || len != cols {
                return Err(format!(
                    "grid[{r}]: expected {cols} cells like row 0 (1..={MAX_SIDE}), got {len}"
                ));
            }
            for (c, ch) in row.chars().enumerate() {
                let cell = (r * MAX_SIDE + c) as Cell;
                let slot = match ch {
                    '.' => None,
                    '#' => continue,
                    'S' => Some((&mut start, 'S')),
                    'G' => Some((&mut goal, 'G')),
                    _ => {
                        return Err(format!(
                            "grid[{r}][{c}]: expected one of . # S G, got {ch:?}"
                        ))
                    }
                };
                if let Some((slot, name)) = slot {
                    if slot.is_some() {
                        return Err(format!("grid[{r}][{c}]: expected one {name}, got a second"));
                    }
                    *slot = Some(cell);
                }
                open |= bit(cell);
            }
        }
        let start = start.ok_or("grid: expected one S (start), got none")?;
        let goal = goal.ok_or("grid: expected one G (goal), got none")?;
        Ok(GridPath {
            rows: grid.len() as u8,
            cols: cols as u8,
            open,
            start,
            goal,
            agent: start,
            visited: bit(start),
            budget: budget as u16,
            steps: 0,
        })
    }

    /// Parses `{"grid":["S.#","..G"],"budget":8}`; never panics.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"grid":[1..=10 equal rows of . # S G],"budget":1..=200}"#;
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        if let Some(key) = obj.keys().find(|k| *k != "grid" && *k != "budget") {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only \"grid\" and \"budget\""
            ));
        }
        let rows = obj
            .get("grid")
            .ok_or_else(|| format!("grid: missing; expected {SHAPE}"))?
            .as_array()
            .ok_or_else(|| "grid: expected an array of row strings".to_string())?;
        let rows = rows
            .iter()
            .enumerate()
            .map(|(r, v)| {
                v.as_str()
                    .ok_or_else(|| format!("grid[{r}]: expected a string of . # S G, got {v}"))
            })
            .collect::<Result<Vec<&str>, String>>()?;
        let budget = obj
            .get("budget")
            .ok_or_else(|| format!("budget: missing; expected {SHAPE}"))?;
        let budget = budget
            .as_u64()
            .filter(|&b| b <= u64::from(MAX_BUDGET))
            .ok_or_else(|| {
                format!("budget: expected an integer in 1..={MAX_BUDGET}, got {budget}")
            })?;
        GridPath::new(&rows, budget as u32)
    }

    /// The start state's spec, so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        let rows: Vec<String> = self
            .grid_rows()
            .iter()
            .map(|r| format!("\"{r}\""))
            .collect();
        format!(
            "{{\"grid\":[{}],\"budget\":{}}}",
            rows.join(","),
            self.budget
        )
    }

    /// The start grid as rows of `. # S G`.
    pub fn grid_rows(&self) -> Vec<String> {
        self.rows_with(|cell| {
            if cell == self.start {
                'S'
            } else if cell == self.goal {
                'G'
            } else if self.open & bit(cell) != 0 {
                '.'
            } else {
                '#'
            }
        })
    }

    fn rows_with(&self, glyph: impl Fn(Cell) -> char) -> Vec<String> {
        (0..self.rows)
            .map(|r| {
                (0..self.cols)
                    .map(|c| glyph(r * MAX_SIDE as Cell + c))
                    .collect()
            })
            .collect()
    }

    /// `(rows, cols)` of the grid.
    pub fn size(&self) -> (usize, usize) {
        (usize::from(self.rows), usize::from(self.cols))
    }

    /// The agent's `(row, col)`.
    pub fn agent(&self) -> (usize, usize) {
        split(self.agent)
    }

    /// The goal's `(row, col)`.
    pub fn goal(&self) -> (usize, usize) {
        split(self.goal)
    }

    /// Whether `(r, c)` is floor inside the grid.
    pub fn is_open(&self, r: usize, c: usize) -> bool {
        r < usize::from(self.rows)
            && c < usize::from(self.cols)
            && self.open & bit((r * MAX_SIDE + c) as Cell) != 0
    }

    pub fn steps(&self) -> u32 {
        u32::from(self.steps)
    }

    pub fn budget(&self) -> u32 {
        u32::from(self.budget)
    }

    /// The cell `action` leads to, if it is floor (ignores whether the episode is over).
    fn target(&self, action: Action) -> Option<Cell> {
        let next = neighbor(self.agent, usize::from(action))?;
        (self.open & bit(next) != 0).then_some(next)
    }

    fn can_move(&self) -> bool {
        (0..ACTION_DIM as Action).any(|a| self.target(a).is_some())
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_success() || self.steps >= self.budget {
            return;
        }
        out.extend((0..ACTION_DIM as Action).filter(|&a| self.target(a).is_some()));
    }

    /// Moves the agent. An illegal action is a bug (debug assert) and is
    /// ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let next = self.target(action).filter(|_| !self.is_terminal());
        debug_assert!(
            next.is_some(),
            "illegal action {action} in\n{}",
            self.render()
        );
        let Some(next) = next else { return };
        self.agent = next;
        self.visited |= bit(next);
        self.steps += 1;
    }

    /// The verifier: the agent stands on the goal.
    pub fn is_success(&self) -> bool {
        self.agent == self.goal
    }

    pub fn is_terminal(&self) -> bool {
        self.is_success() || self.steps >= self.budget || !self.can_move()
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        for cell in 0..CELLS {
            let b = 1u128 << cell;
            if self.open & b == 0 {
                out[cell] = 1.0;
            }
            if self.visited & b != 0 {
                out[3 * CELLS + cell] = 1.0;
            }
        }
        out[CELLS + usize::from(self.agent)] = 1.0;
        out[2 * CELLS + usize::from(self.goal)] = 1.0;
        let base = PLANES * CELLS;
        out[base] = f32::from(self.budget - self.steps.min(self.budget)) / f32::from(self.budget);
        let ((ar, ac), (gr, gc)) = (self.agent(), self.goal());
        out[base + 1] = (gr as f32 - ar as f32) / MAX_SIDE as f32;
        out[base + 2] = (gc as f32 - ac as f32) / MAX_SIDE as f32;
    }

    /// `"up"`, `"down"`, `"left"` or `"right"`.
    pub fn label(&self, action: Action) -> String {
        match action {
            0 => "up".to_string(),
            1 => "down".to_string(),
            2 => "left".to_string(),
            3 => "right".to_string(),
            _ => format!("illegal action {action}"),
        }
    }

    /// The grid (`@` agent, `G` goal, `+` visited, `.` floor, `#` wall) and
    /// a status line such as `"step 3 of 12"`, with `" | solved"` or
    /// `" | failed"` once the episode is over.
    pub fn render(&self) -> String {
        let mut s = self
            .rows_with(|cell| {
                if cell == self.agent {
                    '@'
                } else if cell == self.goal {
                    'G'
                } else if self.visited & bit(cell) != 0 {
                    '+'
                } else if self.open & bit(cell) != 0 {
                    '.'
                } else {
                    '#'
                }
            })
            .join("\n");
        s.push_str(&format!("\nstep {} of {}", self.steps, self.budget));
        match self.outcome() {
            Some(Outcome::Success) => s.push_str(" | solved"),
            Some(_) => s.push_str(" | failed"),
            None => {}
        }
        s
    }
}

fn split(cell: Cell) -> (usize, usize) {
    (usize::from(cell) / MAX_SIDE, usize::from(cell) % MAX_SIDE)
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// BFS distance from `from` to every frame cell over `open` (`u32::MAX` if unreachable).
fn distances(open: u128, from: Cell) -> [u32; CELLS] {
    let mut dist = [u32::MAX; CELLS];
    dist[usize::from(from)] = 0;
    let mut queue = VecDeque::with_capacity(CELLS);
    queue.push_back(from);
    while let Some(cell) = queue.pop_front() {
        let d = dist[usize::from(cell)];
        for dir in 0..ACTION_DIM {
            if let Some(next) = neighbor(cell, dir) {
                if open & bit(next) != 0 && dist[usize::from(next)] == u32::MAX {
                    dist[usize::from(next)] = d + 1;
                    queue.push_back(next);
                }
            }
        }
    }
    dist
}

/// A shortest move sequence from the agent's cell to the goal, ignoring the
/// budget (`Some(vec![])` when already there, `None` when walled off).
///
/// BFS from the goal, then greedy descent from the agent, taking the first
/// direction in action order that lowers the distance.
pub fn solve(state: &GridPath) -> Option<Vec<Action>> {
    let dist = distances(state.open, state.goal);
    let mut cell = state.agent;
    let mut d = dist[usize::from(cell)];
    if d == u32::MAX {
        return None;
    }
    let mut path = Vec::with_capacity(d as usize);
    while d > 0 {
        let (dir, next) = (0..ACTION_DIM)
            .filter_map(|dir| neighbor(cell, dir).map(|n| (dir, n)))
            .find(|&(_, n)| dist[usize::from(n)] == d - 1)?;
        path.push(dir as Action);
        cell = next;
        d -= 1;
    }
    Some(path)
}

/// `"RRDL"`.
pub fn format_moves(moves: &[Action]) -> String {
    moves
        .iter()
        .filter_map(|&a| MOVES.get(usize::from(a)))
        .collect()
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// Checks a move string like `"RRDL"` against the task spec, independently
/// of the game code: letters `U D L R` (either case), with spaces, commas
/// and newlines ignored. Every move must stay on floor inside the grid, the
/// walk must end on the goal without passing it first, and it may use at
/// most the budget's number of moves. A bad spec fails.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(task) = GridPath::from_spec(spec) else {
        return false;
    };
    let (rows, cols) = task.size();
    let goal = task.goal();
    let (mut r, mut c) = split(task.start);
    let mut moves = 0u32;
    for ch in solution.chars() {
        if ch.is_whitespace() || ch == ',' {
            continue;
        }
        let (dr, dc) = match ch.to_ascii_uppercase() {
            'U' => (-1, 0),
            'D' => (1, 0),
            'L' => (0, -1),
            'R' => (0, 1),
            _ => return false,
        };
        if (r, c) == goal {
            return false;
        }
        let (nr, nc) = (r as i64 + dr, c as i64 + dc);
        if nr < 0 || nc < 0 || nr >= rows as i64 || nc >= cols as i64 {
            return false;
        }
        (r, c) = (nr as usize, nc as usize);
        moves += 1;
        if !task.is_open(r, c) || moves > task.budget() {
            return false;
        }
    }
    (r, c) == goal
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    side: usize,
    walls: f64,
    min_path: u32,
    min_detour: f32,
    slack: u32,
}

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { side: 5, walls: 0.10, min_path: 3, min_detour: 1.0, slack: 8 },
    Band { side: 6, walls: 0.20, min_path: 5, min_detour: 1.0, slack: 6 },
    Band { side: 7, walls: 0.25, min_path: 7, min_detour: 1.2, slack: 4 },
    Band { side: 9, walls: 0.30, min_path: 10, min_detour: 1.4, slack: 2 },
    Band { side: 10, walls: 0.35, min_path: 14, min_detour: 1.6, slack: 0 },
];

fn clamp_difficulty(difficulty: f32) -> f32 {
    if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    }
}

fn band_for(difficulty: f32) -> &'static Band {
    let k = (clamp_difficulty(difficulty) * BANDS.len() as f32) as usize;
    &BANDS[k.min(BANDS.len() - 1)]
}

/// A draw: walls, start, goal and the BFS distance between them.
struct Draw {
    open: u128,
    start: Cell,
    goal: Cell,
    dist: u32,
}

impl Draw {
    fn detour(&self) -> f32 {
        self.dist as f32 / manhattan(self.start, self.goal) as f32
    }

    fn meets(&self, band: &Band) -> bool {
        self.dist >= band.min_path && self.detour() >= band.min_detour
    }

    /// Fallback ranking: qualifying first, then the longest detour.
    fn rank(&self, band: &Band) -> (bool, u32, u32) {
        (self.meets(band), (self.detour() * 100.0) as u32, self.dist)
    }
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let band = band_for(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draw = pick_draw(band, &mut rng);
    let side = band.side as u8;
    let game = GridPath {
        rows: side,
        cols: side,
        open: draw.open,
        start: draw.start,
        goal: draw.goal,
        agent: draw.start,
        visited: bit(draw.start),
        budget: (draw.dist + band.slack).min(MAX_BUDGET) as u16,
        steps: 0,
    };
    let path = solve(&game).unwrap_or_default();
    Task {
        task_id: format!("gridpath-{seed:016x}"),
        family: Family::GridPath,
        difficulty,
        seed,
        statement: format!(
            "Walk from S to G in at most {} moves (U D L R), never onto a wall # or off the grid:\n{}",
            game.budget,
            game.grid_rows().join("\n")
        ),
        spec: game.to_spec(),
        reference_solution: format_moves(&path),
        optimal_steps: Some(path.len() as u32),
    }
}

/// Draws until one meets the band; after [`MAX_ATTEMPTS`] keeps the best.
fn pick_draw(band: &Band, rng: &mut ChaCha8Rng) -> Draw {
    let mut best: Option<Draw> = None;
    for _ in 0..MAX_ATTEMPTS {
        let Some(draw) = draw_once(band, rng) else {
            continue;
        };
        if draw.meets(band) {
            return draw;
        }
        if best.as_ref().is_none_or(|b| draw.rank(band) > b.rank(band)) {
            best = Some(draw);
        }
    }
    best.unwrap_or_else(|| open_corridor(band))
}

/// Random walls, a random start, and a random goal among the reachable cells
/// that meet the band (or the farthest-detour one when none does).
fn draw_once(band: &Band, rng: &mut ChaCha8Rng) -> Option<Draw> {
    let mut open = 0u128;
    let mut floor = Vec::with_capacity(CELLS);
    for r in 0..band.side {
        for c in 0..band.side {
            let cell = (r * MAX_SIDE + c) as Cell;
            if !rng.random_bool(band.walls) {
                open |= bit(cell);
                floor.push(cell);
            }
        }
    }
    if floor.len() < 2 {
        return None;
    }
    let start = floor[rng.random_range(0..floor.len())];
    let dist = distances(open, start);
    let reachable = floor
        .iter()
        .copied()
        .filter(|&g| g != start && dist[usize::from(g)] != u32::MAX);
    let to_draw = |goal: Cell| Draw {
        open,
        start,
        goal,
        dist: dist[usize::from(goal)],
    };
    let good: Vec<Cell> = reachable
        .clone()
        .filter(|&g| to_draw(g).meets(band))
        .collect();
    if good.is_empty() {
        return reachable.map(to_draw).max_by_key(|d| d.rank(band));
    }
    Some(to_draw(good[rng.random_range(0..good.len())]))
}

/// A wall-free grid with start and goal in opposite corners (never reached
/// in practice: some draw always has two connected floor cells).
fn open_corridor(band: &Band) -> Draw {
    let side = band.side as Cell;
    let mut open = 0u128;
    for r in 0..side {
        for c in 0..side {
            open |= bit(r * MAX_SIDE as Cell + c);
        }
    }
    let goal = (side - 1) * MAX_SIDE as Cell + side - 1;
    Draw {
        open,
        start: 0,
        goal,
        dist: manhattan(0, goal),
    }
}

impl Puzzle for GridPath {
    fn is_success(&self) -> bool {
        GridPath::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        GridPath::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    const U: Action = 0;
    const D: Action = 1;
    const L: Action = 2;
    const R: Action = 3;

    fn game(grid: &[&str], budget: u32) -> GridPath {
        GridPath::new(grid, budget).expect("valid test grid")
    }

    fn legal(g: &GridPath) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// Plays a move string; None if a move is illegal.
    fn replay(spec: &str, moves: &str) -> Option<GridPath> {
        let mut g = GridPath::from_spec(spec).ok()?;
        for ch in moves.chars() {
            let a = MOVES.iter().position(|&m| m == ch)? as Action;
            if !legal(&g).contains(&a) {
                return None;
            }
            g.step(a);
        }
        Some(g)
    }

    /// Shortest path length by Bellman-Ford style relaxation (no queue).
    fn brute_force(g: &GridPath) -> Option<u32> {
        let mut dist = [u32::MAX; CELLS];
        dist[usize::from(g.agent)] = 0;
        for _ in 0..CELLS {
            for cell in 0..CELLS as Cell {
                if g.open & bit(cell) == 0 {
                    continue;
                }
                for dir in 0..4 {
                    if let Some(n) = neighbor(cell, dir) {
                        let dn = dist[usize::from(n)];
                        if g.open & bit(n) != 0 && dn != u32::MAX {
                            dist[usize::from(cell)] = dist[usize::from(cell)].min(dn + 1);
                        }
                    }
                }
            }
        }
        let d = dist[usize::from(g.goal)];
        (d != u32::MAX).then_some(d)
    }

    #[test]
    fn moves_follow_the_rules() {
        let mut g = game(&["S.#", ".#G", "..."], 10);
        assert_eq!(legal(&g), vec![D, R], "up and left leave the grid");
        g.step(R);
        assert_eq!(g.agent(), (0, 1));
        assert_eq!(legal(&g), vec![L], "wall right and below");
        assert_eq!(g.label(L), "left");
        g.step(L);
        g.step(D);
        g.step(D);
        assert_eq!(legal(&g), vec![U, R]);
        g.step(R);
        g.step(R);
        assert_eq!(g.steps(), 6);
        assert!(!g.is_terminal());
        g.step(U);
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(g.to_move(), 0);
        assert_eq!(g.render(), "++#\n+#@\n+++\nstep 7 of 10 | solved");
    }

    #[test]
    fn running_out_of_budget_fails() {
        let mut g = game(&["S..G"], 4);
        g.step(R);
        g.step(L);
        g.step(R);
        assert_eq!(g.outcome(), None);
        g.step(R);
        assert_eq!(g.agent(), (0, 2));
        assert!(g.is_terminal() && !g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("step 4 of 4 | failed"));
    }

    #[test]
    fn walled_in_start_fails_at_once() {
        let g = game(&["S#.", "#.G"], 5);
        assert!(g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert!(legal(&g).is_empty());
        assert_eq!(solve(&g), None);
    }

    #[test]
    fn encode_marks_planes() {
        let mut g = game(&["S.", "#G"], 6);
        g.step(R);
        let mut out = vec![0.0; OBS_DIM + 2];
        g.encode(&mut out);
        assert!(out.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        assert_eq!(&out[OBS_DIM..], &[0.0, 0.0]);
        assert_eq!(out[0], 0.0, "S is floor");
        assert_eq!(out[10], 1.0, "wall at (1,0)");
        assert_eq!(out[2], 1.0, "outside the grid counts as wall");
        assert_eq!(out[99], 1.0);
        assert_eq!(out[CELLS + 1], 1.0, "agent at (0,1)");
        assert_eq!(out[2 * CELLS + 11], 1.0, "goal at (1,1)");
        assert_eq!((out[3 * CELLS], out[3 * CELLS + 1]), (1.0, 1.0));
        assert_eq!(out[3 * CELLS + 11], 0.0);
        assert!((out[400] - 5.0 / 6.0).abs() < 1e-6);
        assert!((out[401] - 0.1).abs() < 1e-6 && out[402] == 0.0);
    }

    #[test]
    fn spec_round_trips() {
        let g = GridPath::from_spec(r#"{"budget": 7, "grid": ["S.#", "..G"]}"#).unwrap();
        assert_eq!(g.to_spec(), r#"{"grid":["S.#","..G"],"budget":7}"#);
        let mut h = GridPath::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(R);
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
        assert_eq!(g.size(), (2, 3));
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let cases = [
            ("", "spec"),
            ("{", "spec"),
            ("[]", "spec"),
            (r#"{"grid":["SG"]}"#, "budget"),
            (r#"{"budget":3}"#, "grid"),
            (r#"{"grid":"SG","budget":3}"#, "grid"),
            (r#"{"grid":[],"budget":3}"#, "grid"),
            (r#"{"grid":[1],"budget":3}"#, "grid[0]"),
            (r#"{"grid":["SG",""],"budget":3}"#, "grid[1]"),
            (r#"{"grid":["S..","G."],"budget":3}"#, "grid[1]"),
            (r#"{"grid":["S...........G"],"budget":3}"#, "grid[0]"),
            (
                r#"{"grid":["S","G",".",".",".",".",".",".",".",".","."],"budget":3}"#,
                "grid",
            ),
            (r#"{"grid":["S.x","..G"],"budget":3}"#, "grid[0][2]"),
            (r#"{"grid":["S.S","..G"],"budget":3}"#, "grid[0][2]"),
            (r#"{"grid":["S.G","..G"],"budget":3}"#, "grid[1][2]"),
            (r#"{"grid":["S..","..."],"budget":3}"#, "G"),
            (r#"{"grid":["G..","..."],"budget":3}"#, "S"),
            (r#"{"grid":["SG"],"budget":0}"#, "budget"),
            (r#"{"grid":["SG"],"budget":201}"#, "budget"),
            (r#"{"grid":["SG"],"budget":-1}"#, "budget"),
            (r#"{"grid":["SG"],"budget":2.5}"#, "budget"),
            (r#"{"grid":["SG"],"budget":"3"}"#, "budget"),
            (r#"{"grid":["SG"],"budget":3,"x":1}"#, "\"x\""),
        ];
        for (spec, field) in cases {
            let err = GridPath::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
    }

    #[test]
    fn solve_finds_shortest_paths() {
        let g = game(&["S.#", ".#G", "..."], 10);
        assert_eq!(format_moves(&solve(&g).unwrap()), "DDRRU");
        let g = game(&["S#G"], 10);
        assert_eq!(solve(&g), None);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..300 {
            let band = &BANDS[rng.random_range(0..BANDS.len())];
            let Some(draw) = draw_once(band, &mut rng) else {
                continue;
            };
            let g = GridPath {
                rows: band.side as u8,
                cols: band.side as u8,
                open: draw.open,
                start: draw.start,
                goal: draw.goal,
                agent: draw.start,
                visited: bit(draw.start),
                budget: 200,
                steps: 0,
            };
            let path = solve(&g).expect("draws are connected");
            assert_eq!(Some(path.len() as u32), brute_force(&g));
            assert!(verify_solution(&g.to_spec(), &format_moves(&path)));
        }
    }

    #[test]
    fn verifier_checks_every_rule() {
        let spec = r#"{"grid":["S.#",".#G","..."],"budget":7}"#;
        assert!(verify_solution(spec, "DDRRU"));
        assert!(verify_solution(spec, "d d r r u\n"));
        assert!(verify_solution(spec, "D,D,R,R,U"));
        assert!(verify_solution(spec, "RLDDRRU"), "7 moves fit the budget");
        assert!(!verify_solution(spec, ""), "empty");
        assert!(!verify_solution(spec, "RLRLDDRRU"), "over budget");
        assert!(!verify_solution(spec, "RRDDU"), "into a wall");
        assert!(!verify_solution(spec, "UDDRRU"), "off the grid");
        assert!(!verify_solution(spec, "DDRR"), "short of the goal");
        assert!(!verify_solution(spec, "DDRRUL"), "past the goal");
        assert!(!verify_solution(spec, "DDRRUD"), "past the goal");
        assert!(!verify_solution(spec, "DDRRX"), "unknown letter");
        assert!(!verify_solution(spec, "DD RR U!"));
        assert!(!verify_solution("{", "DDRRU"), "bad spec");
        assert!(verify_solution(r#"{"grid":["SG"],"budget":1}"#, "R"));
    }

    #[test]
    fn generation_gives_distinct_tasks() {
        let distinct: std::collections::HashSet<String> =
            (0..100).map(|s| generate(1.0, s).spec).collect();
        assert_eq!(distinct.len(), 100);
    }

    /// One-move edits of a shortest path that the verifier must reject.
    fn corruptions(path: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("truncated", path[..path.len() - 1].to_string()),
            ("extra move", format!("{path}{}", &path[..1])),
        ];
        for (k, ch) in path.char_indices() {
            for other in MOVES.iter().filter(|&&m| m != ch) {
                let mut bad = path.to_string();
                bad.replace_range(k..k + 1, &other.to_string());
                out.push(("one move changed", bad));
            }
        }
        out
    }

    fn check_task(task: &Task) {
        let g = GridPath::from_spec(&task.spec).expect("generated spec parses");
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let path = solve(&g).expect("solvable");
        let dist = path.len() as u32;
        assert_eq!(task.optimal_steps, Some(dist));
        assert_eq!(Some(dist), brute_force(&g));
        assert_eq!(task.reference_solution, format_moves(&path));
        assert!(
            verify_solution(&task.spec, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &task.reference_solution).expect("playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        for (what, bad) in corruptions(&task.reference_solution) {
            assert!(!verify_solution(&task.spec, &bad), "{what} {bad}: {task:?}");
        }
        let band = band_for(task.difficulty);
        assert_eq!(g.size(), (band.side, band.side));
        assert_eq!(g.budget(), dist + band.slack);
        assert!(dist >= band.min_path, "fallback fired: {task:?}");
        let detour = dist as f32 / manhattan(g.start, g.goal) as f32;
        assert!(detour >= band.min_detour, "fallback fired: {task:?}");
        // A two-move detour fits exactly when the slack allows it.
        let back = match path[0] {
            U => "D",
            D => "U",
            L => "R",
            _ => "L",
        };
        let padded = format!(
            "{}{back}{}",
            &task.reference_solution[..1],
            task.reference_solution
        );
        assert_eq!(verify_solution(&task.spec, &padded), band.slack >= 2);
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..4000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let games: Vec<(GridPath, u32)> = (0..300)
                    .map(|s| {
                        let t = generate(d, s);
                        (
                            GridPath::from_spec(&t.spec).unwrap(),
                            t.optimal_steps.unwrap(),
                        )
                    })
                    .collect();
                let mean = |f: &dyn Fn(&(GridPath, u32)) -> f64| {
                    games.iter().map(f).sum::<f64>() / games.len() as f64
                };
                (
                    mean(&|(_, n)| f64::from(*n)),
                    mean(&|(g, n)| f64::from(*n) / f64::from(manhattan(g.start, g.goal))),
                    mean(&|(g, n)| f64::from(g.budget() - n)),
                )
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 > w[0].0, "paths grow: {stats:?}");
            assert!(w[1].1 >= w[0].1, "detours grow: {stats:?}");
            assert!(w[1].2 < w[0].2, "slack shrinks: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,60}") {
            let _ = GridPath::from_spec(&spec);
        }

        #[test]
        fn from_spec_checks_ranges(rows in 0usize..12, cols in 0usize..12, budget in 0u64..300) {
            let mut grid = vec![".".repeat(cols); rows];
            if rows > 0 && cols >= 2 {
                grid[0].replace_range(0..2, "SG");
            }
            let list: Vec<String> = grid.iter().map(|r| format!("\"{r}\"")).collect();
            let spec = format!("{{\"grid\":[{}],\"budget\":{budget}}}", list.join(","));
            let ok = (1..=10).contains(&rows) && (2..=10).contains(&cols) && (1..=200).contains(&budget);
            prop_assert_eq!(GridPath::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[UDLRudlr ,x]{0,40}", seed in any::<u64>()) {
            let _ = verify_solution(&generate(0.5, seed).spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = GridPath::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            let mut moves = String::new();
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
                let acts = legal(&g);
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                g.step(a);
                moves.push(MOVES[usize::from(a)]);
                prop_assert!(g.steps() <= g.budget());
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            prop_assert_eq!(verify_solution(&task.spec, &moves), g.is_success());
        }
    }
}
