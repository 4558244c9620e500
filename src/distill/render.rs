//! A trace as text: the prompt (the task's statement, the board for games,
//! the answer format), the completion (one line per step, then the answer
//! in its tag), and the answer read back out of a completion.

use super::answer::instruction;
use crate::tasks::{Action, Game, Task};

/// The tag around the answer; [`answer_in`] reads it back.
pub const OPEN: &str = "<answer>";
pub const CLOSE: &str = "</answer>";

/// The user turn: the statement, the position for board games (whose turn
/// is in the statement), and the answer format.
pub fn prompt(task: &Task, start: &Game) -> String {
    let board = match start {
        Game::Connect4(_) | Game::TicTacToe(_) => format!("\n\n{}", start.render().trim_end()),
        _ => String::new(),
    };
    format!(
        "{}{board}\n\n{}",
        task.statement.trim_end(),
        instruction(task.family)
    )
}

/// What the search weighed at one step: the alternatives' labels with
/// their visit shares, best first, and the root value for the mover.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Note {
    pub considered: Vec<(String, f32)>,
    pub value: Option<f32>,
}

impl Note {
    /// `" | considered 75-25=50 (41%), 75+8=83 (30%) | value +0.62"`; empty
    /// when there is nothing to say.
    fn suffix(&self) -> String {
        let mut s = String::new();
        if !self.considered.is_empty() {
            let alts: Vec<String> = self
                .considered
                .iter()
                .map(|(label, share)| format!("{label} ({:.0}%)", share * 100.0))
                .collect();
            s += &format!(" | considered {}", alts.join(", "));
        }
        if let Some(v) = self.value {
            s += &format!(" | value {v:+.2}");
        }
        s
    }
}

/// One line per step, `Step k: <label>` (games name the mover: `Step 1: X
/// col 4`), with the step's note when given; games end with the result.
pub fn step_lines(start: &Game, actions: &[Action], notes: &[Note]) -> Vec<String> {
    let two_player = start.family().num_players() > 1;
    let mut game = start.clone();
    let mut lines = Vec::with_capacity(actions.len() + 1);
    for (k, &a) in actions.iter().enumerate() {
        let mover = if two_player {
            format!("{} ", player_name(game.to_move()))
        } else {
            String::new()
        };
        let note = notes.get(k).map(Note::suffix).unwrap_or_default();
        lines.push(format!("Step {}: {mover}{}{note}", k + 1, game.label(a)));
        game.step(a);
    }
    if two_player {
        if let Some(result) = game_result(&game) {
            lines.push(result);
        }
    }
    lines
}

fn player_name(player: u8) -> char {
    if player == 0 {
        'X'
    } else {
        'O'
    }
}

/// `"Result: X wins"` / `"Result: draw"` for a finished game.
fn game_result(game: &Game) -> Option<String> {
    use crate::tasks::Outcome;
    let text = match game.outcome()? {
        Outcome::Win => "X wins",
        Outcome::Loss => "O wins",
        _ => "draw",
    };
    Some(format!("Result: {text}"))
}

/// The assistant turn: the step lines, then the answer in its tag.
pub fn completion(lines: &[String], answer: &str) -> String {
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s + OPEN + answer + CLOSE
}

/// The answer inside the last tag of a completion, trimmed.
pub fn answer_in(completion: &str) -> Option<&str> {
    let start = completion.rfind(OPEN)? + OPEN.len();
    let len = completion[start..].find(CLOSE)?;
    Some(completion[start..start + len].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Family;

    #[test]
    fn completions_carry_their_answer() {
        let lines = vec!["Step 1: 8-4=4".to_string(), "Step 2: 4*6=24".to_string()];
        let c = completion(&lines, "8-4=4, 4*6=24");
        assert_eq!(
            c,
            "Step 1: 8-4=4\nStep 2: 4*6=24\n<answer>8-4=4, 4*6=24</answer>"
        );
        assert_eq!(answer_in(&c), Some("8-4=4, 4*6=24"));
        assert_eq!(answer_in("no tag"), None);
        assert_eq!(answer_in("<answer>open"), None);
    }

    #[test]
    fn game_lines_name_the_mover_and_the_result() {
        let task = Family::TicTacToe.generate(0.0, 3);
        let start = Game::from_task(&task).unwrap();
        let lines = step_lines(&start, &[0, 3, 1, 4, 2], &[]);
        assert_eq!(lines[0], "Step 1: X cell 1");
        assert_eq!(lines[1], "Step 2: O cell 4");
        assert_eq!(lines.last().unwrap(), "Result: X wins");
        let p = prompt(&task, &start);
        assert!(p.contains("to move") && p.contains("<answer>"), "{p}");
    }

    #[test]
    fn notes_read_as_words() {
        let note = Note {
            considered: vec![("75-25=50".into(), 0.41), ("75+8=83".into(), 0.3)],
            value: Some(0.62),
        };
        assert_eq!(
            note.suffix(),
            " | considered 75-25=50 (41%), 75+8=83 (30%) | value +0.62"
        );
    }
}
