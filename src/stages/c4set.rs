//! `c4-positions`: solver-labelled Connect Four benchmark positions in Pascal
//! Pons' test-set format, one `<moves> <score>` line each, which
//! `tasks --import FILE --format connect4-pons` reads back.
//!
//! Positions come from uniformly random playouts whose length is drawn
//! uniformly from the ply range. A position is kept when the game is still
//! running and a move choice matters (some legal move scores below the
//! best), once per position whatever the move order that reached it. The
//! score is exact ([`connect4::optimal_moves`]); positions the solver cannot
//! settle within the node budget are skipped and counted, which leans the
//! set away from the hardest positions of very early plies. The empty board
//! has no line in Pons' format and is never written.
//!
//! The output is a pure function of (ply range, count, seed, node budget):
//! candidates are drawn in batches sized by how many positions are still
//! missing (never by the thread count), judged in parallel, and kept in draw
//! order; a budgeted solve does not depend on what its thread solved before.

use super::{Access, Ctx, StageArgs};
use crate::error::{Error, Result};
use crate::tasks::connect4::{self, Connect4};
use crate::tasks::Action;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The last ply a position can have and still offer a move.
pub const MAX_PLIES: u32 = 41;
/// Default solver nodes per position: about a few seconds on one core.
pub const DEFAULT_MAX_NODES: u64 = 50_000_000;
/// Most candidates judged together.
const BATCH: usize = 64;
/// Playouts allowed per requested position before giving up.
const PLAYOUTS_PER_POSITION: u64 = 100;
/// Playouts always allowed, so small requests from narrow ranges still fill.
const MIN_PLAYOUTS: u64 = 10_000;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Stones on the board, inclusive.
    pub plies: (u32, u32),
    pub count: usize,
    pub seed: u64,
    /// Solver nodes per position before it is skipped.
    pub max_nodes: u64,
}

/// One labelled position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    /// Pons' format: the columns played, 1-based.
    pub moves: String,
    /// Exact score for the player to move, Pons' convention.
    pub score: i32,
}

/// The positions kept and what it took to find them.
#[derive(Debug)]
pub struct Found {
    pub positions: Vec<Labelled>,
    pub playouts: u64,
    /// Candidates skipped because the solver needed more than the budget.
    pub over_budget: u64,
}

/// Parses `A-B` or `N` into an inclusive ply range within `0..=41`.
pub fn parse_plies(text: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::Config(format!(
            "--plies {text:?}: expected A-B or N, with 0 <= A <= B <= {MAX_PLIES} (stones already on the board)"
        ))
    };
    let num = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(text)?;
            (n, n)
        }
    };
    if lo > hi || hi > MAX_PLIES {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl Request {
    /// Checks the numbers a parser cannot: a positive count and budget.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::Config("--count 0: expected at least 1".into()));
        }
        if self.max_nodes == 0 {
            return Err(Error::Config("--max-nodes 0: expected at least 1".into()));
        }
        let (lo, hi) = self.plies;
        if lo > hi || hi > MAX_PLIES {
            return Err(Error::Config(format!(
                "--plies {lo}-{hi}: expected 0 <= A <= B <= {MAX_PLIES}"
            )));
        }
        Ok(())
    }
}

/// A random playout of a random length in the range, or None when the game
/// ended on the way (or is the empty board, which Pons' format cannot write).
fn playout(rng: &mut ChaCha8Rng, (lo, hi): (u32, u32)) -> Option<Connect4> {
    let plies = rng.random_range(lo..=hi);
    let mut pos = Connect4::new();
    let mut legal: Vec<Action> = Vec::with_capacity(7);
    for _ in 0..plies {
        legal.clear();
        pos.legal_actions(&mut legal);
        if legal.is_empty() {
            return None;
        }
        pos.step(legal[rng.random_range(0..legal.len())]);
    }
    (plies > 0 && !pos.is_terminal()).then_some(pos)
}

/// The verdict on one candidate.
enum Verdict {
    /// The exact score; some legal move is worse.
    Keep(i32),
    /// Every legal move is optimal.
    NoChoice,
    OverBudget,
}

fn judge(pos: &Connect4, max_nodes: u64) -> Verdict {
    let Some((score, best)) = connect4::optimal_moves(pos, max_nodes) else {
        return Verdict::OverBudget;
    };
    let mut legal = Vec::new();
    pos.legal_actions(&mut legal);
    if best.len() < legal.len() {
        Verdict::Keep(score)
    } else {
        Verdict::NoChoice
    }
}

/// Draws and labels positions; an error when too few are found.
pub fn labelled_positions(req: &Request) -> Result<Found> {
    req.validate()?;
    let max_playouts = (req.count as u64)
        .saturating_mul(PLAYOUTS_PER_POSITION)
        .max(MIN_PLAYOUTS);
    let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
    let mut seen = HashSet::new();
    let mut found = Found {
        positions: Vec::with_capacity(req.count),
        playouts: 0,
        over_budget: 0,
    };
    while found.positions.len() < req.count && found.playouts < max_playouts {
        // Twice what is missing: most candidates qualify, and few are solved
        // in vain once the count is nearly reached.
        let size = (2 * (req.count - found.positions.len())).clamp(4, BATCH);
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size && found.playouts < max_playouts {
            found.playouts += 1;
            if let Some(pos) = playout(&mut rng, req.plies) {
                if seen.insert(pos.position_key()) {
                    batch.push(pos);
                }
            }
        }
        let verdicts: Vec<Verdict> = batch
            .par_iter()
            .map(|pos| judge(pos, req.max_nodes))
            .collect();
        for (pos, verdict) in batch.iter().zip(verdicts) {
            match verdict {
                Verdict::Keep(score) if found.positions.len() < req.count => {
                    found.positions.push(Labelled {
                        moves: pos.moves(),
                        score,
                    });
                }
                Verdict::OverBudget => found.over_budget += 1,
                _ => {}
            }
        }
    }
    if found.positions.len() < req.count {
        let (lo, hi) = req.plies;
        return Err(Error::Config(format!(
            "--plies {lo}-{hi}: found {} of {} positions where a move choice matters in {} playouts ({} over the node budget); widen --plies, lower --count or raise --max-nodes",
            found.positions.len(),
            req.count,
            found.playouts,
            found.over_budget
        )));
    }
    Ok(found)
}

/// The lines of Pons' format.
pub fn to_text(positions: &[Labelled]) -> String {
    positions
        .iter()
        .map(|p| format!("{} {}\n", p.moves, p.score))
        .collect()
}

/// The folder `path` goes into, which must exist.
fn parent_dir(path: &Path) -> Result<&Path> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.file_name().is_none() || path.is_dir() {
        return Err(Error::Config(format!(
            "--output {}: expected a file path, not a folder",
            path.display()
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Config(format!(
            "--output {}: folder {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(dir)
}

/// An io error without the temporary file's name, which the user never chose.
fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::io(path, std::io::Error::from(e.kind()))
}

/// Replaces `path` with `text` atomically: a temporary file beside it,
/// fsynced, then renamed, so a reader or a crash never sees half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = parent_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".selfplay-write.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error(path, &e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_error(path, &e))?;
    tmp.persist(path).map_err(|e| io_error(path, &e.error))?;
    Ok(())
}

/// Checks that `path` can be written before any solving, so a bad path
/// fails at once rather than after minutes.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = parent_dir(path)?;
    tempfile::Builder::new()
        .prefix(".c4-positions.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| io_error(path, &e))
}

/// `c4-positions --plies A-B --count N --output FILE [--max-nodes N]`.
#[derive(clap::Args, Clone, Debug)]
pub struct C4Args {
    /// Stones already on the board: A-B or N, within 0-41.
    #[arg(long)]
    pub plies: String,
    /// Positions to write.
    #[arg(long)]
    pub count: usize,
    /// The file to write (replaced atomically); the global --out, the
    /// run directory, plays no part.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Solver nodes per position; harder positions are skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_NODES)]
    pub max_nodes: u64,
}

impl C4Args {
    /// The request, with the draw's seed (`--seed`).
    pub fn request(&self, seed: u64) -> Result<Request> {
        let req = Request {
            plies: parse_plies(&self.plies)?,
            count: self.count,
            seed,
            max_nodes: self.max_nodes,
        };
        req.validate()?;
        Ok(req)
    }
}

impl StageArgs for C4Args {
    type Outcome = C4Written;

    fn access(&self) -> Access {
        Access::Bare
    }

    fn check(&self) -> Result<()> {
        self.request(0).map(drop)
    }
}

/// The file written and what it took.
#[derive(Clone, Debug, Serialize)]
pub struct C4Written {
    pub positions: usize,
    pub output: PathBuf,
    pub plies: (u32, u32),
    pub seed: u64,
    pub playouts: u64,
    pub over_budget: u64,
    pub max_nodes: u64,
}

impl std::fmt::Display for C4Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote {} positions to {} (plies {}-{}, seed {}; {} playouts, {} over {} nodes)",
            self.positions,
            self.output.display(),
            self.plies.0,
            self.plies.1,
            self.seed,
            self.playouts,
            self.over_budget,
            self.max_nodes
        )
    }
}

/// The command: the request from the flags and the config's seed, then
/// [`run_c4_positions`].
pub fn run(ctx: &Ctx, args: &C4Args) -> Result<C4Written> {
    let req = args.request(ctx.cfg.seed)?;
    let found = run_c4_positions(&req, &args.output)?;
    Ok(C4Written {
        positions: found.positions.len(),
        output: args.output.clone(),
        plies: req.plies,
        seed: req.seed,
        playouts: found.playouts,
        over_budget: found.over_budget,
        max_nodes: req.max_nodes,
    })
}

/// The command: generates, then writes `path` atomically.
pub fn run_c4_positions(req: &Request, path: &Path) -> Result<Found> {
    req.validate()?;
    check_writable(path)?;
    let found = labelled_positions(req)?;
    write_atomically(path, &to_text(&found.positions))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::TwoPlayer;

    fn req(plies: (u32, u32), count: usize, seed: u64) -> Request {
        Request {
            plies,
            count,
            seed,
            max_nodes: DEFAULT_MAX_NODES,
        }
    }

    #[test]
    fn ply_ranges_parse_and_reject() {
        assert_eq!(parse_plies("10-22").unwrap(), (10, 22));
        assert_eq!(parse_plies("7").unwrap(), (7, 7));
        assert_eq!(parse_plies("0-41").unwrap(), (0, 41));
        for bad in [
            "", "-", "5-", "-5", "22-10", "30-42", "42", "a-b", "1-2-3", "-1-3",
        ] {
            let err = parse_plies(bad).unwrap_err().to_string();
            assert!(
                err.contains("--plies") && err.contains("expected"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let err = labelled_positions(&req((10, 12), 0, 1)).unwrap_err();
        assert!(err.to_string().contains("--count 0"), "{err}");
        let mut r = req((10, 12), 1, 1);
        r.max_nodes = 0;
        assert!(labelled_positions(&r).is_err());
        assert!(labelled_positions(&req((12, 50), 1, 1)).is_err());
    }

    #[test]
    fn positions_are_labelled_exactly_and_deterministic() {
        let found = labelled_positions(&req((24, 34), 40, 3)).unwrap();
        assert_eq!(found.positions.len(), 40);
        assert_eq!(found.over_budget, 0);
        let again = labelled_positions(&req((24, 34), 40, 3)).unwrap();
        assert_eq!(found.positions, again.positions);
        let other = labelled_positions(&req((24, 34), 40, 4)).unwrap();
        assert_ne!(found.positions, other.positions);
        let mut keys = HashSet::new();
        for p in &found.positions {
            let pos = Connect4::from_moves(&p.moves).unwrap();
            assert!((24..=34).contains(&pos.plies()), "{}", p.moves);
            assert!(!pos.is_terminal());
            assert!(keys.insert(pos.position_key()), "duplicate {}", p.moves);
            let scores = connect4::solve_moves(&pos, connect4::UNBOUNDED).unwrap();
            let best = scores.iter().map(|s| s.1).max().unwrap();
            assert_eq!(best, p.score, "{}", p.moves);
            assert!(scores.iter().any(|s| s.1 < best), "{}", p.moves);
        }
        let text = to_text(&found.positions);
        assert_eq!(text.lines().count(), 40);
        assert!(text.lines().all(|l| l.split(' ').count() == 2));
    }

    #[test]
    fn too_narrow_a_range_fails_without_choices() {
        // With 41 stones on the board only one move is left: no choice matters.
        let err = labelled_positions(&req((41, 41), 2, 1)).unwrap_err();
        assert!(err.to_string().contains("found 0 of 2"), "{err}");
        // The empty board cannot be written in Pons' format.
        assert!(labelled_positions(&req((0, 0), 1, 1)).is_err());
    }

    #[test]
    fn over_budget_positions_are_skipped_and_counted() {
        let mut r = req((8, 9), 3, 5);
        r.max_nodes = 2_000;
        match labelled_positions(&r) {
            Ok(found) => assert!(found.over_budget > 0),
            Err(e) => assert!(e.to_string().contains("over the node budget"), "{e}"),
        }
    }

    #[test]
    fn writes_are_atomic_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.txt");
        write_atomically(&path, "4 1\n").unwrap();
        write_atomically(&path, "44 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "44 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        // A parent that is a file: nothing can be written under it.
        let bad = path.join("x.txt");
        let err = check_writable(&bad).unwrap_err().to_string();
        assert!(err.contains("x.txt"), "{err}");
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&path).is_ok());
    }
}
