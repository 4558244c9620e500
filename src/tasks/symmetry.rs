//! Symmetries families declare for training augmentation: relabellings of
//! a position that keep its meaning, so the mapped policy target and the
//! same value target are right for the mapped observation. Connect Four
//! has its mirror, tic-tac-toe the eight symmetries of the square, Sudoku
//! the relabellings of its digits.

use super::{connect4, sudoku, tictactoe, Action, Family};
use rand::seq::SliceRandom;
use rand::Rng;

/// A relabelling of one family's positions: `obs[i]` of the mapped
/// observation is `obs[source[i]]` of the original, and action `a` becomes
/// `actions[a]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Symmetry {
    source: Vec<usize>,
    actions: Vec<Action>,
}

impl Symmetry {
    /// The mapped observation.
    pub fn obs(&self, obs: &[f32]) -> Vec<f32> {
        self.source.iter().map(|&i| obs[i]).collect()
    }

    /// The mapped per-cell target (an ownership map in the order of the
    /// observation's first plane, see [`super::Game::ownership`]).
    pub fn cells(&self, cells: &[u8]) -> Vec<u8> {
        self.source[..cells.len()]
            .iter()
            .map(|&i| cells.get(i).copied().unwrap_or(0))
            .collect()
    }

    /// The mapped action.
    pub fn action(&self, a: Action) -> Action {
        self.actions[a as usize]
    }

    /// A symmetry moving the cells of `planes` planes of `cells` cells (at
    /// the start of an `obs_dim` observation; the rest stays) by `cell`
    /// (new cell -> old cell), with the action map `actions`.
    fn of_cells(
        planes: usize,
        cells: usize,
        obs_dim: usize,
        cell: impl Fn(usize) -> usize,
        actions: Vec<Action>,
    ) -> Symmetry {
        let mut source: Vec<usize> = (0..obs_dim).collect();
        for p in 0..planes {
            for c in 0..cells {
                source[p * cells + c] = p * cells + cell(c);
            }
        }
        Symmetry { source, actions }
    }
}

impl Family {
    /// A random non-identity symmetry of `obs` (an observation of this
    /// family), or `None` when the draw is the identity or the family
    /// declares none.
    pub fn random_symmetry(self, obs: &[f32], rng: &mut impl Rng) -> Option<Symmetry> {
        match self {
            Family::Connect4 => rng.random_bool(0.5).then(connect4_mirror),
            Family::TicTacToe => match rng.random_range(0..8) {
                0 => None,
                k => Some(tictactoe_symmetry(k)),
            },
            Family::Sudoku => {
                let n = sudoku_size(obs)?;
                let mut digits: Vec<usize> = (1..=n).collect();
                digits.shuffle(rng);
                let identity = digits.iter().enumerate().all(|(i, &d)| d == i + 1);
                (!identity).then(|| sudoku_relabel(&digits))
            }
            _ => None,
        }
    }
}

impl Family {
    /// The fixed non-identity symmetries test-time averaging uses
    /// (`infer.average_symmetries`): Connect Four's mirror, the seven other
    /// symmetries of the tic-tac-toe square; none for other families
    /// (Sudoku's digit relabellings are too many to average).
    pub fn symmetries(self) -> Vec<Symmetry> {
        match self {
            Family::Connect4 => vec![connect4_mirror()],
            Family::TicTacToe => (1..8).map(tictactoe_symmetry).collect(),
            _ => Vec::new(),
        }
    }
}

/// Connect Four seen in a mirror: column `c` becomes `6 - c`.
pub fn connect4_mirror() -> Symmetry {
    let (h, w) = (connect4::GRID.1, connect4::GRID.2);
    let flip = |c: usize| (c / w) * w + (w - 1 - c % w);
    let actions = (0..connect4::ACTION_DIM)
        .map(|a| (w - 1 - a) as Action)
        .collect();
    Symmetry::of_cells(connect4::GRID.0, h * w, connect4::OBS_DIM, flip, actions)
}

/// Symmetry `k` (0..8) of the tic-tac-toe square: rotations by `k % 4`
/// quarter turns, mirrored first when `k >= 4`.
pub fn tictactoe_symmetry(k: usize) -> Symmetry {
    let n = 3;
    // Where cell (r, c) goes.
    let to = |cell: usize| {
        let (mut r, mut c) = (cell / n, cell % n);
        if k >= 4 {
            c = n - 1 - c;
        }
        for _ in 0..k % 4 {
            (r, c) = (c, n - 1 - r);
        }
        r * n + c
    };
    let cells = tictactoe::CELLS;
    let mut from = vec![0; cells];
    for cell in 0..cells {
        from[to(cell)] = cell;
    }
    let actions = (0..cells).map(|c| to(c) as Action).collect();
    Symmetry::of_cells(2, cells, tictactoe::OBS_DIM, |c| from[c], actions)
}

/// The grid side of a Sudoku observation (its size one-hot).
fn sudoku_size(obs: &[f32]) -> Option<usize> {
    let k = (0..sudoku::SIZES.len()).find(|&k| obs.get(sudoku::SIZE_BASE + k) == Some(&1.0))?;
    Some(sudoku::SIZES[k])
}

/// Sudoku with digit `d` renamed `digits[d - 1]`: the digit planes swap,
/// every other feature (candidate counts, forced cells, propagation) is
/// the same, and placing `d` in a cell becomes placing its new name.
pub fn sudoku_relabel(digits: &[usize]) -> Symmetry {
    let cells = sudoku::CELLS;
    let mut source: Vec<usize> = (0..sudoku::OBS_DIM).collect();
    for (old, &new) in digits.iter().enumerate() {
        for c in 0..cells {
            source[new * cells + c] = (old + 1) * cells + c;
        }
    }
    let m = sudoku::MAX_SIZE;
    let actions = (0..sudoku::ACTION_DIM)
        .map(|a| {
            let (cell, d) = (a / m, a % m);
            let d = digits.get(d).map_or(d, |&new| new - 1);
            (cell * m + d) as Action
        })
        .collect();
    Symmetry { source, actions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Game;
    use proptest::prelude::*;

    fn legal(g: &Game) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out.sort();
        out
    }

    fn encoded(g: &Game) -> Vec<f32> {
        let mut obs = vec![0.0; g.family().obs_dim()];
        g.encode(&mut obs);
        obs
    }

    /// The mapped position's observation and legal moves are the mapped
    /// ones of the original.
    fn assert_consistent(s: &Symmetry, a: &Game, b: &Game) {
        assert_eq!(s.obs(&encoded(a)), encoded(b), "observation");
        let mut mapped: Vec<Action> = legal(a).iter().map(|&x| s.action(x)).collect();
        mapped.sort();
        assert_eq!(mapped, legal(b), "legal moves");
        for mover in 0..2 {
            assert_eq!(
                s.cells(&a.ownership(mover)),
                b.ownership(mover),
                "ownership"
            );
        }
    }

    /// `start` after `moves` (the legal ones, in order) and the same start
    /// after their images under `s`.
    fn played(start: Game, moves: &[u8], s: &Symmetry) -> (Game, Game) {
        let (mut a, mut b) = (start.clone(), start);
        for &m in moves {
            if a.is_terminal() || !legal(&a).contains(&(m as Action)) {
                continue;
            }
            a.step(m as Action);
            b.step(s.action(m as Action));
        }
        (a, b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A Connect Four position and its mirror image (the mirrored
        /// moves): mapped observation, legal moves and the solver's score
        /// of every move agree.
        #[test]
        fn connect4_mirror_keeps_targets(moves in proptest::collection::vec(0u8..7, 0..30)) {
            let s = connect4_mirror();
            let (a, b) = played(Game::Connect4(connect4::Connect4::new()), &moves, &s);
            assert_consistent(&s, &a, &b);
            let (Game::Connect4(a), Game::Connect4(b)) = (a, b) else { unreachable!() };
            if a.moves().len() >= 12 {
                let scores = |p| connect4::solve_moves(p, 300_000);
                if let (Some(x), Some(y)) = (scores(&a), scores(&b)) {
                    let mut mapped: Vec<_> = x.iter().map(|&(m, v)| (s.action(m), v)).collect();
                    mapped.sort();
                    let mut y = y;
                    y.sort();
                    prop_assert_eq!(mapped, y);
                }
            }
        }

        /// Each of the eight symmetries of a tic-tac-toe position keeps
        /// its observation, legal moves and solver scores consistent.
        #[test]
        fn tictactoe_symmetries_keep_targets(moves in proptest::collection::vec(0u8..9, 0..9)) {
            for k in 0..8 {
                let s = tictactoe_symmetry(k);
                let (a, b) = played(Game::TicTacToe(tictactoe::TicTacToe::new()), &moves, &s);
                assert_consistent(&s, &a, &b);
                let (Game::TicTacToe(a), Game::TicTacToe(b)) = (a, b) else { unreachable!() };
                let mut mapped: Vec<_> = tictactoe::solve_moves(&a)
                    .into_iter()
                    .map(|(m, v)| (s.action(m), v))
                    .collect();
                mapped.sort();
                let mut want = tictactoe::solve_moves(&b);
                want.sort();
                prop_assert_eq!(mapped, want, "symmetry {}", k);
            }
        }

        /// A Sudoku with its digits renamed: mapped observation and legal
        /// placements agree, and its solution is the renamed solution.
        #[test]
        fn sudoku_relabelling_keeps_targets(difficulty in 0.0f32..1.0, seed in 0u64..1000, shuffle in 0u64..1000) {
            use rand::SeedableRng;
            let task = Family::Sudoku.generate(difficulty, seed);
            let a = sudoku::Sudoku::from_spec(&task.spec).unwrap();
            let n = a.size();
            let mut digits: Vec<usize> = (1..=n).collect();
            digits.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(shuffle));
            let rename = |text: &str| -> String {
                text.chars()
                    .map(|ch| match ch.to_digit(10) {
                        Some(d) if d >= 1 => char::from_digit(digits[d as usize - 1] as u32, 10).unwrap_or(ch),
                        _ => ch,
                    })
                    .collect()
            };
            let b = sudoku::from_puzzle_string(&rename(&a.puzzle_string())).unwrap();
            let s = sudoku_relabel(&digits);
            assert_consistent(&s, &Game::Sudoku(a.clone()), &Game::Sudoku(b.clone()));
            let solved = |g: &sudoku::Sudoku| sudoku::solve(g).unwrap();
            prop_assert_eq!(rename(&solved(&a)), solved(&b));
        }
    }

    /// Random draws are symmetries of the family they are drawn for, and
    /// families without declared symmetries get none.
    #[test]
    fn draws_follow_the_family() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let obs = vec![0.0; Family::Connect4.obs_dim()];
        let drawn = (0..100)
            .filter_map(|_| Family::Connect4.random_symmetry(&obs, &mut rng))
            .count();
        assert!((30..70).contains(&drawn), "{drawn} mirrors in 100 draws");
        let obs = vec![0.0; Family::Countdown.obs_dim()];
        assert!(Family::Countdown.random_symmetry(&obs, &mut rng).is_none());
        // A Sudoku observation without its size one-hot has no symmetry.
        let obs = vec![0.0; Family::Sudoku.obs_dim()];
        assert!(Family::Sudoku.random_symmetry(&obs, &mut rng).is_none());
    }
}
