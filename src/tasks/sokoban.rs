//! Sokoban: push every box onto a goal within a move budget.
//!
//! # Rules
//!
//! A room of up to [`MAX_SIDE`] x [`MAX_SIDE`] cells, written in the usual
//! XSB letters: `#` wall, `-` floor (` ` and `_` are read as floor too), `$`
//! box, `.` goal, `*` box on a goal, `@` player, `+` player on a goal. Cells
//! outside the rows count as wall. There are 1..=[`MAX_BOXES`] boxes and as
//! many goals. An action moves the player one cell, `0:up 1:down 2:left
//! 3:right` (letters `U D L R` in solutions): onto free floor, or into a box
//! when the cell beyond it is free floor, pushing the box there. Boxes
//! cannot be pulled, and only one box moves at a time.
//!
//! The episode succeeds when every box stands on a goal. It fails when the
//! budget (part of the spec) is spent, when the player has no legal move,
//! or early, as soon as a box stands on a *dead square*: a cell from which
//! no sequence of pushes could bring a box to any goal even in an otherwise
//! empty room (corners and the stretches of wall between them that hold no
//! goal). Such a position can never be solved, so ending it at once gives
//! search a clear signal instead of a long doomed tail.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! A room is a `side x side` square whose cells are walls with probability
//! `walls`, cut down to its largest connected floor area. Boxes start on
//! random goals and the player on a random free cell; then play runs
//! backwards for `pulls` random pulls, each picked among those the player
//! can reach (walk to a cell beside a box, step away from it with the box
//! following). Every pull is a push played in reverse, so every position on
//! the way is solvable; the task starts from the one whose boxes are
//! farthest (in pushes) from the goals, with the player moved to a random
//! cell it could walk to. [`solve`] then computes the exact shortest
//! solution, and the draw is kept if it needs at least `min moves` moves.
//! The budget is `optimal * 2 + 4`.
//!
//! | difficulty   | side | boxes | walls | pulls | min moves | mean optimal (measured) |
//! |--------------|------|-------|-------|-------|-----------|-------------------------|
//! | [0.0, 0.2)   | 5    | 1     | 0.15  | 10    | 4         | 10                      |
//! | [0.2, 0.4)   | 6    | 1     | 0.20  | 20    | 10        | 15                      |
//! | [0.4, 0.6)   | 6    | 2     | 0.20  | 30    | 14        | 20                      |
//! | [0.6, 0.8)   | 7    | 2     | 0.25  | 40    | 20        | 26                      |
//! | [0.8, 1.0]   | 8    | 3     | 0.25  | 60    | 26        | 33                      |
//!
//! Draws that miss the band, or whose solve runs past [`GEN_NODE_LIMIT`]
//! expansions, are retried from the same seeded stream; after
//! [`MAX_ATTEMPTS`] the longest solved draw is kept (the tests check that
//! this fallback does not fire in practice).
//!
//! # Observation ([`OBS_DIM`] = 404 floats, all within `[0, 1]`)
//!
//! Six planes over the 8x8 frame, cell `(r, c)` at `plane * 64 + r * 8 + c`,
//! then four scalars and four features per move. The last two planes and
//! what follows them are what a Sokoban player sees at a glance and an MLP
//! cannot derive in one step: how far each square is from a goal in pushes
//! (dead squares read 1), where the player can walk without pushing, the
//! pushes still needed, and what each move does. A *useful push* moves a box
//! to a square nearer a goal; the move block lines up with the action space,
//! like the rule block of deduction, so the policy reads it per action.
//!
//! | index    | feature                                               |
//! |----------|-------------------------------------------------------|
//! | 0..64    | wall: 1 for walls and for frame cells outside the room |
//! | 64..128  | box                                                   |
//! | 128..192 | goal                                                  |
//! | 192..256 | player                                                |
//! | 256..320 | floor: `min(pushes from here to the nearest goal, 16) / 16`, 1 on dead squares |
//! | 320..384 | floor the player can walk to without pushing           |
//! | 384      | budget left / budget                                  |
//! | 385      | fraction of boxes on goals                            |
//! | 386      | `min(push lower bound, 16) / 16` (boxes matched to distinct goals; 1 when none fits) |
//! | 387      | doomed: no matching, or more pushes needed than moves left (1/0) |
//! | 388 + 4d.. | move `d` (up, down, left, right): legal, a push that lowers the push bound, a push that raises it or loses the position, a walk that brings the player nearer a useful push |

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Largest number of rows or columns of a room.
pub const MAX_SIDE: usize = 8;
/// Most boxes (and goals) in a room.
pub const MAX_BOXES: usize = 3;
/// Cells of the frame every room sits in (top-left aligned).
const CELLS: usize = MAX_SIDE * MAX_SIDE;
/// Move letters in action order: up, down, left, right.
pub const MOVES: [char; 4] = ['U', 'D', 'L', 'R'];
/// One action per direction.
pub const ACTION_DIM: usize = MOVES.len();
/// Largest move budget accepted in a spec.
pub const MAX_BUDGET: u32 = 1000;
/// Search expansions the generator allows its solve before redrawing.
pub const GEN_NODE_LIMIT: usize = 5_000;
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 300;
const PLANES: usize = 6;
/// The planes of the observation (channels, height, width).
pub const GRID: (usize, usize, usize) = (PLANES, MAX_SIDE, MAX_SIDE);
/// Observation length; see the module docs for the layout.
const SCALARS: usize = 4;
const MOVE_FEATURES: usize = 4;
pub const OBS_DIM: usize = PLANES * CELLS + SCALARS + ACTION_DIM * MOVE_FEATURES;
/// Push distances at or beyond this read 1 in the observation.
const FAR_PUSHES: f32 = 16.0;

/// Frame cell index `r * 8 + c`.
type Cell = u8;

fn bit(cell: Cell) -> u64 {
    1u64 << cell
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

/// Set cells of `mask`, ascending.
fn cells_of(mut mask: u64) -> impl Iterator<Item = Cell> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let cell = mask.trailing_zeros() as Cell;
            mask &= mask - 1;
            cell
        })
    })
}

/// The fixed parts of a room: what never moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Room {
    rows: u8,
    cols: u8,
    floor: u64,
    goals: u64,
    /// Floor cells from which no box can reach a goal (see module docs).
    dead: u64,
}

impl Room {
    fn new(rows: u8, cols: u8, floor: u64, goals: u64) -> Self {
        let dist = push_distances(floor, goals);
        let dead = cells_of(floor)
            .filter(|&c| dist[usize::from(c)] == u16::MAX)
            .fold(0, |m, c| m | bit(c));
        Room {
            rows,
            cols,
            floor,
            goals,
            dead,
        }
    }

    fn is_floor(&self, cell: Cell) -> bool {
        self.floor & bit(cell) != 0
    }

    /// Where `dir` takes the player from `player`, and where the pushed box
    /// goes if it pushes one; None when the move is blocked.
    fn try_move(&self, boxes: u64, player: Cell, dir: usize) -> Option<(Cell, Option<Cell>)> {
        let next = neighbor(player, dir).filter(|&c| self.is_floor(c))?;
        if boxes & bit(next) == 0 {
            return Some((next, None));
        }
        let beyond = neighbor(next, dir).filter(|&c| self.is_floor(c) && boxes & bit(c) == 0)?;
        Some((next, Some(beyond)))
    }
}

/// For every cell, the fewest pushes that bring a box standing there onto
/// some goal in an empty room (`u16::MAX` when none can), found by pulling
/// boxes backwards from the goals. Player reachability is ignored, which
/// only makes the distances smaller: a lower bound for search, and a safe
/// under-approximation of dead squares.
fn push_distances(floor: u64, goals: u64) -> [u16; CELLS] {
    let mut dist = [u16::MAX; CELLS];
    let mut queue = VecDeque::with_capacity(CELLS);
    for g in cells_of(goals & floor) {
        dist[usize::from(g)] = 0;
        queue.push_back(g);
    }
    while let Some(x) = queue.pop_front() {
        let d = dist[usize::from(x)];
        for dir in 0..ACTION_DIM {
            // A push in direction `dir` moved the box from `y` to `x`, with
            // the player standing at `y - dir`.
            let back = opposite(dir);
            let Some(y) = neighbor(x, back).filter(|&y| floor & bit(y) != 0) else {
                continue;
            };
            let pusher_ok = neighbor(y, back).is_some_and(|p| floor & bit(p) != 0);
            if pusher_ok && dist[usize::from(y)] == u16::MAX {
                dist[usize::from(y)] = d + 1;
                queue.push_back(y);
            }
        }
    }
    dist
}

fn opposite(dir: usize) -> usize {
    dir ^ 1
}

/// A live episode: bitmasks over the 8x8 frame, so clones are cheap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sokoban {
    room: Room,
    start_boxes: u64,
    start_player: Cell,
    boxes: u64,
    player: Cell,
    budget: u16,
    steps: u16,
}

impl Sokoban {
    /// Start state from XSB rows (see module docs; equal lengths, at most
    /// 8x8, one player, 1..=3 boxes, as many goals) and a budget in 1..=1000.
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
        let (mut floor, mut goals, mut boxes, mut player) = (0u64, 0u64, 0u64, None);
        for (r, row) in grid.iter().enumerate() {
            let row = row.as_ref();
            let len = row.chars().count();
            if !(1..=MAX_SIDE).contains(&len) || len != cols {
                return Err(format!(
                    "grid[{r}]: expected {cols} cells like row 0 (1..={MAX_SIDE}), got {len}"
                ));
            }
            for (c, ch) in row.chars().enumerate() {
                let b = bit((r * MAX_SIDE + c) as Cell);
                let (is_goal, is_box, is_player) = match ch {
                    '#' => continue,
                    '-' | ' ' | '_' => (false, false, false),
                    '.' => (true, false, false),
                    '$' => (false, true, false),
                    '*' => (true, true, false),
                    '@' => (false, false, true),
                    '+' => (true, false, true),
                    _ => {
                        return Err(format!(
                            "grid[{r}][{c}]: expected one of # - . $ * @ +, got {ch:?}"
                        ))
                    }
                };
                if is_player && player.replace((r * MAX_SIDE + c) as Cell).is_some() {
                    return Err(format!("grid[{r}][{c}]: expected one player, got a second"));
                }
                floor |= b;
                goals |= if is_goal { b } else { 0 };
                boxes |= if is_box { b } else { 0 };
            }
        }
        let player = player.ok_or("grid: expected one player (@ or +), got none")?;
        let (n_boxes, n_goals) = (boxes.count_ones(), goals.count_ones());
        if !(1..=MAX_BOXES as u32).contains(&n_boxes) {
            return Err(format!(
                "grid: expected 1..={MAX_BOXES} boxes ($ or *), got {n_boxes}"
            ));
        }
        if n_goals != n_boxes {
            return Err(format!(
                "grid: expected as many goals (. * +) as boxes ({n_boxes}), got {n_goals}"
            ));
        }
        let room = Room::new(grid.len() as u8, cols as u8, floor, goals);
        Ok(Sokoban::start(room, boxes, player, budget as u16))
    }

    fn start(room: Room, boxes: u64, player: Cell, budget: u16) -> Self {
        Sokoban {
            room,
            start_boxes: boxes,
            start_player: player,
            boxes,
            player,
            budget,
            steps: 0,
        }
    }

    /// Parses `{"grid":["#-@$.-"],"budget":9}`; never panics.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"grid":[1..=8 equal rows of # - . $ * @ +],"budget":1..=1000}"#;
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
                v.as_str().ok_or_else(|| {
                    format!("grid[{r}]: expected a string of # - . $ * @ +, got {v}")
                })
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
        Sokoban::new(&rows, budget as u32)
    }

    /// The start state's spec, so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        let rows = self.xsb_rows(self.start_boxes, self.start_player);
        let rows: Vec<String> = rows.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "{{\"grid\":[{}],\"budget\":{}}}",
            rows.join(","),
            self.budget
        )
    }

    /// The start position as XSB rows (floor written `-`).
    pub fn start_rows(&self) -> Vec<String> {
        self.xsb_rows(self.start_boxes, self.start_player)
    }

    fn xsb_rows(&self, boxes: u64, player: Cell) -> Vec<String> {
        let room = &self.room;
        (0..room.rows)
            .map(|r| {
                (0..room.cols)
                    .map(|c| {
                        let cell = r * MAX_SIDE as Cell + c;
                        let b = bit(cell);
                        let goal = room.goals & b != 0;
                        match (room.is_floor(cell), boxes & b != 0, cell == player) {
                            (false, _, _) => '#',
                            (_, true, _) if goal => '*',
                            (_, true, _) => '$',
                            (_, _, true) if goal => '+',
                            (_, _, true) => '@',
                            _ if goal => '.',
                            _ => '-',
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// `(rows, cols)` of the room.
    pub fn size(&self) -> (usize, usize) {
        (usize::from(self.room.rows), usize::from(self.room.cols))
    }

    /// Whether `(r, c)` is a wall (or outside the room).
    pub fn is_wall(&self, r: usize, c: usize) -> bool {
        r >= MAX_SIDE || c >= MAX_SIDE || !self.room.is_floor((r * MAX_SIDE + c) as Cell)
    }

    /// Whether `(r, c)` is a goal.
    pub fn is_goal(&self, r: usize, c: usize) -> bool {
        r < MAX_SIDE && c < MAX_SIDE && self.room.goals & bit((r * MAX_SIDE + c) as Cell) != 0
    }

    /// Current box positions `(row, col)`, in reading order.
    pub fn boxes(&self) -> Vec<(usize, usize)> {
        cells_of(self.boxes).map(split).collect()
    }

    /// The player's `(row, col)`.
    pub fn player(&self) -> (usize, usize) {
        split(self.player)
    }

    /// The start position: box cells and the player's cell.
    pub fn start_position(&self) -> (Vec<(usize, usize)>, (usize, usize)) {
        (
            cells_of(self.start_boxes).map(split).collect(),
            split(self.start_player),
        )
    }

    pub fn steps(&self) -> u32 {
        u32::from(self.steps)
    }

    pub fn budget(&self) -> u32 {
        u32::from(self.budget)
    }

    /// Whether a box stands on a dead square (see module docs).
    pub fn is_deadlocked(&self) -> bool {
        self.boxes & self.room.dead != 0
    }

    fn can_move(&self) -> bool {
        (0..ACTION_DIM).any(|d| self.room.try_move(self.boxes, self.player, d).is_some())
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_success() || self.steps >= self.budget || self.is_deadlocked() {
            return;
        }
        out.extend(
            (0..ACTION_DIM)
                .filter(|&d| self.room.try_move(self.boxes, self.player, d).is_some())
                .map(|d| d as Action),
        );
    }

    /// Moves the player, pushing a box if there is one. An illegal action is
    /// a bug (debug assert) and is ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let moved = (usize::from(action) < ACTION_DIM && !self.is_terminal())
            .then(|| {
                self.room
                    .try_move(self.boxes, self.player, usize::from(action))
            })
            .flatten();
        debug_assert!(
            moved.is_some(),
            "illegal action {action} in\n{}",
            self.render()
        );
        let Some((next, pushed)) = moved else { return };
        if let Some(beyond) = pushed {
            self.boxes = (self.boxes & !bit(next)) | bit(beyond);
        }
        self.player = next;
        self.steps += 1;
    }

    /// The verifier: every box stands on a goal.
    pub fn is_success(&self) -> bool {
        self.boxes & !self.room.goals == 0
    }

    pub fn is_terminal(&self) -> bool {
        self.is_success() || self.steps >= self.budget || self.is_deadlocked() || !self.can_move()
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        for cell in 0..CELLS as Cell {
            if !self.room.is_floor(cell) {
                out[usize::from(cell)] = 1.0;
            }
        }
        for cell in cells_of(self.boxes) {
            out[CELLS + usize::from(cell)] = 1.0;
        }
        for cell in cells_of(self.room.goals) {
            out[2 * CELLS + usize::from(cell)] = 1.0;
        }
        out[3 * CELLS + usize::from(self.player)] = 1.0;
        let far = |d: u16| (f32::from(d) / FAR_PUSHES).min(1.0);
        let bound = PushBound::new(&self.room);
        let dist = bound.nearest();
        for cell in cells_of(self.room.floor) {
            out[4 * CELLS + usize::from(cell)] = far(dist[usize::from(cell)]);
        }
        for cell in cells_of(walkable(self.room.floor & !self.boxes, self.player)) {
            out[5 * CELLS + usize::from(cell)] = 1.0;
        }
        let base = PLANES * CELLS;
        out[base] = f32::from(self.budget - self.steps.min(self.budget)) / f32::from(self.budget);
        out[base + 1] = (self.boxes & self.room.goals).count_ones() as f32
            / self.boxes.count_ones().max(1) as f32;
        let pushes = bound.pushes(self.boxes);
        let left = self.budget - self.steps.min(self.budget);
        out[base + 2] = far(pushes.unwrap_or(u16::MAX));
        out[base + 3] = flag(pushes.is_none_or(|p| p > left));
        let open = self.room.floor & !self.boxes;
        let useful = walk_distances_from(open, useful_push_cells(&self.room, self.boxes, &dist));
        for dir in 0..ACTION_DIM {
            let f = &mut out[base + SCALARS + dir * MOVE_FEATURES..][..MOVE_FEATURES];
            let Some((next, pushed)) = self.room.try_move(self.boxes, self.player, dir) else {
                continue;
            };
            f[0] = 1.0;
            match pushed {
                Some(beyond) => {
                    let after = bound.pushes((self.boxes & !bit(next)) | bit(beyond));
                    f[1] = flag(after.zip(pushes).is_some_and(|(a, b)| a < b));
                    f[2] = flag(after.is_none_or(|a| pushes.is_some_and(|b| a > b)));
                }
                None => {
                    let (here, there) = (useful[usize::from(self.player)], useful[usize::from(next)]);
                    f[3] = flag(there < here);
                }
            }
        }
    }

    /// `"up"` .. `"right"`, or `"push up"` .. when the move pushes a box.
    pub fn label(&self, action: Action) -> String {
        let dir = usize::from(action);
        let name = ["up", "down", "left", "right"];
        match self.room.try_move(self.boxes, self.player, dir) {
            Some((_, Some(_))) => format!("push {}", name[dir]),
            Some((_, None)) => name[dir].to_string(),
            None => format!("illegal action {action}"),
        }
    }

    /// The room in XSB letters and a status line such as
    /// `"step 3 of 20 | 1/2 boxes on goals"`, with `" | solved"` or
    /// `" | failed"` once the episode is over.
    pub fn render(&self) -> String {
        let mut s = self.xsb_rows(self.boxes, self.player).join("\n");
        s.push_str(&format!(
            "\nstep {} of {} | {}/{} boxes on goals",
            self.steps,
            self.budget,
            (self.boxes & self.room.goals).count_ones(),
            self.boxes.count_ones()
        ));
        match self.outcome() {
            Some(Outcome::Success) => s.push_str(" | solved"),
            Some(_) if self.is_deadlocked() => s.push_str(" | failed (box on a dead square)"),
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

/// A cheap mixing hasher for packed state keys.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, v: u32) {
        // Fold the well-mixed high bits down: tables index by the low bits.
        let x = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

/// Player cell plus each box cell, 6 bits apiece: unique within one search,
/// where the number of boxes is fixed.
fn state_key(boxes: u64, player: Cell) -> u32 {
    cells_of(boxes).fold(u32::from(player), |k, c| (k << 6) | u32::from(c))
}

/// A search node: the position right after a push (or the start).
/// `parent` indexes the node list (`u32::MAX` at the root); `push` is the
/// pushed box's cell before the push and the push direction.
#[derive(Clone, Copy)]
struct Node {
    boxes: u64,
    player: Cell,
    g: u16,
    h: u16,
    parent: u32,
    push: (Cell, u8),
}

/// How a bounded search ended.
enum Search {
    Solved(Vec<Action>),
    Unsolvable,
    GaveUp,
}

/// All orders of three goals. The rows that keep entries `n..` in place
/// give, in their first `n` entries, all orders of the first `n` goals.
const PERMUTATIONS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [1, 0, 2],
    [0, 2, 1],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Lower bound on the pushes left: the cheapest assignment of boxes to
/// distinct goals, each box costing its push distance to its goal in an
/// empty room. One push changes it by at most one.
struct PushBound {
    goals: Vec<[u16; CELLS]>,
}

impl PushBound {
    fn new(room: &Room) -> Self {
        let goals = cells_of(room.goals)
            .map(|g| push_distances(room.floor, bit(g)))
            .collect();
        PushBound { goals }
    }

    /// Pushes from each cell to the nearest goal (`u16::MAX` when none can
    /// be reached): the same as [`push_distances`] from all goals at once.
    fn nearest(&self) -> [u16; CELLS] {
        let mut dist = [u16::MAX; CELLS];
        for goal in &self.goals {
            for (d, &g) in dist.iter_mut().zip(goal) {
                *d = (*d).min(g);
            }
        }
        dist
    }

    /// None when no assignment is possible: the position is lost.
    fn pushes(&self, boxes: u64) -> Option<u16> {
        let mut cells = [0usize; MAX_BOXES];
        let mut n = 0;
        for c in cells_of(boxes) {
            cells[n] = usize::from(c);
            n += 1;
        }
        PERMUTATIONS
            .iter()
            .filter(|p| p[n..].iter().enumerate().all(|(k, &g)| g == n + k))
            .filter_map(|p| {
                (0..n).try_fold(0u16, |sum, i| match self.goals[p[i]][cells[i]] {
                    u16::MAX => None,
                    d => Some(sum + d),
                })
            })
            .min()
    }
}

/// Column masks of the 8x8 frame, for shifting bitboards without wrapping.
const COL_FIRST: u64 = 0x0101_0101_0101_0101;
const COL_LAST: u64 = COL_FIRST << (MAX_SIDE - 1);

/// `mask` grown by one step in every direction (still within the frame).
fn spread(mask: u64) -> u64 {
    ((mask << 1) & !COL_FIRST) | ((mask >> 1) & !COL_LAST) | (mask << MAX_SIDE) | (mask >> MAX_SIDE)
}

/// Cells the player could push from to bring a box one push nearer a goal
/// (`dist` from [`PushBound::nearest`]).
fn useful_push_cells(room: &Room, boxes: u64, dist: &[u16; CELLS]) -> u64 {
    let open = room.floor & !boxes;
    let mut cells = 0;
    for b in cells_of(boxes) {
        for dir in 0..ACTION_DIM {
            let from = neighbor(b, opposite(dir)).filter(|&p| open & bit(p) != 0);
            let to = neighbor(b, dir).filter(|&t| open & bit(t) != 0);
            if let (Some(p), Some(t)) = (from, to) {
                if dist[usize::from(t)] < dist[usize::from(b)] {
                    cells |= bit(p);
                }
            }
        }
    }
    cells
}

/// Plain-move distances over `open` cells from the nearest cell of
/// `sources` (`u8::MAX` where none is reachable).
fn walk_distances_from(open: u64, sources: u64) -> [u8; CELLS] {
    let mut dist = [u8::MAX; CELLS];
    let (mut seen, mut front, mut d) = (sources, sources, 0);
    while front != 0 {
        for c in cells_of(front) {
            dist[usize::from(c)] = d;
        }
        front = spread(front) & open & !seen;
        seen |= front;
        d += 1;
    }
    dist
}

/// Cells the player reaches from `from` over `open` cells (flood fill).
fn walkable(open: u64, from: Cell) -> u64 {
    let (mut seen, mut front) = (bit(from), bit(from));
    while front != 0 {
        front = spread(front) & open & !seen;
        seen |= front;
    }
    seen
}

/// Plain-move distances over `open` cells from `from` to the cells of
/// `wanted`, by growing bitboard layers until every wanted cell is found.
/// Unreachable and unwanted cells read `u8::MAX`.
fn walk_distances(open: u64, from: Cell, wanted: u64) -> [u8; CELLS] {
    let mut dist = [u8::MAX; CELLS];
    let (mut seen, mut front, mut d) = (bit(from), bit(from), 0);
    let mut missing = wanted;
    while front != 0 && missing != 0 {
        for c in cells_of(front & missing) {
            dist[usize::from(c)] = d;
        }
        missing &= !front;
        front = spread(front) & open & !seen;
        seen |= front;
        d += 1;
    }
    dist
}

/// A shortest plain walk over `open` cells from `from` to `to` (which must
/// be reachable), preferring earlier directions in action order at the end.
fn walk_path(open: u64, from: Cell, to: Cell) -> Vec<Action> {
    let dist = walk_distances(open, from, u64::MAX);
    let mut path = Vec::with_capacity(usize::from(dist[usize::from(to)]));
    let mut cell = to;
    while cell != from {
        let d = dist[usize::from(cell)];
        let step = (0..ACTION_DIM).find_map(|dir| {
            neighbor(cell, dir)
                .filter(|&n| d > 0 && dist[usize::from(n)] == d - 1)
                .map(|n| (dir, n))
        });
        let Some((dir, prev)) = step else { break };
        path.push(opposite(dir) as Action);
        cell = prev;
    }
    path.reverse();
    path
}

/// A* over positions right after a push, each push costing the plain moves
/// to reach it plus one, so the first solved node expanded is a shortest
/// solution in moves. Collapsing the walks keeps the graph a small fraction
/// of the (player, boxes) space.
///
/// The heuristic is [`PushBound`], plus at the start the plain moves needed
/// to stand beside some box. It is consistent: a push edge costs its walk
/// plus one and lowers the push bound by at most one, and the first walk is
/// at least the start's extra term. Positions with no box-to-goal assignment (a box on a dead square,
/// among others) are pruned. Gives up after `node_limit` expansions.
fn search(room: &Room, boxes: u64, player: Cell, node_limit: usize) -> Search {
    if boxes & !room.goals == 0 {
        return Search::Solved(Vec::new());
    }
    let bound = PushBound::new(room);
    let walk = walk_distances(room.floor & !boxes, player, spread(boxes));
    let reach = cells_of(boxes)
        .filter_map(|b| {
            (0..ACTION_DIM)
                .filter_map(|d| neighbor(b, d))
                .map(|c| walk[usize::from(c)])
                .min()
        })
        .min()
        .filter(|&d| d != u8::MAX);
    let Some(h) = bound
        .pushes(boxes)
        .zip(reach)
        .map(|(p, r)| p + u16::from(r))
    else {
        return Search::Unsolvable;
    };
    let mut nodes = vec![Node {
        boxes,
        player,
        g: 0,
        h,
        parent: u32::MAX,
        push: (0, 0),
    }];
    let mut seen: HashMap<u32, u32, BuildHasherDefault<KeyHasher>> =
        HashMap::with_capacity_and_hasher(1024, Default::default());
    seen.insert(state_key(boxes, player), 0);
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); usize::from(h) + 1];
    buckets[usize::from(h)].push(0);
    let mut expanded = 0usize;
    let mut f = usize::from(h);
    while f < buckets.len() {
        let Some(idx) = buckets[f].pop() else {
            f += 1;
            continue;
        };
        let node = nodes[idx as usize];
        if usize::from(node.g + node.h) != f {
            continue; // Stale: reached again later with a smaller g.
        }
        if node.boxes & !room.goals == 0 {
            return Search::Solved(moves_to(room, &nodes, idx));
        }
        expanded += 1;
        if expanded > node_limit {
            return Search::GaveUp;
        }
        let dist = walk_distances(room.floor & !node.boxes, node.player, spread(node.boxes));
        for b in cells_of(node.boxes) {
            for dir in 0..ACTION_DIM {
                let Some(walk) = neighbor(b, opposite(dir)).map(|p| dist[usize::from(p)]) else {
                    continue;
                };
                let target =
                    neighbor(b, dir).filter(|&t| room.is_floor(t) && node.boxes & bit(t) == 0);
                let Some(target) = target.filter(|_| walk != u8::MAX) else {
                    continue;
                };
                let child_boxes = (node.boxes & !bit(b)) | bit(target);
                let g = node.g + u16::from(walk) + 1;
                let key = state_key(child_boxes, b);
                let old = seen.get(&key).copied();
                if old.is_some_and(|i| nodes[i as usize].g <= g) {
                    continue;
                }
                let Some(h) = bound.pushes(child_boxes) else {
                    continue;
                };
                let child = Node {
                    boxes: child_boxes,
                    player: b,
                    g,
                    h,
                    parent: idx,
                    push: (b, dir as u8),
                };
                let child_idx = match old {
                    Some(i) => {
                        nodes[i as usize] = child;
                        i
                    }
                    None => {
                        nodes.push(child);
                        let new = (nodes.len() - 1) as u32;
                        seen.insert(key, new);
                        new
                    }
                };
                let child_f = usize::from(g + h);
                if child_f >= buckets.len() {
                    buckets.resize(child_f + 1, Vec::new());
                }
                buckets[child_f].push(child_idx);
            }
        }
    }
    Search::Unsolvable
}

/// The moves from the root to node `idx`: for each push, a shortest walk to
/// the cell behind the box, then the push.
fn moves_to(room: &Room, nodes: &[Node], idx: u32) -> Vec<Action> {
    let mut chain = Vec::new();
    let mut i = idx;
    while nodes[i as usize].parent != u32::MAX {
        chain.push(nodes[i as usize].push);
        i = nodes[i as usize].parent;
    }
    let root = nodes[i as usize];
    let (mut boxes, mut player) = (root.boxes, root.player);
    let mut moves = Vec::with_capacity(usize::from(nodes[idx as usize].g));
    for &(b, dir) in chain.iter().rev() {
        let dir = usize::from(dir);
        let stand = neighbor(b, opposite(dir)).unwrap_or(b);
        moves.extend(walk_path(room.floor & !boxes, player, stand));
        moves.push(dir as Action);
        let target = neighbor(b, dir).unwrap_or(b);
        boxes = (boxes & !bit(b)) | bit(target);
        player = b;
    }
    moves
}

/// A shortest move sequence (fewest moves, pushes included) that puts every
/// box on a goal from the current position, ignoring the budget:
/// `Some(vec![])` when already solved, `None` when unsolvable.
///
/// Exact A* over the positions right after each push, unbounded (the
/// generator runs the same search with a node limit). It always ends, as
/// the state space is finite: generated rooms take well under a
/// millisecond, an open 8x8 room with three boxes tens of milliseconds and
/// about 10 MiB.
pub fn solve(state: &Sokoban) -> Option<Vec<Action>> {
    match search(&state.room, state.boxes, state.player, usize::MAX) {
        Search::Solved(path) => Some(path),
        Search::Unsolvable | Search::GaveUp => None,
    }
}

/// `"RRUL"`.
pub fn format_moves(moves: &[Action]) -> String {
    moves
        .iter()
        .filter_map(|&a| MOVES.get(usize::from(a)))
        .collect()
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// Checks a move string like `"RRUL"` against the task spec, independently
/// of the game code: letters `U D L R` in either case (so LURD notation,
/// lowercase moves and uppercase pushes, passes too), with spaces, commas
/// and newlines ignored. Every move must be legal under the push rules, the
/// last one must put the final box on its goal (no moves after solving),
/// and there may be at most the budget's number of moves. A bad spec fails.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(task) = Sokoban::from_spec(spec) else {
        return false;
    };
    let (start_boxes, (mut pr, mut pc)) = task.start_position();
    let mut boxes: Vec<(i64, i64)> = start_boxes
        .iter()
        .map(|&(r, c)| (r as i64, c as i64))
        .collect();
    let wall = |(r, c): (i64, i64)| r < 0 || c < 0 || task.is_wall(r as usize, c as usize);
    let solved = |boxes: &[(i64, i64)]| {
        boxes
            .iter()
            .all(|&(r, c)| task.is_goal(r as usize, c as usize))
    };
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
        moves += 1;
        if solved(&boxes) || moves > task.budget() {
            return false;
        }
        let next = (pr as i64 + dr, pc as i64 + dc);
        if wall(next) {
            return false;
        }
        if let Some(k) = boxes.iter().position(|&b| b == next) {
            let beyond = (next.0 + dr, next.1 + dc);
            if wall(beyond) || boxes.contains(&beyond) {
                return false;
            }
            boxes[k] = beyond;
        }
        (pr, pc) = (next.0 as usize, next.1 as usize);
    }
    solved(&boxes)
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    side: usize,
    boxes: usize,
    walls: f64,
    pulls: usize,
    min_moves: usize,
}

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { side: 5, boxes: 1, walls: 0.15, pulls: 10, min_moves: 4 },
    Band { side: 6, boxes: 1, walls: 0.20, pulls: 20, min_moves: 10 },
    Band { side: 6, boxes: 2, walls: 0.20, pulls: 30, min_moves: 14 },
    Band { side: 7, boxes: 2, walls: 0.25, pulls: 40, min_moves: 20 },
    Band { side: 8, boxes: 3, walls: 0.25, pulls: 60, min_moves: 26 },
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

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (game, path) = pick_puzzle(band_for(difficulty), &mut rng);
    Task {
        task_id: format!("sokoban-{seed:016x}"),
        family: Family::Sokoban,
        difficulty,
        seed,
        statement: format!(
            "Push every box onto a goal in at most {} moves (U D L R). \
             # wall, - floor, . goal, $ box, * box on goal, @ you, + you on goal:\n{}",
            game.budget,
            game.start_rows().join("\n")
        ),
        spec: game.to_spec(),
        reference_solution: format_moves(&path),
        optimal_steps: Some(path.len() as u32),
    }
}

/// Draws until a puzzle meets the band; after [`MAX_ATTEMPTS`] keeps the
/// longest one solved.
fn pick_puzzle(band: &Band, rng: &mut ChaCha8Rng) -> (Sokoban, Vec<Action>) {
    let mut best: Option<(Sokoban, Vec<Action>)> = None;
    for _ in 0..MAX_ATTEMPTS {
        let Some((room, boxes, player)) = draw_position(band, rng) else {
            continue;
        };
        let Search::Solved(path) = search(&room, boxes, player, GEN_NODE_LIMIT) else {
            continue;
        };
        let budget = (path.len() * 2 + 4).min(MAX_BUDGET as usize) as u16;
        let game = Sokoban::start(room, boxes, player, budget);
        if path.len() >= band.min_moves {
            return (game, path);
        }
        if best.as_ref().is_none_or(|b| path.len() > b.1.len()) {
            best = Some((game, path));
        }
    }
    best.unwrap_or_else(fallback_puzzle)
}

/// A one-push corridor `@$.`: the last resort if no draw solved (never
/// reached in practice).
fn fallback_puzzle() -> (Sokoban, Vec<Action>) {
    let room = Room::new(1, 3, 0b111, 0b100);
    (Sokoban::start(room, 0b010, 0, 6), vec![3])
}

/// A random room, boxes on random goals, then random pulls played
/// backwards; the position along the way with the boxes farthest from the
/// goals, the player moved to a random cell of its area (None when the room
/// is too small or no box ever left its goal).
fn draw_position(band: &Band, rng: &mut ChaCha8Rng) -> Option<(Room, u64, Cell)> {
    let floor = draw_floor(band, rng);
    let mut free: Vec<Cell> = cells_of(floor).collect();
    if free.len() < band.boxes + 3 {
        return None;
    }
    // A partial shuffle: the first cells become goals, the next the player.
    for i in 0..=band.boxes {
        let j = rng.random_range(i..free.len());
        free.swap(i, j);
    }
    let goals = free[..band.boxes].iter().fold(0, |m, &c| m | bit(c));
    let room = Room::new(band.side as u8, band.side as u8, floor, goals);
    let dist = push_distances(floor, goals);
    let far = |boxes: u64| -> u32 {
        cells_of(boxes)
            .map(|c| u32::from(dist[usize::from(c)]))
            .sum()
    };
    let (mut boxes, mut player) = (goals, free[band.boxes]);
    let mut best = (0, boxes, player);
    let mut pulls = Vec::with_capacity(4 * MAX_BOXES);
    for _ in 0..band.pulls {
        let reach = flood(floor & !boxes, player);
        pulls.clear();
        for b in cells_of(boxes) {
            for dir in 0..ACTION_DIM {
                // The player stands at `p` beside the box and steps on to `q`.
                let Some(p) = neighbor(b, dir).filter(|&p| reach & bit(p) != 0) else {
                    continue;
                };
                if let Some(q) = neighbor(p, dir).filter(|&q| reach & bit(q) != 0) {
                    pulls.push((b, p, q));
                }
            }
        }
        if pulls.is_empty() {
            break;
        }
        let (b, p, q) = pulls[rng.random_range(0..pulls.len())];
        boxes = (boxes & !bit(b)) | bit(p);
        player = q;
        if far(boxes) >= best.0 {
            best = (far(boxes), boxes, player);
        }
    }
    let (_, boxes, player) = best;
    let area: Vec<Cell> = cells_of(flood(floor & !boxes, player)).collect();
    let player = area[rng.random_range(0..area.len())];
    (best.0 > 0).then_some((room, boxes, player))
}

/// Floor of a `side x side` room: random walls, then the largest connected area.
fn draw_floor(band: &Band, rng: &mut ChaCha8Rng) -> u64 {
    let mut open = 0u64;
    for r in 0..band.side {
        for c in 0..band.side {
            if !rng.random_bool(band.walls) {
                open |= bit((r * MAX_SIDE + c) as Cell);
            }
        }
    }
    let mut best = 0u64;
    let mut left = open;
    while left != 0 {
        let area = flood(open, left.trailing_zeros() as Cell);
        left &= !area;
        if area.count_ones() > best.count_ones() {
            best = area;
        }
    }
    best
}

/// Cells of `open` connected to `from`.
fn flood(open: u64, from: Cell) -> u64 {
    let mut area = bit(from);
    loop {
        let grown = (spread(area) & open) | area;
        if grown == area {
            return area;
        }
        area = grown;
    }
}

impl Puzzle for Sokoban {
    fn is_success(&self) -> bool {
        Sokoban::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Sokoban::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};
    use std::collections::HashSet;

    const U: Action = 0;
    const D: Action = 1;
    const L: Action = 2;
    const R: Action = 3;

    fn game(grid: &[&str], budget: u32) -> Sokoban {
        Sokoban::new(grid, budget).expect("valid test level")
    }

    fn legal(g: &Sokoban) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// Plays a move string; None if a move is illegal.
    fn replay(spec: &str, moves: &str) -> Option<Sokoban> {
        let mut g = Sokoban::from_spec(spec).ok()?;
        for ch in moves.chars() {
            let a = MOVES.iter().position(|&m| m == ch)? as Action;
            if !legal(&g).contains(&a) {
                return None;
            }
            g.step(a);
        }
        Some(g)
    }

    /// Plain BFS over (player, boxes) with no heuristic or pruning.
    fn brute_force(g: &Sokoban) -> Option<usize> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::new();
        seen.insert((g.boxes, g.player));
        queue.push_back((g.boxes, g.player, 0));
        while let Some((boxes, player, d)) = queue.pop_front() {
            if boxes & !g.room.goals == 0 {
                return Some(d);
            }
            for dir in 0..4 {
                if let Some((next, pushed)) = g.room.try_move(boxes, player, dir) {
                    let b = pushed.map_or(boxes, |p| (boxes & !bit(next)) | bit(p));
                    if seen.insert((b, next)) {
                        queue.push_back((b, next, d + 1));
                    }
                }
            }
        }
        None
    }

    #[test]
    fn moves_and_pushes_follow_the_rules() {
        let mut g = game(&["#----", "-@$-.", "-----"], 20);
        assert_eq!(legal(&g), vec![U, D, L, R]);
        assert_eq!(g.label(R), "push right");
        assert_eq!(g.label(U), "up");
        g.step(R);
        assert_eq!(g.player(), (1, 2));
        assert_eq!(g.boxes(), vec![(1, 3)]);
        assert_eq!(legal(&g), vec![U, D, L, R]);
        g.step(U);
        assert_eq!(legal(&g), vec![D, L, R], "row 0 is the top");
        g.step(L);
        assert_eq!(legal(&g), vec![D, R], "wall at (0,0)");
        assert_eq!(g.steps(), 3);
        assert_eq!(g.to_move(), 0);
        assert_eq!(
            g.render(),
            "#@---\n---$.\n-----\nstep 3 of 20 | 0/1 boxes on goals"
        );
    }

    #[test]
    fn blocked_pushes_are_illegal() {
        // Box against the wall, and a box behind a box.
        let g = game(&["----", "@$#-", "--.-"], 9);
        assert!(!g.is_terminal());
        assert_eq!(legal(&g), vec![U, D], "box cannot go into the wall");
        let g = game(&["@$$.-", "-.---"], 9);
        assert_eq!(legal(&g), vec![D], "two boxes cannot be pushed");
        assert_eq!(g.label(R), "illegal action 3");
    }

    #[test]
    fn success_ends_the_episode() {
        let mut g = game(&["@$."], 5);
        assert_eq!(g.outcome(), None);
        assert_eq!(g.terminal_value(), 0.0);
        g.step(R);
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(g.render(), "-@*\nstep 1 of 5 | 1/1 boxes on goals | solved");
    }

    #[test]
    fn budget_runs_out() {
        let mut g = game(&["@-$-."], 3);
        g.step(R);
        g.step(L);
        assert!(!g.is_terminal());
        g.step(R);
        assert!(g.is_terminal() && !g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(g
            .render()
            .ends_with("step 3 of 3 | 0/1 boxes on goals | failed"));
    }

    #[test]
    fn nearest_goal_pushes_match_a_search_from_all_goals() {
        for seed in 0..200u64 {
            let g = Sokoban::from_spec(&generate((seed % 5) as f32 / 4.0, seed).spec).unwrap();
            let all = push_distances(g.room.floor, g.room.goals);
            assert_eq!(PushBound::new(&g.room).nearest(), all, "seed {seed}");
        }
    }

    #[test]
    fn dead_squares_fail_early() {
        let mut g = game(&["----", "-$@-", "--.-"], 20);
        g.step(L);
        assert_eq!(g.boxes(), vec![(1, 0)]);
        assert!(g.is_deadlocked(), "left wall, no goal on it");
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("failed (box on a dead square)"));
        // Corners are dead, but a goal in a corner is not.
        let g = game(&["$--", "-@-", "--."], 20);
        assert!(g.is_deadlocked());
        let g = game(&["*--", "-@-", "-$."], 20);
        assert!(!g.is_deadlocked());
        let dead: Vec<(usize, usize)> = (0..3)
            .flat_map(|r| (0..3).map(move |c| (r, c)))
            .filter(|&(r, c)| g.room.dead & bit((r * MAX_SIDE + c) as Cell) != 0)
            .collect();
        assert_eq!(dead, vec![(0, 2), (2, 0)]);
        assert!(!g.is_terminal());
    }

    #[test]
    fn stuck_player_fails() {
        // Two boxes in a row block the only way; neither is on a dead square.
        let g = game(&["@$$.."], 20);
        assert!(!g.is_deadlocked());
        assert!(legal(&g).is_empty());
        assert!(g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(solve(&g), None);
    }

    #[test]
    fn encode_marks_planes() {
        let mut g = game(&["@$-.", "----"], 10);
        g.step(R);
        let mut out = vec![0.0; OBS_DIM + 2];
        g.encode(&mut out);
        assert!(out.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
        assert_eq!(&out[OBS_DIM..], &[0.0, 0.0]);
        let plane = |p: usize, r: usize, c: usize| out[p * CELLS + r * MAX_SIDE + c];
        assert_eq!(plane(4, 0, 2), 1.0 / 16.0, "box one push from the goal");
        assert_eq!(plane(4, 0, 3), 0.0, "on the goal");
        assert_eq!(plane(4, 1, 3), 1.0, "bottom-right corner is dead");
        assert_eq!(plane(5, 0, 0), 1.0, "walk back left");
        assert_eq!(plane(5, 0, 3), 1.0, "around the box");
        assert_eq!(plane(5, 0, 2), 0.0, "the box's cell");
        assert_eq!(out[386], 1.0 / 16.0, "one push left");
        assert_eq!(out[387], 0.0, "not doomed");
        let mv = |d: usize| &out[388 + d * 4..][..4];
        assert_eq!(mv(R as usize), &[1.0, 1.0, 0.0, 0.0], "right pushes onto the goal");
        assert_eq!(mv(L as usize), &[1.0, 0.0, 0.0, 0.0], "left walks away");
        assert_eq!(mv(0), &[0.0; 4], "up is the frame edge");
        assert_eq!(out[0], 0.0);
        assert_eq!(out[4], 1.0, "outside the room is wall");
        assert_eq!(out[16], 1.0, "row 2 is outside");
        assert_eq!(out[CELLS + 2], 1.0, "box at (0,2)");
        assert_eq!(out[2 * CELLS + 3], 1.0, "goal at (0,3)");
        assert_eq!(out[3 * CELLS + 1], 1.0, "player at (0,1)");
        assert!((out[384] - 0.9).abs() < 1e-6);
        assert_eq!(out[385], 0.0);
        g.step(R);
        out.fill(0.0);
        g.encode(&mut out);
        assert_eq!((out[385], out[386]), (1.0, 0.0));
    }

    #[test]
    fn spec_round_trips() {
        let g = Sokoban::from_spec(r##"{"budget": 30, "grid": ["# @$.", "_$.*-"]}"##).unwrap();
        assert_eq!(g.to_spec(), r##"{"grid":["#-@$.","-$.*-"],"budget":30}"##);
        let h = Sokoban::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        let g = game(&["@$-."], 9);
        let mut h = g.clone();
        h.step(R);
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
        assert_eq!(g.size(), (1, 4));
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let cases = [
            ("", "spec"),
            ("{", "spec"),
            ("7", "spec"),
            (r#"{"grid":["@$."]}"#, "budget"),
            (r#"{"budget":3}"#, "grid"),
            (r#"{"grid":"@$.","budget":3}"#, "grid"),
            (r#"{"grid":[],"budget":3}"#, "grid"),
            (r#"{"grid":[null],"budget":3}"#, "grid[0]"),
            (r#"{"grid":["@$.","--"],"budget":3}"#, "grid[1]"),
            (r#"{"grid":["@$.------"],"budget":3}"#, "grid[0]"),
            (
                r#"{"grid":["@","$",".","-","-","-","-","-","-"],"budget":3}"#,
                "grid",
            ),
            (r#"{"grid":["@$x."],"budget":3}"#, "grid[0][2]"),
            (r#"{"grid":["@$.@"],"budget":3}"#, "grid[0][3]"),
            (r#"{"grid":["-$."],"budget":3}"#, "player"),
            (r#"{"grid":["@-."],"budget":3}"#, "boxes"),
            (r#"{"grid":["@$$$$....."],"budget":3}"#, "grid[0]"),
            (r#"{"grid":["@$$$$...."],"budget":3}"#, "grid[0]"),
            (r#"{"grid":["@$$$$", "....-"],"budget":3}"#, "boxes"),
            (r#"{"grid":["@$$.-"],"budget":3}"#, "goals"),
            (r#"{"grid":["@$."],"budget":0}"#, "budget"),
            (r#"{"grid":["@$."],"budget":1001}"#, "budget"),
            (r#"{"grid":["@$."],"budget":-2}"#, "budget"),
            (r#"{"grid":["@$."],"budget":1.5}"#, "budget"),
            (r#"{"grid":["@$."],"budget":3,"level":1}"#, "\"level\""),
        ];
        for (spec, field) in cases {
            let err = Sokoban::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
    }

    #[test]
    fn solve_finds_shortest_solutions() {
        let g = game(&["@$-."], 9);
        assert_eq!(format_moves(&solve(&g).unwrap()), "RR");
        // The player must walk around to push the box left.
        let g = game(&["----", ".$@-", "----"], 20);
        assert_eq!(format_moves(&solve(&g).unwrap()), "L");
        let g = game(&["----", "-$.@", "----"], 20);
        assert_eq!(solve(&g).unwrap().len(), 6, "walk around, then push");
        assert_eq!(solve(&game(&["@*"], 3)), Some(vec![]));
        assert_eq!(solve(&game(&["$@."], 3)), None, "dead at the start");
        assert_eq!(
            solve(&game(&["-$#", "-@.", "---"], 30)),
            None,
            "box stuck on the wall"
        );
    }

    #[test]
    fn solve_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut checked = 0;
        while checked < 250 {
            // Three boxes make brute force slow: only every tenth case.
            let band = &BANDS[if checked % 10 == 9 { 4 } else { checked % 4 }];
            let Some((room, boxes, player)) = draw_position(band, &mut rng) else {
                continue;
            };
            let g = Sokoban::start(room, boxes, player, 100);
            let path = solve(&g).expect("reverse play is solvable");
            assert_eq!(Some(path.len()), brute_force(&g), "{}", g.render());
            assert!(verify_solution(&g.to_spec(), &format_moves(&path)));
            checked += 1;
        }
    }

    #[test]
    fn verifier_checks_every_rule() {
        let spec = r#"{"grid":["----","-$.@","----"],"budget":8}"#;
        assert!(!verify_solution(spec, ""), "empty");
        assert!(verify_solution(spec, "ULLLDR"));
        assert!(verify_solution(spec, "DLLLUR"));
        assert!(verify_solution(spec, "u l l l d R"), "LURD case");
        assert!(verify_solution(spec, "U,L,L,L,D,R\n"));
        assert!(verify_solution(spec, "UDULLLDR"), "8 moves fit the budget");
        assert!(!verify_solution(spec, "UDUDULLLDR"), "over budget");
        assert!(!verify_solution(spec, "ULLLDRL"), "moves after solving");
        assert!(!verify_solution(spec, "ULLLD"), "not solved");
        assert!(!verify_solution(spec, "RULLLDR"), "off the room");
        assert!(!verify_solution(spec, "LLL"), "box pushed into the wall");
        assert!(!verify_solution(spec, "ULLLDX"), "unknown letter");
        assert!(!verify_solution("{}", "ULLLDR"), "bad spec");
        let two = r#"{"grid":["@$$.."],"budget":9}"#;
        assert!(!verify_solution(two, "R"), "two boxes in a row");
        let walled = r#"{"grid":["@$#."],"budget":9}"#;
        assert!(!verify_solution(walled, "R"));
    }

    #[test]
    fn generation_gives_distinct_tasks() {
        let distinct: HashSet<String> = (0..100).map(|s| generate(1.0, s).spec).collect();
        assert_eq!(distinct.len(), 100);
    }

    fn check_task(task: &Task) {
        let g = Sokoban::from_spec(&task.spec).expect("generated spec parses");
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let path = solve(&g).expect("solvable");
        let n = path.len();
        assert_eq!(task.optimal_steps, Some(n as u32));
        assert_eq!(task.reference_solution, format_moves(&path));
        let reference = &task.reference_solution;
        assert!(verify_solution(&task.spec, reference), "{task:?}");
        let end = replay(&task.spec, reference).expect("playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        assert_eq!(g.budget() as usize, 2 * n + 4);
        // Anything shorter than the optimum fails, and so does overshooting.
        assert!(!verify_solution(&task.spec, &reference[..n - 1]));
        assert!(!verify_solution(&task.spec, &reference[1..]));
        let extra = format!("{reference}{}", MOVES[usize::from(path[n - 1]) ^ 1]);
        assert!(!verify_solution(&task.spec, &extra));
        let band = band_for(task.difficulty);
        assert_eq!(g.size(), (band.side, band.side));
        assert_eq!(g.boxes().len(), band.boxes);
        assert!(n >= band.min_moves, "fallback fired: {task:?}");
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..2000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..200).map(|s| generate(d, s)).collect();
                let mean = |f: &dyn Fn(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 200.0;
                let boxes = mean(&|t| Sokoban::from_spec(&t.spec).unwrap().boxes().len() as f64);
                (boxes, mean(&|t| f64::from(t.optimal_steps.unwrap_or(0))))
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 >= w[0].0, "boxes grow: {stats:?}");
            assert!(w[1].1 > w[0].1, "optimal moves grow: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,60}") {
            let _ = Sokoban::from_spec(&spec);
        }

        #[test]
        fn from_spec_never_panics_on_levels(rows in proptest::collection::vec("[-#.$*@+ x]{0,9}", 0..10), budget in 0u64..1100) {
            let list: Vec<String> = rows.iter().map(|r| format!("\"{r}\"")).collect();
            let spec = format!("{{\"grid\":[{}],\"budget\":{budget}}}", list.join(","));
            if let Ok(g) = Sokoban::from_spec(&spec) {
                prop_assert!((1..=1000).contains(&budget));
                prop_assert_eq!(Sokoban::from_spec(&g.to_spec()).unwrap(), g);
            }
        }

        #[test]
        fn verify_never_panics(text in "[UDLRudlr ,x]{0,40}", seed in any::<u64>()) {
            let _ = verify_solution(&generate(0.5, seed).spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Sokoban::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            let mut moves = String::new();
            let n_boxes = g.boxes().len();
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
                let acts = legal(&g);
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                g.step(a);
                moves.push(MOVES[usize::from(a)]);
                prop_assert_eq!(g.boxes().len(), n_boxes);
                prop_assert!(g.steps() <= g.budget());
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            prop_assert_eq!(verify_solution(&task.spec, &moves), g.is_success());
        }
    }
}
