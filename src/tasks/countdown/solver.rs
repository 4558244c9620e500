//! Solvers: the shortest classic solution (generator and tests) and the
//! exact use-all search over rationals, with the hand analysis the Game of
//! 24 family ranks its hands by.

use super::num::Num;
use super::{apply, apply_exact, combine, step_record, Step, EXACT_OPS, MAX_NUMBERS, OPS};
use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiset of up to 6 values <= 2^20, packed 20 bits each. Values are >= 1,
/// so multisets of different sizes never collide.
fn pack(nums: &[u32]) -> u128 {
    nums.iter().fold(0u128, |k, &v| (k << 20) | u128::from(v))
}

/// A cheap mixing hasher for packed keys (SipHash dominated the solver).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, v: u128) {
        // splitmix64 finalizer over both halves.
        let mut x = (v as u64) ^ ((v >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = x ^ (x >> 31);
    }
}

type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// An integer step of the classic game as a [`Step`].
fn int_step(a: u32, op: char, b: u32, r: u32) -> Step {
    (Num::int(a), op, Num::int(b), Num::int(r))
}

/// Depth-limited DFS with a per-depth set of multisets proven to fail.
struct Solver {
    target: u32,
    /// `failed[r]`: multisets from which `r` more steps cannot reach the target.
    failed: [KeySet; MAX_NUMBERS],
    /// The solution found, deepest step first.
    path: Vec<Step>,
}

impl Solver {
    /// Whether `nums` (sorted descending, target absent) reaches the target
    /// within `rem` steps; on success the steps are pushed onto `path`.
    fn search(&mut self, nums: &[u32], rem: usize) -> bool {
        let n = nums.len();
        let key = pack(nums);
        if rem >= 2 && self.failed[rem].contains(&key) {
            return false;
        }
        for i in 0..n {
            // Equal values give equal children: try each (a, b) value pair once.
            if i > 0 && nums[i] == nums[i - 1] {
                continue;
            }
            for j in i + 1..n {
                if j > i + 1 && nums[j] == nums[j - 1] {
                    continue;
                }
                if self.try_pair(nums, i, j, rem) {
                    return true;
                }
            }
        }
        if rem >= 2 {
            self.failed[rem].insert(key);
        }
        false
    }

    /// Tries every operator on slots `i, j`, recursing while steps remain.
    fn try_pair(&mut self, nums: &[u32], i: usize, j: usize, rem: usize) -> bool {
        let (a, b) = (nums[i], nums[j]);
        for (op, &sym) in OPS.iter().enumerate() {
            let Some(r) = apply(op, a, b) else { continue };
            if r == self.target || (rem > 1 && self.search_child(nums, i, j, r, rem - 1)) {
                self.path.push(int_step(a, sym, b, r));
                return true;
            }
        }
        false
    }

    /// [`Solver::search`] on `nums` with slots `i, j` replaced by `r`.
    fn search_child(&mut self, nums: &[u32], i: usize, j: usize, r: u32, rem: usize) -> bool {
        let (child, len) = combine(nums, i, j, r);
        self.search(&child[..len], rem)
    }
}

/// Shortest solution (fewest operations) under the classic rules, each step
/// `(a, op, b, result)` with `a >= b`; `Some(vec![])` if the target is already
/// among the numbers, `None` if unreachable or if the input is out of range
/// (more than 6 numbers, a zero, a value above [`super::RESULT_CAP`]).
///
/// Iterative deepening: depth `d` runs only after every depth `< d` failed,
/// so the first solution found is a shortest one. Failed multisets are
/// remembered per remaining depth, which stays valid across iterations.
pub fn solve(numbers: &[u32], target: u32) -> Option<Vec<Step>> {
    let n = numbers.len();
    if n > MAX_NUMBERS
        || target == 0
        || numbers.iter().any(|&v| v == 0 || v > super::RESULT_CAP)
    {
        return None;
    }
    if numbers.contains(&target) {
        return Some(Vec::new());
    }
    let mut nums = [0; MAX_NUMBERS];
    nums[..n].copy_from_slice(numbers);
    nums[..n].sort_unstable_by(|a, b| b.cmp(a));
    let mut solver = Solver {
        target,
        failed: Default::default(),
        path: Vec::new(),
    };
    for depth in 1..n {
        if solver.search(&nums[..n], depth) {
            solver.path.reverse();
            return Some(solver.path);
        }
    }
    None
}

/// `"8-4=4, 4*6=24"`; fractions in parentheses: `"5-(1/5)=(24/5)"`.
pub fn format_solution(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|&(a, op, b, r)| format!("{a}{op}{b}={r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The numbers as exact values, sorted descending; `None` for an empty or
/// oversized hand.
fn exact_hand(numbers: &[u32]) -> Option<Vec<Num>> {
    if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
        return None;
    }
    let mut nums: Vec<Num> = numbers.iter().map(|&v| Num::int(v)).collect();
    nums.sort_unstable_by(|a, b| b.cmp(a));
    Some(nums)
}

/// A solution under use-all rules with exact rational arithmetic: the
/// `numbers.len() - 1` steps that combine every number into `target`
/// (`*1`, `/1`, zero and fractional intermediates allowed). Negative
/// intermediates are never needed: flipping a subtraction's operands
/// negates only its own subtree's value, so `|value|` stays reachable with
/// the larger-minus-smaller moves this game offers.
pub fn solve_all(numbers: &[u32], target: u32) -> Option<Vec<Step>> {
    let nums = exact_hand(numbers)?;
    let mut failed = HashSet::new();
    let mut steps = Vec::new();
    exact_search(&nums, Num::int(target), false, &mut failed, &mut steps).then_some(steps)
}

/// Whether `nums` (sorted descending) combine into `target`; pushes the
/// steps. `integers` keeps every intermediate an integer. Multisets known
/// to fail are kept in `failed`.
fn exact_search(
    nums: &[Num],
    target: Num,
    integers: bool,
    failed: &mut HashSet<Vec<Num>>,
    steps: &mut Vec<Step>,
) -> bool {
    if nums.len() == 1 {
        return nums[0] == target;
    }
    if failed.contains(nums) {
        return false;
    }
    for (i, j, op, r) in exact_moves(nums) {
        if integers && !r.is_int() {
            continue;
        }
        let (next, len) = combine(nums, i, j, r);
        steps.push(step_record(nums, i, j, op, r));
        if exact_search(&next[..len], target, integers, failed, steps) {
            return true;
        }
        steps.pop();
    }
    failed.insert(nums.to_vec());
    false
}

/// Every use-all move on `nums`: `(i, j, op, result)` over distinct value
/// pairs (equal values give equal children).
fn exact_moves(nums: &[Num]) -> Vec<(usize, usize, usize, Num)> {
    let mut out = Vec::new();
    for i in 0..nums.len() {
        if i > 0 && nums[i] == nums[i - 1] {
            continue;
        }
        for j in i + 1..nums.len() {
            if j > i + 1 && nums[j] == nums[j - 1] {
                continue;
            }
            for op in 0..EXACT_OPS {
                if let Some(r) = apply_exact(op, nums[i], nums[j]) {
                    out.push((i, j, op, r));
                }
            }
        }
    }
    out
}

/// What makes a use-all hand hard: how many distinct solutions it has and
/// whether every one of them needs a fractional intermediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandStats {
    /// Distinct solution expressions up to the order of the operands of `+`
    /// and `*` (`(a+b)*c` and `c*(b+a)` count once; regroupings such as
    /// `(a+b)+c` and `a+(b+c)` count apart), over all of `+ - * /` in either
    /// operand order, as a plain enumeration of expressions counts them.
    pub solutions: usize,
    /// No solution keeps every intermediate an integer.
    pub needs_fraction: bool,
}

/// [`HandStats`] of a hand under use-all rules; `None` if it is unsolvable
/// or out of range. Enumerates every expression tree, so keep hands small
/// (four numbers take about a millisecond).
pub fn hand_stats(numbers: &[u32], target: u32) -> Option<HandStats> {
    let nums = exact_hand(numbers)?;
    let leaves: Vec<(Num, String)> = nums.iter().map(|&v| (v, v.to_string())).collect();
    let mut found = BTreeSet::new();
    collect_solutions(&leaves, Num::int(target), &mut found);
    if found.is_empty() {
        return None;
    }
    let mut failed = HashSet::new();
    let needs_fraction = !exact_search(
        &nums,
        Num::int(target),
        true,
        &mut failed,
        &mut Vec::new(),
    );
    Some(HandStats {
        solutions: found.len(),
        needs_fraction,
    })
}

/// Every expression over `items` (value, text with commutative operands
/// sorted) that uses them all and equals `target`, into `found`.
fn collect_solutions(items: &[(Num, String)], target: Num, found: &mut BTreeSet<String>) {
    if items.len() == 1 {
        if items[0].0 == target {
            found.insert(items[0].1.clone());
        }
        return;
    }
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let ((a, x), (b, y)) = (&items[i], &items[j]);
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            let options = [
                (a.checked_add(*b), format!("({lo}+{hi})")),
                (a.checked_mul(*b), format!("({lo}*{hi})")),
                (a.checked_sub(*b), format!("({x}-{y})")),
                (b.checked_sub(*a), format!("({y}-{x})")),
                (a.checked_div(*b), format!("({x}/{y})")),
                (b.checked_div(*a), format!("({y}/{x})")),
            ];
            for (value, text) in options {
                let Some(value) = value else { continue };
                let mut next: Vec<(Num, String)> = items
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .map(|(_, it)| it.clone())
                    .collect();
                next.push((value, text));
                collect_solutions(&next, target, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_hands_are_solved_exactly() {
        let steps = solve_all(&[1, 5, 5, 5], 24).expect("5*(5-1/5)");
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().any(|s| !s.3.is_int()), "{steps:?}");
        let stats = hand_stats(&[1, 5, 5, 5], 24).unwrap();
        assert!(stats.needs_fraction);
        assert_eq!(stats.solutions, 1);
        for hand in [[3, 3, 8, 8], [1, 3, 4, 6], [1, 4, 5, 6]] {
            assert!(hand_stats(&hand, 24).unwrap().needs_fraction, "{hand:?}");
        }
        assert!(solve_all(&[1, 1, 1, 1], 24).is_none());
        assert!(hand_stats(&[1, 1, 1, 1], 24).is_none());
    }

    #[test]
    fn solutions_are_counted_up_to_operand_order() {
        // (1+1+1)*8: both groupings of the sum read ((1+1)+1) once sorted.
        assert_eq!(hand_stats(&[1, 1, 1, 8], 24).unwrap().solutions, 1);
        let one = hand_stats(&[1, 5, 5, 5], 24).unwrap();
        assert_eq!(one.solutions, 1, "(5-(1/5))*5");
        let many = hand_stats(&[2, 3, 4, 6], 24).unwrap();
        assert!(many.solutions > 20, "{many:?}");
    }
}
