//! The players of a batched run: a tree search with its own evaluator and
//! search policy, or random moves without search.

use super::evaluator::Evaluator;
use crate::config::Algorithm;

/// One player. Agents in one run share the batch-wide search settings
/// (simulations, leaves per wave, exploration) but not their search
/// policy, so a Gumbel candidate can meet a PUCT baseline.
pub enum Agent {
    /// Tree search: leaves scored by `evaluator`, selection, move and
    /// target by `algorithm`.
    Search {
        evaluator: Evaluator,
        algorithm: Algorithm,
    },
    /// No search: a uniformly random legal move.
    Random,
}

impl Agent {
    pub fn search(evaluator: Evaluator, algorithm: Algorithm) -> Agent {
        Agent::Search {
            evaluator,
            algorithm,
        }
    }

    /// The id written to eval rows: the evaluator's, or `random`.
    pub fn name(&self) -> String {
        match self {
            Agent::Search { evaluator, .. } => evaluator.name(),
            Agent::Random => "random".into(),
        }
    }

    /// The search policy; `None` for the random agent.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self {
            Agent::Search { algorithm, .. } => Some(*algorithm),
            Agent::Random => None,
        }
    }
}
