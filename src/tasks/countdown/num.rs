//! Exact rational numbers for the use-all rules (Game of 24, TinyZero):
//! `1 5 5 5` needs `5 - 1/5 = 24/5`, which no integer or float rule scores
//! exactly.

use std::cmp::Ordering;
use std::fmt;

/// Largest numerator or denominator a result may have; bounds the search
/// and keeps every product of two values inside `i64`.
pub const NUM_CAP: i64 = 1_000_000;

/// A rational `p / q` in lowest terms with `q >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Num {
    p: i64,
    q: i64,
}

impl Num {
    pub const ZERO: Num = Num { p: 0, q: 1 };

    /// The integer `v`.
    pub const fn int(v: u32) -> Num {
        Num { p: v as i64, q: 1 }
    }

    /// `p / q` reduced; `None` when `q == 0` or a part exceeds [`NUM_CAP`].
    pub fn ratio(p: i64, q: i64) -> Option<Num> {
        if q == 0 {
            return None;
        }
        let g = gcd(p.unsigned_abs(), q.unsigned_abs()) as i64;
        let (mut p, mut q) = (p / g, q / g);
        if q < 0 {
            (p, q) = (-p, -q);
        }
        (p.abs() <= NUM_CAP && q <= NUM_CAP).then_some(Num { p, q })
    }

    pub fn numer(self) -> i64 {
        self.p
    }

    pub fn denom(self) -> i64 {
        self.q
    }

    pub fn is_int(self) -> bool {
        self.q == 1
    }

    /// The value as an integer, if it is a non-negative one that fits.
    pub fn as_u32(self) -> Option<u32> {
        self.is_int().then(|| u32::try_from(self.p).ok()).flatten()
    }

    pub fn to_f64(self) -> f64 {
        self.p as f64 / self.q as f64
    }

    pub fn checked_add(self, o: Num) -> Option<Num> {
        Num::ratio(self.p * o.q + o.p * self.q, self.q * o.q)
    }

    pub fn checked_sub(self, o: Num) -> Option<Num> {
        Num::ratio(self.p * o.q - o.p * self.q, self.q * o.q)
    }

    pub fn checked_mul(self, o: Num) -> Option<Num> {
        Num::ratio(self.p * o.p, self.q * o.q)
    }

    /// `None` for a division by zero.
    pub fn checked_div(self, o: Num) -> Option<Num> {
        Num::ratio(self.p * o.q, self.q * o.p)
    }
}

impl Default for Num {
    fn default() -> Num {
        Num::ZERO
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Ord for Num {
    fn cmp(&self, o: &Num) -> Ordering {
        (i128::from(self.p) * i128::from(o.q)).cmp(&(i128::from(o.p) * i128::from(self.q)))
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, o: &Num) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Integers bare (`7`); fractions and negatives in parentheses (`(24/5)`,
/// `(-3)`), so a step such as `5-(1/5)=(24/5)` reads unambiguously.
impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.q, self.p < 0) {
            (1, false) => write!(f, "{}", self.p),
            (1, true) => write!(f, "({})", self.p),
            _ => write!(f, "({}/{})", self.p, self.q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: i64, q: i64) -> Num {
        Num::ratio(p, q).unwrap()
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        let fifth = Num::int(1).checked_div(Num::int(5)).unwrap();
        assert_eq!(fifth, r(1, 5));
        let x = Num::int(5).checked_sub(fifth).unwrap();
        assert_eq!(x, r(24, 5));
        assert_eq!(x.checked_mul(Num::int(5)), Some(Num::int(24)));
        assert_eq!(r(6, -4), r(-3, 2));
        assert_eq!(r(0, 7), Num::ZERO);
        assert_eq!(Num::int(3).checked_div(Num::ZERO), None);
        assert_eq!(Num::ratio(NUM_CAP + 1, 1), None);
        assert!(r(1, 3) < r(1, 2) && r(-1, 2) < Num::ZERO);
        assert_eq!(Num::int(8).as_u32(), Some(8));
        assert_eq!(r(8, 3).as_u32(), None);
    }

    #[test]
    fn display_brackets_what_is_not_a_plain_integer() {
        assert_eq!(Num::int(24).to_string(), "24");
        assert_eq!(r(24, 5).to_string(), "(24/5)");
        assert_eq!(r(-3, 1).to_string(), "(-3)");
        assert_eq!(r(-3, 4).to_string(), "(-3/4)");
    }
}
