//! selfplay: AlphaZero-style self-play on verifiable reasoning tasks, as a
//! pipeline of staged Parquet stores. See ARCHITECTURE.md for the map.

pub mod config;
pub mod distill;
pub mod error;
pub mod failpoint;
pub mod infer;
pub mod mcts;
pub mod metrics;
pub mod model;
pub mod output;
pub mod run_config;
pub mod stages;
pub mod store;
pub mod tasks;
#[cfg(feature = "train")]
pub mod train;
