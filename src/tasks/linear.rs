//! Linear equations in one variable, solved by doing the same thing to both
//! sides until the equation reads `x = v`.
//!
//! # Rules
//!
//! Each side of the equation is `m(px + q) + ax + b` with integer
//! coefficients: an optional bracket (`m = 0` means none; otherwise `m` is
//! not 1 and `p, q` are non-zero) plus free terms. The equation always has
//! exactly one root, an integer, and every action is an equivalence
//! transformation, so the root never changes. Actions:
//!
//! | action   | effect                                                        |
//! |----------|---------------------------------------------------------------|
//! | 0, 1     | expand the left / right bracket into the free terms           |
//! | 2, 3     | subtract the left / right free constant from both sides       |
//! | 4, 5     | subtract the left / right free x term from both sides         |
//! | 6, 7     | divide both sides by the left / right free x coefficient      |
//! | 8..20    | `+k` both sides, `k = 1..=12`                                  |
//! | 20..32   | `-k` both sides                                                |
//! | 32..44   | `+kx` both sides                                               |
//! | 44..56   | `-kx` both sides                                               |
//! | 56..67   | `×k` both sides, `k = 2..=12`                                   |
//! | 67..78   | `÷k` both sides, `k = 2..=12`                                   |
//! | 78..90   | `÷(-k)` both sides, `k = 1..=12`                                |
//!
//! Actions 2..=7 name "the coefficient present", whatever its size; the menu
//! 8..90 covers other small values. Each distinct transformation is offered
//! once: an action whose effect equals that of a lower, legal action among
//! 2..=7 is illegal (so with a left constant of 5, "-5" is action 2, not 24).
//! Adding terms is legal with brackets present (they act on the free terms).
//! Multiplying scales `m`, `a`, `b`. Division must keep every coefficient an
//! integer: free terms must be divisible, and `m(px + q) / k` is rewritten as
//! `(m/g)(px + q) / (k/g)` with `g = gcd(m, k)`, dividing the bracket's inside
//! by `k/g` unless that is `±1`. A bracket whose multiplier becomes 1 is
//! dropped and its terms collected. Every coefficient, expanded ones
//! included, must stay within `±`[`CAP`].
//!
//! The episode succeeds when no bracket is left and one side is exactly `x`
//! while the other is the root (`x = v` or `v = x`); it fails when the step
//! budget (`max_steps` in the spec; generated tasks use `2 * optimal + 2`)
//! runs out. Success is terminal.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! The generator draws the shape's coefficients and the root `v`, then sets
//! the right-hand free constant `d` so that `x = v` solves the equation. A
//! draw is kept if `|d| <= d max`, the x terms do not cancel, and [`solve`]
//! needs at least `min steps` steps. The sides are swapped with
//! probability 1/2. `±r..=s` means a non-zero value of either sign.
//!
//! | difficulty   | shape                                   | root      | coefficients                                                        | d max | min steps |
//! |--------------|-----------------------------------------|-----------|---------------------------------------------------------------------|-------|-----------|
//! | [0.0, 0.2)   | `x + b = d` or `ax = d`                 | -5..=12   | `a` 2..=6, `b` ±1..=9                                               | 99    | 1         |
//! | [0.2, 0.4)   | `ax + b = d`                            | -10..=10  | `a` 2..=6, `b` ±1..=12                                              | 99    | 2         |
//! | [0.4, 0.6)   | `ax + b = cx + d`                       | -10..=10  | `a, c` 1..=9, `b` ±1..=15                                           | 60    | 3         |
//! | [0.6, 0.8)   | `m(px + q) + b = cx + d`                | -10..=10  | `m` 2..=6, `p` 1..=2, `q` ±1..=9, `b` 0 or ±1..=9, `c` 0..=5        | 60    | 3         |
//! | [0.8, 1.0]   | `m(px + q) + ax + b = n(rx + s) + d` or `= cx + d` | -12..=12 | `m, n` ±2..=6 or -1, `p, r` ±1..=3, `q, s` ±1..=9, `a` -4..=4, `c` -6..=6 | 99 | 4 |
//!
//! Rejected draws are retried from the same seeded stream, so a task is a
//! pure function of `(difficulty, seed)`. After [`MAX_ATTEMPTS`] misses the
//! draw with the most steps is kept; the tests check that this fallback does
//! not fire in practice.
//!
//! # Solver
//!
//! [`solve`] is IDA* over the game's own moves with an admissible bound
//! ([`Equation::lower_bound`]): reaching `x = v` needs a constant added when
//! the x side's constant is not 0, an x term added when the other side has
//! x, a scaling when the net x coefficient is not `±1`, and an expand or a
//! scaling per bracket. Failed states are remembered per remaining depth.
//!
//! # Observation ([`OBS_DIM`] = 59 floats, all within `[-4, 4]`)
//!
//! With `sl(v) = sign(v) ln(1 + |v|) / 3`, `D` the net x coefficient (left
//! minus right, brackets expanded) and `h` the solver's lower bound:
//!
//! | index       | feature                                                    |
//! |-------------|------------------------------------------------------------|
//! | 0           | steps taken / `max_steps`                                  |
//! | 1           | steps left / 24                                            |
//! | 2           | `min(h, 8) / 8`                                            |
//! | 3, 4, 5     | `sl(D)`, `D == 1`, `D == -1`                                |
//! | 6           | brackets / 2                                               |
//! | 7 + 12s ..  | side `s` (left, right): bracket, `sl(m)`, `sl(p)`, `sl(q)`, `sl(a)`, `sl(b)`, `a == 0`, `b == 0`, `a == 1`, `sl(expanded x coef)`, `sl(expanded constant)`, side is exactly `x` |
//! | 31 + 2j ..  | action `j` (0..8, the expand and coefficient actions): legal, `clamp(h after - h, -3, 3)` (0 when illegal) |
//! | 47 + i      | `÷(i + 2)` legal (`i` 0..11)                               |
//! | 58          | `÷(-1)` legal                                              |

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Largest `k` of the menu actions.
pub const MENU_MAX: i32 = 12;
/// Bound on every coefficient during play, expanded ones included.
pub const CAP: i64 = 9999;
/// Bound on every coefficient of a spec, expanded ones included.
pub const SPEC_MAX: i64 = 999;
/// Largest step budget a spec may ask for.
pub const MAX_BUDGET: usize = 24;
/// Deepest search of [`solve`]; every valid spec is solvable in 5 steps.
pub const MAX_SOLVE_DEPTH: u32 = 8;
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 200;

/// First action of each block (see the module docs).
const DYNAMIC: usize = 2;
const ADD_CONST: usize = 8;
const SUB_CONST: usize = ADD_CONST + MENU_MAX as usize;
const ADD_X: usize = SUB_CONST + MENU_MAX as usize;
const SUB_X: usize = ADD_X + MENU_MAX as usize;
const MUL: usize = SUB_X + MENU_MAX as usize;
const DIV: usize = MUL + MENU_MAX as usize - 1;
const DIV_NEG: usize = DIV + MENU_MAX as usize - 1;
/// 2 expands, 6 coefficient actions, 82 menu actions.
pub const ACTION_DIM: usize = DIV_NEG + MENU_MAX as usize;

const GLOBAL_FEATURES: usize = 7;
const SIDE_FEATURES: usize = 12;
const MOVE_BASE: usize = GLOBAL_FEATURES + 2 * SIDE_FEATURES;
/// Two features for each of the expand and coefficient actions.
const DIV_BASE: usize = MOVE_BASE + 2 * ADD_CONST;
/// `÷2..=÷12` legal, then `÷(-1)` legal.
const DIV_FEATURES: usize = MENU_MAX as usize;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = DIV_BASE + DIV_FEATURES;

/// One side of an equation: `m(px + q) + ax + b`; `m == 0` means no bracket
/// (and then `p == q == 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Side {
    pub m: i32,
    pub p: i32,
    pub q: i32,
    pub a: i32,
    pub b: i32,
}

impl Side {
    /// A side without bracket: `ax + b`.
    pub fn linear(a: i32, b: i32) -> Side {
        Side {
            a,
            b,
            ..Side::default()
        }
    }

    pub fn has_bracket(&self) -> bool {
        self.m != 0
    }

    /// Coefficient of x with the bracket expanded.
    pub fn x_coef(&self) -> i64 {
        i64::from(self.m) * i64::from(self.p) + i64::from(self.a)
    }

    /// Constant with the bracket expanded.
    pub fn constant(&self) -> i64 {
        i64::from(self.m) * i64::from(self.q) + i64::from(self.b)
    }

    /// The side's value at `x`.
    fn eval(&self, x: i64) -> i64 {
        self.x_coef() * x + self.constant()
    }

    /// The side with its bracket multiplied out into the free terms.
    fn expanded(&self) -> Side {
        Side::linear(self.x_coef() as i32, self.constant() as i32)
    }

    /// Every coefficient, expanded ones included, within `±limit`.
    fn within(&self, limit: i64) -> bool {
        [self.m, self.p, self.q, self.a, self.b]
            .iter()
            .all(|&v| i64::from(v).abs() <= limit)
            && self.x_coef().abs() <= limit
            && self.constant().abs() <= limit
    }

    /// Builds a side from `i64` parts if each fits within [`CAP`].
    fn checked(m: i64, p: i64, q: i64, a: i64, b: i64) -> Option<Side> {
        let fit = |v: i64| (v.abs() <= CAP).then_some(v as i32);
        let side = Side {
            m: fit(m)?,
            p: fit(p)?,
            q: fit(q)?,
            a: fit(a)?,
            b: fit(b)?,
        };
        side.within(CAP).then_some(side)
    }

    fn add(&self, x: i64, c: i64) -> Option<Side> {
        let (m, p, q) = (i64::from(self.m), i64::from(self.p), i64::from(self.q));
        Side::checked(m, p, q, i64::from(self.a) + x, i64::from(self.b) + c)
    }

    fn mul(&self, k: i64) -> Option<Side> {
        let (p, q) = (i64::from(self.p), i64::from(self.q));
        let (m, a, b) = (
            i64::from(self.m) * k,
            i64::from(self.a) * k,
            i64::from(self.b) * k,
        );
        Side::checked(m, p, q, a, b)
    }

    /// The side divided by `k` (not 0 or 1), if all coefficients stay
    /// integers. The bracket keeps `m / gcd(m, k)` and its inside takes the
    /// rest of `k`; a multiplier of 1 drops the bracket.
    fn div(&self, k: i64) -> Option<Side> {
        let (a, b) = (i64::from(self.a), i64::from(self.b));
        if a % k != 0 || b % k != 0 {
            return None;
        }
        let (mut m, mut p, mut q) = (i64::from(self.m), i64::from(self.p), i64::from(self.q));
        if m != 0 {
            let g = gcd(m, k);
            let rest = k / g;
            m /= g;
            if rest.abs() == 1 {
                m *= rest;
            } else if p % rest == 0 && q % rest == 0 {
                p /= rest;
                q /= rest;
            } else {
                return None;
            }
        }
        let side = Side::checked(m, p, q, a / k, b / k)?;
        Some(if side.m == 1 { side.expanded() } else { side })
    }

    /// Whether dividing by `k` turns the bracket's multiplier into 1 (ignoring
    /// whether the free terms divide): `k == m`, or `m > 0` and `k = m j`
    /// with `|j| >= 2` dividing the bracket's inside.
    fn div_drops_bracket(&self, k: i64) -> bool {
        let (m, p, q) = (i64::from(self.m), i64::from(self.p), i64::from(self.q));
        if m == 0 || k == m {
            return m != 0;
        }
        m > 0 && k % m == 0 && (k / m).abs() >= 2 && p % (k / m) == 0 && q % (k / m) == 0
    }

    /// Whether the side is exactly `x`.
    fn is_x(&self) -> bool {
        !self.has_bracket() && self.a == 1 && self.b == 0
    }

    /// E.g. `"3(x + 2) - 4x + 5"`, `"-(2x - 1)"`, `"0"`.
    pub fn render(&self) -> String {
        let mut terms: Vec<(bool, String)> = Vec::new();
        if self.has_bracket() {
            let inner = render_terms(&[x_term(self.p), const_term(self.q)]);
            let mult = match self.m.abs() {
                1 => String::new(),
                m => m.to_string(),
            };
            terms.push((self.m < 0, format!("{mult}({inner})")));
        }
        terms.push(x_term(self.a));
        terms.push(const_term(self.b));
        render_terms(&terms)
    }
}

/// `(negative, magnitude text)` of an x term; empty text when `a == 0`.
fn x_term(a: i32) -> (bool, String) {
    let text = match a.abs() {
        0 => String::new(),
        1 => "x".to_string(),
        n => format!("{n}x"),
    };
    (a < 0, text)
}

fn const_term(b: i32) -> (bool, String) {
    let text = if b == 0 {
        String::new()
    } else {
        b.abs().to_string()
    };
    (b < 0, text)
}

/// Joins signed terms: `"-3x + 2"`; `"0"` when all are empty.
fn render_terms(terms: &[(bool, String)]) -> String {
    let mut out = String::new();
    for (neg, text) in terms.iter().filter(|(_, t)| !t.is_empty()) {
        match (out.is_empty(), neg) {
            (true, true) => out.push('-'),
            (true, false) => {}
            (false, true) => out.push_str(" - "),
            (false, false) => out.push_str(" + "),
        }
        out.push_str(text);
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Which side an expand acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    Left,
    Right,
}

/// One transformation of the equation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Expand(Which),
    /// Add `k` to both sides.
    AddConst(i32),
    /// Add `k x` to both sides.
    AddX(i32),
    /// Multiply both sides by `k`.
    Mul(i32),
    /// Divide both sides by `k`.
    Div(i32),
}

impl Op {
    /// E.g. `"expand left"`, `"-3 both sides"`, `"+x both sides"`,
    /// `"×2 both sides"`, `"÷(-4) both sides"`.
    pub fn label(&self) -> String {
        match *self {
            Op::Expand(Which::Left) => "expand left".to_string(),
            Op::Expand(Which::Right) => "expand right".to_string(),
            Op::AddConst(k) => format!("{}{} both sides", sign(k), k.abs()),
            Op::AddX(k) if k.abs() == 1 => format!("{}x both sides", sign(k)),
            Op::AddX(k) => format!("{}{}x both sides", sign(k), k.abs()),
            Op::Mul(k) if k < 0 => format!("×({k}) both sides"),
            Op::Mul(k) => format!("×{k} both sides"),
            Op::Div(k) if k < 0 => format!("÷({k}) both sides"),
            Op::Div(k) => format!("÷{k} both sides"),
        }
    }
}

fn sign(k: i32) -> char {
    if k < 0 {
        '-'
    } else {
        '+'
    }
}

/// Filler for unused history slots.
const NO_OP: Op = Op::AddConst(0);

/// `left = right`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Equation {
    pub left: Side,
    pub right: Side,
}

impl Equation {
    /// Net x coefficient, left minus right, brackets expanded.
    pub fn net_x(&self) -> i64 {
        self.left.x_coef() - self.right.x_coef()
    }

    /// The unique root if it exists and is an integer.
    pub fn root(&self) -> Option<i64> {
        let d = self.net_x();
        let c = self.right.constant() - self.left.constant();
        (d != 0 && c % d == 0).then(|| c / d)
    }

    /// `Some(v)` when the equation reads `x = v` or `v = x` (no brackets).
    pub fn solution(&self) -> Option<i64> {
        let (l, r) = (&self.left, &self.right);
        let constant = |s: &Side| (!s.has_bracket() && s.a == 0).then_some(i64::from(s.b));
        if l.is_x() {
            constant(r)
        } else if r.is_x() {
            constant(l)
        } else {
            None
        }
    }

    fn brackets(&self) -> u32 {
        u32::from(self.left.has_bracket()) + u32::from(self.right.has_bracket())
    }

    /// The equation after `op`, or `None` if `op` is not allowed here.
    pub fn apply(&self, op: Op) -> Option<Equation> {
        let both = |f: &dyn Fn(&Side) -> Option<Side>| {
            Some(Equation {
                left: f(&self.left)?,
                right: f(&self.right)?,
            })
        };
        match op {
            Op::Expand(Which::Left) if self.left.has_bracket() => Some(Equation {
                left: self.left.expanded(),
                right: self.right,
            }),
            Op::Expand(Which::Right) if self.right.has_bracket() => Some(Equation {
                left: self.left,
                right: self.right.expanded(),
            }),
            Op::Expand(_) => None,
            Op::AddConst(k) if k != 0 => both(&|s| s.add(0, i64::from(k))),
            Op::AddX(k) if k != 0 => both(&|s| s.add(i64::from(k), 0)),
            Op::Mul(k) if k.abs() >= 2 => both(&|s| s.mul(i64::from(k))),
            Op::Div(k) if k != 0 && k != 1 => both(&|s| s.div(i64::from(k))),
            _ => None,
        }
    }

    /// The operation behind `action` in this state, before legality checks.
    pub fn op_for(&self, action: Action) -> Option<Op> {
        let a = usize::from(action);
        let k = |base: usize| (a - base) as i32 + 1;
        let (l, r) = (&self.left, &self.right);
        Some(match a {
            0 => Op::Expand(Which::Left),
            1 => Op::Expand(Which::Right),
            2 => Op::AddConst(l.b.checked_neg()?),
            3 => Op::AddConst(r.b.checked_neg()?),
            4 => Op::AddX(l.a.checked_neg()?),
            5 => Op::AddX(r.a.checked_neg()?),
            6 => Op::Div(l.a),
            7 => Op::Div(r.a),
            _ if a < SUB_CONST => Op::AddConst(k(ADD_CONST)),
            _ if a < ADD_X => Op::AddConst(-k(SUB_CONST)),
            _ if a < SUB_X => Op::AddX(k(ADD_X)),
            _ if a < MUL => Op::AddX(-k(SUB_X)),
            _ if a < DIV => Op::Mul(k(MUL) + 1),
            _ if a < DIV_NEG => Op::Div(k(DIV) + 1),
            _ if a < ACTION_DIM => Op::Div(-k(DIV_NEG)),
            _ => return None,
        })
    }

    /// Calls `f(action, op, child)` for every legal move, ascending, each
    /// distinct operation once (the lowest action wins; only the coefficient
    /// actions 2..=7 can repeat another action's operation).
    pub fn for_each_move(&self, mut f: impl FnMut(Action, Op, &Equation)) {
        let mut named: [Option<Op>; 6] = [None; 6];
        for action in 0..ACTION_DIM as Action {
            let Some(op) = self.op_for(action) else {
                continue;
            };
            let a = usize::from(action);
            if a >= DYNAMIC && named.contains(&Some(op)) {
                continue;
            }
            if let Some(child) = self.apply(op) {
                if (DYNAMIC..ADD_CONST).contains(&a) {
                    named[a - DYNAMIC] = Some(op);
                }
                f(action, op, &child);
            }
        }
    }

    /// Admissible lower bound on the steps to `x = v` (see the module docs):
    /// 0 exactly when solved.
    pub fn lower_bound(&self) -> u32 {
        let (al, bl) = (self.left.x_coef(), self.left.constant());
        let (ar, br) = (self.right.x_coef(), self.right.constant());
        let d = al - ar;
        // (x on the left: constants there and x terms on the right must go,
        // D must become 1) and the mirror image.
        let orientations = [
            (u32::from(bl != 0) + u32::from(ar != 0), d != 1),
            (u32::from(br != 0) + u32::from(al != 0), d != -1),
        ];
        orientations
            .iter()
            .map(|&(adds, needs_scaling)| adds + self.scalings_and_expands(needs_scaling))
            .min()
            .unwrap_or(0)
    }

    /// Fewest scalings plus expands: a bracket goes only by an expand or by
    /// a division that turns its multiplier into 1. With no scaling needed, a
    /// scaling would have to be undone, so each bracket costs a step; two
    /// brackets share one division only if a single `k` drops both.
    fn scalings_and_expands(&self, needs_scaling: bool) -> u32 {
        let scale = u32::from(needs_scaling);
        match self.brackets() {
            0 => scale,
            1 => 1,
            _ if needs_scaling && self.one_division_drops_both() => 1,
            _ => 2,
        }
    }

    /// Whether some divisor `k` turns both brackets' multipliers into 1.
    fn one_division_drops_both(&self) -> bool {
        let (l, r) = (&self.left, &self.right);
        let m = i64::from(l.m);
        let inner = gcd(i64::from(l.p), i64::from(l.q));
        let candidates = (1..=inner).filter(|j| inner % j == 0);
        std::iter::once(m)
            .chain(candidates.flat_map(|j| [m * j, -m * j]))
            .any(|k| l.div_drops_bracket(k) && r.div_drops_bracket(k))
    }

    /// E.g. `"3(x + 2) = x - 4"`.
    pub fn render(&self) -> String {
        format!("{} = {}", self.left.render(), self.right.render())
    }
}

/// A live episode: the equation so far, the root, and the step budget.
/// Fixed-size with no heap data, so MCTS can clone it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linear {
    start: Equation,
    eq: Equation,
    root: i32,
    max_steps: u8,
    steps: u8,
    history: [Op; MAX_BUDGET],
}

impl Linear {
    /// Start state for `start` with a budget of `max_steps` (1..=24). The
    /// equation must be valid per spec rules (see [`Linear::from_spec`]).
    pub fn new(start: Equation, max_steps: u32) -> Result<Self, String> {
        check_side("left", &start.left)?;
        check_side("right", &start.right)?;
        if start.net_x() == 0 {
            return Err(format!(
                "equation: expected exactly one solution, but the x terms cancel in {}",
                start.render()
            ));
        }
        let root = start.root().ok_or_else(|| {
            format!(
                "equation: expected an integer solution, {} has x = {}/{}",
                start.render(),
                start.right.constant() - start.left.constant(),
                start.net_x()
            )
        })?;
        if !(1..=MAX_BUDGET as u32).contains(&max_steps) {
            return Err(format!(
                "max_steps: expected an integer in 1..={MAX_BUDGET}, got {max_steps}"
            ));
        }
        Ok(Linear {
            start,
            eq: start,
            root: root as i32,
            max_steps: max_steps as u8,
            steps: 0,
            history: [NO_OP; MAX_BUDGET],
        })
    }

    /// Parses `{"left":SIDE,"right":SIDE,"max_steps":1..=24}` where SIDE is
    /// `{"bracket":[m,p,q],"x":a,"c":b}` (`bracket` optional) for
    /// `m(px + q) + ax + b`. Every number and expanded coefficient must be
    /// within ±999, `m` not 0 or 1, `p` and `q` not 0, and the equation must
    /// have exactly one root, an integer. Unknown fields are errors.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"left":{"bracket":[m,p,q],"x":a,"c":b},"right":{"x":a,"c":b},"max_steps":1..=24} ("bracket" optional)"#;
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        const FIELDS: [&str; 3] = ["left", "right", "max_steps"];
        if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only {FIELDS:?}"
            ));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| format!("{name}: missing; expected {SHAPE}"))
        };
        let left = parse_side("left", field("left")?)?;
        let right = parse_side("right", field("right")?)?;
        let budget = field("max_steps")?;
        let max_steps = budget
            .as_u64()
            .filter(|n| (1..=MAX_BUDGET as u64).contains(n));
        let max_steps = max_steps.ok_or_else(|| {
            format!("max_steps: expected an integer in 1..={MAX_BUDGET}, got {budget}")
        })?;
        Linear::new(Equation { left, right }, max_steps as u32)
    }

    /// The start state's spec (the task's parameters, not the current state),
    /// so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        spec_of(&self.start, u32::from(self.max_steps))
    }

    /// The current equation.
    pub fn equation(&self) -> &Equation {
        &self.eq
    }

    pub fn root(&self) -> i32 {
        self.root
    }

    pub fn max_steps(&self) -> u32 {
        u32::from(self.max_steps)
    }

    /// Operations played so far.
    pub fn history(&self) -> &[Op] {
        &self.history[..usize::from(self.steps)]
    }

    fn out_of_steps(&self) -> bool {
        self.steps >= self.max_steps
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_success() || self.out_of_steps() {
            return;
        }
        self.eq.for_each_move(|a, _, _| out.push(a));
    }

    /// Whether `action` may be played now.
    pub fn is_legal(&self, action: Action) -> bool {
        let mut found = false;
        if !self.is_success() && !self.out_of_steps() {
            self.eq.for_each_move(|a, _, _| found |= a == action);
        }
        found
    }

    /// Applies a legal action. An illegal action is a bug (debug assert) and
    /// is ignored in release builds.
    pub fn step(&mut self, action: Action) {
        debug_assert!(
            self.is_legal(action),
            "illegal action {action} in {}",
            self.render()
        );
        if self.is_success() || self.out_of_steps() {
            return;
        }
        let Some(op) = self.eq.op_for(action) else {
            return;
        };
        let Some(next) = self.eq.apply(op) else {
            return;
        };
        self.eq = next;
        self.history[usize::from(self.steps)] = op;
        self.steps += 1;
    }

    /// The verifier: the equation reads `x = v` (or `v = x`) with `v` the
    /// root of the start equation.
    pub fn is_success(&self) -> bool {
        self.eq.solution() == Some(i64::from(self.root))
    }

    pub fn is_terminal(&self) -> bool {
        if self.is_success() || self.out_of_steps() {
            return true;
        }
        // Adding 1 or -1 is legal unless a constant sits at the cap.
        let quick = [Op::AddConst(1), Op::AddConst(-1)];
        if quick.iter().any(|&op| self.eq.apply(op).is_some()) {
            return false;
        }
        let mut any = false;
        self.eq.for_each_move(|_, _, _| any = true);
        !any
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let eq = &self.eq;
        let h = eq.lower_bound();
        let d = eq.net_x();
        out[0] = f32::from(self.steps) / f32::from(self.max_steps);
        out[1] = f32::from(self.max_steps - self.steps) / MAX_BUDGET as f32;
        out[2] = h.min(8) as f32 / 8.0;
        out[3] = sl(d);
        out[4] = flag(d == 1);
        out[5] = flag(d == -1);
        out[6] = eq.brackets() as f32 / 2.0;
        for (s, side) in [eq.left, eq.right].iter().enumerate() {
            let base = GLOBAL_FEATURES + s * SIDE_FEATURES;
            side_features(side, &mut out[base..base + SIDE_FEATURES]);
        }
        if self.is_success() || self.out_of_steps() {
            return;
        }
        eq.for_each_move(|a, op, child| {
            let a = usize::from(a);
            if a < ADD_CONST {
                let delta = i64::from(child.lower_bound()) - i64::from(h);
                out[MOVE_BASE + 2 * a] = 1.0;
                out[MOVE_BASE + 2 * a + 1] = delta.clamp(-3, 3) as f32;
            }
            match op {
                Op::Div(-1) => out[OBS_DIM - 1] = 1.0,
                Op::Div(k) if (2..=MENU_MAX).contains(&k) => {
                    out[DIV_BASE + k as usize - 2] = 1.0;
                }
                _ => {}
            }
        });
    }

    /// Human label of an action in this state, e.g. `"-3 both sides"`.
    pub fn label(&self, action: Action) -> String {
        match self.eq.op_for(action) {
            Some(op) if self.eq.apply(op).is_some() => op.label(),
            _ => format!("illegal action {action}"),
        }
    }

    /// One line, e.g. `"3(x + 2) = 12 | step 1/6 | so far: ÷3 both sides"`,
    /// with `" | solved"` / `" | failed"` once the episode is over.
    pub fn render(&self) -> String {
        let so_far = if self.steps == 0 {
            "(none)".to_string()
        } else {
            format_solution(self.history())
        };
        let mut s = format!(
            "{} | step {}/{} | so far: {so_far}",
            self.eq.render(),
            self.steps,
            self.max_steps
        );
        match self.outcome() {
            Some(Outcome::Success) => s.push_str(" | solved"),
            Some(_) => s.push_str(" | failed"),
            None => {}
        }
        s
    }
}

/// Signed log scale: `sign(v) ln(1 + |v|) / 3`, within ±3.4 for `|v| <= 2 CAP`.
fn sl(v: i64) -> f32 {
    let s = ((v.abs() as f32) + 1.0).ln() / 3.0;
    if v < 0 {
        -s
    } else {
        s
    }
}

/// The 12 per-side features (module docs).
fn side_features(side: &Side, out: &mut [f32]) {
    out[0] = flag(side.has_bracket());
    out[1] = sl(i64::from(side.m));
    out[2] = sl(i64::from(side.p));
    out[3] = sl(i64::from(side.q));
    out[4] = sl(i64::from(side.a));
    out[5] = sl(i64::from(side.b));
    out[6] = flag(side.a == 0);
    out[7] = flag(side.b == 0);
    out[8] = flag(side.a == 1);
    out[9] = sl(side.x_coef());
    out[10] = sl(side.constant());
    out[11] = flag(side.is_x());
}

/// Spec rules for one side: ranges and bracket shape.
fn check_side(name: &str, side: &Side) -> Result<(), String> {
    if side.has_bracket() {
        if side.m == 1 {
            return Err(format!(
                "{name}.bracket[0]: expected a multiplier other than 0 and 1, got 1"
            ));
        }
        if side.p == 0 || side.q == 0 {
            return Err(format!(
                "{name}.bracket: expected non-zero p and q in [m, p, q], got [{}, {}, {}]",
                side.m, side.p, side.q
            ));
        }
    } else if side.p != 0 || side.q != 0 {
        return Err(format!(
            "{name}.bracket: expected p = q = 0 without a multiplier, got [0, {}, {}]",
            side.p, side.q
        ));
    }
    if !side.within(SPEC_MAX) {
        return Err(format!(
            "{name}: expected every coefficient, expanded ones included, within ±{SPEC_MAX}, got {}",
            side.render()
        ));
    }
    Ok(())
}

/// A JSON integer within `±SPEC_MAX`, or an error naming `field`.
fn json_coef(field: &str, value: &serde_json::Value) -> Result<i32, String> {
    value
        .as_i64()
        .filter(|v| v.abs() <= SPEC_MAX)
        .map(|v| v as i32)
        .ok_or_else(|| {
            format!("{field}: expected an integer in -{SPEC_MAX}..={SPEC_MAX}, got {value}")
        })
}

fn parse_side(name: &str, value: &serde_json::Value) -> Result<Side, String> {
    const FIELDS: [&str; 3] = ["bracket", "x", "c"];
    let obj = value.as_object().ok_or_else(|| {
        format!("{name}: expected an object {{\"bracket\":[m,p,q],\"x\":a,\"c\":b}}, got {value}")
    })?;
    if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "{name}: unknown field \"{key}\"; expected only {FIELDS:?}"
        ));
    }
    let coef = |key: &str| {
        let v = obj
            .get(key)
            .ok_or_else(|| format!("{name}.{key}: missing; expected an integer"))?;
        json_coef(&format!("{name}.{key}"), v)
    };
    let mut side = Side::linear(coef("x")?, coef("c")?);
    if let Some(bracket) = obj.get("bracket") {
        let parts = bracket
            .as_array()
            .filter(|parts| parts.len() == 3)
            .ok_or_else(|| {
                format!("{name}.bracket: expected [m, p, q] for m(px + q), got {bracket}")
            })?;
        let part = |k: usize| json_coef(&format!("{name}.bracket[{k}]"), &parts[k]);
        (side.m, side.p, side.q) = (part(0)?, part(1)?, part(2)?);
        if side.m == 0 {
            return Err(format!(
                "{name}.bracket[0]: expected a multiplier other than 0 and 1, got 0"
            ));
        }
    }
    Ok(side)
}

fn side_spec(side: &Side) -> String {
    let bracket = if side.has_bracket() {
        format!("\"bracket\":[{},{},{}],", side.m, side.p, side.q)
    } else {
        String::new()
    };
    format!("{{{bracket}\"x\":{},\"c\":{}}}", side.a, side.b)
}

fn spec_of(eq: &Equation, max_steps: u32) -> String {
    format!(
        "{{\"left\":{},\"right\":{},\"max_steps\":{max_steps}}}",
        side_spec(&eq.left),
        side_spec(&eq.right)
    )
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// A cheap mixing hasher for equations (SipHash would dominate the solver).
#[derive(Default)]
struct EqHasher(u64);

impl Hasher for EqHasher {
    fn finish(&self) -> u64 {
        let x = self.0;
        let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, v: i32) {
        self.0 = (self.0.rotate_left(21) ^ u64::from(v as u32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type EqSet = HashSet<Equation, BuildHasherDefault<EqHasher>>;

/// IDA* state: per remaining depth, equations proven unsolvable in that many
/// steps, and reusable child buffers.
struct Solver {
    failed: Vec<EqSet>,
    children: Vec<Vec<(Op, Equation)>>,
    /// The solution found, last step first.
    path: Vec<Op>,
}

impl Solver {
    /// Whether `eq` reaches `x = v` within `rem` steps; on success the steps
    /// are pushed onto `path`.
    fn search(&mut self, eq: &Equation, rem: u32) -> bool {
        if eq.solution().is_some() {
            return true;
        }
        if rem == 0 || self.failed[rem as usize].contains(eq) {
            return false;
        }
        let mut children = std::mem::take(&mut self.children[rem as usize]);
        children.clear();
        eq.for_each_move(|_, op, child| {
            if child.lower_bound() < rem {
                children.push((op, *child));
            }
        });
        let mut found = false;
        for &(op, child) in &children {
            if self.search(&child, rem - 1) {
                self.path.push(op);
                found = true;
                break;
            }
        }
        self.children[rem as usize] = children;
        if !found {
            self.failed[rem as usize].insert(*eq);
        }
        found
    }
}

/// A shortest sequence of operations (using the game's moves) that turns
/// `eq` into `x = v` or `v = x`; `Some(vec![])` if it already reads so;
/// `None` if the equation has no unique integer root or needs more than
/// [`MAX_SOLVE_DEPTH`] steps.
pub fn solve(eq: &Equation) -> Option<Vec<Op>> {
    eq.root()?;
    let depth = MAX_SOLVE_DEPTH as usize;
    let mut solver = Solver {
        failed: vec![EqSet::default(); depth + 1],
        children: vec![Vec::new(); depth + 1],
        path: Vec::new(),
    };
    for bound in eq.lower_bound()..=MAX_SOLVE_DEPTH {
        if solver.search(eq, bound) {
            solver.path.reverse();
            return Some(solver.path);
        }
    }
    None
}

/// `"expand left, -2x both sides, ÷3 both sides"`.
pub fn format_solution(ops: &[Op]) -> String {
    ops.iter().map(Op::label).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// One side as the verifier tracks it: expanded `ax + b` and the bracket
/// `m(px + q)` still written, if any.
#[derive(Clone, Copy)]
struct Tracked {
    a: i128,
    b: i128,
    bracket: Option<(i128, i128, i128)>,
}

impl Tracked {
    fn of(side: &Side) -> Tracked {
        Tracked {
            a: i128::from(side.x_coef()),
            b: i128::from(side.constant()),
            bracket: side
                .has_bracket()
                .then(|| (side.m.into(), side.p.into(), side.q.into())),
        }
    }

    fn scale(&mut self, k: i128) -> Option<()> {
        self.a = self.a.checked_mul(k)?;
        self.b = self.b.checked_mul(k)?;
        if let Some((m, _, _)) = &mut self.bracket {
            *m = m.checked_mul(k)?;
        }
        Some(())
    }

    /// Divides by `k` if the bracket and the free terms each divide exactly.
    fn divide(&mut self, k: i128) -> Option<()> {
        let (m, p, q) = self.bracket.unwrap_or((0, 0, 0));
        let (bx, bc) = (m.checked_mul(p)?, m.checked_mul(q)?);
        let exact = |v: i128| v % k == 0;
        if !(exact(bx) && exact(bc) && exact(self.a - bx) && exact(self.b - bc)) {
            return None;
        }
        self.a /= k;
        self.b /= k;
        if self.bracket.is_some() {
            // Write m(px + q)/k with the smallest multiplier: strip the
            // common factor of m and k, push the rest of k inside.
            let g = gcd128(m, k);
            let (m2, k2) = (m / g, k / g);
            let (m2, p2, q2) = if k2.abs() == 1 {
                (m2 * k2, p, q)
            } else {
                (m2, p / k2, q / k2)
            };
            self.bracket = (m2 != 1).then_some((m2, p2, q2));
        }
        Some(())
    }
}

/// Checks human text like `"expand left, -3 both sides, ÷2 both sides"`
/// against the spec, independently of the game code: steps are separated
/// by `,`, `;` or newlines; "both sides" is optional; `*`/`/` are accepted
/// for `×`/`÷`, and `÷-3` for `÷(-3)`. Every step must be allowed (expand
/// only a bracket still written, divide only when every coefficient stays an
/// integer), the number of steps must fit the spec's budget, and the final
/// equation must read `x = v` or `v = x` with `v` the root. Unlike the game,
/// any integer `k` is accepted and coefficients are not capped.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(start) = Linear::from_spec(spec) else {
        return false;
    };
    let eq = start.start;
    let (d, c) = (eq.net_x(), eq.right.constant() - eq.left.constant());
    if d == 0 || c % d != 0 {
        return false;
    }
    let root = i128::from(c / d);
    let mut sides = [Tracked::of(&eq.left), Tracked::of(&eq.right)];
    let mut steps = 0;
    for text in solution.split([',', ';', '\n']) {
        if text.trim().is_empty() {
            continue;
        }
        steps += 1;
        if steps > start.max_steps() || apply_text(&mut sides, text).is_none() {
            return false;
        }
    }
    let reads = |x: &Tracked, v: &Tracked| {
        x.bracket.is_none()
            && v.bracket.is_none()
            && (x.a, x.b) == (1, 0)
            && (v.a, v.b) == (0, root)
    };
    reads(&sides[0], &sides[1]) || reads(&sides[1], &sides[0])
}

fn gcd128(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i128
}

/// Applies one step of text to both sides; None if malformed or not allowed.
fn apply_text(sides: &mut [Tracked; 2], text: &str) -> Option<()> {
    let text = text.trim();
    let text = text.strip_suffix("both sides").unwrap_or(text).trim();
    match text {
        "expand left" | "expand right" => {
            let side = &mut sides[usize::from(text == "expand right")];
            side.bracket.take().map(|_| ())
        }
        _ => {
            let mut chars = text.chars();
            let op = chars.next()?;
            let rest = chars.as_str().trim();
            match op {
                '+' | '-' | '−' => {
                    let (num, is_x) = match rest.strip_suffix('x') {
                        Some(n) => (if n.is_empty() { "1" } else { n }, true),
                        None => (rest, false),
                    };
                    let k = parse_int(num)?;
                    let k = if op == '+' { k } else { -k };
                    for side in sides.iter_mut() {
                        let slot = if is_x { &mut side.a } else { &mut side.b };
                        *slot = slot.checked_add(k)?;
                    }
                    Some(())
                }
                '×' | '*' => {
                    let k = parse_signed(rest).filter(|&k| k != 0)?;
                    sides.iter_mut().try_for_each(|s| s.scale(k))
                }
                '÷' | '/' => {
                    let k = parse_signed(rest).filter(|&k| k != 0)?;
                    sides.iter_mut().try_for_each(|s| s.divide(k))
                }
                _ => None,
            }
        }
    }
}

/// Plain ASCII digits.
fn parse_int(s: &str) -> Option<i128> {
    if s.is_empty() || s.len() > 30 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `"3"`, `"-3"`, `"(-3)"` or `"(3)"`.
fn parse_signed(s: &str) -> Option<i128> {
    let s = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(s)
        .trim();
    match s.strip_prefix('-') {
        Some(n) => parse_int(n).map(|k| -k),
        None => parse_int(s),
    }
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    root: (i32, i32),
    d_max: i32,
    min_steps: usize,
    draw: fn(&mut ChaCha8Rng) -> Equation,
}

const BANDS: [Band; 5] = [
    Band {
        root: (-5, 12),
        d_max: 99,
        min_steps: 1,
        draw: draw_one_step,
    },
    Band {
        root: (-10, 10),
        d_max: 99,
        min_steps: 2,
        draw: draw_two_step,
    },
    Band {
        root: (-10, 10),
        d_max: 60,
        min_steps: 3,
        draw: draw_both_sides,
    },
    Band {
        root: (-10, 10),
        d_max: 60,
        min_steps: 3,
        draw: draw_one_bracket,
    },
    Band {
        root: (-12, 12),
        d_max: 99,
        min_steps: 4,
        draw: draw_brackets,
    },
];

/// A non-zero value in `±lo..=hi`.
fn nonzero(rng: &mut ChaCha8Rng, lo: i32, hi: i32) -> i32 {
    let v = rng.random_range(lo..=hi);
    if rng.random::<bool>() {
        v
    } else {
        -v
    }
}

/// `x + b = d` or `ax = d` (d is set later).
fn draw_one_step(rng: &mut ChaCha8Rng) -> Equation {
    let left = if rng.random::<bool>() {
        Side::linear(1, nonzero(rng, 1, 9))
    } else {
        Side::linear(rng.random_range(2..=6), 0)
    };
    Equation {
        left,
        right: Side::default(),
    }
}

/// `ax + b = d`.
fn draw_two_step(rng: &mut ChaCha8Rng) -> Equation {
    let left = Side::linear(rng.random_range(2..=6), nonzero(rng, 1, 12));
    Equation {
        left,
        right: Side::default(),
    }
}

/// `ax + b = cx + d`.
fn draw_both_sides(rng: &mut ChaCha8Rng) -> Equation {
    let left = Side::linear(rng.random_range(1..=9), nonzero(rng, 1, 15));
    let right = Side::linear(rng.random_range(1..=9), 0);
    Equation { left, right }
}

/// A bracket with random shape `m(px + q)`, `m` in `ms`.
fn bracket(rng: &mut ChaCha8Rng, ms: &[i32], p: (i32, i32), signed_p: bool) -> Side {
    let m = ms[rng.random_range(0..ms.len())];
    let p = if signed_p {
        nonzero(rng, p.0, p.1)
    } else {
        rng.random_range(p.0..=p.1)
    };
    Side {
        m,
        p,
        q: nonzero(rng, 1, 9),
        ..Side::default()
    }
}

/// `m(px + q) + b = cx + d`.
fn draw_one_bracket(rng: &mut ChaCha8Rng) -> Equation {
    let mut left = bracket(rng, &[2, 3, 4, 5, 6], (1, 2), false);
    left.b = if rng.random::<bool>() {
        0
    } else {
        nonzero(rng, 1, 9)
    };
    let right = Side::linear(rng.random_range(0..=5), 0);
    Equation { left, right }
}

/// `m(px + q) + ax + b = n(rx + s) + d` or `= cx + d`.
fn draw_brackets(rng: &mut ChaCha8Rng) -> Equation {
    const MS: [i32; 11] = [-6, -5, -4, -3, -2, -1, 2, 3, 4, 5, 6];
    let mut left = bracket(rng, &MS, (1, 3), true);
    left.a = if rng.random::<bool>() {
        0
    } else {
        rng.random_range(-4..=4)
    };
    left.b = if rng.random::<bool>() {
        0
    } else {
        nonzero(rng, 1, 9)
    };
    let right = if rng.random::<bool>() {
        bracket(rng, &MS, (1, 3), true)
    } else {
        Side::linear(rng.random_range(-6..=6), 0)
    };
    Equation { left, right }
}

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

/// Step budget of a generated task with an `optimal`-step solution.
pub fn budget_for(optimal: usize) -> u32 {
    (2 * optimal + 2) as u32
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (eq, ops) = pick_equation(band_for(difficulty), &mut rng);
    Task {
        task_id: format!("linear-{seed:016x}"),
        family: Family::Linear,
        difficulty,
        seed,
        statement: format!(
            "Solve {} for x: apply the same operation to both sides until it reads x = value",
            eq.render()
        ),
        spec: spec_of(&eq, budget_for(ops.len())),
        reference_solution: format_solution(&ops),
        optimal_steps: Some(ops.len() as u32),
    }
}

/// Draws until an equation meets the band; after [`MAX_ATTEMPTS`] keeps the
/// draw with the longest solution.
fn pick_equation(band: &Band, rng: &mut ChaCha8Rng) -> (Equation, Vec<Op>) {
    let mut best: Option<(Equation, Vec<Op>)> = None;
    for attempt in 0.. {
        if attempt >= MAX_ATTEMPTS {
            if let Some(found) = best.take() {
                return found;
            }
        }
        let Some(eq) = draw_equation(band, rng) else {
            continue;
        };
        let Some(ops) = solve(&eq) else { continue };
        if ops.len() >= band.min_steps {
            return (eq, ops);
        }
        if best.as_ref().is_none_or(|(_, b)| ops.len() > b.len()) {
            best = Some((eq, ops));
        }
    }
    unreachable!("the attempt loop only exits by returning")
}

/// The band's shape with the right constant set so that the drawn root
/// solves it; None when that constant is out of range or x cancels.
fn draw_equation(band: &Band, rng: &mut ChaCha8Rng) -> Option<Equation> {
    let mut eq = (band.draw)(rng);
    let root = i64::from(rng.random_range(band.root.0..=band.root.1));
    let d = eq.left.eval(root) - eq.right.eval(root);
    if eq.net_x() == 0 || d.abs() > i64::from(band.d_max) {
        return None;
    }
    eq.right.b = d as i32;
    if eq.solution().is_some() || check_side("right", &eq.right).is_err() {
        return None;
    }
    if rng.random::<bool>() {
        eq = Equation {
            left: eq.right,
            right: eq.left,
        };
    }
    Some(eq)
}

impl Puzzle for Linear {
    fn is_success(&self) -> bool {
        Linear::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Linear::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    fn lin(a: i32, b: i32) -> Side {
        Side::linear(a, b)
    }

    fn br(m: i32, p: i32, q: i32, a: i32, b: i32) -> Side {
        Side { m, p, q, a, b }
    }

    fn eq(left: Side, right: Side) -> Equation {
        Equation { left, right }
    }

    fn game(left: Side, right: Side, max_steps: u32) -> Linear {
        Linear::new(eq(left, right), max_steps).expect("valid test equation")
    }

    fn legal(g: &Linear) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// The legal action whose label is `text`.
    fn action_for(g: &Linear, text: &str) -> Option<Action> {
        legal(g).into_iter().find(|&a| g.label(a) == text)
    }

    /// Plays `ops` through the game by label; None if one is not legal.
    fn replay(spec: &str, ops: &[Op]) -> Option<Linear> {
        let mut g = Linear::from_spec(spec).ok()?;
        for op in ops {
            let a = action_for(&g, &op.label())?;
            g.step(a);
        }
        Some(g)
    }

    /// Plain breadth-first search over distinct equations: shortest length.
    fn bfs(start: &Equation, max_depth: usize) -> Option<usize> {
        let mut frontier = vec![*start];
        let mut seen: HashSet<Equation> = frontier.iter().copied().collect();
        for depth in 0..=max_depth {
            if frontier.iter().any(|e| e.solution().is_some()) {
                return Some(depth);
            }
            let mut next = Vec::new();
            for e in &frontier {
                e.for_each_move(|_, _, child| {
                    if seen.insert(*child) {
                        next.push(*child);
                    }
                });
            }
            frontier = next;
        }
        None
    }

    #[test]
    fn rendering_sides() {
        assert_eq!(br(3, 1, 2, -4, 5).render(), "3(x + 2) - 4x + 5");
        assert_eq!(br(-1, 2, -1, 0, 0).render(), "-(2x - 1)");
        assert_eq!(br(-3, -1, 7, 1, -1).render(), "-3(-x + 7) + x - 1");
        assert_eq!(lin(0, 0).render(), "0");
        assert_eq!(lin(-1, 0).render(), "-x");
        assert_eq!(lin(0, -7).render(), "-7");
        assert_eq!(lin(12, 3).render(), "12x + 3");
    }

    #[test]
    fn labels_of_operations() {
        assert_eq!(Op::Expand(Which::Left).label(), "expand left");
        assert_eq!(Op::AddConst(-3).label(), "-3 both sides");
        assert_eq!(Op::AddConst(14).label(), "+14 both sides");
        assert_eq!(Op::AddX(-1).label(), "-x both sides");
        assert_eq!(Op::AddX(2).label(), "+2x both sides");
        assert_eq!(Op::Mul(3).label(), "×3 both sides");
        assert_eq!(Op::Div(2).label(), "÷2 both sides");
        assert_eq!(Op::Div(-4).label(), "÷(-4) both sides");
    }

    #[test]
    fn action_layout() {
        assert_eq!(ACTION_DIM, 90);
        let e = eq(lin(2, 5), lin(0, 11));
        assert_eq!(e.op_for(8), Some(Op::AddConst(1)));
        assert_eq!(e.op_for(19), Some(Op::AddConst(12)));
        assert_eq!(e.op_for(20), Some(Op::AddConst(-1)));
        assert_eq!(e.op_for(32), Some(Op::AddX(1)));
        assert_eq!(e.op_for(55), Some(Op::AddX(-12)));
        assert_eq!(e.op_for(56), Some(Op::Mul(2)));
        assert_eq!(e.op_for(66), Some(Op::Mul(12)));
        assert_eq!(e.op_for(67), Some(Op::Div(2)));
        assert_eq!(e.op_for(77), Some(Op::Div(12)));
        assert_eq!(e.op_for(78), Some(Op::Div(-1)));
        assert_eq!(e.op_for(89), Some(Op::Div(-12)));
        assert_eq!(e.op_for(90), None);
        assert_eq!(e.op_for(2), Some(Op::AddConst(-5)));
        assert_eq!(e.op_for(6), Some(Op::Div(2)));
    }

    #[test]
    fn two_step_equation_plays_out() {
        // 2x + 5 = 11
        let mut g = game(lin(2, 5), lin(0, 11), 6);
        assert_eq!(g.root(), 3);
        let acts = legal(&g);
        assert!(acts.contains(&2), "cancel the left constant");
        assert!(!acts.contains(&(SUB_CONST as Action + 4)), "-5 is action 2");
        assert!(acts.contains(&3), "-11 both sides");
        assert!(!acts.contains(&6), "2x + 5 is not divisible by 2");
        assert!(!legal(&g).contains(&0), "no bracket");
        assert_eq!(g.label(2), "-5 both sides");
        g.step(2);
        assert_eq!(g.equation().render(), "2x = 6");
        assert!(!g.is_terminal());
        let acts = legal(&g);
        assert!(
            acts.contains(&6) && !acts.contains(&(DIV as Action)),
            "÷2 is action 6"
        );
        assert_eq!(g.label(6), "÷2 both sides");
        g.step(6);
        assert_eq!(g.equation().render(), "x = 3");
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(
            g.render(),
            "x = 3 | step 2/6 | so far: -5 both sides, ÷2 both sides | solved"
        );
        assert_eq!(g.to_move(), 0);
    }

    #[test]
    fn running_out_of_steps_fails() {
        let mut g = game(lin(2, 5), lin(0, 11), 2);
        g.step(ADD_CONST as Action); // +1 both sides
        assert_eq!(g.equation().render(), "2x + 6 = 12");
        g.step(6);
        assert_eq!(g.equation().render(), "x + 3 = 6");
        assert!(g.is_terminal() && !g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("| failed"));
    }

    #[test]
    fn v_equals_x_also_succeeds() {
        // 7 = x + 3  ->  4 = x
        let mut g = game(lin(0, 7), lin(1, 3), 4);
        g.step(3);
        assert_eq!(g.equation().render(), "4 = x");
        assert!(g.is_success());
    }

    #[test]
    fn brackets_expand_and_divide() {
        // 3(x + 2) = 12: dividing by 3 drops the bracket.
        let e = eq(br(3, 1, 2, 0, 0), lin(0, 12));
        let d3 = e.apply(Op::Div(3)).unwrap();
        assert_eq!(d3.render(), "x + 2 = 4");
        assert_eq!(
            e.apply(Op::Expand(Which::Left)).unwrap().render(),
            "3x + 6 = 12"
        );
        assert_eq!(e.apply(Op::Expand(Which::Right)), None);
        assert_eq!(e.apply(Op::Div(2)), None, "3(x + 2) / 2 is not integral");
        assert_eq!(
            e.apply(Op::Mul(2)).unwrap().render(),
            "6(x + 2) = 24",
            "multiplying scales m"
        );
        assert_eq!(
            e.apply(Op::AddConst(-2)).unwrap().render(),
            "3(x + 2) - 2 = 10"
        );
        // 4(2x + 6) = 8: ÷8 -> gcd(4, 8) = 4 leaves m = 1, inside / 2.
        let e = eq(br(4, 2, 6, 0, 0), lin(0, 8));
        assert_eq!(e.apply(Op::Div(8)).unwrap().render(), "x + 3 = 1");
        assert_eq!(e.apply(Op::Div(2)).unwrap().render(), "2(2x + 6) = 4");
        assert_eq!(e.apply(Op::Div(-4)).unwrap().render(), "-(2x + 6) = -2");
        assert_eq!(
            e.apply(Op::Div(-8)).unwrap().render(),
            "-x - 3 = -1",
            "m = 1 after gcd"
        );
        let neg = eq(br(-1, 1, 3, 0, 0), lin(0, 5));
        assert_eq!(neg.apply(Op::Div(-1)).unwrap().render(), "x + 3 = -5");
        assert_eq!(neg.apply(Op::Div(-1)).unwrap().left.m, 0);
    }

    #[test]
    fn coefficient_actions_are_deduplicated() {
        // 3x + 3 = 3: both constant actions subtract 3; only the first stays.
        let g = game(lin(3, 3), lin(0, 3), 6);
        let acts = legal(&g);
        assert!(acts.contains(&2) && !acts.contains(&3), "{acts:?}");
        assert!(!acts.contains(&(SUB_CONST as Action + 2)));
        // ÷3 via the left coefficient; the menu ÷3 is hidden.
        assert!(acts.contains(&6) && !acts.contains(&(DIV as Action + 1)));
        // x coefficient 1 on the left: ÷1 is not an action.
        let g = game(lin(1, 3), lin(0, 5), 6);
        assert!(!legal(&g).contains(&6));
        assert_eq!(g.label(6), "illegal action 6");
    }

    #[test]
    fn cap_bounds_coefficients() {
        let e = eq(lin(999, 0), lin(0, 999));
        assert!(e.apply(Op::Mul(10)).is_some());
        assert!(
            e.apply(Op::Mul(11)).is_none(),
            "9990 ok, 10989 over the cap"
        );
        let stuck = eq(lin(2, CAP as i32), lin(1, -(CAP as i32)));
        assert!(stuck.apply(Op::AddConst(1)).is_none());
        assert!(stuck.apply(Op::AddConst(-1)).is_none());
        let g = Linear {
            start: stuck,
            eq: stuck,
            root: 0,
            max_steps: 5,
            steps: 0,
            history: [NO_OP; MAX_BUDGET],
        };
        assert!(!g.is_terminal(), "x moves remain");
        assert_eq!(legal(&g).is_empty(), g.is_terminal());
    }

    #[test]
    fn lower_bound_examples() {
        assert_eq!(eq(lin(1, 0), lin(0, 4)).lower_bound(), 0);
        assert_eq!(eq(lin(0, 4), lin(1, 0)).lower_bound(), 0);
        assert_eq!(eq(lin(2, 5), lin(0, 11)).lower_bound(), 2);
        assert_eq!(eq(lin(3, 5), lin(1, 11)).lower_bound(), 3);
        assert_eq!(eq(br(3, 1, 2, 0, 0), lin(0, 12)).lower_bound(), 2);
        // 2(x + 3) = 4(x - 1): no single division drops both brackets.
        assert_eq!(eq(br(2, 1, 3, 0, 0), br(4, 1, -1, 0, 0)).lower_bound(), 4);
        // 2(x + 3) = 2(2x - 1) ... ÷2 drops both.
        assert!(eq(br(2, 1, 3, 0, 0), br(2, 2, -1, 0, 0)).one_division_drops_both());
    }

    #[test]
    fn solve_finds_shortest_solutions() {
        let two = solve(&eq(lin(2, 5), lin(0, 11))).unwrap();
        assert_eq!(format_solution(&two), "-5 both sides, ÷2 both sides");
        assert_eq!(solve(&eq(lin(1, 0), lin(0, 4))), Some(vec![]));
        assert_eq!(solve(&eq(lin(2, 0), lin(0, 5))), None, "root 5/2");
        assert_eq!(solve(&eq(lin(2, 1), lin(2, 5))), None, "no root");
        let brackets = eq(br(2, 1, 3, 0, 0), br(4, 1, -1, 0, 0));
        assert_eq!(solve(&brackets).map(|s| s.len()), Some(4));
        let d3 = solve(&eq(br(3, 1, 2, 0, 0), lin(0, 12))).unwrap();
        assert_eq!(format_solution(&d3), "-6 both sides, ÷3 both sides");
        let neg = solve(&eq(lin(0, 5), lin(-1, 0))).unwrap();
        assert_eq!(format_solution(&neg), "÷(-1) both sides");
    }

    #[test]
    fn solve_matches_bfs() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut checked = [0; 5];
        while checked.iter().sum::<usize>() < 160 {
            let band = &BANDS[rng.random_range(0..BANDS.len())];
            let Some(e) = draw_equation(band, &mut rng) else {
                continue;
            };
            let ops = solve(&e).expect("valid equations are solvable");
            let n = ops.len();
            // BFS to depth n - 1 expands every state within n - 2 steps:
            // cheap up to n = 4, so cap how many of those we check.
            if n > 4 || (n == 4 && checked[4] >= 10) {
                continue;
            }
            let end = ops.iter().try_fold(e, |e, &op| e.apply(op));
            assert!(end.and_then(|e| e.solution()).is_some(), "{}", e.render());
            assert_eq!(
                bfs(&e, n.saturating_sub(1)),
                None,
                "shorter: {}",
                e.render()
            );
            assert!(e.lower_bound() as usize <= n, "{}", e.render());
            checked[n] += 1;
        }
    }

    #[test]
    fn lower_bound_is_admissible_along_solutions() {
        for seed in 0..400u64 {
            let task = generate((seed % 5) as f32 / 4.0, seed);
            let mut e = Linear::from_spec(&task.spec).unwrap().start;
            let ops = solve(&e).unwrap();
            for (k, &op) in ops.iter().enumerate() {
                assert!(e.lower_bound() as usize <= ops.len() - k, "{}", e.render());
                e = e.apply(op).unwrap();
            }
            assert_eq!(e.lower_bound(), 0);
        }
    }

    #[test]
    fn verifier_accepts_human_variants() {
        let spec = spec_of(&eq(lin(2, 5), lin(0, 11)), 6);
        let ok = |s: &str| verify_solution(&spec, s);
        assert!(ok("-5 both sides, ÷2 both sides"));
        assert!(ok("-5; /2"));
        assert!(ok(" - 5 \n ÷ 2 "));
        assert!(ok("+1 both sides, ÷2, -3"));
        assert!(
            !ok("-5, +x, -x, +1, -1, +1, -1, ÷2"),
            "over the budget of 6"
        );
        assert!(ok("-5, +x, -x, +1, -1, ÷2"));
        assert!(
            ok("-11 both sides, -2x both sides, ÷(-2) both sides"),
            "-6 = -2x"
        );
        assert!(ok("×3, -15, ÷6"));
        assert!(!ok("-5 both sides"));
        assert!(!ok("÷2 both sides"), "2x + 5 is odd");
        assert!(!ok("-5, ÷3"));
        assert!(!ok("-5, ÷0"));
        assert!(!ok("-5, ÷2, expand left"), "no bracket");
        assert!(
            ok("-5 both sides, ÷2 both sides, +0"),
            "a no-op is harmless"
        );
        assert!(!ok("-5, ÷2 please"));
        assert!(!ok("-5, %2"));
        assert!(!ok("-99999999999999999999999999999999999, ÷2"));
        assert!(!ok(""));
        assert!(!verify_solution("{}", "-5, ÷2"));
        let spec = spec_of(&eq(br(3, 1, 2, 0, 0), lin(0, 12)), 6);
        assert!(verify_solution(&spec, "÷3, -2"));
        assert!(verify_solution(&spec, "expand left, -6, ÷3"));
        assert!(
            verify_solution(&spec, "-6, ÷3"),
            "3(x + 2) - 6 = 6 -> x = 2"
        );
        assert!(
            !verify_solution(&spec, "-5, ÷3"),
            "3(x + 2) - 5 is not divisible"
        );
        assert!(!verify_solution(&spec, "÷2, -2"));
        assert!(!verify_solution(&spec, "expand left, expand left, -6, ÷3"));
        assert!(!verify_solution(&spec, "expand right, -6, ÷3"));
    }

    #[test]
    fn encode_is_bounded() {
        let g = game(br(3, 1, 2, 0, 0), lin(1, 10), 8);
        let mut obs = vec![0.0; OBS_DIM + 3];
        g.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
        assert_eq!(&obs[OBS_DIM..], &[0.0; 3]);
        assert_eq!(obs[6], 0.5, "one bracket");
        assert_eq!(obs[MOVE_BASE], 1.0, "expand left is legal");
        assert_eq!(obs[MOVE_BASE + 2], 0.0, "expand right is not");
        assert_eq!(obs[GLOBAL_FEATURES], 1.0, "left has a bracket");
    }

    #[test]
    fn spec_round_trips() {
        let spec =
            r#"{"left":{"bracket":[3,1,2],"x":-1,"c":0},"right":{"x":1,"c":2},"max_steps":8}"#;
        let g = Linear::from_spec(spec).unwrap();
        assert_eq!(g.to_spec(), spec);
        assert_eq!(g.equation().render(), "3(x + 2) - x = x + 2");
        assert_eq!(g.root(), -4);
        let mut h = Linear::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(0);
        assert_eq!(h.to_spec(), spec, "the spec is the start state");
        let spaced = r#"{ "max_steps": 8, "right": {"c": 2, "x": 1}, "left": {"c": 0, "x": -1, "bracket": [3, 1, 2]} }"#;
        assert_eq!(Linear::from_spec(spaced).unwrap(), g);
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let r = r#""right":{"x":0,"c":6}"#;
        let cases = [
            (String::new(), "spec"),
            ("{".into(), "spec"),
            ("[1,2]".into(), "spec"),
            ("null".into(), "spec"),
            (format!(r#"{{"left":{{"x":2,"c":0}},{r}}}"#), "max_steps"),
            (
                format!(r#"{{"left":{{"x":2,"c":0}},{r},"max_steps":0}}"#),
                "max_steps",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0}},{r},"max_steps":25}}"#),
                "max_steps",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0}},{r},"max_steps":2.5}}"#),
                "max_steps",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0}},{r},"max_steps":5,"x":1}}"#),
                "\"x\"",
            ),
            (format!(r#"{{{r},"max_steps":5}}"#), "left"),
            (format!(r#"{{"left":[2,0],{r},"max_steps":5}}"#), "left"),
            (
                format!(r#"{{"left":{{"c":0}},{r},"max_steps":5}}"#),
                "left.x",
            ),
            (
                format!(r#"{{"left":{{"x":2}},{r},"max_steps":5}}"#),
                "left.c",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"y":1}},{r},"max_steps":5}}"#),
                "\"y\"",
            ),
            (
                format!(r#"{{"left":{{"x":"2","c":0}},{r},"max_steps":5}}"#),
                "left.x",
            ),
            (
                format!(r#"{{"left":{{"x":1000,"c":0}},{r},"max_steps":5}}"#),
                "left.x",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":-1000}},{r},"max_steps":5}}"#),
                "left.c",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":1e30}},{r},"max_steps":5}}"#),
                "left.c",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[2,1]}},{r},"max_steps":5}}"#),
                "left.bracket",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[1,1,1]}},{r},"max_steps":5}}"#),
                "left.bracket[0]",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[0,1,1]}},{r},"max_steps":5}}"#),
                "left.bracket[0]",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[2,0,1]}},{r},"max_steps":5}}"#),
                "left.bracket",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[2,1,0.5]}},{r},"max_steps":5}}"#),
                "left.bracket[2]",
            ),
            (
                format!(r#"{{"left":{{"x":2,"c":0,"bracket":[100,100,1]}},{r},"max_steps":5}}"#),
                "left",
            ),
            (
                format!(r#"{{"left":{{"x":0,"c":6}},{r},"max_steps":5}}"#),
                "equation",
            ),
            (
                format!(r#"{{"left":{{"x":4,"c":0}},{r},"max_steps":5}}"#),
                "equation",
            ),
            (
                r#"{"left":{"x":2,"c":0},"right":{"x":0,"c":2000},"max_steps":5}"#.into(),
                "right.c",
            ),
        ];
        for (spec, field) in &cases {
            let err = Linear::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
        assert!(
            Linear::from_spec(&format!(r#"{{"left":{{"x":2,"c":0}},{r},"max_steps":5}}"#)).is_ok()
        );
    }

    /// Operation lists the verifier must reject, derived from a solution.
    fn corruptions(ops: &[Op]) -> Vec<(&'static str, Vec<Op>)> {
        let last = ops.len() - 1;
        let mut out = vec![("truncated", ops[..last].to_vec())];
        let mut off = ops.to_vec();
        off.push(Op::AddConst(1));
        out.push(("one step too many", off));
        let mut wrong = ops.to_vec();
        wrong[last] = match wrong[last] {
            Op::AddConst(k) => Op::AddConst(k + 1),
            Op::AddX(k) => Op::AddX(k + 1),
            Op::Div(k) => Op::Div(-k),
            Op::Mul(k) => Op::Mul(k + 1),
            Op::Expand(_) => Op::AddConst(1),
        };
        out.push(("wrong last step", wrong));
        out
    }

    fn check_task(task: &Task) {
        let g = Linear::from_spec(&task.spec).expect("generated spec parses");
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let ops = solve(&g.start).expect("solvable");
        assert_eq!(task.optimal_steps, Some(ops.len() as u32));
        assert_eq!(g.max_steps(), budget_for(ops.len()));
        assert_eq!(task.reference_solution, format_solution(&ops));
        assert!(
            verify_solution(&task.spec, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &ops).expect("solution is playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        for (what, bad) in corruptions(&ops) {
            assert!(
                !verify_solution(&task.spec, &format_solution(&bad)),
                "{what}: {task:?}"
            );
        }
        let band = band_for(task.difficulty);
        assert!(ops.len() >= band.min_steps, "fallback fired: {task:?}");
        let root = g.root();
        assert!((band.root.0..=band.root.1).contains(&root), "{task:?}");
        assert!(task
            .statement
            .starts_with(&format!("Solve {} for x", g.start.render())));
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
                let brackets =
                    mean(&|t| f64::from(Linear::from_spec(&t.spec).unwrap().start.brackets()));
                (mean(&|t| f64::from(t.optimal_steps.unwrap_or(0))), brackets)
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 >= w[0].0, "optimal steps grow: {stats:?}");
            assert!(w[1].1 >= w[0].1, "brackets grow: {stats:?}");
        }
        assert!(
            stats[4].0 > stats[2].0 && stats[2].0 > stats[0].0,
            "{stats:?}"
        );
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,80}") {
            let _ = Linear::from_spec(&spec);
        }

        #[test]
        fn from_spec_checks_ranges(
            a in -1100i64..1100, b in -1100i64..1100, c in -1100i64..1100,
            m in -3i64..4, steps in 0u64..30,
        ) {
            let spec = format!(
                r#"{{"left":{{"bracket":[{m},1,{b}],"x":{a},"c":0}},"right":{{"x":0,"c":{c}}},"max_steps":{steps}}}"#
            );
            let x = m + a;
            let konst = m * b;
            let ok = [a, b, c].iter().all(|v| v.abs() <= 999)
                && m != 0 && m != 1 && b != 0
                && x.abs() <= 999 && konst.abs() <= 999
                && x != 0 && (c - konst) % x == 0
                && (1..=24).contains(&steps);
            prop_assert_eq!(Linear::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[0-9 +x×÷*/(),;-]{0,40}") {
            let spec = spec_of(&eq(br(-3, 2, 1, 1, 0), lin(2, 7)), 10);
            let _ = verify_solution(&spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Linear::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            loop {
                prop_assert_eq!(g.equation().root(), Some(i64::from(g.root())));
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                prop_assert!(!g.label(a).starts_with("illegal"));
                g.step(a);
            }
            prop_assert!(g.outcome().is_some());
            prop_assert!(g.history().len() <= g.max_steps() as usize);
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            let verdict = verify_solution(&task.spec, &format_solution(g.history()));
            prop_assert_eq!(verdict, g.is_success());
        }
    }
}
