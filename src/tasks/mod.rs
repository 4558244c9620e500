//! Task families: the environments MCTS plays.
//!
//! Search and the encoders only see [`Game`], an enum over the families, so a
//! mixed batch of episodes needs no dynamic dispatch. Each family lives in its
//! own module with a generator (difficulty + seed -> [`Task`]), a verifier
//! that decides success from the final state alone, and an exact or strong
//! solver that proves generated tasks solvable.

pub mod symmetry;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Action index into a family's fixed action space.
pub type Action = u16;

/// The one table of families: variant => module::State, name, kind, players.
/// The order is part of the seed derivation (`family as u64`): append only.
macro_rules! families {
    ($($variant:ident => $module:ident :: $state:ident, $name:literal, $kind:literal, $players:literal;)*) => {
        $(pub mod $module;)*

        /// A task family, as named in configs, CLI flags and the `family` column.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
        #[serde(rename_all = "lowercase")]
        pub enum Family {
            $($variant),*
        }

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Family::$variant => $name),* }
            }

            /// The mission's category of the family (`kind` column).
            pub fn kind(self) -> &'static str {
                match self { $(Family::$variant => $kind),* }
            }

            /// Players taking turns: 1 for puzzles, 2 for zero-sum games.
            pub fn num_players(self) -> u8 {
                match self { $(Family::$variant => $players),* }
            }

            /// Length of the observation this family writes (model obs_dim must be >=).
            pub fn obs_dim(self) -> usize {
                match self { $(Family::$variant => $module::OBS_DIM),* }
            }

            /// Size of this family's action space (model action_dim must be >=).
            pub fn action_dim(self) -> usize {
                match self { $(Family::$variant => $module::ACTION_DIM),* }
            }

            /// Generate one task. Pure function of (difficulty, seed).
            pub fn generate(self, difficulty: f32, seed: u64) -> Task {
                match self { $(Family::$variant => $module::generate(difficulty, seed)),* }
            }
        }

        /// A live environment state of any family.
        #[derive(Clone, Debug)]
        pub enum Game {
            $($variant($module::$state)),*
        }

        macro_rules! dispatch {
            ($self_:expr, $g:ident => $e:expr) => {
                match $self_ { $(Game::$variant($g) => $e),* }
            };
        }

        impl Game {
            /// Parse a task's spec into its start state; errors name the task id.
            pub fn from_task(task: &Task) -> Result<Game> {
                let parsed = match task.family {
                    $(Family::$variant => $module::$state::from_spec(&task.spec).map(Game::$variant)),*
                };
                parsed.map_err(|why| {
                    Error::Data(format!(
                        "task {}: bad {} spec {}: {why}",
                        task.task_id, task.family, task.spec
                    ))
                })
            }

            pub fn family(&self) -> Family {
                match self { $(Game::$variant(_) => Family::$variant),* }
            }
        }
    };
}

families! {
    Countdown => countdown::Countdown, "countdown", "math", 1;
    Connect4 => connect4::Connect4, "connect4", "search", 2;
    Deduction => deduction::Deduction, "deduction", "reasoning", 1;
    Sudoku => sudoku::Sudoku, "sudoku", "reasoning", 1;
    ListDsl => listdsl::ListDsl, "listdsl", "code", 1;
    Linear => linear::Linear, "linear", "math", 1;
    Knapsack => knapsack::Knapsack, "knapsack", "search", 1;
    Sokoban => sokoban::Sokoban, "sokoban", "reasoning", 1;
    GridPath => gridpath::GridPath, "gridpath", "search", 1;
    TicTacToe => tictactoe::TicTacToe, "tictactoe", "search", 2;
    Game24 => game24::Game24, "game24", "math", 1;
}

/// 1.0 or 0.0: a yes/no feature of an observation.
pub(crate) fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Leading floats of every model input: a one-hot of the family. One
/// network serves a mixed run, and the families' observation layouts
/// overlap position by position; the tag tells the network which layout it
/// reads (and gives each family its own value and policy bias).
pub const FAMILY_TAG: usize = Family::ALL.len();

impl Family {
    /// Floats of this family's model input: the tag, then the observation.
    pub fn input_dim(self) -> usize {
        FAMILY_TAG + self.obs_dim()
    }

    /// Writes a model input row: the family tag, then `obs` (a stored
    /// observation of this family); the rest of `out` is zeroed.
    pub fn write_input(self, obs: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        out[self as usize] = 1.0;
        out[FAMILY_TAG..FAMILY_TAG + obs.len()].copy_from_slice(obs);
    }

    /// The board part of the family's observation as planes, for
    /// convolutional models: `channels x height x width` floats at the
    /// start of the observation, plane-major then row-major. `None` for
    /// families without a board (their features are read flat).
    pub fn grid(self) -> Option<Grid> {
        let (channels, height, width) = match self {
            Family::Connect4 => connect4::GRID,
            Family::TicTacToe => tictactoe::GRID,
            Family::Sudoku => sudoku::GRID,
            Family::Sokoban => sokoban::GRID,
            Family::GridPath => gridpath::GRID,
            _ => return None,
        };
        Some(Grid {
            channels,
            height,
            width,
        })
    }

    /// The grid's first two planes are the stones of the player to move
    /// and of the other player (the two-player board games).
    pub fn has_stone_planes(self) -> bool {
        matches!(self, Family::Connect4 | Family::TicTacToe)
    }

    /// A family by name, or by kind (the kind's first family: math, search).
    pub fn parse(s: &str) -> Result<Family> {
        Family::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .or_else(|| Family::ALL.iter().copied().find(|f| f.kind() == s))
            .ok_or_else(|| {
                let names: Vec<String> = Family::ALL
                    .iter()
                    .map(|f| format!("{} ({})", f.name(), f.kind()))
                    .collect();
                Error::Config(format!(
                    "unknown family '{s}': expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// What a family's observation shows (`families.<name>.observation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Every feature the family writes (default).
    #[default]
    Full,
    /// The raw grid only (sudoku, connect4): no derived features.
    Raw,
}

impl View {
    pub fn is_full(&self) -> bool {
        *self == View::Full
    }
}

impl Family {
    /// The views a family can be observed through.
    pub fn has_view(self, view: View) -> bool {
        view == View::Full || matches!(self, Family::Sudoku | Family::Connect4)
    }
}

/// A board as planes: see [`Family::grid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Grid {
    /// Floats of the planes.
    pub fn len(self) -> usize {
        self.channels * self.height * self.width
    }

    /// No planes (never for a family's grid).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Task {
    /// Checks `solution` (text in the form of `reference_solution`) against
    /// this task's spec with the family's own verifier, which shares no code
    /// with the generator's solver. A bad spec or solution is `false`.
    pub fn verify(&self, solution: &str) -> bool {
        let spec = self.spec.as_str();
        match self.family {
            Family::Countdown | Family::Game24 => countdown::verify_spec(spec, solution),
            Family::Connect4 => connect4::verify_solution(spec, solution),
            Family::Deduction => deduction::verify_solution(spec, solution),
            Family::Sudoku => sudoku::verify_solution(spec, solution),
            Family::ListDsl => listdsl::verify_solution(spec, solution),
            Family::Linear => linear::verify_solution(spec, solution),
            Family::Knapsack => knapsack::verify_spec(spec, solution),
            Family::Sokoban => sokoban::verify_solution(spec, solution),
            Family::GridPath => gridpath::verify_solution(spec, solution),
            Family::TicTacToe => tictactoe::verify_solution(spec, solution),
        }
    }
}

/// What every single-player family shares: the verdict follows from the
/// verifier (`is_success`) and `is_terminal` alone.
pub trait Puzzle {
    fn is_success(&self) -> bool;
    fn is_terminal(&self) -> bool;

    fn outcome(&self) -> Option<Outcome> {
        match (self.is_terminal(), self.is_success()) {
            (false, _) => None,
            (true, true) => Some(Outcome::Success),
            (true, false) => Some(Outcome::Failure),
        }
    }

    /// +1 on success, -1 on failure, 0 while the episode runs.
    fn terminal_value(&self) -> f32 {
        match self.outcome() {
            Some(Outcome::Success) => 1.0,
            Some(_) => -1.0,
            None => 0.0,
        }
    }

    /// A puzzle: always player 0.
    fn to_move(&self) -> u8 {
        0
    }
}

/// What every two-player board game shares: players alternate from the
/// first, and the verdict follows from the winner and a full board.
pub trait TwoPlayer {
    /// The player (0 or 1) with a winning line, if any.
    fn winner(&self) -> Option<u8>;
    /// Stones on the board.
    fn plies(&self) -> u32;
    /// Stones on a full board.
    fn cells(&self) -> u32;

    /// Win/Loss from the first player's view, Draw on a full board.
    fn outcome(&self) -> Option<Outcome> {
        match self.winner() {
            Some(0) => Some(Outcome::Win),
            Some(_) => Some(Outcome::Loss),
            None if self.plies() == self.cells() => Some(Outcome::Draw),
            None => None,
        }
    }

    /// For the player to move: the previous mover won (-1) or nothing yet / draw (0).
    fn terminal_value(&self) -> f32 {
        if self.winner().is_some() {
            -1.0
        } else {
            0.0
        }
    }

    fn to_move(&self) -> u8 {
        (self.plies() & 1) as u8
    }
}

/// One row of the tasks store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub family: Family,
    pub difficulty: f32,
    pub seed: u64,
    /// Human text: what is asked.
    pub statement: String,
    /// JSON of the family's parameters; [`Game::from_task`] parses it.
    pub spec: String,
    /// Human text, from the generator/solver, checked by the verifier.
    pub reference_solution: String,
    /// Steps of the solver's shortest solution (None when unknown).
    pub optimal_steps: Option<u32>,
}

/// How a finished episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// First player won (two-player games).
    Win,
    /// First player lost.
    Loss,
    Draw,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Win => "win",
            Outcome::Loss => "loss",
            Outcome::Draw => "draw",
        }
    }

    /// Reward from the first player's view: puzzles 1/0, games +1/0/-1.
    pub fn reward(self) -> f32 {
        match self {
            Outcome::Success | Outcome::Win => 1.0,
            Outcome::Failure | Outcome::Draw => 0.0,
            Outcome::Loss => -1.0,
        }
    }
}

impl Game {
    /// Legal actions, ascending.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        out.clear();
        dispatch!(self, g => g.legal_actions(out))
    }

    pub fn step(&mut self, action: Action) {
        dispatch!(self, g => g.step(action))
    }

    pub fn is_terminal(&self) -> bool {
        dispatch!(self, g => g.is_terminal())
    }

    /// Terminal value for the player to move at this state, in [-1, 1].
    pub fn terminal_value(&self) -> f32 {
        dispatch!(self, g => g.terminal_value())
    }

    /// What a decisive ending `ahead` plies after this state is worth, as a
    /// share of a win, under `mcts.length_penalty` = `penalty`: one less
    /// `penalty` per stone on the board at that ending. A solver's score
    /// (Pons': the sooner the win, the more it scores) is then linear in
    /// the value, and the same from every state of a game, so no per-ply
    /// correction is needed in backups. 1 in a puzzle.
    pub fn length_scale(&self, penalty: f32, ahead: u32) -> f32 {
        let stones = match self {
            Game::Connect4(g) => TwoPlayer::plies(g),
            Game::TicTacToe(g) => TwoPlayer::plies(g),
            _ => return 1.0,
        };
        1.0 - penalty * (stones + ahead) as f32
    }

    /// Verdict on a terminal state (None while the episode runs).
    pub fn outcome(&self) -> Option<Outcome> {
        dispatch!(self, g => g.outcome())
    }

    /// 0 or 1: whose turn it is (always 0 for puzzles).
    pub fn to_move(&self) -> u8 {
        dispatch!(self, g => g.to_move())
    }

    /// Writes the observation into `out[..family.obs_dim()]`; the rest is zeroed.
    pub fn encode(&self, out: &mut [f32]) {
        out.fill(0.0);
        dispatch!(self, g => g.encode(out))
    }

    /// A key of the position as the network sees it, for the evaluation
    /// cache: exact from the bitboards for the board games (transposed
    /// move orders meet), else a 128-bit hash of `input` (this state's
    /// [`Game::encode_input`] row), so equal keys mean equal network inputs.
    pub fn state_key(&self, input: &[f32]) -> u128 {
        self.position().unwrap_or_else(|| hash_row(input))
    }

    /// The exact position key of a board game where every move adds a
    /// stone, so no position recurs within a game (search may share the
    /// subtrees of transpositions, `mcts.graph`); `None` for other families.
    pub fn position(&self) -> Option<u128> {
        let tag = (self.family() as u128) << 120;
        match self {
            Game::Connect4(g) => Some(tag | (g.stones()[0] as u128) << 64 | g.stones()[1] as u128),
            Game::TicTacToe(g) => Some(tag | (g.stones()[0] as u128) << 16 | g.stones()[1] as u128),
            _ => None,
        }
    }

    /// Writes the model input row: the family tag ([`FAMILY_TAG`] floats),
    /// then the observation; the rest is zeroed.
    pub fn encode_input(&self, out: &mut [f32]) {
        out.fill(0.0);
        out[self.family() as usize] = 1.0;
        dispatch!(self, g => g.encode(&mut out[FAMILY_TAG..]))
    }

    /// This game seen through `view`; errors for a family without it.
    pub fn with_view(mut self, view: View) -> std::result::Result<Game, String> {
        match (view, &mut self) {
            (View::Full, _) => {}
            (View::Raw, Game::Sudoku(s)) => s.set_raw_view(),
            (View::Raw, Game::Connect4(g)) => g.set_raw_view(),
            (View::Raw, g) => {
                return Err(format!(
                    "family {} has no raw view; only sudoku and connect4 have one",
                    g.family()
                ))
            }
        }
        Ok(self)
    }

    /// Human-readable label of a legal action in this state, e.g. "8-4=4" or "col 4".
    pub fn label(&self, action: Action) -> String {
        dispatch!(self, g => g.label(action))
    }

    /// Multi-line human rendering of the state.
    pub fn render(&self) -> String {
        dispatch!(self, g => g.render())
    }

    /// The board at the end of an episode as an ownership target
    /// (KataGo's auxiliary head): per cell of the family's grid, in its
    /// plane order, 0 empty, 1 a stone of `mover`, 2 a stone of the other
    /// player. Empty for families whose grid does not open with the
    /// mover's and the opponent's stone planes (Connect Four and
    /// tic-tac-toe have them).
    pub fn ownership(&self, mover: u8) -> Vec<u8> {
        let family = self.family();
        let Some(grid) = family.grid().filter(|_| family.has_stone_planes()) else {
            return Vec::new();
        };
        let cells = grid.height * grid.width;
        let mut obs = vec![0f32; family.obs_dim()];
        self.encode(&mut obs);
        // Plane 0 holds the stones of the player to move now.
        let (mine, theirs) = match self.to_move() == mover {
            true => (0, cells),
            false => (cells, 0),
        };
        (0..cells)
            .map(|c| match (obs[mine + c] > 0.0, obs[theirs + c] > 0.0) {
                (true, _) => 1,
                (_, true) => 2,
                _ => 0,
            })
            .collect()
    }

    /// Moves a random legal action until the game ends (rollout baseline).
    pub fn random_playout(&mut self, rng: &mut impl rand::Rng) {
        let mut legal = Vec::new();
        while !self.is_terminal() {
            self.legal_actions(&mut legal);
            if legal.is_empty() {
                break;
            }
            let a = legal[rng.random_range(0..legal.len())];
            self.step(a);
        }
    }
}

/// A 128-bit hash of a float row: two lanes, each a chain of splitmix64
/// finalisers (bijective, full avalanche) over the bit patterns.
fn hash_row(row: &[f32]) -> u128 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let (mut a, mut b) = (0x243F_6A88_85A3_08D3u64, 0x1319_8A2E_0370_7344u64);
    for x in row {
        let v = u64::from(x.to_bits());
        a = mix(a ^ v);
        b = mix(b.rotate_left(17) ^ v ^ 0xA409_3822_299F_31D0);
    }
    (u128::from(a) << 64) | u128::from(mix(b ^ row.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each cell is the mover's (1), the other player's (2) or empty (0),
    /// whoever is to move at the end; families without stones have none.
    #[test]
    fn ownership_is_seen_from_the_mover() {
        // X in column 4, O on top of it, X in column 1: O to move.
        let g = Game::Connect4(connect4::Connect4::from_moves("441").unwrap());
        let x = g.ownership(0);
        assert_eq!(x.len(), 42);
        assert_eq!((x[3], x[10], x[0]), (1, 2, 1));
        assert_eq!(x.iter().filter(|&&c| c == 0).count(), 39);
        let o = g.ownership(1);
        assert_eq!((o[3], o[10], o[0]), (2, 1, 2));
        let t = Game::from_task(&Family::TicTacToe.generate(0.0, 1)).unwrap();
        assert_eq!(t.ownership(0).len(), 9);
        let c = Game::from_task(&Family::Countdown.generate(0.5, 1)).unwrap();
        assert!(c.ownership(0).is_empty());
    }

    /// Every two-player family counts its stones toward the length
    /// penalty (a new one must be added to `Game::length_scale`); puzzles
    /// are never shortened.
    #[test]
    fn the_length_scale_counts_stones_in_every_two_player_family() {
        let mut legal = Vec::new();
        for &family in Family::ALL {
            let mut g = Game::from_task(&family.generate(0.5, 3)).unwrap();
            let before = g.length_scale(0.01, 2);
            if family.num_players() == 1 {
                assert_eq!(before, 1.0, "{family}");
                continue;
            }
            assert!(before < 1.0 && before > 0.0, "{family}: {before}");
            g.legal_actions(&mut legal);
            g.step(legal[0]);
            let after = g.length_scale(0.01, 2);
            assert!(
                (before - after - 0.01).abs() < 1e-6,
                "{family}: {before} -> {after}"
            );
            assert_eq!(g.length_scale(0.0, 5), 1.0, "{family}");
        }
    }

    /// The generator contract every family keeps: a pure function of
    /// (difficulty, seed), difficulty clamped to [0, 1] (NaN = 0), ids
    /// `<family>-<seed as 16 hex digits>`.
    #[test]
    fn every_generator_is_deterministic_and_clamped() {
        for &family in Family::ALL {
            let nan = family.generate(f32::NAN, 3);
            assert_eq!(nan.difficulty, 0.0, "{family}");
            assert_eq!(nan.spec, family.generate(0.0, 3).spec, "{family}");
            assert_eq!(
                family.generate(7.0, 3).spec,
                family.generate(1.0, 3).spec,
                "{family}"
            );
            assert_eq!(family.generate(-1.0, 3).difficulty, 0.0, "{family}");
            for seed in [0, 1, u64::MAX] {
                let t = family.generate(0.7, seed);
                assert_eq!(t, family.generate(0.7, seed), "{family}");
                assert_eq!(t.task_id, format!("{family}-{seed:016x}"));
                assert_eq!(t.family, family);
                Game::from_task(&t).unwrap_or_else(|e| panic!("{family}: {e}"));
            }
            assert_eq!(
                family.generate(0.0, 0x2a).task_id,
                format!("{family}-000000000000002a")
            );
        }
    }

    /// A model input row is the family one-hot, then the observation, and
    /// a stored observation (training) writes the same row as a live state.
    #[test]
    fn model_input_is_tag_then_observation() {
        let width = Family::ALL.iter().map(|f| f.input_dim()).max().unwrap_or(0) + 3;
        for &family in Family::ALL {
            let game = Game::from_task(&family.generate(0.5, 7)).unwrap();
            let mut obs = vec![0.0; family.obs_dim()];
            game.encode(&mut obs);
            let (mut live, mut stored) = (vec![9.0; width], vec![9.0; width]);
            game.encode_input(&mut live);
            family.write_input(&obs, &mut stored);
            assert_eq!(live, stored, "{family}");
            let tag: Vec<usize> = (0..FAMILY_TAG).filter(|&i| live[i] != 0.0).collect();
            assert_eq!(tag, [family as usize], "{family}");
            assert_eq!(&live[FAMILY_TAG..family.input_dim()], &obs[..], "{family}");
            assert!(live[family.input_dim()..].iter().all(|&x| x == 0.0));
        }
    }

    /// `Task::verify` routes to each family's verifier: references pass
    /// (Connect Four: exact ones), other tasks' references and junk fail.
    #[test]
    fn task_verify_accepts_references_and_rejects_others() {
        for &family in Family::ALL {
            let mut passed = 0;
            for seed in 0..20 {
                let t = family.generate(1.0, seed);
                let exact = !t.reference_solution.contains("heuristic");
                assert_eq!(t.verify(&t.reference_solution), exact, "{t:?}");
                passed += usize::from(exact);
                assert!(!t.verify("nonsense ###"), "{family}");
                let mut bad = t.clone();
                bad.spec = "{".into();
                assert!(!bad.verify(&t.reference_solution), "{family}");
            }
            // Most Connect Four openings carry heuristic references.
            let min = if family == Family::Connect4 { 1 } else { 20 };
            assert!(passed >= min, "{family}: {passed} exact references");
        }
    }
}
