//! The exact solver: Pascal Pons' negamax on bitboards with a transposition
//! table of upper and lower bounds, threat-count-then-center move ordering,
//! pruning to "non-losing" moves, and null-window searches that narrow the
//! score interval. Scores follow Pons (see the parent module).

use super::{column_mask, ordered_moves, Bits, Connect4, CELLS, CENTER_FIRST, WIDTH};
use crate::tasks::Action;
use std::cell::RefCell;


const MIN_TABLE_BITS: u32 = 12;
/// 2^20 entries (8 MiB): larger tables measured slower overall, as cache and
/// TLB misses outweighed the fewer collisions.
const MAX_TABLE_BITS: u32 = 20;
/// Keys are `current + mask` < 2^49.
const KEY_BITS: u32 = 49;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// Stored values are offset to be non-negative 7-bit numbers.
const VALUE_OFFSET: i32 = 64;
const LOWER_FLAG: u64 = 1 << (KEY_BITS + 7);
const EPOCH_SHIFT: u32 = KEY_BITS + 8;
/// Epochs 1..=127 fit the top 7 bits; 0 never matches, so a zeroed table is empty.
const MAX_EPOCH: u64 = (1 << (u64::BITS - EPOCH_SHIFT)) - 1;
const EPOCH_MASK: u64 = MAX_EPOCH << EPOCH_SHIFT;

enum Bound {
    Lower(i32),
    Upper(i32),
}

/// Always-replace transposition table: one u64 per entry packing key, value,
/// bound kind and the epoch (solve call) that wrote it.
struct Table {
    entries: Vec<u64>,
    shift: u32,
    epoch: u64,
}

thread_local! {
    /// Kept between solves (at most 8 MiB per thread that solves): faulting
    /// in a fresh zeroed table costs more than a small search, and epochs
    /// make clearing it unnecessary.
    static TABLE: RefCell<Table> = const {
        RefCell::new(Table { entries: Vec::new(), shift: 0, epoch: 0 })
    };
}

impl Table {
    /// Readies the table for a new search with a budget of `node_limit`
    /// nodes. It grows to fit the budget (a search cannot fill more entries
    /// than it visits) and never shrinks, so alternating budgets do not
    /// reallocate.
    fn start_search(&mut self, node_limit: u64) {
        let bits = (u64::BITS - node_limit.leading_zeros()).clamp(MIN_TABLE_BITS, MAX_TABLE_BITS);
        if self.entries.len() < 1 << bits {
            self.entries = vec![0; 1 << bits];
            self.shift = u64::BITS - bits;
            self.epoch = 0;
        }
        if self.epoch == MAX_EPOCH {
            self.entries.fill(0);
            self.epoch = 0;
        }
        self.epoch += 1;
    }

    fn index(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn get(&self, key: u64) -> Option<Bound> {
        let entry = self.entries[self.index(key)];
        if entry & (KEY_MASK | EPOCH_MASK) != key | self.epoch << EPOCH_SHIFT {
            return None;
        }
        let value = ((entry >> KEY_BITS) & 0x7f) as i32 - VALUE_OFFSET;
        Some(if entry & LOWER_FLAG != 0 {
            Bound::Lower(value)
        } else {
            Bound::Upper(value)
        })
    }

    fn put(&mut self, key: u64, bound: Bound) {
        let (value, flag) = match bound {
            Bound::Lower(v) => (v, LOWER_FLAG),
            Bound::Upper(v) => (v, 0),
        };
        let i = self.index(key);
        self.entries[i] =
            key | ((value + VALUE_OFFSET) as u64) << KEY_BITS | flag | self.epoch << EPOCH_SHIFT;
    }
}

/// Negamax solver with a node budget; results are meaningless once `aborted()`.
struct Solver<'t> {
    table: &'t mut Table,
    nodes: u64,
    limit: u64,
}

/// Runs `f` with a solver on this thread's table, budgeted to `node_limit` nodes.
fn with_solver<R>(node_limit: u64, f: impl FnOnce(&mut Solver) -> R) -> R {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        table.start_search(node_limit);
        f(&mut Solver {
            table: &mut table,
            nodes: 0,
            limit: node_limit,
        })
    })
}

impl Solver<'_> {
    fn aborted(&self) -> bool {
        self.nodes > self.limit
    }

    /// Exact score of a position whose previous mover has not won.
    fn solve(&mut self, b: Bits) -> Option<i32> {
        let cells = CELLS as i32;
        if b.can_win_next() {
            return Some((cells + 1 - b.plies) / 2);
        }
        let mut min = -(cells - b.plies) / 2;
        let mut max = (cells + 1 - b.plies) / 2;
        while min < max {
            // Probe near zero first: most positions are close to a draw,
            // and small windows are cheap.
            let mut med = min + (max - min) / 2;
            if med <= 0 && min / 2 < med {
                med = min / 2;
            } else if med >= 0 && max / 2 > med {
                med = max / 2;
            }
            let r = self.negamax(b, med, med + 1);
            if self.aborted() {
                return None;
            }
            if r <= med {
                max = r;
            } else {
                min = r;
            }
        }
        Some(min)
    }

    /// Whether playing `cell` scores at least `value` for the mover of `b`.
    fn move_reaches(&mut self, b: Bits, cell: u64, value: i32) -> bool {
        let cells = CELLS as i32;
        if b.winning_cells() & cell != 0 {
            return (cells + 1 - b.plies) / 2 >= value;
        }
        let child = b.play(cell);
        if child.can_win_next() {
            return -((cells + 1 - child.plies) / 2) >= value;
        }
        // Null window just above -value: a fail-low proves child <= -value.
        self.negamax(child, -value, -value + 1) <= -value
    }

    /// Fail-soft alpha-beta; requires that the mover cannot win immediately.
    fn negamax(&mut self, b: Bits, mut alpha: i32, mut beta: i32) -> i32 {
        self.nodes += 1;
        if self.aborted() {
            return 0;
        }
        let cells = CELLS as i32;
        let next = b.non_losing_moves();
        if next == 0 {
            return -(cells - b.plies) / 2;
        }
        if b.plies >= cells - 2 {
            return 0;
        }
        // Neither side wins on its next move, which bounds the score.
        let min = -(cells - 2 - b.plies) / 2;
        if alpha < min {
            alpha = min;
            if alpha >= beta {
                return alpha;
            }
        }
        let max = (cells - 1 - b.plies) / 2;
        if beta > max {
            beta = max;
            if alpha >= beta {
                return beta;
            }
        }
        let key = b.key();
        match self.table.get(key) {
            Some(Bound::Lower(v)) if alpha < v => {
                alpha = v;
                if alpha >= beta {
                    return alpha;
                }
            }
            Some(Bound::Upper(v)) if beta > v => {
                beta = v;
                if alpha >= beta {
                    return beta;
                }
            }
            _ => {}
        }
        for &cell in ordered_moves(b, next).as_slice() {
            let score = -self.negamax(b.play(cell), -beta, -alpha);
            if self.aborted() {
                return 0;
            }
            if score >= beta {
                self.table.put(key, Bound::Lower(score));
                return score;
            }
            alpha = alpha.max(score);
        }
        self.table.put(key, Bound::Upper(alpha));
        alpha
    }
}

/// Score of a finished game for the (losing) player to move, or None if it runs on.
fn finished_score(pos: &Connect4) -> Option<i32> {
    // The winner completed four with `plies - 1` stones on the board.
    pos.winner
        .map(|_| -((CELLS as i32 + 2 - i32::from(pos.plies)) / 2))
}

/// Exact game-theoretic score of a position, Pascal Pons convention: positive = player to move wins
/// (the larger the sooner: (43 - moves_at_win)/2 style), 0 draw, negative = loses. None if node_limit exceeded.
pub fn solve(pos: &Connect4, node_limit: u64) -> Option<i32> {
    if let Some(score) = finished_score(pos) {
        return Some(score);
    }
    with_solver(node_limit, |solver| solver.solve(Bits::of(pos)))
}

/// Scores of every legal move (from the mover's view, same convention) when solvable within the limit.
///
/// The node limit is shared by all moves, and so is the transposition table.
/// Exact scores of bad moves cost as much as good ones, so this is several
/// times dearer than [`solve`].
pub fn solve_moves(pos: &Connect4, node_limit: u64) -> Option<Vec<(Action, i32)>> {
    if pos.is_terminal() {
        return Some(Vec::new());
    }
    let b = Bits::of(pos);
    let win_now = (CELLS as i32 + 1 - b.plies) / 2;
    with_solver(node_limit, |solver| {
        // Solve center columns first: their results fill the table best.
        let mut scores = Vec::with_capacity(WIDTH);
        for col in CENTER_FIRST {
            let cell = b.possible() & column_mask(col);
            if cell == 0 {
                continue;
            }
            let score = if b.winning_cells() & cell != 0 {
                win_now
            } else {
                -solver.solve(b.play(cell))?
            };
            scores.push((col as Action, score));
        }
        scores.sort_unstable();
        Some(scores)
    })
}

/// The exact value of an open position and all moves that achieve it.
///
/// Cheaper than [`solve_moves`]: one full solve, then one null-window test per
/// move, all sharing the table and the node budget.
pub(super) fn optimal_moves(pos: &Connect4, node_limit: u64) -> Option<(i32, Vec<Action>)> {
    if pos.is_terminal() {
        return None;
    }
    let b = Bits::of(pos);
    with_solver(node_limit, |solver| {
        let value = solver.solve(b)?;
        let mut best = Vec::new();
        for col in 0..WIDTH {
            let cell = b.possible() & column_mask(col);
            if cell != 0 && solver.move_reaches(b, cell, value) {
                best.push(col as Action);
            }
            if solver.aborted() {
                return None;
            }
        }
        Some((value, best))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn game(moves: &str) -> Connect4 {
        Connect4::from_moves(moves).expect("valid test moves")
    }

    fn legal(g: &Connect4) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }


    /// Plain minimax in Pons' scoring, no pruning beyond "win now is best".
    fn brute_force(g: &Connect4) -> i32 {
        if let Some(score) = finished_score(g) {
            return score;
        }
        let plies = i32::from(g.plies);
        let mut best = None;
        for a in legal(g) {
            let mut child = g.clone();
            child.step(a);
            let score = if child.winner.is_some() {
                (CELLS as i32 + 1 - plies) / 2
            } else {
                -brute_force(&child)
            };
            best = Some(best.map_or(score, |b: i32| b.max(score)));
        }
        best.unwrap_or(0)
    }

    /// A random game of `plies` moves that is still running (seeded).
    fn random_open_position(rng: &mut ChaCha8Rng, plies: usize) -> Connect4 {
        loop {
            let mut g = Connect4::new();
            for _ in 0..plies {
                let moves = legal(&g);
                if moves.is_empty() {
                    break;
                }
                g.step(moves[rng.random_range(0..moves.len())]);
            }
            if !g.is_terminal() && usize::from(g.plies) == plies {
                return g;
            }
        }
    }
    #[test]
    fn solver_hand_made_positions() {
        // X to move wins at once with col 1 (vertical): (43 - 6) / 2.
        let g = game("121212");
        assert_eq!(solve(&g, 1000), Some(18));
        // O to move cannot stop X's open three 3-4-5 on the bottom row:
        // X wins with 6 stones on the board.
        assert_eq!(solve(&game("31475"), 1000), Some(-(43 - 6) / 2));
        // X to move makes an open three on the bottom row with col 2 or col 5
        // and wins on its second move, with 6 stones on the board.
        let g = game("3344");
        assert_eq!(solve(&g, 100_000), Some((43 - 6) / 2));
        assert_eq!(optimal_moves(&g, 100_000), Some((18, vec![1, 4])));
        // A finished game scores as lost for the player to move.
        assert_eq!(solve(&game("1212121"), 10), Some(-(43 - 6) / 2));
    }

    #[test]
    fn solver_respects_node_limit() {
        assert_eq!(solve(&Connect4::new(), 1000), None);
        assert_eq!(solve_moves(&Connect4::new(), 1000), None);
    }

    #[test]
    fn solver_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for i in 0..300 {
            let plies = 31 + i % 8;
            let g = random_open_position(&mut rng, plies);
            let expected = brute_force(&g);
            assert_eq!(solve(&g, u64::MAX), Some(expected), "{}", g.moves());
            let moves = solve_moves(&g, u64::MAX).unwrap();
            assert_eq!(moves.iter().map(|m| m.0).collect::<Vec<_>>(), legal(&g));
            assert_eq!(moves.iter().map(|m| m.1).max(), Some(expected));
            let best: Vec<Action> = moves
                .iter()
                .filter(|m| m.1 == expected)
                .map(|m| m.0)
                .collect();
            assert_eq!(optimal_moves(&g, u64::MAX), Some((expected, best)));
            for (a, score) in moves {
                let mut child = g.clone();
                child.step(a);
                let child_score = if child.winner.is_some() {
                    (CELLS as i32 + 1 - plies as i32) / 2
                } else {
                    -brute_force(&child)
                };
                assert_eq!(score, child_score, "{} then col {}", g.moves(), a + 1);
            }
        }
    }

    #[test]
    fn solver_consistent_in_midgame() {
        // Exact scores satisfy the negamax recurrence over children.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20 {
            let g = random_open_position(&mut rng, 16);
            let score = solve(&g, u64::MAX).unwrap();
            let moves = solve_moves(&g, u64::MAX).unwrap();
            assert_eq!(
                moves.iter().map(|m| m.1).max(),
                Some(score),
                "{}",
                g.moves()
            );
        }
    }
}
