//! The players of a batched run: a tree search with its own evaluator and
//! search policy, the network's policy alone, or random moves.

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
    /// No search: one evaluation of the position and its most probable
    /// legal move, so an evaluation can tell what search adds to the
    /// network it searches with.
    Policy { evaluator: Evaluator },
    /// No search: a uniformly random legal move.
    Random,
}

/// How the batched driver plays an agent's moves: the agent without its
/// evaluator, so the tree work can read it while the network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A search of the batch's simulation budget with this policy.
    Search(Algorithm),
    /// One evaluation of the root, then the argmax of its priors.
    Policy,
    /// A random legal move, no evaluation.
    Random,
}

impl Mode {
    /// The rule that turns the root into a move; `None` for random play.
    /// The policy agent's one-simulation search is a PUCT one: with no
    /// child visited, PUCT's greedy decision is the highest prior.
    pub fn algorithm(self) -> Option<Algorithm> {
        match self {
            Mode::Search(a) => Some(a),
            Mode::Policy => Some(Algorithm::Puct),
            Mode::Random => None,
        }
    }

    /// Simulations per move given the search budget `full`: the policy
    /// agent's single one is the root's own evaluation.
    pub fn simulations(self, full: u32) -> u32 {
        match self {
            Mode::Policy => 1,
            _ => full,
        }
    }
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
            Agent::Search { evaluator, .. } | Agent::Policy { evaluator } => evaluator.name(),
            Agent::Random => "random".into(),
        }
    }

    /// How the driver plays this agent.
    pub fn mode(&self) -> Mode {
        match self {
            Agent::Search { algorithm, .. } => Mode::Search(*algorithm),
            Agent::Policy { .. } => Mode::Policy,
            Agent::Random => Mode::Random,
        }
    }

    /// The same player for one of `lanes` lanes of a batched run, with its
    /// own evaluator ([`Evaluator::fork`]).
    pub fn fork(&self, lanes: usize) -> crate::error::Result<Agent> {
        Ok(match self {
            Agent::Search {
                evaluator,
                algorithm,
            } => Agent::search(evaluator.fork(lanes)?, *algorithm),
            Agent::Policy { evaluator } => Agent::Policy {
                evaluator: evaluator.fork(lanes)?,
            },
            Agent::Random => Agent::Random,
        })
    }

    /// The evaluator that scores this agent's leaves; `None` for random play.
    pub fn evaluator_mut(&mut self) -> Option<&mut Evaluator> {
        match self {
            Agent::Search { evaluator, .. } | Agent::Policy { evaluator } => Some(evaluator),
            Agent::Random => None,
        }
    }
}
