//! `game24-hands`: the Game of 24 benchmark as a file that
//! `tasks --import FILE --format game24` reads back: every solvable hand of
//! four numbers from 1 to 13 (1362), or only the hardest (412: at most four
//! distinct solutions, or a fraction needed), easiest first, as CSV with
//! the solution count and whether a fraction is needed beside each hand.

use super::c4set::write_atomically;
use super::{Access, Ctx, StageArgs};
use crate::error::Result;
use crate::tasks::game24::{hands, is_hardest, Hand};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// `game24-hands [--hardest] --output FILE`.
#[derive(clap::Args, Clone, Debug)]
pub struct HandsArgs {
    /// Only the hardest hands: at most four distinct solutions, or a
    /// fraction needed.
    #[arg(long)]
    pub hardest: bool,
    /// The file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

impl StageArgs for HandsArgs {
    type Outcome = HandsWritten;

    fn access(&self) -> Access {
        Access::Bare
    }
}

/// The file written and its hands.
#[derive(Clone, Debug, Serialize)]
pub struct HandsWritten {
    pub hands: usize,
    pub output: PathBuf,
}

impl std::fmt::Display for HandsWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "wrote {} hands to {}", self.hands, self.output.display())
    }
}

/// The command: [`run_game24_hands`].
pub fn run(_: &Ctx, args: &HandsArgs) -> Result<HandsWritten> {
    Ok(HandsWritten {
        hands: run_game24_hands(args.hardest, &args.output)?,
        output: args.output.clone(),
    })
}

/// The CSV text of `rows`, with a header the importer skips.
fn to_csv(rows: &[&Hand]) -> String {
    let mut out = String::from("hand,solutions,needs_fraction\n");
    for h in rows {
        let [a, b, c, d] = h.numbers;
        out.push_str(&format!(
            "{a} {b} {c} {d},{},{}\n",
            h.stats.solutions, h.stats.needs_fraction
        ));
    }
    out
}

/// Writes the hands (all, or the hardest) to `path` atomically; returns
/// how many.
pub fn run_game24_hands(hardest: bool, path: &Path) -> Result<usize> {
    let rows: Vec<&Hand> = hands()
        .iter()
        .filter(|h| !hardest || is_hardest(&h.stats))
        .collect();
    write_atomically(path, &to_csv(&rows))?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hardest_are_the_last_hands() {
        let all = hands();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hard.csv");
        assert_eq!(run_game24_hands(true, &path).unwrap(), 412);
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().nth(1).unwrap();
        let last = all[all.len() - 412];
        let [a, b, c, d] = last.numbers;
        assert!(first.starts_with(&format!("{a} {b} {c} {d},")), "{first}");
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let solutions: usize = fields[1].parse().unwrap();
            assert!(solutions <= 4 || fields[2] == "true", "{line}");
        }
        assert_eq!(text.lines().count(), 413);
    }
}
