//! Promotions as immutable records beside the `models/BEST` pointer:
//! `models/promotions/iteration=N.json` records the gate decision of
//! iteration N's evaluation (N = 0: `init`'s model), written once (a hard
//! link never replaces a file), so a workflow can declare a promotion as
//! an output and an audit lists every decision. `BEST` stays authoritative
//! for readers; the record is written first, so BEST never names a model
//! without its record, and a rerun (of `run`, or after a crash between the
//! two) finds the same record and only rewrites BEST. BEST names the model
//! of the newest record, so replaying an earlier iteration's promotion (a
//! scheduler rerunning every job of the loop) never moves it back.

use super::lock::Claim;
use super::{commit, RunDir};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What one promotion record holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Promotion {
    /// The iteration whose evaluation promoted the model (0: init).
    pub iteration: u32,
    pub model_id: String,
    /// BEST before this promotion (none for the initial model).
    pub previous: Option<String>,
    pub producer: String,
}

impl RunDir {
    pub fn promotions_dir(&self) -> PathBuf {
        self.root.join("models/promotions")
    }

    /// The record of iteration `iteration`'s promotion.
    pub fn promotion(&self, iteration: u32) -> PathBuf {
        self.promotions_dir()
            .join(format!("iteration={iteration}.json"))
    }

    /// Promotes `model_id` as iteration `iteration`'s gate decision: its
    /// record (once), then `models/BEST`, which names the newest record's
    /// model (this one's unless a later iteration's record exists). A
    /// record of that iteration naming another model is an error naming the
    /// file. Under one claim for all promotions that waits, so promoters
    /// take turns and a killed one's temporary files go.
    pub fn promote(&self, iteration: u32, model_id: &str) -> Result<()> {
        let claim = Claim::acquire(self, "promotions", true)?;
        let dest = self.promotion(iteration);
        if !dest.is_file() {
            let record = Promotion {
                iteration,
                model_id: model_id.to_string(),
                previous: self.best()?,
                producer: super::producer(),
            };
            let text = serde_json::to_string_pretty(&record)
                .map_err(|e| Error::Other(format!("{}: {e}", dest.display())))?;
            commit::stage_bytes(self, &claim.key, &dest, text.as_bytes())?.link_new()?;
        }
        let bytes = std::fs::read(&dest).map_err(|e| Error::io(&dest, e))?;
        let held: Promotion = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Data(format!(
                "{}: {e}; expected a promotion record",
                dest.display()
            ))
        })?;
        if held.model_id != model_id {
            return Err(Error::Data(format!(
                "{}: iteration {iteration} already promoted {}, not {model_id}; records are immutable (evaluate under another --iteration)",
                dest.display(),
                held.model_id
            )));
        }
        let newest = match self.newest_promotion()? {
            Some(n) if n.iteration > iteration => n.model_id,
            _ => held.model_id,
        };
        let best = format!("{newest}\n");
        commit::write_file(self, &claim.key, &self.best_file(), best.as_bytes())
    }

    /// The record of the highest iteration, if any.
    fn newest_promotion(&self) -> Result<Option<Promotion>> {
        let dir = self.promotions_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut newest = None;
        for entry in entries {
            let name = entry.map_err(|e| Error::io(&dir, e))?.file_name();
            let n = name
                .to_str()
                .and_then(|n| n.strip_prefix("iteration="))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = n {
                newest = newest.max(Some(n));
            }
        }
        let Some(n) = newest else { return Ok(None) };
        let path = self.promotion(n);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Data(format!(
                "{}: {e}; expected a promotion record",
                path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(run: &RunDir, id: &str) {
        std::fs::create_dir_all(run.model_dir(id)).unwrap();
        std::fs::write(run.model_dir(id).join("model.json"), "{}").unwrap();
    }

    #[test]
    fn each_promotion_is_a_record_written_once() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        for id in ["iteration=000000", "iteration=000002"] {
            model(&run, id);
        }
        run.promote(0, "iteration=000000").unwrap();
        run.promote(2, "iteration=000002").unwrap();
        let first = std::fs::read(run.promotion(2)).unwrap();
        // A rerun of the loop promotes again: same records, BEST as before.
        run.promote(0, "iteration=000000").unwrap();
        run.promote(2, "iteration=000002").unwrap();
        assert_eq!(std::fs::read(run.promotion(2)).unwrap(), first);
        let rec: Promotion = serde_json::from_slice(&first).unwrap();
        assert_eq!(rec.previous.as_deref(), Some("iteration=000000"));
        assert_eq!(run.best().unwrap().as_deref(), Some("iteration=000002"));
        assert_eq!(std::fs::read_dir(run.promotions_dir()).unwrap().count(), 2);
        let e = run.promote(2, "iteration=000000").unwrap_err().to_string();
        assert!(
            e.contains("promotions/iteration=2.json") && e.contains("immutable"),
            "{e}"
        );
        assert_eq!(run.best().unwrap().as_deref(), Some("iteration=000002"));
        // Replaying iteration 0's promotion after iteration 2's (a scheduler
        // rerunning every eval in order) leaves BEST at the newest.
        run.promote(0, "iteration=000000").unwrap();
        assert_eq!(run.best().unwrap().as_deref(), Some("iteration=000002"));
        assert!(std::fs::read_dir(run.tmp_dir()).unwrap().next().is_none());
    }
}
