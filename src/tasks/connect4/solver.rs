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
/// Epochs fit the top 7 bits; 0 never matches, so a zeroed table is empty.
const MAX_EPOCH: u64 = (1 << (u64::BITS - EPOCH_SHIFT)) - 1;
const EPOCH_MASK: u64 = MAX_EPOCH << EPOCH_SHIFT;
/// The epoch all unbounded searches share; budgeted ones cycle below it.
const SHARED_EPOCH: u64 = MAX_EPOCH;

/// A search with this node limit runs to the end and shares the table.
pub const UNBOUNDED: u64 = u64::MAX;

enum Bound {
    Lower(i32),
    Upper(i32),
}

/// Always-replace transposition table: one u64 per entry packing key, value,
/// bound kind and the epoch (search) that wrote it.
struct Table {
    entries: Vec<u64>,
    /// `64 - bits` for the `2^bits` entries the current search uses.
    shift: u32,
    epoch: u64,
    /// The last budgeted epoch handed out.
    last_budgeted: u64,
}

thread_local! {
    /// Kept between solves (at most 8 MiB per thread that solves): faulting
    /// in a fresh zeroed table costs more than a small search, and epochs
    /// make clearing it unnecessary.
    static TABLE: RefCell<Table> = const {
        RefCell::new(Table { entries: Vec::new(), shift: 0, epoch: 0, last_budgeted: 0 })
    };
    /// Nodes of the last search on this thread, for benchmarks.
    static LAST_NODES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Table {
    /// Readies the table for a new search with a budget of `node_limit`
    /// nodes.
    ///
    /// A budgeted search gets a fresh epoch and uses the first `2^bits`
    /// entries, `bits` fitting the budget (it cannot fill more than it
    /// visits), whatever the table held or how large it grew before: its
    /// node count, and so whether it finishes, depends on the position and
    /// the budget alone. Unbounded searches share [`SHARED_EPOCH`] and the
    /// whole table, so each reuses what earlier ones proved: stored bounds
    /// are facts about positions, and without a budget they cannot change
    /// a result, only its cost.
    fn start_search(&mut self, node_limit: u64) {
        let bits = (u64::BITS - node_limit.leading_zeros()).clamp(MIN_TABLE_BITS, MAX_TABLE_BITS);
        if self.entries.len() < 1 << bits {
            self.entries = vec![0; 1 << bits];
            self.last_budgeted = 0;
        }
        self.shift = u64::BITS - bits;
        if node_limit == UNBOUNDED {
            self.epoch = SHARED_EPOCH;
            return;
        }
        if self.last_budgeted + 1 == SHARED_EPOCH {
            self.entries.fill(0);
            self.last_budgeted = 0;
        }
        self.last_budgeted += 1;
        self.epoch = self.last_budgeted;
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
        let mut solver = Solver {
            table: &mut table,
            nodes: 0,
            limit: node_limit,
        };
        let result = f(&mut solver);
        LAST_NODES.set(solver.nodes);
        result
    })
}

/// Nodes visited by the last [`solve`], [`solve_moves`] or [`optimal_moves`]
/// call on this thread (benchmarks and budget tuning).
pub fn last_search_nodes() -> u64 {
    LAST_NODES.get()
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
        let min = -(cells - b.plies) / 2;
        let max = (cells + 1 - b.plies) / 2;
        self.narrow(b, min, max, near_zero_probe(min, max))
    }

    /// Exact score of `b`, known to lie in `min..=max`, by null-window
    /// probes starting at `med`; requires that the mover cannot win at once.
    fn narrow(&mut self, b: Bits, mut min: i32, mut max: i32, mut med: i32) -> Option<i32> {
        while min < max {
            let r = self.negamax(b, med, med + 1);
            if self.aborted() {
                return None;
            }
            // Fail-soft: r bounds the score from the side the probe failed.
            if r <= med {
                max = r;
            } else {
                min = r;
            }
            med = near_zero_probe(min, max);
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

/// The next probe for a score in `min..max`: halfway, but nearer zero when
/// the interval spans far from it, as most positions are close to a draw and
/// small windows are cheap.
fn near_zero_probe(min: i32, max: i32) -> i32 {
    let med = min + (max - min) / 2;
    if med <= 0 && min / 2 < med {
        min / 2
    } else if med >= 0 && max / 2 > med {
        max / 2
    } else {
        med
    }
}

/// Score of a finished game for the (losing) player to move, or None if it runs on.
fn finished_score(pos: &Connect4) -> Option<i32> {
    // The winner completed four with `plies - 1` stones on the board.
    pos.winner
        .map(|_| -((CELLS as i32 + 2 - i32::from(pos.plies)) / 2))
}

/// Exact score of a position in Pons' convention, from the player to move:
/// positive wins (the sooner, the larger: `(43 - p) / 2` for a win played
/// when `p` stones are on the board), 0 draws, negative loses. A finished
/// game scores as lost for the player to move. `None` when the search needs
/// more than `node_limit` nodes; [`UNBOUNDED`] never gives up.
pub fn solve(pos: &Connect4, node_limit: u64) -> Option<i32> {
    if let Some(score) = finished_score(pos) {
        return Some(score);
    }
    with_solver(node_limit, |solver| solver.solve(Bits::of(pos)))
}

/// The exact score of every legal move, ascending by column, in [`solve`]'s
/// convention from the mover's view; empty for a finished game.
///
/// Solves the position first, so the best score bounds every move from
/// above: one null-window probe proves a move optimal, and only worse moves
/// need more probes, below that bound. The node limit and the table are
/// shared by all moves. When only the best score and which moves reach it
/// matter, [`optimal_moves`] is cheaper still.
pub fn solve_moves(pos: &Connect4, node_limit: u64) -> Option<Vec<(Action, i32)>> {
    if pos.is_terminal() {
        return Some(Vec::new());
    }
    let b = Bits::of(pos);
    let cells = CELLS as i32;
    let win_now = (cells + 1 - b.plies) / 2;
    with_solver(node_limit, |solver| {
        let value = solver.solve(b)?;
        // Center columns first: their results fill the table best.
        let mut scores = Vec::with_capacity(WIDTH);
        for col in CENTER_FIRST {
            let cell = b.possible() & column_mask(col);
            if cell == 0 {
                continue;
            }
            let score = if b.winning_cells() & cell != 0 {
                win_now
            } else {
                let child = b.play(cell);
                if child.can_win_next() {
                    -(cells + 1 - child.plies) / 2
                } else {
                    // The child scores at least -value; probe there first.
                    let max = (cells + 1 - child.plies) / 2;
                    let min = (-(cells - child.plies) / 2).max(-value);
                    -solver.narrow(child, min, max, min)?
                }
            };
            scores.push((col as Action, score));
        }
        scores.sort_unstable();
        Some(scores)
    })
}

/// The exact score of an open position ([`solve`]'s convention) and every
/// legal move that achieves it, ascending; `None` for a finished game or
/// past the node limit.
///
/// Cheaper than [`solve_moves`]: one solve, then one null-window probe per
/// move, all sharing the table and the node budget. The generator proves its
/// references with this.
pub fn optimal_moves(pos: &Connect4, node_limit: u64) -> Option<(i32, Vec<Action>)> {
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
    use crate::tasks::connect4::tests::{game, legal};
    use rand_chacha::ChaCha8Rng;

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

    /// Each move's score by its own full solve, as `solve_moves` must match.
    fn scores_one_by_one(g: &Connect4) -> Vec<(Action, i32)> {
        legal(g)
            .into_iter()
            .map(|a| {
                let mut child = g.clone();
                child.step(a);
                let score = if child.winner.is_some() {
                    (CELLS as i32 + 1 - i32::from(g.plies)) / 2
                } else {
                    -solve(&child, UNBOUNDED).unwrap()
                };
                (a, score)
            })
            .collect()
    }

    #[test]
    fn bounded_move_scores_match_separate_solves() {
        // Middle-game positions, where losing moves have many exact scores.
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        for i in 0..24 {
            let g = random_open_position(&mut rng, 14 + i % 10);
            let want = scores_one_by_one(&g);
            assert_eq!(solve_moves(&g, UNBOUNDED), Some(want.clone()), "{}", g.moves());
            let best = want.iter().map(|m| m.1).max().unwrap();
            let cols = want.iter().filter(|m| m.1 == best).map(|m| m.0).collect();
            assert_eq!(optimal_moves(&g, UNBOUNDED), Some((best, cols)));
        }
        assert_eq!(solve_moves(&game("1212121"), 10), Some(Vec::new()));
        assert_eq!(optimal_moves(&game("1212121"), 10), None);
    }

    #[test]
    fn budgeted_searches_do_not_depend_on_history() {
        // The same budgeted search visits the same nodes on a fresh thread,
        // after a larger search grew the table, and after unbounded ones
        // filled the shared epoch.
        let run = || {
            let found = optimal_moves(&game("4453"), 20_000);
            (found, last_search_nodes())
        };
        let fresh = std::thread::spawn(run).join().unwrap();
        let after = std::thread::spawn(move || {
            let _ = solve(&game("44"), 2_000_000);
            let _ = solve(&game("274552224131661"), UNBOUNDED);
            let _ = solve_moves(&game("27455222413166"), UNBOUNDED);
            run()
        })
        .join()
        .unwrap();
        assert_eq!(fresh, after);
        assert!(fresh.1 > 100, "a real search: {fresh:?}");
    }

    #[test]
    fn unbounded_searches_reuse_the_table() {
        std::thread::spawn(|| {
            let g = game("274552224131661");
            let first = solve(&g, UNBOUNDED);
            let cold = last_search_nodes();
            assert_eq!(solve(&g, UNBOUNDED), first);
            let warm = last_search_nodes();
            assert!(warm * 10 < cold, "warm {warm} vs cold {cold}");
            // A budgeted search starts cold and still agrees.
            assert_eq!(solve(&g, u64::MAX - 1), first);
            assert_eq!(last_search_nodes(), cold);
        })
        .join()
        .unwrap();
    }
}
