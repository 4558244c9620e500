//! Countdown: combine numbers with `+ - * /` to reach a target.
//!
//! # Rules
//!
//! The numbers sit in [`MAX_NUMBERS`] slots, kept sorted descending after
//! every step with the empty slots after the `len` filled ones, so states
//! that hold the same multiset look identical to the search and the
//! encoder. An action combines slots `i < j` (so `a = slot[i] >= b =
//! slot[j]`) with one operator: `action = pair_index(i, j) * 4 + op`, where
//! pairs enumerate `(0,1), (0,2), .., (4,5)` as `0..15` and ops are
//! `0:+ 1:- 2:* 3:/`; `60 + pair_index(i, j)` is the reverse division
//! `b / a`. The two numbers are replaced by the result.
//!
//! A task is played under one of two rule sets, written in its spec and
//! shown to the network (observation feature 61):
//!
//! - **Classic** (the TV show): every result is a positive integer no larger
//!   than [`RESULT_CAP`]: `-` needs `a > b`, `*` and `/` need `b > 1`
//!   (neutral moves are pruned), `/` needs `a % b == 0`; no reverse
//!   division. The episode succeeds as soon as the target is among the
//!   current numbers; not every number has to be used.
//! - **Use-all** (`"use_all": true`: the Game of 24, TinyZero's Countdown):
//!   exact rational arithmetic ([`Num`]), so `1 5 5 5` is `5 * (5 - 1/5)`.
//!   `-` gives `a - b >= 0`, both divisions are legal unless they divide by
//!   zero (the reverse one only when `a != b`), `*1` and `/1` are legal.
//!   Negative intermediates are never needed (see [`solve_all`]). The
//!   episode succeeds when the target is the only number left.
//!
//! Either way the episode fails when no legal action is left (in practice:
//! one number left).
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! Numbers are drawn like the TV show: "large" ones without replacement from
//! `{25, 50, 75, 100}`, small ones from two copies of `1..=10`. The target is
//! the last result of a random chain of legal operations (at least
//! `min steps` of them), and the task is kept only if the target lies in the
//! band's range, is not one of the numbers, and the shortest solution found by
//! [`solve`] needs at least `min steps` operations.
//!
//! | difficulty   | numbers | large  | target range | min steps |
//! |--------------|---------|--------|--------------|-----------|
//! | [0.0, 0.2)   | 3       | 0      | 2..=30       | 1         |
//! | [0.2, 0.4)   | 4       | 0      | 5..=100      | 2         |
//! | [0.4, 0.6)   | 4       | 1      | 10..=250     | 3         |
//! | [0.6, 0.8)   | 5       | 1..=2  | 50..=500     | 3         |
//! | [0.8, 1.0]   | 6       | 1..=2  | 100..=999    | 4         |
//!
//! Rejected draws are retried from the same seeded stream, so a task is a
//! pure function of `(difficulty, seed)`. After [`MAX_ATTEMPTS`] misses the
//! best draw seen so far is kept (in range first, then most steps); the tests
//! check that this fallback does not fire in practice.
//!
//! # Observation ([`OBS_DIM`] = 61 floats, all within `[-4, 4]`)
//!
//! With `T` the target and `v` a slot's value:
//!
//! | index     | feature                                                     |
//! |-----------|-------------------------------------------------------------|
//! | 0         | `ln(T) / 7`                                                 |
//! | 1         | numbers left / 6                                            |
//! | 2         | steps taken / 5                                             |
//! | 3         | best pair closeness (max of 46..61)                         |
//! | 4 + 7s..  | slot `s` (0..6): present, `min(v/T, 4)`, `ln(v+1)/7`, `v == T`, `T % v == 0`, `clamp((T-v)/T, -4, 1)`, `ln(abs(T-v)+1)/7` (all 0 when empty) |
//! | 46 + p    | pair `p` (0..15, action order): best `max(0, 1 - abs(T-r)/T)` over the legal ops' results `r`; 1 means the pair hits the target now |
//! | 61        | 1 under use-all rules, 0 under classic rules                |
//!
//! Slot values are exact rationals read as floats. The pair block lines up
//! with the action space (`action / 4`, and `action - 60` for the reverse
//! divisions), so a small MLP can read "which combination gets close"
//! directly.

mod num;
mod solver;
mod verify;

pub use num::Num;
pub use solver::{format_solution, hand_stats, solve, solve_all, HandStats};
pub use verify::{verify_solution, verify_solution_all, verify_spec};

use crate::tasks::{flag, Action, Family, Outcome, Puzzle, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Slots in a state; also the most numbers a spec may hold.
pub const MAX_NUMBERS: usize = 6;
/// Number of slot pairs `(i, j)` with `i < j`.
const NUM_PAIRS: usize = MAX_NUMBERS * (MAX_NUMBERS - 1) / 2;
/// Operators, in action order.
pub const OPS: [char; 4] = ['+', '-', '*', '/'];
/// Operators of the use-all rules: [`OPS`] and the reverse division (4).
pub(crate) const EXACT_OPS: usize = OPS.len() + 1;
/// First reverse-division action.
const REVERSE_BASE: usize = NUM_PAIRS * OPS.len();
/// 15 slot pairs x 4 operators, then 15 reverse divisions.
pub const ACTION_DIM: usize = REVERSE_BASE + NUM_PAIRS;
/// Largest intermediate result (numerator and denominator under use-all
/// rules); bounds the search and keeps the arithmetic safe.
pub const RESULT_CAP: u32 = num::NUM_CAP as u32;
/// Largest value accepted for an input number in a spec.
pub const MAX_INPUT: u32 = 1000;
/// Largest target accepted in a spec.
pub const MAX_TARGET: u32 = 100_000;
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 200;

const MAX_STEPS: usize = MAX_NUMBERS - 1;
const GLOBAL_FEATURES: usize = 4;
const SLOT_FEATURES: usize = 7;
const PAIR_BASE: usize = GLOBAL_FEATURES + MAX_NUMBERS * SLOT_FEATURES;
/// Where the observation says which rules the task is played under.
const RULES_FEATURE: usize = PAIR_BASE + NUM_PAIRS;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = RULES_FEATURE + 1;
const _: () = assert!(OBS_DIM <= 64, "models expect at most 64 features");

/// One arithmetic step `(a, op, b, result)`, e.g. `8 - 4 = 4`.
pub type Step = (Num, char, Num, Num);

/// Slot pairs in action order: `(0,1), (0,2), .., (4,5)`.
const PAIRS: [(usize, usize); NUM_PAIRS] = slot_pairs();

const fn slot_pairs() -> [(usize, usize); NUM_PAIRS] {
    let mut pairs = [(0, 0); NUM_PAIRS];
    let (mut i, mut k) = (0, 0);
    while i < MAX_NUMBERS {
        let mut j = i + 1;
        while j < MAX_NUMBERS {
            pairs[k] = (i, j);
            k += 1;
            j += 1;
        }
        i += 1;
    }
    pairs
}

/// Index of slot pair `(i, j)`, `i < j < 6`, in action order.
pub fn pair_index(i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < MAX_NUMBERS);
    i * (2 * MAX_NUMBERS - i - 1) / 2 + (j - i - 1)
}

/// The result of `a op b` under the classic rules (`a >= b >= 1`), or `None`
/// when the move is illegal.
fn apply(op: usize, a: u32, b: u32) -> Option<u32> {
    let (a64, b64) = (u64::from(a), u64::from(b));
    let r = match op {
        0 => a64 + b64,
        1 if a > b => a64 - b64,
        2 if b >= 2 => a64 * b64,
        3 if b >= 2 && a.is_multiple_of(b) => a64 / b64,
        _ => return None,
    };
    u32::try_from(r).ok().filter(|&r| r <= RESULT_CAP)
}

/// The exact result of move `op` (0..5, 4 = `b / a`) under the use-all
/// rules (`a >= b >= 0`), or `None` when it is illegal.
fn apply_exact(op: usize, a: Num, b: Num) -> Option<Num> {
    match op {
        0 => a.checked_add(b),
        1 => a.checked_sub(b),
        2 => a.checked_mul(b),
        3 => a.checked_div(b),
        4 if a != b => b.checked_div(a),
        _ => None,
    }
}

/// `nums` (sorted descending) with slots `i` and `j` replaced by `r`, still
/// sorted descending; returns the new array and its length.
fn combine<T: Copy + Ord + Default>(
    nums: &[T],
    i: usize,
    j: usize,
    r: T,
) -> ([T; MAX_NUMBERS], usize) {
    let mut out = [T::default(); MAX_NUMBERS];
    let mut len = 0;
    let mut placed = false;
    for (k, &v) in nums.iter().enumerate() {
        if k == i || k == j {
            continue;
        }
        if !placed && r >= v {
            out[len] = r;
            len += 1;
            placed = true;
        }
        out[len] = v;
        len += 1;
    }
    if !placed {
        out[len] = r;
        len += 1;
    }
    (out, len)
}

/// A live Countdown episode. Fixed-size with no heap data, so MCTS can clone
/// it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Countdown {
    target: u32,
    /// The spec's numbers, sorted descending (for [`Countdown::to_spec`]).
    start: [u32; MAX_NUMBERS],
    start_len: u8,
    /// Current numbers, sorted descending, zeros after `len`.
    nums: [Num; MAX_NUMBERS],
    len: u8,
    history: [Step; MAX_STEPS],
    steps: u8,
    /// Use-all rules (Game of 24, TinyZero): exact rational arithmetic, and
    /// success only when every number has been combined into the target.
    use_all: bool,
}

impl Countdown {
    /// Start state for `numbers` (2..=6 values in 1..=1000) and `target`
    /// (1..=100000). The error names the bad field and the expected range.
    pub fn new(numbers: &[u32], target: u32) -> Result<Self, String> {
        if !(2..=MAX_NUMBERS).contains(&numbers.len()) {
            return Err(format!(
                "numbers: expected 2..={MAX_NUMBERS} entries, got {}",
                numbers.len()
            ));
        }
        for (k, &v) in numbers.iter().enumerate() {
            check_range(&format!("numbers[{k}]"), u64::from(v), MAX_INPUT)?;
        }
        check_range("target", u64::from(target), MAX_TARGET)?;
        let mut start = [0; MAX_NUMBERS];
        start[..numbers.len()].copy_from_slice(numbers);
        start.sort_unstable_by(|a, b| b.cmp(a));
        let len = numbers.len() as u8;
        Ok(Countdown {
            target,
            start,
            start_len: len,
            nums: start.map(Num::int),
            len,
            history: [(Num::ZERO, '+', Num::ZERO, Num::ZERO); MAX_STEPS],
            steps: 0,
            use_all: false,
        })
    }

    /// The same puzzle under use-all rules (every number must be used).
    pub fn with_use_all(mut self, use_all: bool) -> Self {
        self.use_all = use_all;
        self
    }

    pub fn use_all(&self) -> bool {
        self.use_all
    }

    /// Parses `{"numbers":[..],"target":T}`; never panics.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"numbers":[2..=6 integers in 1..=1000],"target":1..=100000}"#;
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        if let Some(key) = obj
            .keys()
            .find(|k| !["numbers", "target", "use_all"].contains(&k.as_str()))
        {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only \"numbers\", \"target\" and \"use_all\""
            ));
        }
        let use_all = match obj.get("use_all") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("use_all: expected true or false, got {v}"))?,
        };
        let numbers = obj
            .get("numbers")
            .ok_or_else(|| format!("numbers: missing; expected {SHAPE}"))?
            .as_array()
            .ok_or_else(|| "numbers: expected an array of 2..=6 integers".to_string())?;
        if !(2..=MAX_NUMBERS).contains(&numbers.len()) {
            return Err(format!(
                "numbers: expected 2..={MAX_NUMBERS} entries, got {}",
                numbers.len()
            ));
        }
        let numbers = numbers
            .iter()
            .enumerate()
            .map(|(k, v)| json_int(&format!("numbers[{k}]"), v, MAX_INPUT))
            .collect::<Result<Vec<u32>, String>>()?;
        let target = obj
            .get("target")
            .ok_or_else(|| format!("target: missing; expected {SHAPE}"))?;
        let target = json_int("target", target, MAX_TARGET)?;
        Ok(Countdown::new(&numbers, target)?.with_use_all(use_all))
    }

    /// The start state's spec (the task's parameters, not the current state),
    /// so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        let numbers: Vec<String> = self.start[..self.start_len as usize]
            .iter()
            .map(u32::to_string)
            .collect();
        let use_all = if self.use_all { ",\"use_all\":true" } else { "" };
        format!(
            "{{\"numbers\":[{}],\"target\":{}{use_all}}}",
            numbers.join(","),
            self.target
        )
    }

    pub fn target(&self) -> u32 {
        self.target
    }

    /// The task's numbers, sorted descending.
    pub fn start_numbers(&self) -> &[u32] {
        &self.start[..self.start_len as usize]
    }

    /// Current numbers, sorted descending.
    pub fn numbers(&self) -> &[Num] {
        &self.nums[..self.len as usize]
    }

    /// Steps played so far.
    pub fn history(&self) -> &[Step] {
        &self.history[..self.steps as usize]
    }

    /// Slots, operator index (4: reverse division) and result of `action`
    /// if its slots are filled and the arithmetic is legal under the task's
    /// rules (ignores whether the episode is over).
    fn decode(&self, action: Action) -> Option<(usize, usize, usize, Num)> {
        let action = usize::from(action);
        let (pair, op) = if action < REVERSE_BASE {
            (action / OPS.len(), action % OPS.len())
        } else {
            (action - REVERSE_BASE, OPS.len())
        };
        let (i, j) = *PAIRS.get(pair)?;
        if j >= self.len as usize {
            return None;
        }
        self.apply(op, self.nums[i], self.nums[j])
            .map(|r| (i, j, op, r))
    }

    /// `a op b` under the task's rules.
    fn apply(&self, op: usize, a: Num, b: Num) -> Option<Num> {
        if self.use_all {
            return apply_exact(op, a, b);
        }
        let (a, b) = (a.as_u32()?, b.as_u32()?);
        (op < OPS.len())
            .then(|| apply(op, a, b))
            .flatten()
            .map(Num::int)
    }

    /// Whether `action` may be played now.
    pub fn is_legal(&self, action: Action) -> bool {
        !self.is_success() && self.decode(action).is_some()
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_success() {
            return;
        }
        out.extend((0..ACTION_DIM as Action).filter(|&a| self.decode(a).is_some()));
    }

    /// Plays a legal action: the two numbers are replaced by the result and
    /// the slots re-sorted. An illegal action is a bug (debug assert) and is
    /// ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let decoded = self.decode(action).filter(|_| !self.is_success());
        debug_assert!(
            decoded.is_some(),
            "illegal action {action} in {}",
            self.render()
        );
        let Some((i, j, op, r)) = decoded else { return };
        let step = step_record(self.numbers(), i, j, op, r);
        let (nums, len) = combine(self.numbers(), i, j, r);
        self.nums = nums;
        self.len = len as u8;
        self.history[self.steps as usize] = step;
        self.steps += 1;
    }

    /// The verifier: the target is among the current numbers (use-all
    /// rules: it is the only number left).
    pub fn is_success(&self) -> bool {
        let target = Num::int(self.target);
        if self.use_all {
            self.numbers() == [target]
        } else {
            self.numbers().contains(&target)
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.is_success() || !(0..ACTION_DIM as Action).any(|a| self.decode(a).is_some())
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let t = self.target as f32;
        out[0] = t.ln() / 7.0;
        out[1] = f32::from(self.len) / MAX_NUMBERS as f32;
        out[2] = f32::from(self.steps) / MAX_STEPS as f32;
        for (s, &v) in self.numbers().iter().enumerate() {
            let base = GLOBAL_FEATURES + s * SLOT_FEATURES;
            slot_features(v, self.target, &mut out[base..base + SLOT_FEATURES]);
        }
        let mut best = 0.0f32;
        for (p, &(i, j)) in PAIRS.iter().enumerate() {
            if j >= self.len as usize {
                continue;
            }
            let c = (0..EXACT_OPS)
                .filter_map(|op| self.apply(op, self.nums[i], self.nums[j]))
                .map(|r| closeness(r, self.target))
                .fold(0.0, f32::max);
            out[PAIR_BASE + p] = c;
            best = best.max(c);
        }
        out[3] = best;
        out[RULES_FEATURE] = flag(self.use_all);
    }

    /// Human label of an action in this state, e.g. `"8-4=4"`.
    pub fn label(&self, action: Action) -> String {
        match self.decode(action) {
            Some((i, j, op, r)) => format_solution(&[step_record(self.numbers(), i, j, op, r)]),
            None => format!("illegal action {action}"),
        }
    }

    /// One line, e.g. `"target 24 | numbers 8 4 3 1 | so far: 8-4=4"`, with
    /// `" | solved"` / `" | stuck"` appended once the episode is over.
    pub fn render(&self) -> String {
        let numbers: Vec<String> = self.numbers().iter().map(Num::to_string).collect();
        let so_far = if self.steps == 0 {
            "(none)".to_string()
        } else {
            format_solution(self.history())
        };
        let mut s = format!(
            "target {} | numbers {} | so far: {so_far}",
            self.target,
            numbers.join(" ")
        );
        match self.outcome() {
            Some(Outcome::Success) => s.push_str(" | solved"),
            Some(_) => s.push_str(" | stuck"),
            None => {}
        }
        s
    }
}

/// `Ok(())` if `value` is in `1..=max`, else an error naming `field`.
fn check_range(field: &str, value: u64, max: u32) -> Result<(), String> {
    if (1..=u64::from(max)).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field}: expected an integer in 1..={max}, got {value}"
        ))
    }
}

/// A JSON integer in `1..=max`, or an error naming `field`.
fn json_int(field: &str, value: &serde_json::Value, max: u32) -> Result<u32, String> {
    let n = value
        .as_u64()
        .ok_or_else(|| format!("{field}: expected an integer in 1..={max}, got {value}"))?;
    check_range(field, n, max)?;
    u32::try_from(n).map_err(|_| format!("{field}: expected an integer in 1..={max}, got {n}"))
}

/// The step record of move `op` on slots `i, j` of `nums`; the reverse
/// division shows its operands in the order it divides them.
fn step_record(nums: &[Num], i: usize, j: usize, op: usize, r: Num) -> Step {
    if op == OPS.len() {
        (nums[j], '/', nums[i], r)
    } else {
        (nums[i], OPS[op], nums[j], r)
    }
}

/// The 7 per-slot features of value `v` against target `t`.
fn slot_features(v: Num, t: u32, out: &mut [f32]) {
    let (vf, tf) = (v.to_f64() as f32, t as f32);
    out[0] = 1.0;
    out[1] = (vf / tf).min(4.0);
    out[2] = (vf + 1.0).ln() / 7.0;
    out[3] = flag(v == Num::int(t));
    out[4] = flag(Num::int(t).checked_div(v).is_some_and(Num::is_int));
    out[5] = ((tf - vf) / tf).clamp(-4.0, 1.0);
    out[6] = ((tf - vf).abs() + 1.0).ln() / 7.0;
}

/// 1 when `r` hits the target, falling linearly to 0 at distance `t`.
fn closeness(r: Num, t: u32) -> f32 {
    let t = f64::from(t);
    (1.0 - (r.to_f64() - t).abs() / t).max(0.0) as f32
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    numbers: usize,
    large: (usize, usize),
    target: (u32, u32),
    min_steps: usize,
}

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { numbers: 3, large: (0, 0), target: (2, 30), min_steps: 1 },
    Band { numbers: 4, large: (0, 0), target: (5, 100), min_steps: 2 },
    Band { numbers: 4, large: (1, 1), target: (10, 250), min_steps: 3 },
    Band { numbers: 5, large: (1, 2), target: (50, 500), min_steps: 3 },
    Band { numbers: 6, large: (1, 2), target: (100, 999), min_steps: 4 },
];

const LARGE: [u32; 4] = [25, 50, 75, 100];
/// Probability that a generator step reuses the previous result, so the
/// target tends to depend on every step of the chain.
const CHAIN_PROB: f32 = 0.8;

/// `difficulty` clamped to `[0, 1]`, NaN -> 0.
pub fn clamp_difficulty(difficulty: f32) -> f32 {
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
    let puzzle = pick_puzzle(band_for(difficulty), &mut rng);
    let list: Vec<String> = puzzle.numbers.iter().map(u32::to_string).collect();
    let spec = format!(
        "{{\"numbers\":[{}],\"target\":{}}}",
        list.join(","),
        puzzle.target
    );
    Task {
        task_id: format!("countdown-{seed:016x}"),
        family: Family::Countdown,
        difficulty,
        seed,
        statement: format!(
            "Reach {} using {} with + - * / (each number at most once)",
            puzzle.target,
            list.join(", ")
        ),
        spec,
        reference_solution: format_solution(&puzzle.solution),
        optimal_steps: Some(puzzle.solution.len() as u32),
    }
}

/// A draw that passed the hard checks (solvable, target not an input).
struct Draw {
    numbers: Vec<u32>,
    target: u32,
    solution: Vec<Step>,
    in_range: bool,
}

impl Draw {
    fn rank(&self) -> (bool, usize) {
        (self.in_range, self.solution.len())
    }
}

/// Draws until a puzzle meets the band; after [`MAX_ATTEMPTS`] keeps the best.
fn pick_puzzle(band: &Band, rng: &mut ChaCha8Rng) -> Draw {
    let mut best: Option<Draw> = None;
    for attempt in 0.. {
        if attempt >= MAX_ATTEMPTS {
            if let Some(p) = best.take() {
                return p;
            }
        }
        let numbers = draw_numbers(band, rng);
        let target = random_target(&numbers, band, rng);
        if target == 0 || target > MAX_TARGET || numbers.contains(&target) {
            continue;
        }
        let in_range = (band.target.0..=band.target.1).contains(&target);
        if !in_range && best.is_some() {
            continue;
        }
        let Some(solution) = solve(&numbers, target) else {
            continue;
        };
        let puzzle = Draw {
            numbers,
            target,
            solution,
            in_range,
        };
        if in_range && puzzle.solution.len() >= band.min_steps {
            return puzzle;
        }
        if best.as_ref().is_none_or(|b| puzzle.rank() > b.rank()) {
            best = Some(puzzle);
        }
    }
    unreachable!("the attempt loop only exits by returning")
}

/// The band's numbers, sorted descending: large ones without replacement,
/// small ones from two copies of 1..=10.
fn draw_numbers(band: &Band, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let n_large = rng.random_range(band.large.0..=band.large.1);
    let mut large = LARGE;
    let mut small: Vec<u32> = (1..=10).chain(1..=10).collect();
    let mut numbers = partial_shuffle(&mut large, n_large, rng);
    numbers.extend(partial_shuffle(&mut small, band.numbers - n_large, rng));
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    numbers
}

/// The first `k` items of a Fisher-Yates shuffle of `items`.
fn partial_shuffle(items: &mut [u32], k: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    for i in 0..k {
        let j = rng.random_range(i..items.len());
        items.swap(i, j);
    }
    items[..k].to_vec()
}

/// Result of a random chain of `min_steps..=n-1` legal operations (0 if the
/// chain gets stuck). Mostly reuses the previous result so that the target
/// depends on the whole chain.
fn random_target(numbers: &[u32], band: &Band, rng: &mut ChaCha8Rng) -> u32 {
    let mut nums = [0; MAX_NUMBERS];
    nums[..numbers.len()].copy_from_slice(numbers);
    let mut len = numbers.len();
    let mut last = None;
    let mut moves = Vec::with_capacity(ACTION_DIM);
    for _ in 0..rng.random_range(band.min_steps..numbers.len()) {
        moves.clear();
        for &(i, j) in PAIRS.iter().filter(|&&(_, j)| j < len) {
            for op in 0..OPS.len() {
                if let Some(r) = apply(op, nums[i], nums[j]) {
                    moves.push((i, j, r));
                }
            }
        }
        let chain = last.is_some() && rng.random::<f32>() < CHAIN_PROB;
        if chain {
            let prev = last.unwrap_or(0);
            let chained = |&(i, j, _): &(usize, usize, u32)| nums[i] == prev || nums[j] == prev;
            if moves.iter().any(chained) {
                moves.retain(chained);
            }
        }
        if moves.is_empty() {
            return 0;
        }
        let (i, j, r) = moves[rng.random_range(0..moves.len())];
        let (next, next_len) = combine(&nums[..len], i, j, r);
        nums = next;
        len = next_len;
        last = Some(r);
    }
    last.unwrap_or(0)
}

impl Puzzle for Countdown {
    fn is_success(&self) -> bool {
        Countdown::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Countdown::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

    fn ints(values: &[u32]) -> Vec<Num> {
        values.iter().map(|&v| Num::int(v)).collect()
    }

    fn st(a: u32, op: char, b: u32, r: u32) -> Step {
        (Num::int(a), op, Num::int(b), Num::int(r))
    }

    fn game(numbers: &[u32], target: u32) -> Countdown {
        Countdown::new(numbers, target).expect("valid test spec")
    }

    fn action(i: usize, j: usize, op: char) -> Action {
        let op = OPS.iter().position(|&o| o == op).expect("known op");
        (pair_index(i, j) * OPS.len() + op) as Action
    }

    fn legal(g: &Countdown) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// The action whose label is `step`, if legal in `g`.
    fn action_for(g: &Countdown, step: Step) -> Option<Action> {
        let text = format_solution(&[step]);
        legal(g).into_iter().find(|&a| g.label(a) == text)
    }

    /// Plays `steps` through the game; None if one is not a legal move.
    fn replay(spec: &str, steps: &[Step]) -> Option<Countdown> {
        let mut g = Countdown::from_spec(spec).ok()?;
        for &s in steps {
            let a = action_for(&g, s)?;
            g.step(a);
        }
        Some(g)
    }

    /// Exhaustive shortest-solution length, no memo or symmetry pruning.
    fn brute_force(nums: &[u32], target: u32) -> Option<usize> {
        if nums.contains(&target) {
            return Some(0);
        }
        let mut best: Option<usize> = None;
        for i in 0..nums.len() {
            for j in 0..nums.len() {
                if i == j || nums[i] < nums[j] {
                    continue;
                }
                for op in 0..4 {
                    let Some(r) = apply(op, nums[i], nums[j]) else {
                        continue;
                    };
                    let mut rest: Vec<u32> = nums
                        .iter()
                        .enumerate()
                        .filter(|&(k, _)| k != i && k != j)
                        .map(|(_, &v)| v)
                        .collect();
                    rest.push(r);
                    if let Some(d) = brute_force(&rest, target) {
                        best = Some(best.map_or(d + 1, |b| b.min(d + 1)));
                    }
                }
            }
        }
        best
    }

    #[test]
    fn pairs_enumerate_in_action_order() {
        assert_eq!(PAIRS[0], (0, 1));
        assert_eq!(PAIRS[4], (0, 5));
        assert_eq!(PAIRS[5], (1, 2));
        assert_eq!(PAIRS[14], (4, 5));
        for (p, &(i, j)) in PAIRS.iter().enumerate() {
            assert_eq!(pair_index(i, j), p);
        }
        assert_eq!(ACTION_DIM, 75);
    }

    #[test]
    fn legality_follows_the_rules() {
        let g = game(&[8, 4, 3, 1], 24);
        assert!(g.is_legal(action(0, 1, '+')));
        assert!(g.is_legal(action(0, 1, '-')));
        assert!(g.is_legal(action(0, 1, '*')));
        assert!(g.is_legal(action(0, 1, '/')));
        assert!(!g.is_legal(action(1, 2, '/')), "4/3 is not an integer");
        assert!(!g.is_legal(action(0, 3, '*')), "*1 is neutral");
        assert!(!g.is_legal(action(0, 3, '/')), "/1 is neutral");
        assert!(!g.is_legal(action(0, 4, '+')), "slot 4 is empty");
        assert!(!g.is_legal(action(4, 5, '+')));
        assert!(!g.is_legal(ACTION_DIM as Action));
        assert!(
            !game(&[5, 5], 7).is_legal(action(0, 1, '-')),
            "results stay positive"
        );
        assert!(
            game(&[1000, 1000], 7).is_legal(action(0, 1, '*')),
            "1e6 is allowed"
        );
        let mut big = game(&[1000, 1000, 2], 7);
        big.step(action(0, 1, '*'));
        assert_eq!(big.numbers(), ints(&[1_000_000, 2]));
        assert!(!big.is_legal(action(0, 1, '*')), "over the cap");
        assert!(!big.is_legal(action(0, 1, '+')), "over the cap");
        assert!(big.is_legal(action(0, 1, '/')));
    }

    #[test]
    fn legal_actions_are_ascending_and_match_is_legal() {
        let g = game(&[100, 8, 8, 3, 2, 1], 999);
        let acts = legal(&g);
        assert!(acts.windows(2).all(|w| w[0] < w[1]));
        let expected: Vec<Action> = (0..ACTION_DIM as Action)
            .filter(|&a| g.is_legal(a))
            .collect();
        assert_eq!(acts, expected);
        assert!(!acts.contains(&action(1, 2, '-')), "8-8");
        assert!(acts.contains(&action(1, 2, '/')), "8/8");
    }

    #[test]
    fn step_resorts_and_records_history() {
        let mut g = game(&[3, 8, 1, 4], 24);
        assert_eq!(g.numbers(), ints(&[8, 4, 3, 1]));
        assert_eq!(g.label(action(0, 1, '-')), "8-4=4");
        g.step(action(0, 1, '-'));
        assert_eq!(g.numbers(), ints(&[4, 3, 1]));
        assert_eq!(g.nums, [4, 3, 1, 0, 0, 0].map(Num::int));
        assert_eq!(g.history(), &[st(8, '-', 4, 4)]);
        assert_eq!(g.render(), "target 24 | numbers 4 3 1 | so far: 8-4=4");
        assert_eq!(g.label(action(0, 1, '*')), "4*3=12");
        g.step(action(0, 1, '*'));
        assert_eq!(g.numbers(), ints(&[12, 1]));
        assert!(!g.is_terminal());
        assert_eq!(g.to_move(), 0);
        assert_eq!(
            g.label(action(0, 3, '+')),
            "illegal action 8",
            "slot 3 is empty"
        );
    }

    #[test]
    fn render_of_the_start_state() {
        let g = game(&[8, 4, 3, 1], 24);
        assert_eq!(g.render(), "target 24 | numbers 8 4 3 1 | so far: (none)");
    }

    #[test]
    fn success_is_terminal() {
        let mut g = game(&[8, 4, 3, 1], 24);
        assert!(!g.is_terminal());
        assert_eq!(g.outcome(), None);
        assert_eq!(g.terminal_value(), 0.0);
        g.step(action(0, 2, '*'));
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty(), "no moves after success");
        assert!(g.render().ends_with("so far: 8*3=24 | solved"));
    }

    #[test]
    fn running_out_of_numbers_fails() {
        let mut g = game(&[5, 2], 20);
        g.step(action(0, 1, '+'));
        assert_eq!(g.numbers(), ints(&[7]));
        assert!(g.is_terminal() && !g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("| stuck"));
    }

    #[test]
    fn stuck_with_two_numbers_fails() {
        // Two copies of 1e6: only the division is legal, and it ends the game.
        let mut g = game(&[1000, 1000, 1000, 1000], 99);
        g.step(action(0, 1, '*'));
        g.step(action(1, 2, '*'));
        assert_eq!(g.numbers(), ints(&[1_000_000, 1_000_000]));
        assert_eq!(legal(&g), vec![action(0, 1, '/')]);
        g.step(action(0, 1, '/'));
        assert_eq!(g.outcome(), Some(Outcome::Failure));
    }

    #[test]
    fn encode_is_bounded_and_order_invariant() {
        let a = Countdown::from_spec(r#"{"numbers":[3,100,7,25,7,1],"target":952}"#).unwrap();
        let b = Countdown::from_spec(r#"{"numbers":[7,1,25,100,3,7],"target":952}"#).unwrap();
        let (mut ea, mut eb) = (vec![0.0; OBS_DIM + 3], vec![0.0; OBS_DIM + 3]);
        a.encode(&mut ea);
        b.encode(&mut eb);
        assert_eq!(ea, eb);
        assert!(ea.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
        assert_eq!(&ea[OBS_DIM..], &[0.0; 3]);
        assert!((ea[1] - 1.0).abs() < 1e-6, "six numbers left");
        let c = game(&[8, 4, 3, 1], 24);
        let mut ec = vec![0.0; OBS_DIM];
        c.encode(&mut ec);
        assert_eq!(ec[PAIR_BASE + pair_index(0, 2)], 1.0, "8*3 hits 24");
        assert_eq!(ec[3], 1.0);
        assert_eq!(
            ec[GLOBAL_FEATURES + 4 * SLOT_FEATURES],
            0.0,
            "slot 4 is empty"
        );
        assert_eq!(ec[PAIR_BASE + pair_index(3, 4)], 0.0);
    }

    #[test]
    fn spec_round_trips() {
        let g = Countdown::from_spec(r#"{"target": 24, "numbers": [1, 8, 3, 4]}"#).unwrap();
        assert_eq!(g.to_spec(), r#"{"numbers":[8,4,3,1],"target":24}"#);
        let mut h = Countdown::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(action(0, 1, '-'));
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let cases = [
            ("", "spec"),
            ("{", "spec"),
            ("[1,2]", "spec"),
            ("null", "spec"),
            (r#"{"numbers":[1,2]}"#, "target"),
            (r#"{"target":5}"#, "numbers"),
            (r#"{"numbers":"1,2","target":5}"#, "numbers"),
            (r#"{"numbers":[1],"target":5}"#, "numbers"),
            (r#"{"numbers":[1,2,3,4,5,6,7],"target":5}"#, "numbers"),
            (r#"{"numbers":[1,0],"target":5}"#, "numbers[1]"),
            (r#"{"numbers":[1001,2],"target":5}"#, "numbers[0]"),
            (r#"{"numbers":[-3,2],"target":5}"#, "numbers[0]"),
            (r#"{"numbers":[2.5,2],"target":5}"#, "numbers[0]"),
            (r#"{"numbers":[1e30,2],"target":5}"#, "numbers[0]"),
            (
                r#"{"numbers":[18446744073709551615,2],"target":5}"#,
                "numbers[0]",
            ),
            (r#"{"numbers":["3",2],"target":5}"#, "numbers[0]"),
            (r#"{"numbers":[3,2],"target":0}"#, "target"),
            (r#"{"numbers":[3,2],"target":100001}"#, "target"),
            (r#"{"numbers":[3,2],"target":null}"#, "target"),
            (r#"{"numbers":[3,2],"target":5,"extra":1}"#, "extra"),
        ];
        for (spec, field) in cases {
            let err = Countdown::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
        assert!(Countdown::new(&[4, 5, 6], 0).is_err());
        assert!(Countdown::new(&[4; 7], 10).is_err());
    }

    #[test]
    fn solve_finds_shortest_solutions() {
        assert_eq!(solve(&[8, 4, 3, 1], 24), Some(vec![st(8, '*', 3, 24)]));
        assert_eq!(solve(&[8, 4, 3, 1], 8), Some(vec![]));
        assert_eq!(solve(&[3, 2], 7), None);
        assert_eq!(solve(&[1, 1], 5), None);
        assert_eq!(solve(&[], 5), None);
        assert_eq!(solve(&[1, 2, 3, 4, 5, 6, 7], 5), None, "too many numbers");
        assert_eq!(solve(&[0, 2], 2), None, "zero is not a number");
        let famous = solve(&[100, 75, 50, 25, 6, 3], 952).expect("952 is reachable");
        assert!(verify_solution(
            &[100, 75, 50, 25, 6, 3],
            952,
            &format_solution(&famous)
        ));
        assert_eq!(famous.len(), 5);
    }

    #[test]
    fn solve_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..300 {
            let n = rng.random_range(2..=5);
            let nums: Vec<u32> = (0..n)
                .map(|_| {
                    if rng.random::<f32>() < 0.2 {
                        25 * rng.random_range(1..=4)
                    } else {
                        rng.random_range(1..=10)
                    }
                })
                .collect();
            let target = rng.random_range(1..=300);
            let got = solve(&nums, target);
            assert_eq!(
                got.as_ref().map(Vec::len),
                brute_force(&nums, target),
                "{nums:?} -> {target}"
            );
            if let Some(steps) = got {
                assert!(verify_solution(&nums, target, &format_solution(&steps)));
            }
        }
    }

    #[test]
    fn verifier_accepts_human_variants() {
        let nums = [8, 4, 3, 1];
        assert!(
            !verify_solution(&nums, 24, "8-4=4, 4*6=24"),
            "6 is not available"
        );
        assert!(verify_solution(&nums, 24, "8*3=24"));
        assert!(verify_solution(&nums, 24, "3 * 8 = 24"));
        assert!(verify_solution(&nums, 24, " 8 x 3 = 24 ;"));
        assert!(!verify_solution(
            &nums,
            24,
            "8-4=4\n4*3=12\n12*1=12\n12+12=24"
        ));
        assert!(
            !verify_solution(&nums, 24, "8-4=4; 4+3=7; 7-1=6; 6x4=24"),
            "4 used up"
        );
        assert!(
            verify_solution(&nums, 24, "4-1=3, 3*8=24"),
            "either 3 works"
        );
        assert!(!verify_solution(&nums, 24, "4÷1=4, 4×3=12, 12+8=20"));
        assert!(verify_solution(&nums, 20, "4÷1=4, 4×3=12, 12+8=20"));
        assert!(verify_solution(&nums, 8, ""), "target is an input");
        assert!(!verify_solution(&nums, 24, ""));
        assert!(
            !verify_solution(&nums, 24, "8*3=24, 24+1=25"),
            "went past the target"
        );
        assert!(!verify_solution(&nums, 24, "8*3=25"));
        assert!(!verify_solution(&nums, 16, "8+8=16"), "8 used twice");
        assert!(verify_solution(&[8, 8], 16, "8+8=16"));
        assert!(!verify_solution(&nums, 5, "3-4=-1"));
        assert!(!verify_solution(&nums, 1, "4-4=0"));
        assert!(!verify_solution(&nums, 1, "3/4=0"));
        assert!(!verify_solution(&nums, 24, "8*3"));
        assert!(!verify_solution(&nums, 24, "8*3=24 please"));
        assert!(!verify_solution(&nums, 24, "8**3=24"));
        assert!(!verify_solution(&nums, 24, "99999999999999999999999*1=24"));
    }

    /// Every replacement of one step's fields that the verifier must reject.
    fn corruptions(numbers: &[u32], steps: &[Step]) -> Vec<(&'static str, Vec<Step>)> {
        let mut out = Vec::new();
        let last = steps.len() - 1;
        let mut wrong = steps.to_vec();
        wrong[last].3 = wrong[last].3.checked_add(Num::int(1)).unwrap();
        out.push(("wrong result", wrong));
        let (a, _, _, _) = steps[0];
        if numbers.iter().filter(|&&v| Num::int(v) == a).count() == 1 {
            let mut twice = steps.to_vec();
            twice[0] = (a, '+', a, a.checked_add(a).unwrap());
            out.push(("number used twice", twice));
        }
        let mut foreign = steps.to_vec();
        let f = Num::int(1001);
        foreign[0] = (f, '+', steps[0].2, f.checked_add(steps[0].2).unwrap());
        out.push(("number not in the input", foreign));
        out.push(("truncated", steps[..last].to_vec()));
        out
    }

    fn check_task(task: &Task) {
        let g = Countdown::from_spec(&task.spec).expect("generated spec parses");
        let (numbers, target) = (g.start_numbers().to_vec(), g.target());
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let steps = solve(&numbers, target).expect("solvable");
        assert_eq!(task.optimal_steps, Some(steps.len() as u32));
        assert_eq!(task.reference_solution, format_solution(&steps));
        assert!(
            verify_solution(&numbers, target, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &steps).expect("solution is playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        for (what, bad) in corruptions(&numbers, &steps) {
            assert!(
                !verify_solution(&numbers, target, &format_solution(&bad)),
                "{what}: {task:?}"
            );
        }
        let band = band_for(task.difficulty);
        assert_eq!(numbers.len(), band.numbers, "{task:?}");
        assert!(
            (band.target.0..=band.target.1).contains(&target),
            "fallback fired: {task:?}"
        );
        assert!(steps.len() >= band.min_steps, "fallback fired: {task:?}");
        let large = numbers.iter().filter(|&&v| v > 10).count();
        assert!((band.large.0..=band.large.1).contains(&large), "{task:?}");
        assert!(task
            .statement
            .starts_with(&format!("Reach {target} using ")));
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..4000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..300).map(|s| generate(d, s)).collect();
                let mean = |f: &dyn Fn(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 300.0;
                let n = mean(&|t| Countdown::from_spec(&t.spec).unwrap().numbers().len() as f64);
                (n, mean(&|t| f64::from(t.optimal_steps.unwrap_or(0))))
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 >= w[0].0, "numbers grow: {stats:?}");
            assert!(w[1].1 > w[0].1, "optimal steps grow: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,60}") {
            let _ = Countdown::from_spec(&spec);
        }

        #[test]
        fn from_spec_checks_ranges(nums in prop::collection::vec(0u64..1200, 0..9), target in 0u64..120_000) {
            let list: Vec<String> = nums.iter().map(u64::to_string).collect();
            let spec = format!("{{\"numbers\":[{}],\"target\":{target}}}", list.join(","));
            let ok = (2..=6).contains(&nums.len())
                && nums.iter().all(|v| (1..=1000).contains(v))
                && (1..=100_000).contains(&target);
            prop_assert_eq!(Countdown::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[0-9 +*/x=,;-]{0,40}", target in 1u32..200) {
            let _ = verify_solution(&[100, 25, 9, 7, 3, 1], target, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Countdown::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            loop {
                prop_assert!(g.numbers().windows(2).all(|w| w[0] >= w[1]));
                prop_assert!(g.nums[g.numbers().len()..].iter().all(|&v| v == Num::ZERO));
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                let before = g.numbers().len();
                g.step(a);
                prop_assert_eq!(g.numbers().len(), before - 1);
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            let start = Countdown::from_spec(&task.spec).unwrap();
            let verdict = verify_solution(start.start_numbers(), g.target(), &format_solution(g.history()));
            prop_assert_eq!(verdict, g.is_success());
        }
    }
    #[test]
    fn use_all_rules_need_every_number() {
        let spec = r#"{"numbers":[1,1,4,6],"target":24,"use_all":true}"#;
        let g = Countdown::from_spec(spec).unwrap();
        assert!(g.use_all());
        assert_eq!(Countdown::from_spec(&g.to_spec()).unwrap(), g);
        let steps = solve_all(&[1, 1, 4, 6], 24).expect("1 1 4 6 makes 24");
        assert_eq!(steps.len(), 3);
        let text = format_solution(&steps);
        assert!(verify_solution_all(&[1, 1, 4, 6], 24, &text), "{text}");
        assert!(!verify_solution_all(&[1, 1, 4, 6], 24, "6*4=24"));
        // Replaying the solution reaches success only once every number is used.
        let mut g = g;
        for (k, step) in steps.iter().enumerate() {
            assert!(!g.is_success());
            let mut legal = Vec::new();
            g.legal_actions(&mut legal);
            let a = legal
                .into_iter()
                .find(|&a| g.label(a) == format!("{}{}{}={}", step.0, step.1, step.2, step.3))
                .unwrap_or_else(|| panic!("step {k} {step:?} not legal in {}", g.render()));
            g.step(a);
        }
        assert!(g.is_success() && g.is_terminal());
        assert!(solve_all(&[1, 1, 1, 1], 24).is_none());
        let mut obs = vec![0.0; OBS_DIM];
        g.encode(&mut obs);
        assert_eq!(obs[RULES_FEATURE], 1.0, "the rules are observed");
        assert!(Countdown::from_spec(r#"{"numbers":[1,2],"target":3,"use_all":1}"#).is_err());
    }

    #[test]
    fn use_all_rules_are_exact_rationals() {
        let spec = r#"{"numbers":[5,5,5,1],"target":24,"use_all":true}"#;
        let mut g = Countdown::from_spec(spec).unwrap();
        let reverse = (REVERSE_BASE + pair_index(0, 3)) as Action;
        assert_eq!(g.label(reverse), "1/5=(1/5)");
        assert!(legal(&g).contains(&reverse));
        assert!(
            !legal(&g).contains(&((REVERSE_BASE + pair_index(0, 1)) as Action)),
            "5/5 both ways is one move"
        );
        for text in ["1/5=(1/5)", "5-(1/5)=(24/5)", "5*(24/5)=24"] {
            let a = legal(&g).into_iter().find(|&a| g.label(a) == text);
            g.step(a.unwrap_or_else(|| panic!("{text} in {}", g.render())));
        }
        assert!(g.is_success());
        assert!(verify_spec(spec, &format_solution(g.history())));
        let mut zero = Countdown::from_spec(r#"{"numbers":[13,13,6,4],"target":24,"use_all":true}"#)
            .unwrap();
        zero.step(action(0, 1, '-'));
        assert_eq!(zero.numbers(), &[Num::int(6), Num::int(4), Num::ZERO]);
        assert!(!zero.is_legal(action(1, 2, '/')), "no division by zero");
        assert!(zero.is_legal((REVERSE_BASE + pair_index(1, 2)) as Action), "0/4");
        let mut obs = vec![0.0; OBS_DIM];
        zero.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
        let classic = game(&[5, 5, 5, 1], 24);
        assert!(legal(&classic).iter().all(|&a| usize::from(a) < REVERSE_BASE));
        classic.encode(&mut obs);
        assert_eq!(obs[RULES_FEATURE], 0.0);
    }

}
