//! The Game of 24: four numbers from 1 to 13, each used exactly once, with
//! `+ - * /` and exact fractions, to make 24 (the use-all rules of
//! [`countdown`](super::countdown), whose state, encoder, verifier and
//! solver it shares).
//!
//! # Difficulty mapping
//!
//! The game has a closed universe: 1362 of the 1820 hands of four numbers
//! from 1 to 13 can make 24 ([`hands`]). They are ranked from easy to hard
//! by whether every solution needs a fraction, then by how few distinct
//! solutions they have ([`HandStats`]), and cut into five bands of equal
//! size; `difficulty` (clamped to `[0, 1]`) picks the band and the seed a
//! hand within it. Held-out sets are drawn from the same universe, so they
//! measure how well the game is played rather than generalisation to
//! unseen hands; [`is_hardest`] names the hard subset the README reports.

use super::countdown::{self, clamp_difficulty, format_solution, hand_stats, solve_all};
pub use super::countdown::{Countdown as Game24, HandStats};
use super::{Family, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

pub const OBS_DIM: usize = countdown::OBS_DIM;
pub const ACTION_DIM: usize = countdown::ACTION_DIM;
/// The target of every hand.
pub const TARGET: u32 = 24;
/// Numbers are drawn from `1..=MAX_CARD`.
pub const MAX_CARD: u32 = 13;
const BANDS: usize = 5;

/// A solvable hand, ascending, and what makes it hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hand {
    pub numbers: [u32; 4],
    pub stats: HandStats,
}

/// The hard subset: at most four distinct solutions, or every solution
/// needs a fraction.
pub fn is_hardest(stats: &HandStats) -> bool {
    stats.solutions <= 4 || stats.needs_fraction
}

/// Every solvable hand, easiest first (computed once, about a second).
pub fn hands() -> &'static [Hand] {
    static HANDS: OnceLock<Vec<Hand>> = OnceLock::new();
    HANDS.get_or_init(|| {
        let mut out = Vec::new();
        for a in 1..=MAX_CARD {
            for b in a..=MAX_CARD {
                for c in b..=MAX_CARD {
                    for d in c..=MAX_CARD {
                        let numbers = [a, b, c, d];
                        if let Some(stats) = hand_stats(&numbers, TARGET) {
                            out.push(Hand { numbers, stats });
                        }
                    }
                }
            }
        }
        out.sort_by_key(|h| (h.stats.needs_fraction, usize::MAX - h.stats.solutions));
        out
    })
}

/// The use-all spec of a hand.
pub fn spec(numbers: &[u32]) -> String {
    let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
    format!(
        "{{\"numbers\":[{}],\"target\":{TARGET},\"use_all\":true}}",
        list.join(",")
    )
}

/// The task of a hand, with the exact solver's reference solution.
pub fn task(numbers: &[u32], difficulty: f32, seed: u64, task_id: String) -> Task {
    let steps = solve_all(numbers, TARGET);
    let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
    Task {
        task_id,
        family: Family::Game24,
        difficulty,
        seed,
        statement: format!(
            "Make {TARGET} from {} using each number exactly once with + - * / (fractions allowed)",
            list.join(", ")
        ),
        spec: spec(numbers),
        reference_solution: steps.as_deref().map(format_solution).unwrap_or_default(),
        optimal_steps: steps.map(|s| s.len() as u32),
    }
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty mapping.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let all = hands();
    let band = ((difficulty * BANDS as f32) as usize).min(BANDS - 1);
    let (lo, hi) = (band * all.len() / BANDS, (band + 1) * all.len() / BANDS);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hand = all[rng.random_range(lo..hi)];
    task(&hand.numbers, difficulty, seed, format!("game24-{seed:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Game, Outcome};

    /// Plays `reference` through the game's own legal moves.
    fn replay(task: &Task) -> Game24 {
        let mut g = Game24::from_spec(&task.spec).unwrap();
        for text in task.reference_solution.split(", ") {
            let mut legal = Vec::new();
            g.legal_actions(&mut legal);
            let a = legal
                .into_iter()
                .find(|&a| g.label(a) == text)
                .unwrap_or_else(|| panic!("{text} is not legal in {}", g.render()));
            g.step(a);
        }
        g
    }

    #[test]
    fn all_1362_solvable_hands_are_solved_verified_and_playable() {
        let all = hands();
        assert_eq!(all.len(), 1362, "the known count of solvable hands");
        for (k, h) in all.iter().enumerate() {
            let t = task(&h.numbers, 0.0, k as u64, format!("hand-{k}"));
            assert!(t.verify(&t.reference_solution), "{t:?}");
            assert_eq!(t.optimal_steps, Some(3));
            let end = replay(&t);
            assert!(end.is_success() && end.is_terminal(), "{t:?}");
            assert_eq!(Game::Game24(end).outcome(), Some(Outcome::Success));
        }
        let fractions = all.iter().filter(|h| h.stats.needs_fraction).count();
        let hardest = all.iter().filter(|h| is_hardest(&h.stats)).count();
        let counts: Vec<usize> = (1..=6)
            .map(|n| all.iter().filter(|h| h.stats.solutions == n).count())
            .collect();
        // Cross-checked with an independent enumeration over Python's
        // fractions.Fraction (README, "Game of 24").
        assert_eq!(fractions, 16);
        assert_eq!(counts[..4], [170, 97, 93, 52]);
        assert_eq!(hardest, 412, "every fraction hand has <= 4 solutions");
        let one_five = all.iter().find(|h| h.numbers == [1, 5, 5, 5]).unwrap();
        assert!(one_five.stats.needs_fraction);
    }

    #[test]
    fn difficulty_picks_harder_hands() {
        let mean_solutions = |d: f32| {
            let n = 200;
            (0..n)
                .map(|s| {
                    let t = generate(d, s);
                    let g = Game24::from_spec(&t.spec).unwrap();
                    hand_stats(g.start_numbers(), TARGET).unwrap().solutions as f64
                })
                .sum::<f64>()
                / n as f64
        };
        let (easy, hard) = (mean_solutions(0.1), mean_solutions(0.9));
        assert!(easy > 3.0 * hard, "{easy} vs {hard}");
        assert_eq!(generate(0.5, 7), generate(0.5, 7));
        assert!(generate(1.0, 3).spec.contains("\"use_all\":true"));
    }
}
