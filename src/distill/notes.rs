//! Search notes: what the search weighed at each step of an episode. The
//! episodes store keeps the root value per step; the visit shares of the
//! alternatives live in the examples store (`policy_actions`,
//! `policy_probs` by task id and step), which play writes only for moves
//! that are training targets (fast moves under the playout cap have none).
//! Per-alternative values are not stored, so a note gives the shares and
//! the position's value.

use super::render::Note;
use crate::tasks::{Action, Game};

/// Alternatives named per step, the most visited first.
pub const TOP: usize = 3;

/// One step's search policy from the examples store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub actions: Vec<Action>,
    pub shares: Vec<f32>,
}

/// The notes of a line of play from `start`: step `k` has `policies[k]`'s
/// top alternatives (labels read in the position before the move), and
/// `root_values[k]`, the search's value for the mover.
pub fn notes(
    start: &Game,
    actions: &[Action],
    policies: &[Option<&Policy>],
    root_values: &[f32],
) -> Vec<Note> {
    let mut game = start.clone();
    let mut out = Vec::with_capacity(actions.len());
    for (k, &a) in actions.iter().enumerate() {
        let considered = policies
            .get(k)
            .copied()
            .flatten()
            .map(|p| top(&game, p))
            .unwrap_or_default();
        out.push(Note {
            considered,
            value: root_values.get(k).copied().filter(|v| v.is_finite()),
        });
        game.step(a);
    }
    out
}

/// The [`TOP`] most visited moves of a policy by label, with their shares;
/// actions that read alike (Countdown's two 10s) are one move, their
/// shares summed. Ties keep the store's order.
fn top(game: &Game, p: &Policy) -> Vec<(String, f32)> {
    let mut moves: Vec<(String, f32)> = Vec::new();
    for (&a, &share) in p.actions.iter().zip(&p.shares) {
        let label = game.label(a);
        match moves.iter_mut().find(|m| m.0 == label) {
            Some(m) => m.1 += share,
            None => moves.push((label, share)),
        }
    }
    moves.sort_by(|x, y| y.1.total_cmp(&x.1));
    moves.truncate(TOP);
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Family;

    #[test]
    fn notes_label_alternatives_where_they_were_weighed() {
        let task = Family::TicTacToe.generate(0.0, 3);
        let start = Game::from_task(&task).unwrap();
        let first = Policy {
            actions: vec![0, 4, 8, 2],
            shares: vec![0.1, 0.6, 0.05, 0.25],
        };
        let notes = notes(&start, &[4, 0], &[Some(&first), None], &[0.2, f32::NAN]);
        assert_eq!(
            notes[0].considered,
            vec![
                ("cell 5".to_string(), 0.6),
                ("cell 3".to_string(), 0.25),
                ("cell 1".to_string(), 0.1)
            ]
        );
        assert_eq!(notes[0].value, Some(0.2));
        assert_eq!(notes[1], Note::default());
    }

    #[test]
    fn moves_that_read_alike_are_one_alternative() {
        let hand = crate::tasks::countdown::Countdown::new(&[10, 10, 7, 1], 53).unwrap();
        let game = Game::Countdown(hand);
        let mut legal = Vec::new();
        game.legal_actions(&mut legal);
        let label = |a: &Action| game.label(*a);
        let first = legal
            .iter()
            .find(|a| legal.iter().filter(|b| label(b) == label(a)).count() == 2);
        let first = *first.expect("two 10s give twin moves");
        let twins: Vec<Action> = legal
            .iter()
            .copied()
            .filter(|b| label(b) == label(&first))
            .collect();
        let policy = Policy {
            actions: twins.clone(),
            shares: vec![0.25, 0.5],
        };
        assert_eq!(top(&game, &policy), vec![(game.label(twins[0]), 0.75)]);
    }
}
