//! Promotion, decided in one place: the gate on an evaluation's mean
//! advantage (`eval.gate_threshold`) and, when asked, its record
//! (`models/promotions/iteration=N.json`, then `models/BEST`; see
//! `store::promotion`). `eval --promote` and the `run` loop both come here
//! through `eval::evaluate`.

use super::Ctx;
use crate::error::Result;
use serde::Serialize;

/// The gate's verdict on one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The candidate's mean advantage over the incumbent across families
    /// (None without an incumbent).
    pub advantage: Option<f64>,
    pub threshold: f64,
    /// Whether the candidate passes the gate.
    pub passed: bool,
    /// The model promoted by this decision (recorded, BEST rewritten);
    /// None when it did not pass or no promotion was asked for.
    pub promoted: Option<String>,
}

/// The gate: a mean advantage of at least `threshold` passes; with no
/// incumbent to compare against, nothing passes.
pub fn passes(advantage: Option<f64>, threshold: f64) -> bool {
    advantage.is_some_and(|a| a >= threshold)
}

/// Decides on `candidate` (a model id) from iteration `iteration`'s
/// evaluation and, when `record` and it passes, promotes it.
pub fn decide(
    ctx: &Ctx,
    iteration: u32,
    candidate: &str,
    advantage: Option<f64>,
    record: bool,
) -> Result<Decision> {
    let threshold = ctx.cfg.eval.gate_threshold;
    let passed = passes(advantage, threshold);
    let promoted = if passed && record {
        ctx.run.promote(iteration, candidate)?;
        Some(candidate.to_string())
    } else {
        None
    };
    Ok(Decision {
        advantage,
        threshold,
        passed,
        promoted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::stages::Shard;
    use crate::store::RunDir;

    #[test]
    fn the_gate_needs_an_incumbent_and_the_threshold() {
        assert!(!passes(None, 0.0));
        assert!(!passes(None, -1.0));
        assert!(passes(Some(0.0), 0.0));
        assert!(passes(Some(0.2), 0.1));
        assert!(!passes(Some(0.05), 0.1));
    }

    #[test]
    fn a_decision_records_a_promotion_only_when_asked_and_passed() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        for id in ["iteration=000000", "iteration=000001"] {
            std::fs::create_dir_all(run.model_dir(id)).unwrap();
            std::fs::write(run.model_dir(id).join("model.json"), "{}").unwrap();
        }
        run.promote(0, "iteration=000000").unwrap();
        let ctx = Ctx {
            cfg: Config::load(None, &["eval.gate_threshold=0.1".into()]).unwrap(),
            run: run.clone(),
            shard: Shard::ALL,
            wait: false,
        };
        let best = || run.best().unwrap().unwrap();
        let cand = "iteration=000001";
        // Passed but not asked: nothing recorded.
        let d = decide(&ctx, 1, cand, Some(0.3), false).unwrap();
        assert!(d.passed && d.promoted.is_none(), "{d:?}");
        assert_eq!(best(), "iteration=000000");
        // Asked but below the threshold (or no incumbent): nothing recorded.
        for adv in [Some(0.05), None] {
            let d = decide(&ctx, 1, cand, adv, true).unwrap();
            assert!(!d.passed && d.promoted.is_none(), "{d:?}");
        }
        assert!(!run.promotion(1).exists());
        assert_eq!(best(), "iteration=000000");
        // Asked and passed: the record, then BEST.
        let d = decide(&ctx, 1, cand, Some(0.1), true).unwrap();
        assert_eq!(
            d,
            Decision {
                advantage: Some(0.1),
                threshold: 0.1,
                passed: true,
                promoted: Some(cand.into()),
            }
        );
        assert!(run.promotion(1).is_file());
        assert_eq!(best(), cand);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"advantage": 0.1, "threshold": 0.1, "passed": true, "promoted": cand})
        );
    }
}
