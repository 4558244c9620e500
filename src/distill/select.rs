//! Which episodes a distill reads: iterations, families, outcomes,
//! difficulty and model, from the command's flags. A bad value is a
//! one-line config error naming its flag (exit 2), before anything is read.

use crate::error::{Error, Result};
use crate::tasks::Family;

/// Every outcome an episode can have.
pub const OUTCOMES: [&str; 5] = ["success", "failure", "win", "loss", "draw"];

/// Outcomes kept without `--outcome`: all but failed puzzles, which have no
/// answer to verify.
pub const DEFAULT_OUTCOMES: [&str; 4] = ["success", "win", "loss", "draw"];

/// The episodes a distill keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Inclusive range; `None`: every iteration.
    pub iterations: Option<(u32, u32)>,
    /// `None`: every family.
    pub families: Option<Vec<Family>>,
    pub outcomes: Vec<String>,
    /// Inclusive difficulty range.
    pub difficulty: (f32, f32),
    /// A model id (`iteration=000003`); `None`: any.
    pub model: Option<String>,
}

/// The flags, as given (lists may also be comma-separated).
#[derive(Clone, Debug, Default)]
pub struct Flags<'a> {
    pub iterations: Option<&'a str>,
    pub families: &'a [String],
    pub outcomes: &'a [String],
    pub difficulty: Option<&'a str>,
    pub model: Option<&'a str>,
}

impl Selection {
    pub fn parse(f: &Flags) -> Result<Selection> {
        Ok(Selection {
            iterations: f.iterations.map(iteration_range).transpose()?,
            families: families(f.families)?,
            outcomes: outcomes(f.outcomes)?,
            difficulty: f
                .difficulty
                .map(difficulty_range)
                .transpose()?
                .unwrap_or((0.0, 1.0)),
            model: f.model.map(model_id).transpose()?,
        })
    }

    pub fn keeps_iteration(&self, iteration: u32) -> bool {
        self.iterations
            .is_none_or(|(lo, hi)| (lo..=hi).contains(&iteration))
    }

    pub fn keeps_family(&self, family: Family) -> bool {
        self.families.as_ref().is_none_or(|fs| fs.contains(&family))
    }

    /// An episode's task and model pass (its outcome is checked apart:
    /// solver references stand in for tasks whose outcome did not).
    pub fn keeps_task(&self, family: Family, difficulty: f32, model_id: &str) -> bool {
        let (lo, hi) = self.difficulty;
        self.keeps_family(family)
            && (lo..=hi).contains(&difficulty)
            && self.model.as_deref().is_none_or(|m| m == model_id)
    }

    pub fn keeps_outcome(&self, outcome: &str) -> bool {
        self.outcomes.iter().any(|o| o == outcome)
    }

    /// The selection in words, for the parts' markers and error messages.
    pub fn describe(&self) -> String {
        let iterations = self
            .iterations
            .map_or("all".to_string(), |(lo, hi)| format!("{lo}-{hi}"));
        let families = self.families.as_ref().map_or("all".to_string(), |fs| {
            fs.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
        });
        format!(
            "iterations {iterations}, families {families}, outcomes {}, difficulty {}-{}, model {}",
            self.outcomes.join(","),
            self.difficulty.0,
            self.difficulty.1,
            self.model.as_deref().unwrap_or("any")
        )
    }
}

/// Values of a repeatable flag that may also be comma-separated.
fn values(given: &[String]) -> impl Iterator<Item = &str> {
    given
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `N` or `A-B`.
fn iteration_range(text: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::Config(format!(
            "--iteration {text:?}: expected N or A-B with 0 <= A <= B (iterations of the episodes store)"
        ))
    };
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Family names, or kinds (`math`: every math family).
fn families(given: &[String]) -> Result<Option<Vec<Family>>> {
    let mut out = Vec::new();
    for v in values(given) {
        let by_name: Vec<Family> = Family::ALL
            .iter()
            .copied()
            .filter(|f| f.name() == v || f.kind() == v)
            .collect();
        if by_name.is_empty() {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            return Err(Error::Config(format!(
                "--family {v}: unknown family; expected one of {} (or a kind: math, code, reasoning, search)",
                names.join(", ")
            )));
        }
        out.extend(
            by_name
                .into_iter()
                .filter(|f| !out.contains(f))
                .collect::<Vec<_>>(),
        );
    }
    Ok((!out.is_empty()).then_some(out))
}

fn outcomes(given: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values(given) {
        if !OUTCOMES.contains(&v) {
            return Err(Error::Config(format!(
                "--outcome {v}: expected one of {}",
                OUTCOMES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    if out.is_empty() {
        out = DEFAULT_OUTCOMES.iter().map(|s| s.to_string()).collect();
    }
    Ok(out)
}

/// `LO-HI` within [0, 1].
fn difficulty_range(text: &str) -> Result<(f32, f32)> {
    let bad = || {
        Error::Config(format!(
            "--difficulty {text:?}: expected LO-HI with 0 <= LO <= HI <= 1, e.g. 0.5-1"
        ))
    };
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: f32 = lo.trim().parse().map_err(|_| bad())?;
    let hi: f32 = hi.trim().parse().map_err(|_| bad())?;
    if !(0.0..=1.0).contains(&lo) || !(lo..=1.0).contains(&hi) {
        return Err(bad());
    }
    Ok((lo, hi))
}

fn model_id(text: &str) -> Result<String> {
    crate::model::parse_model_id(text)
        .map(|_| text.to_string())
        .ok_or_else(|| {
            Error::Config(format!(
                "--model {text:?}: expected a model id such as iteration=000003 (the episodes' model_id)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags<'a>(families: &'a [String], outcomes: &'a [String]) -> Flags<'a> {
        Flags {
            families,
            outcomes,
            ..Flags::default()
        }
    }

    #[test]
    fn defaults_keep_everything_but_failures() {
        let s = Selection::parse(&Flags::default()).unwrap();
        assert!(s.keeps_iteration(7) && s.keeps_outcome("win") && !s.keeps_outcome("failure"));
        assert!(s.keeps_task(Family::Sudoku, 1.0, "iteration=000001"));
    }

    #[test]
    fn families_by_name_or_kind() {
        let given = vec!["math".to_string(), "connect4,countdown".to_string()];
        let s = Selection::parse(&flags(&given, &[])).unwrap();
        let fs = s.families.unwrap();
        assert!(fs.contains(&Family::Linear) && fs.contains(&Family::Connect4));
        assert_eq!(fs.iter().filter(|&&f| f == Family::Countdown).count(), 1);
    }

    #[test]
    fn bad_flags_name_themselves() {
        let (chess, won) = (["chess".to_string()], ["won".to_string()]);
        let cases: Vec<(Flags, &str)> = vec![
            (flags(&chess, &[]), "--family chess"),
            (flags(&[], &won), "--outcome won"),
            (
                Flags {
                    iterations: Some("5-2"),
                    ..Flags::default()
                },
                "--iteration",
            ),
            (
                Flags {
                    difficulty: Some("0.5"),
                    ..Flags::default()
                },
                "--difficulty",
            ),
            (
                Flags {
                    model: Some("best"),
                    ..Flags::default()
                },
                "--model",
            ),
        ];
        for (f, needle) in cases {
            let e = Selection::parse(&f).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let msg = e.to_string();
            assert!(msg.contains(needle) && msg.lines().count() == 1, "{msg}");
        }
        let r = Selection::parse(&Flags {
            iterations: Some("2-4"),
            difficulty: Some("0.25-0.5"),
            model: Some("iteration=000002"),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(r.iterations, Some((2, 4)));
        assert!(!r.keeps_task(Family::Countdown, 0.6, "iteration=000002"));
        assert!(!r.keeps_task(Family::Countdown, 0.3, "iteration=000001"));
    }
}
