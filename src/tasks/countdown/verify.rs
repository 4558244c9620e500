//! The verifier: checks a written solution against the puzzle with its own
//! exact arithmetic, sharing no code with the game or the solvers.

use super::Countdown;

/// Checks `solution` against a task spec under the spec's rules (use-all or
/// not); a bad spec fails.
pub fn verify_spec(spec: &str, solution: &str) -> bool {
    let Ok(p) = Countdown::from_spec(spec) else {
        return false;
    };
    let numbers = &p.start[..usize::from(p.start_len)];
    if p.use_all {
        verify_solution_all(numbers, p.target, solution)
    } else {
        verify_solution(numbers, p.target, solution)
    }
}

/// Checks human text like `"8-4=4, 4*6=24"` under the classic rules: steps
/// are separated by `,`, `;` or newlines, spaces are free, `x`/`×` and `÷`
/// are accepted for `*` and `/`, and `+`/`*` operands may come in either
/// order. Each operand must be an input or an earlier result not yet used;
/// each result must be the exact, positive integer value. The solution is
/// correct when the target is among the numbers left after the last step
/// (an empty solution passes only if the target is an input). Unlike the
/// game, `*1` and `/1` are accepted (harmless).
pub fn verify_solution(numbers: &[u32], target: u32, solution: &str) -> bool {
    replay(numbers, solution, Rules::Classic).is_some_and(|pool| pool.contains(&Frac::int(target)))
}

/// The use-all rules (Game of 24, TinyZero's Countdown): every number is
/// combined, exactly `numbers.len() - 1` steps, into the target, which is
/// the only number left. Results are exact rationals: fractions, zero and
/// negative intermediates are allowed, written in parentheses (`(24/5)`,
/// `(-3)`); a division by zero fails.
pub fn verify_solution_all(numbers: &[u32], target: u32, solution: &str) -> bool {
    replay(numbers, solution, Rules::Exact).is_some_and(|pool| pool == [Frac::int(target)])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Positive integer results only.
    Classic,
    /// Any exact rational result.
    Exact,
}

/// The numbers left after playing `solution` from `numbers`, or `None` if a
/// step does not parse, uses a number that is not there, or is wrong.
fn replay(numbers: &[u32], solution: &str, rules: Rules) -> Option<Vec<Frac>> {
    let mut pool: Vec<Frac> = numbers.iter().map(|&v| Frac::int(v)).collect();
    for text in solution.split([',', ';', '\n']) {
        if text.trim().is_empty() {
            continue;
        }
        let (a, op, b, r) = parse_step(text)?;
        let value = eval(a, op, b)?;
        let allowed = rules == Rules::Exact || (value.is_int() && value.p > 0);
        if value != r || !allowed || !take(&mut pool, a) || !take(&mut pool, b) {
            return None;
        }
        pool.push(r);
    }
    Some(pool)
}

/// An exact fraction `p / q`, reduced, `q >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frac {
    p: i128,
    q: i128,
}

impl Frac {
    fn int(v: u32) -> Frac {
        Frac {
            p: i128::from(v),
            q: 1,
        }
    }

    /// `p / q` reduced; `None` for `q == 0`.
    fn new(p: i128, q: i128) -> Option<Frac> {
        if q == 0 {
            return None;
        }
        let (mut a, mut b) = (p.unsigned_abs(), q.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = a.max(1) as i128;
        let s = if q < 0 { -1 } else { 1 };
        Some(Frac {
            p: s * p / g,
            q: s * q / g,
        })
    }

    fn is_int(self) -> bool {
        self.q == 1
    }
}

/// Exact `a op b`; `None` on a division by zero or an overflow.
fn eval(a: Frac, op: char, b: Frac) -> Option<Frac> {
    let (p, q) = match op {
        '+' => (
            a.p.checked_mul(b.q)?.checked_add(b.p.checked_mul(a.q)?)?,
            a.q.checked_mul(b.q)?,
        ),
        '-' => (
            a.p.checked_mul(b.q)?.checked_sub(b.p.checked_mul(a.q)?)?,
            a.q.checked_mul(b.q)?,
        ),
        '*' => (a.p.checked_mul(b.p)?, a.q.checked_mul(b.q)?),
        '/' => (a.p.checked_mul(b.q)?, a.q.checked_mul(b.p)?),
        _ => return None,
    };
    Frac::new(p, q)
}

/// Removes one copy of `v` from `pool`; false if there is none.
fn take(pool: &mut Vec<Frac>, v: Frac) -> bool {
    match pool.iter().position(|&x| x == v) {
        Some(k) => {
            pool.swap_remove(k);
            true
        }
        None => false,
    }
}

/// Parses `"a op b = r"` (spaces allowed anywhere between tokens).
fn parse_step(text: &str) -> Option<(Frac, char, Frac, Frac)> {
    let mut rest = text.trim();
    let a = take_value(&mut rest)?;
    let op = match take_char(&mut rest)? {
        '+' => '+',
        '-' | '−' => '-',
        '*' | 'x' | 'X' | '×' => '*',
        '/' | '÷' => '/',
        _ => return None,
    };
    let b = take_value(&mut rest)?;
    if take_char(&mut rest)? != '=' {
        return None;
    }
    let r = take_value(&mut rest)?;
    rest.is_empty().then_some((a, op, b, r))
}

/// Consumes a value: `7`, or in parentheses `(-3)`, `(24/5)`, `(-3/4)`.
fn take_value(rest: &mut &str) -> Option<Frac> {
    if !rest.trim_start().starts_with('(') {
        return Frac::new(take_number(rest)?.into(), 1);
    }
    take_char(rest)?;
    let negative = rest.starts_with(['-', '−']);
    if negative {
        take_char(rest)?;
    }
    let p = i128::from(take_number(rest)?);
    let q = if rest.starts_with('/') {
        take_char(rest)?;
        i128::from(take_number(rest)?)
    } else {
        1
    };
    if take_char(rest)? != ')' {
        return None;
    }
    Frac::new(if negative { -p } else { p }, q)
}

/// Consumes leading spaces and one character.
fn take_char(rest: &mut &str) -> Option<char> {
    let s = rest.trim_start();
    let c = s.chars().next()?;
    *rest = s[c.len_utf8()..].trim_start();
    Some(c)
}

/// Consumes leading spaces and a run of ASCII digits.
fn take_number(rest: &mut &str) -> Option<u64> {
    let s = rest.trim_start();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    *rest = s[end..].trim_start();
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_all_solutions_may_use_fractions_zero_and_negatives() {
        let nums = [1, 5, 5, 5];
        let good = "1/5=(1/5), 5-(1/5)=(24/5), (24/5)*5=24";
        assert!(verify_solution_all(&nums, 24, good));
        assert!(!verify_solution(&nums, 24, good), "classic: integers only");
        assert!(verify_solution_all(&nums, 24, "1 / 5 = (1/5); 5 − (1/5) = (24/5); 5 × (24/5) = 24"));
        assert!(verify_solution_all(&nums, 24, "1/5=(2/10), 5-(1/5)=(24/5), (24/5)*5=24"), "same value");
        assert!(!verify_solution_all(&nums, 24, "1/5=0, 5-0=5, 5*5=25"), "inexact");
        assert!(verify_solution_all(&[4, 6, 13, 13], 24, "13-13=0, 4*6=24, 24+0=24"));
        assert!(verify_solution_all(&[1, 3, 4, 6], 24, "3/4=(3/4), 1-(3/4)=(1/4), 6/(1/4)=24"));
        assert!(!verify_solution_all(&[1, 3, 4, 6], 24, "3/4=(3/4), 1-(3/4)=(1/4)"), "6 unused");
        assert!(verify_solution_all(&[1, 5, 30], 26, "1-5=(-4), 30+(-4)=26"), "negative");
        assert!(!verify_solution_all(&[1, 5, 30], 26, "1-5=(-4), 30-(-4)=26"), "wrong sign");
        assert!(!verify_solution_all(&[2, 2], 1, "2-2=0, 2/0=1"), "division by zero");
        assert!(!verify_solution_all(&[2, 3], 24, "2/3=(2/3"), "unclosed");
        assert!(!verify_solution_all(&[2, 3], 24, "2/3=(2/0)"));
        assert!(!verify_solution_all(&[2, 3], 24, "2*3=6, 6*4=24"), "4 is not there");
    }
}
