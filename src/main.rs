//! The `selfplay` binary: one subcommand per stage, plus `run` for the
//! loop. It parses, builds the context, dispatches to the stage's
//! `run(ctx, args)` and prints the outcome; the stages decide everything.

use clap::{Args, Parser, Subcommand};
use selfplay::config::Config;
use selfplay::error::Result;
use selfplay::output::{self, LogFormat};
use selfplay::stages::{self, Access, Ctx, StageArgs};
use selfplay::store::RunDir;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "selfplay",
    version,
    about = "AlphaZero-style self-play on verifiable reasoning tasks"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// Pipeline config (TOML); the embedded pipelines/default.toml when absent.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Override any config key, e.g. `--set mcts.num_simulations=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// Run directory holding every store.
    #[arg(long, global = true, default_value = "runs/default")]
    out: PathBuf,
    /// Shorthand for --set seed=N.
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Shorthand for --set iterations=N.
    #[arg(long, global = true)]
    iterations: Option<u32>,
    /// Shorthand for --set games_per_iteration=N.
    #[arg(long, global = true)]
    games_per_iteration: Option<usize>,
    /// Shorthand for --set parallel_batch_size=N.
    #[arg(long, global = true)]
    parallel_batch_size: Option<usize>,
    /// Shorthand for --set batch_size=N.
    #[arg(long, global = true)]
    batch_size: Option<usize>,
    /// Shorthand for --set max_buffer_size=N.
    #[arg(long, global = true)]
    max_buffer_size: Option<usize>,
    /// Shorthand for --set mcts.num_simulations=N.
    #[arg(long, global = true)]
    num_simulations: Option<u32>,
    /// Shorthand for --set mcts.c_puct=X.
    #[arg(long, global = true)]
    c_puct: Option<f32>,
    /// Where the network runs: shorthand for --set infer.device=D and
    /// --set train.device=D, with D = cpu|cuda[:N].
    #[arg(long, global = true)]
    device: Option<String>,
    /// Wait for a shard another process is writing instead of failing
    /// (exit 75) when it is busy.
    #[arg(long, global = true)]
    wait: bool,
    /// Poll an input partition that has shards missing (their jobs still
    /// running) for up to SECONDS before failing; default: fail at once.
    #[arg(long, global = true, value_name = "SECONDS")]
    wait_inputs: Option<u64>,
    /// Run a stage whose config differs from the run's config.toml in a
    /// key that changes results (refused otherwise).
    #[arg(long, global = true)]
    force: bool,
    /// stderr events (stage summaries, heartbeats, warnings, the error) as
    /// text lines or one JSON object per line; with json the command's
    /// outcome is printed on stdout as one JSON object.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// When stderr is not a terminal, long stages (play, train, eval,
    /// distill) report their progress every SECS seconds; 0: never.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    heartbeat: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an iteration's tasks (and the held-out set, once), or import
    /// a public task set with --import/--format.
    Tasks(stages::tasks::TasksArgs),
    /// Write a freshly initialised model as iteration 0 and promote it.
    Init(stages::init::InitArgs),
    /// Self-play an iteration's tasks with a model (default: best).
    Play(stages::play::PlayArgs),
    /// Train iteration N's model from the newest earlier one.
    Train(stages::train::TrainArgs),
    /// Evaluate a model on the held-out set vs the incumbent and baselines.
    Eval(stages::eval::EvalArgs),
    /// The whole loop: init, then tasks -> play -> train -> eval -> gate per iteration.
    Run(stages::run::RunArgs),
    /// Summarise a run directory (default: --out), store by store, or one
    /// Parquet file.
    Inspect(stages::inspect::InspectArgs),
    /// Markdown results table of an evaluated iteration (default: the newest).
    Report(stages::report::ReportArgs),
    /// Print the resolved config (the file and --set overrides over the
    /// embedded default) as TOML, as a run records it in OUT/config.toml.
    Config(stages::config::ConfigArgs),
    /// Write solver-labelled Connect Four positions from random playouts,
    /// one `<moves> <score>` line each (Pascal Pons' test-set format, read
    /// back by `tasks --import FILE --format connect4-pons`). Only running
    /// games where some legal move is worse than the best are kept. The
    /// draw follows --seed.
    C4Positions(stages::c4set::C4Args),
    /// Write the Game of 24 benchmark: every solvable hand of four numbers
    /// from 1 to 13, easiest first, as CSV that `tasks --import FILE
    /// --format game24` reads.
    Game24Hands(stages::hands::HandsArgs),
    /// Turn self-play episodes into verified reasoning traces for
    /// fine-tuning (OUT/traces/split=train|test): prompt, completion and
    /// messages columns that Hugging Face datasets and TRL load as they are.
    Distill(stages::distill::DistillArgs),
    /// Play one episode and print it step by step.
    Show(stages::show::ShowArgs),
}

fn main() {
    let cli = Cli::parse();
    output::init(cli.common.log_format);
    if let Err(e) = dispatch(&cli) {
        output::error(&e);
        std::process::exit(e.exit_code());
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    let c = &cli.common;
    selfplay::store::set_input_wait(c.wait_inputs.unwrap_or(0));
    selfplay::metrics::set_heartbeat(c.heartbeat);
    use stages::*;
    match &cli.command {
        Command::Tasks(a) => exec(c, a, tasks::run),
        Command::Init(a) => exec(c, a, init::run),
        Command::Play(a) => exec(c, a, play::run),
        Command::Train(a) => exec(c, a, train::run),
        Command::Eval(a) => exec(c, a, eval::run),
        Command::Run(a) => exec(c, a, run::run),
        Command::Inspect(a) => exec(c, a, inspect::run),
        Command::Report(a) => exec(c, a, report::run),
        Command::Config(a) => exec(c, a, config::run),
        Command::C4Positions(a) => exec(c, a, c4set::run),
        Command::Game24Hands(a) => exec(c, a, hands::run),
        Command::Distill(a) => exec(c, a, distill::run),
        Command::Show(a) => exec(c, a, show::run),
    }
}

/// One command: check its arguments, build its context, run its stage,
/// print its outcome.
fn exec<A: StageArgs>(c: &Common, args: &A, run: fn(&Ctx, &A) -> Result<A::Outcome>) -> Result<()> {
    args.check()?;
    let ctx = context(c, args)?;
    let outcome = run(&ctx, args)?;
    let format = if args.json() {
        LogFormat::Json
    } else {
        c.log_format
    };
    output::print(&outcome, format)
}

/// The context `args` asks for: the config (file, `--set` and shorthands)
/// and the run directory, checked as its access needs.
fn context(c: &Common, args: &impl StageArgs) -> Result<Ctx> {
    let shard = args.shard()?;
    let cfg = Config::load(c.config.as_deref(), &overrides(c))?;
    let access = args.access();
    let run = match access {
        Access::Bare => RunDir::new(&c.out),
        Access::Read | Access::Write => RunDir::open(&c.out)?,
    };
    if access == Access::Write {
        selfplay::run_config::guard(&run, &cfg, c.force)?;
    }
    Ok(Ctx {
        cfg,
        run,
        shard,
        wait: c.wait,
    })
}

/// `--set` overrides, the named shorthands after them.
fn overrides(c: &Common) -> Vec<String> {
    let mut set = c.set.clone();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            set.push(format!("{k}={v}"));
        }
    };
    add("seed", c.seed.map(|v| v.to_string()));
    add("iterations", c.iterations.map(|v| v.to_string()));
    add(
        "games_per_iteration",
        c.games_per_iteration.map(|v| v.to_string()),
    );
    add(
        "parallel_batch_size",
        c.parallel_batch_size.map(|v| v.to_string()),
    );
    add("batch_size", c.batch_size.map(|v| v.to_string()));
    add("max_buffer_size", c.max_buffer_size.map(|v| v.to_string()));
    add(
        "mcts.num_simulations",
        c.num_simulations.map(|v| v.to_string()),
    );
    // Lowercase: `NaN` is not TOML, `nan` is (and is then refused by its range).
    add(
        "mcts.c_puct",
        c.c_puct.map(|v| v.to_string().to_lowercase()),
    );
    for key in ["infer.device", "train.device"] {
        add(key, c.device.as_ref().map(|v| format!("\"{v}\"")));
    }
    set
}
