//! `config`: the resolved config (the file and `--set` overrides over the
//! embedded default) as TOML, as a run records it in OUT/config.toml,
//! after comment lines on what it makes.

use super::{Access, Ctx, StageArgs};
use crate::config::Config;
use crate::error::Result;
use crate::run_config::{summary, to_toml};
use serde::Serialize;

/// `config` takes no arguments of its own.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfigArgs {}

impl StageArgs for ConfigArgs {
    type Outcome = Resolved;

    fn access(&self) -> Access {
        Access::Read
    }
}

/// The resolved config: as TOML (text) or as a JSON object.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    pub parameters: u64,
    pub config: Config,
    #[serde(skip)]
    text: String,
}

impl std::fmt::Display for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The command.
pub fn run(ctx: &Ctx, _: &ConfigArgs) -> Result<Resolved> {
    let cfg = &ctx.cfg;
    Ok(Resolved {
        parameters: cfg.model_parameters() as u64,
        config: cfg.clone(),
        text: format!("{}{}", summary(cfg), to_toml(cfg)?),
    })
}
