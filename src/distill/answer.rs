//! Each family's answer: the text inside `<answer>...</answer>`, written in
//! the form its verifier reads (`Task::verify`), and parsed back into the
//! actions it names. A trace is kept only when both directions agree: the
//! verifier accepts the answer, and its actions replay legally from the
//! start to a success (puzzles) or name a legal first move (games).

use crate::tasks::{connect4, knapsack, listdsl, sokoban, tictactoe, Action, Family, Game};
use crate::tasks::{gridpath, Outcome};

/// What the prompt asks the answer to look like, per family.
pub fn instruction(family: Family) -> &'static str {
    match family {
        Family::Countdown | Family::Game24 => {
            "Work one step per line, then give every step as `a op b = result`, separated by commas, inside <answer></answer>, e.g. <answer>8-4=4, 4*6=24</answer>."
        }
        Family::Linear => {
            "Work one step per line, then give the operations applied to both sides, separated by commas, inside <answer></answer>, e.g. <answer>expand left, -3 both sides, ÷2 both sides</answer>."
        }
        Family::Deduction => {
            "Work one step per line, then give the rules you fire in order, separated by semicolons, inside <answer></answer>, e.g. <answer>ash and bee => cat; cat => dew</answer>."
        }
        Family::ListDsl => {
            "Work one step per line, then give the program, instructions joined by `|`, inside <answer></answer>, e.g. <answer>filter(even) | map(*2) | sum</answer>."
        }
        Family::Sudoku => {
            "Work one placement per line, then give the solved grid, rows top to bottom separated by `/`, inside <answer></answer>."
        }
        Family::Knapsack => {
            "Work one step per line, then give the items you take inside <answer></answer>, e.g. <answer>take items 1, 4, 5 (weight 17/20, value 31)</answer>."
        }
        Family::Sokoban | Family::GridPath => {
            "Work one move per line, then give the moves as letters U D L R inside <answer></answer>, e.g. <answer>RRUL</answer>."
        }
        Family::Connect4 => {
            "Think through the game one move per line, then give your move with the position's value against perfect play inside <answer></answer>, e.g. <answer>play col 4 (wins in 5 moves)</answer> or <answer>draw with col 3</answer>."
        }
        Family::TicTacToe => {
            "Think through the game one move per line, then give the value with perfect play and your cell inside <answer></answer>, e.g. <answer>X wins in 2 with cell 5</answer> or <answer>draw with cell 1</answer>."
        }
    }
}

/// Plays `actions` from `start`, each legal; `None` at the first illegal one.
pub fn replay(start: &Game, actions: &[Action]) -> Option<Game> {
    let mut game = start.clone();
    let mut legal = Vec::new();
    for &a in actions {
        game.legal_actions(&mut legal);
        if game.is_terminal() || !legal.contains(&a) {
            return None;
        }
        game.step(a);
    }
    Some(game)
}

/// The labels of `actions` played from `start` (`"8-4=4"`, `"col 4"`).
pub fn labels(start: &Game, actions: &[Action]) -> Option<Vec<String>> {
    let mut game = start.clone();
    let mut out = Vec::with_capacity(actions.len());
    for &a in actions {
        out.push(game.label(a));
        game = replay(&game, &[a])?;
    }
    Some(out)
}

/// The answer for the line `actions` played from `start`, in the family
/// verifier's form; `None` when the line is illegal, or (games) its first
/// move is not optimal or not settled by the solver.
pub fn answer_of(start: &Game, actions: &[Action]) -> Option<String> {
    let end = replay(start, actions)?;
    let steps = || labels(start, actions);
    Some(match (start, &end) {
        (Game::Countdown(_) | Game::Game24(_) | Game::Linear(_), _) => steps()?.join(", "),
        (Game::Deduction(_), _) => steps()?.join("; "),
        (Game::ListDsl(_), _) => {
            let ops: Vec<String> = steps()?.into_iter().filter(|l| l != "stop").collect();
            ops.join(" | ")
        }
        (Game::Sudoku(_), Game::Sudoku(s)) => grid_rows(&s.grid_string(), s.size()),
        (Game::Knapsack(k), _) => {
            let items: Vec<usize> = actions.iter().map(|&a| usize::from(a)).collect();
            knapsack::format_solution(k.weights(), k.values(), k.capacity(), &items)
        }
        (Game::Sokoban(_), _) => sokoban::format_moves(actions),
        (Game::GridPath(_), _) => gridpath::format_moves(actions),
        (Game::Connect4(_) | Game::TicTacToe(_), _) => {
            claim_of(&game_claims(start, connect4::VERIFY_NODE_BUDGET)?, actions)?
        }
        _ => return None,
    })
}

/// A two-player game's optimal first moves from `start`, each with the
/// claim its verifier accepts (`None`: a puzzle, a finished game, or a
/// Connect Four position the solver does not settle within `node_limit`
/// nodes). Every game from one start shares it, so distill computes it
/// once per position.
pub fn game_claims(start: &Game, node_limit: u64) -> Option<Vec<(Action, String)>> {
    match start {
        Game::Connect4(g) => connect4::claims(g, node_limit),
        Game::TicTacToe(g) => tictactoe::claims(g),
        _ => None,
    }
}

/// The claim for a game line's first move, when that move is optimal.
pub fn claim_of(claims: &[(Action, String)], actions: &[Action]) -> Option<String> {
    let first = *actions.first()?;
    claims
        .iter()
        .find_map(|(a, claim)| (*a == first).then(|| claim.clone()))
}

/// A grid string of `n * n` cells as rows joined by `/`.
fn grid_rows(grid: &str, n: usize) -> String {
    let chars: Vec<char> = grid.chars().collect();
    chars
        .chunks(n.max(1))
        .map(|row| row.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// The actions an answer names, checked by replay from `start`; `None`
/// when a part does not parse or is not legal where it is played.
pub fn actions_of(start: &Game, answer: &str) -> Option<Vec<Action>> {
    let actions = match start {
        Game::Countdown(_) | Game::Game24(_) | Game::Linear(_) => {
            by_labels(start, answer.split([',', ';', '\n']))?
        }
        Game::Deduction(_) => by_labels(start, answer.split([';', '\n']))?,
        Game::ListDsl(_) => program_actions(start, answer)?,
        Game::Sudoku(s) => {
            let placements = sudoku_placements(s, answer)?;
            by_labels(start, placements.iter().map(String::as_str))?
        }
        Game::Knapsack(_) => knapsack_items(answer)?,
        Game::Sokoban(_) => move_letters(answer, &sokoban::MOVES)?,
        Game::GridPath(_) => move_letters(answer, &gridpath::MOVES)?,
        Game::Connect4(_) => vec![first_numbered(answer, "col")?],
        Game::TicTacToe(_) => vec![first_numbered(answer, "cell")?],
    };
    replay(start, &actions).map(|_| actions)
}

/// Whether `actions` (an answer's, parsed back) finish the task from
/// `start`: a puzzle ends in success; a game's first move is legal.
pub fn completes(start: &Game, actions: &[Action]) -> bool {
    let Some(end) = replay(start, actions) else {
        return false;
    };
    if start.family().num_players() > 1 {
        return !actions.is_empty();
    }
    end.outcome() == Some(Outcome::Success)
}

/// Matches each non-blank piece to the legal action of that label where it
/// is played (spaces around a piece are free).
fn by_labels<'a>(start: &Game, pieces: impl Iterator<Item = &'a str>) -> Option<Vec<Action>> {
    let mut game = start.clone();
    let (mut legal, mut out) = (Vec::new(), Vec::new());
    for piece in pieces.map(str::trim).filter(|p| !p.is_empty()) {
        game.legal_actions(&mut legal);
        let a = *legal.iter().find(|&&a| game.label(a) == piece)?;
        game.step(a);
        out.push(a);
    }
    Some(out)
}

/// A list program's instructions, then `stop` when the game still waits
/// for it (list-output programs end by `stop`, reducers end by themselves).
fn program_actions(start: &Game, answer: &str) -> Option<Vec<Action>> {
    let mut actions = by_labels(start, answer.split('|'))?;
    let end = replay(start, &actions)?;
    let mut legal = Vec::new();
    end.legal_actions(&mut legal);
    if !end.is_terminal() && legal.contains(&listdsl::STOP) {
        actions.push(listdsl::STOP);
    }
    Some(actions)
}

/// The placements (`"r2c3=7"`) that fill the start's empty cells with the
/// answer's digits, row by row; separators `/`, `|` and spaces are free.
fn sudoku_placements(start: &crate::tasks::sudoku::Sudoku, answer: &str) -> Option<Vec<String>> {
    let n = start.size();
    let digits: Vec<u8> = answer
        .chars()
        .filter(|c| !(c.is_whitespace() || "/|".contains(*c)))
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if digits.len() != n * n {
        return None;
    }
    Some(
        (0..n * n)
            .filter(|&k| start.cell(k / n, k % n) == 0)
            .map(|k| format!("r{}c{}={}", k / n + 1, k % n + 1, digits[k]))
            .collect(),
    )
}

/// `"take items 1, 4, 5 (...)"` -> actions 0, 3, 4 (the game takes items in
/// ascending order); `"take no items"` -> none.
fn knapsack_items(answer: &str) -> Option<Vec<Action>> {
    let head = answer.split('(').next()?;
    let mut items: Vec<Action> = head
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<Action>().ok()?.checked_sub(1))
        .collect::<Option<_>>()?;
    items.sort_unstable();
    Some(items)
}

/// Move letters (`"RRUL"`, either case, spaces and commas free) as the
/// indexes of `moves`.
fn move_letters(answer: &str, moves: &[char; 4]) -> Option<Vec<Action>> {
    answer
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == ','))
        .map(|c| {
            let up = c.to_ascii_uppercase();
            moves.iter().position(|&m| m == up).map(|i| i as Action)
        })
        .collect()
}

/// The first `word N` of a claim (`col 4`, `cells 2, 5`) as action `N - 1`.
fn first_numbered(answer: &str, word: &str) -> Option<Action> {
    let lower = answer.to_lowercase();
    let mut words = lower.split_whitespace();
    words.find(|w| w.trim_end_matches('s') == word)?;
    let n: Action = words.next()?.trim_end_matches(',').parse().ok()?;
    n.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For every family: a generated task's reference solution (when the
    /// verifier accepts it) parses back into actions that complete the
    /// task, and the answer written for those actions verifies too.
    #[test]
    fn references_round_trip_through_actions() {
        for &family in Family::ALL {
            let mut checked = 0;
            for seed in 0..40 {
                let task = family.generate(0.6, seed);
                if !task.verify(&task.reference_solution) {
                    continue; // heuristic Connect Four references
                }
                let start = Game::from_task(&task).unwrap();
                let actions = actions_of(&start, &task.reference_solution)
                    .unwrap_or_else(|| panic!("{family}: {}", task.reference_solution));
                assert!(completes(&start, &actions), "{family}: {task:?}");
                let answer = answer_of(&start, &actions).unwrap();
                assert!(task.verify(&answer), "{family}: {answer}");
                assert_eq!(actions_of(&start, &answer).as_ref(), Some(&actions));
                checked += 1;
            }
            assert!(checked >= 1, "{family}: no exact reference");
        }
    }

    #[test]
    fn wrong_answers_do_not_parse_into_a_completion() {
        let task = Family::Countdown.generate(0.3, 1);
        let start = Game::from_task(&task).unwrap();
        assert!(actions_of(&start, "1+1=3").is_none());
        assert!(actions_of(&start, "").is_some_and(|a| !completes(&start, &a)));
        let task = Family::GridPath.generate(0.3, 1);
        let start = Game::from_task(&task).unwrap();
        assert!(actions_of(&start, "XYZ").is_none());
    }

    #[test]
    fn claims_name_their_first_move() {
        assert_eq!(
            first_numbered("play col 4 (wins in 5 moves)", "col"),
            Some(3)
        );
        assert_eq!(
            first_numbered("X wins in 2 with cells 5, 1", "cell"),
            Some(4)
        );
        assert_eq!(first_numbered("draw", "col"), None);
        assert_eq!(
            knapsack_items("take items 4, 1 (weight 3/9, value 5)"),
            Some(vec![0, 3])
        );
        assert_eq!(knapsack_items("take no items"), Some(vec![]));
        assert_eq!(grid_rows("12344321", 4), "1234/4321");
    }
}
