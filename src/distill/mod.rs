//! Reasoning traces from self-play: an episode becomes a prompt (the task
//! in words and the answer format) and a completion (its steps, one per
//! line, then `<answer>...</answer>`), kept only when the answer read back
//! out of the completion passes the family's verifier (`Task::verify`) and
//! parses back into actions that finish the task. The `distill` stage
//! (`stages/distill.rs`) reads the stores and writes `traces/`.
//!
//! A two-player game's trace is the game as the search played it from the
//! task's position, and its answer is the first move with the position's
//! exact value (`play col 4 (wins in 5 moves)`), which the family verifier
//! re-solves: a game counts as verified when its first move is optimal.

pub mod answer;
pub mod notes;
pub mod render;
pub mod select;

use crate::tasks::{Action, Game, Task};
use render::Note;
use std::collections::HashMap;
use std::sync::Mutex;

/// A verified trace of one line of play.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub prompt: String,
    pub completion: String,
    /// The answer inside the completion's tag.
    pub answer: String,
    /// Step lines before the answer.
    pub steps: u32,
    /// Task and line, for removing duplicates: the family, the spec and
    /// the moves (notes left out).
    pub key: String,
}

/// Why a line gave no trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The task's spec does not parse, or the line is illegal from it.
    Unplayable,
    /// The line has no answer (a game whose first move is not optimal or
    /// not settled by the solver), or the answer read back fails the
    /// verifier or does not parse into a completing line.
    Unverified,
}

/// The verified trace of `actions` played from `task`'s start, with an
/// optional note per step.
pub fn trace(task: &Task, actions: &[Action], notes: &[Note]) -> Result<Trace, Dropped> {
    trace_with(task, actions, notes, &Memo::default())
}

/// [`trace`], sharing solver work through `memo` with the other lines of
/// one distill.
pub fn trace_with(
    task: &Task,
    actions: &[Action],
    notes: &[Note],
    memo: &Memo,
) -> Result<Trace, Dropped> {
    let start = Game::from_task(task).map_err(|_| Dropped::Unplayable)?;
    answer::replay(&start, actions).ok_or(Dropped::Unplayable)?;
    let answer = if start.family().num_players() > 1 {
        answer::claim_of(&memo.claims(task, &start)?, actions)
    } else {
        answer::answer_of(&start, actions)
    }
    .ok_or(Dropped::Unverified)?;
    let lines = render::step_lines(&start, actions, notes);
    let completion = render::completion(&lines, &answer);
    if !memo.verdict(task, &answer, || verify(task, &start, &completion)) {
        return Err(Dropped::Unverified);
    }
    let moves = answer::labels(&start, actions).unwrap_or_default();
    Ok(Trace {
        prompt: render::prompt(task, &start),
        answer,
        steps: lines.len() as u32,
        key: format!("{}\n{}\n{}", task.family, task.spec, moves.join("\n")),
        completion,
    })
}

/// The solver work a distill repeats, done once: a game start's optimal
/// first moves (every game from one opening shares them, and an opening
/// the solver cannot settle costs its whole node budget), and the
/// verifier's verdict on an answer to a task. Shared by threads.
pub struct Memo {
    /// Solver nodes for a Connect Four start; one it does not settle
    /// gives no trace.
    nodes: u64,
    claims: Mutex<HashMap<String, Option<Claims>>>,
    verdicts: Mutex<HashMap<(String, String), bool>>,
}

impl Default for Memo {
    fn default() -> Memo {
        Memo::new(crate::tasks::connect4::VERIFY_NODE_BUDGET)
    }
}

/// A game position's optimal first moves with their claims.
type Claims = std::sync::Arc<Vec<(Action, String)>>;

impl Memo {
    /// An empty memo whose Connect Four solves stop after `nodes` nodes
    /// (at most the verifier's own budget, which the answer must then pass).
    pub fn new(nodes: u64) -> Memo {
        Memo {
            nodes,
            claims: Mutex::default(),
            verdicts: Mutex::default(),
        }
    }

    /// The optimal first moves from a game task's start, solved once per
    /// task spec; `Err(Unverified)` when the solver does not settle it.
    fn claims(&self, task: &Task, start: &Game) -> Result<Claims, Dropped> {
        let key = format!("{}\n{}", task.family, task.spec);
        if let Some(known) = lock(&self.claims).get(&key) {
            return known.clone().ok_or(Dropped::Unverified);
        }
        let got = answer::game_claims(start, self.nodes).map(std::sync::Arc::new);
        lock(&self.claims).insert(key, got.clone());
        got.ok_or(Dropped::Unverified)
    }

    /// The verifier's verdict on `answer` to `task`, checked once.
    fn verdict(&self, task: &Task, answer: &str, check: impl FnOnce() -> bool) -> bool {
        let key = (
            format!("{}\n{}", task.family, task.spec),
            answer.to_string(),
        );
        if let Some(&known) = lock(&self.verdicts).get(&key) {
            return known;
        }
        let ok = check();
        lock(&self.verdicts).insert(key, ok);
        ok
    }
}

/// A memo table, also after a thread panicked holding it (entries are
/// inserted whole, so it is never half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A completion's answer, read back from its text, passes the family
/// verifier and parses into actions that finish the task from `start`.
pub fn verify(task: &Task, start: &Game, completion: &str) -> bool {
    let Some(answer) = render::answer_in(completion) else {
        return false;
    };
    task.verify(answer)
        && answer::actions_of(start, answer).is_some_and(|a| answer::completes(start, &a))
}

/// The solver's line for a task: its reference solution parsed into
/// actions (`None` when the reference does not verify, as Connect Four's
/// heuristic ones).
pub fn solver_line(task: &Task) -> Option<Vec<Action>> {
    let start = Game::from_task(task).ok()?;
    if !task.verify(&task.reference_solution) {
        return None;
    }
    answer::actions_of(&start, &task.reference_solution)
}

/// `test` for a `share` of tasks, by a hash of the family and spec (a task
/// under two seeds is one task), else `train`: no task is in both.
pub fn split_of(task: &Task, share: f64) -> &'static str {
    let h = crate::stages::derive_seed(&[fnv(task.family.name()), fnv(&task.spec)]);
    if (h as f64 / u64::MAX as f64) < share {
        "test"
    } else {
        "train"
    }
}

/// FNV-1a of a string: a stable 64-bit input for [`split_of`].
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Family;

    #[test]
    fn solver_lines_make_verified_traces_in_every_family() {
        for &family in Family::ALL {
            let mut made = 0;
            for seed in 0..30 {
                let task = family.generate(0.5, seed);
                let Some(line) = solver_line(&task) else {
                    continue;
                };
                let t = trace(&task, &line, &[]).unwrap_or_else(|e| panic!("{family}: {e:?}"));
                let start = Game::from_task(&task).unwrap();
                assert!(verify(&task, &start, &t.completion), "{family}");
                assert!(t.completion.ends_with("</answer>"), "{}", t.completion);
                made += 1;
            }
            assert!(made > 0, "{family}: no solver trace");
        }
    }

    /// Lines of one game start share its solve: a memo shared by every
    /// line (a hit for each but the first) gives exactly the traces that
    /// fresh ones give, and holds one entry per start.
    #[test]
    fn a_shared_memo_changes_no_trace() {
        let memo = Memo::default();
        let mut starts = 0;
        for seed in 0..6 {
            let task = crate::tasks::connect4::generate_with_openings(1.0, seed, [26, 26]);
            let start = Game::from_task(&task).unwrap();
            let (mut firsts, mut legal) = (Vec::new(), Vec::new());
            start.legal_actions(&mut firsts);
            for &first in &firsts {
                let mut line = vec![first];
                let mut game = start.clone();
                game.step(first);
                while !game.is_terminal() {
                    game.legal_actions(&mut legal);
                    line.push(legal[line.len() % legal.len()]);
                    game.step(*line.last().unwrap());
                }
                assert_eq!(
                    trace(&task, &line, &[]),
                    trace_with(&task, &line, &[], &memo),
                    "seed {seed} first {first}"
                );
            }
            starts += 1;
        }
        assert_eq!(lock(&memo.claims).len(), starts);
        let optimal = lock(&memo.verdicts).len();
        assert!(optimal > 0 && optimal < starts * 7, "{optimal}");
    }

    #[test]
    fn a_tampered_answer_fails() {
        let task = Family::Countdown.generate(0.5, 4);
        let start = Game::from_task(&task).unwrap();
        let t = trace(&task, &solver_line(&task).unwrap(), &[]).unwrap();
        let bad = t.completion.replace("</answer>", ", 1+1=2</answer>");
        assert!(!verify(&task, &start, &bad));
        assert!(!verify(
            &task,
            &start,
            &t.completion.replace("<answer>", "")
        ));
    }

    #[test]
    fn splits_follow_the_task_not_the_seed() {
        let a = Family::Countdown.generate(0.5, 1);
        let mut b = a.clone();
        b.seed = 99;
        b.task_id = "other".into();
        assert_eq!(split_of(&a, 0.5), split_of(&b, 0.5));
        let tests = (0..400)
            .filter(|&s| split_of(&Family::Sudoku.generate(0.5, s), 0.25) == "test")
            .count();
        assert!((60..140).contains(&tests), "{tests}");
        assert_eq!(split_of(&a, 0.0), "train");
    }
}
