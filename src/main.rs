//! The `selfplay` binary: one subcommand per stage, plus `run` for the loop.

use clap::{Args, Parser, Subcommand};
use selfplay::config::Config;
use selfplay::error::{Error, Result};
use selfplay::stages::{self, Ctx, Shard};
use selfplay::store::RunDir;
use selfplay::tasks::Family;
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
}

#[derive(Args, Clone, Copy)]
struct ShardArgs {
    /// This job's shard (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0).
    #[arg(long)]
    shard_index: Option<u32>,
    /// Number of shards (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long)]
    num_shards: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an iteration's tasks (and the held-out set, once), or import
    /// a public task set with --import/--format.
    Tasks {
        /// Required unless --import or --heldout.
        #[arg(long, required_unless_present_any = ["import", "heldout"])]
        iteration: Option<u32>,
        /// Write only the held-out sets (once per run; safe to run
        /// concurrently: later callers wait and find them written).
        #[arg(long, conflicts_with_all = ["iteration", "import"])]
        heldout: bool,
        /// A public task file to import into imported/name=NAME/.
        #[arg(long, requires = "format")]
        import: Option<PathBuf>,
        /// countdown-parquet, game24, connect4-pons or sudoku.
        #[arg(long)]
        format: Option<String>,
        /// Name of the imported store (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Write a freshly initialised model as iteration 0 and promote it.
    Init,
    /// Self-play an iteration's tasks with a model (default: best).
    Play {
        #[arg(long)]
        iteration: u32,
        /// best, latest, a model id (iteration=000003) or a model folder.
        #[arg(long, default_value = "best")]
        model: String,
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Train iteration N's model from the newest earlier one.
    Train {
        #[arg(long)]
        iteration: u32,
    },
    /// Evaluate a model on the held-out set vs the incumbent and baselines.
    Eval {
        /// Required unless --tasks.
        #[arg(long)]
        iteration: Option<u32>,
        /// The candidate (default: the model of this iteration).
        #[arg(long)]
        model: Option<String>,
        /// The incumbent to gate against (default: best).
        #[arg(long, default_value = "best")]
        incumbent: String,
        /// Write models/BEST when the candidate passes the gate.
        #[arg(long)]
        promote: bool,
        /// Evaluate on this tasks store instead (e.g. OUT/imported/name=NAME).
        #[arg(long)]
        tasks: Option<PathBuf>,
    },
    /// The whole loop: init, then tasks -> play -> train -> eval -> gate per iteration.
    Run {
        /// Run tasks and play as N shards, one after another, writing the
        /// parts N array jobs of `tasks`/`play --num-shards N` write (the
        /// replay window reads parts in shard order, so the shard count is
        /// part of a run's result).
        #[arg(long, value_name = "N", default_value_t = 1)]
        num_shards: u32,
    },
    /// Summarise a run directory (default: --out) or one Parquet file.
    Inspect { path: Option<PathBuf> },
    /// Markdown results table of an evaluated iteration (default: the newest).
    Report {
        #[arg(long)]
        iteration: Option<u32>,
        /// Also draw the run's learning curves (held-out success, losses,
        /// throughput) into DIR/curves.png and DIR/curves.svg; DIR is
        /// created if missing.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Print the resolved config (the file and --set overrides over the
    /// embedded default) as TOML, as a run records it in OUT/config.toml.
    Config,
    /// Write solver-labelled Connect Four positions from random playouts,
    /// one `<moves> <score>` line each (Pascal Pons' test-set format, read
    /// back by `tasks --import FILE --format connect4-pons`). Only running
    /// games where some legal move is worse than the best are kept. The
    /// draw follows --seed.
    C4Positions {
        /// Stones already on the board: A-B or N, within 0-41.
        #[arg(long)]
        plies: String,
        /// Positions to write.
        #[arg(long)]
        count: usize,
        /// The file to write (replaced atomically); the global --out, the
        /// run directory, plays no part.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// Solver nodes per position; harder positions are skipped.
        #[arg(long, default_value_t = stages::c4set::DEFAULT_MAX_NODES)]
        max_nodes: u64,
    },
    /// Write the Game of 24 benchmark: every solvable hand of four numbers
    /// from 1 to 13, easiest first, as CSV that `tasks --import FILE
    /// --format game24` reads.
    Game24Hands {
        /// Only the hardest hands: at most four distinct solutions, or a
        /// fraction needed.
        #[arg(long)]
        hardest: bool,
        /// The file to write (replaced atomically).
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Turn self-play episodes into verified reasoning traces for
    /// fine-tuning (OUT/traces/split=train|test): prompt, completion and
    /// messages columns that Hugging Face datasets and TRL load as they are.
    Distill {
        /// Iterations of the episodes store to read: N or A-B (default: all).
        #[arg(long, value_name = "N|A-B")]
        iteration: Option<String>,
        /// Families (or kinds) to keep, repeatable or comma-separated (default: all).
        #[arg(long, value_name = "NAME")]
        family: Vec<String>,
        /// Episode outcomes to keep: success, failure, win, loss, draw
        /// (default: all but failure).
        #[arg(long, value_name = "OUTCOME")]
        outcome: Vec<String>,
        /// Task difficulty range, LO-HI within [0, 1] (default: 0-1).
        #[arg(long, value_name = "LO-HI")]
        difficulty: Option<String>,
        /// Only episodes played by this model id (e.g. iteration=000003).
        #[arg(long)]
        model: Option<String>,
        /// Annotate each step with the alternatives the search weighed
        /// (visit shares, from the examples store) and the position's value.
        #[arg(long)]
        search_notes: bool,
        /// Add the solver's reference solution (source = solver) for each
        /// selected task whose episodes gave no verified trace.
        #[arg(long)]
        solver_references: bool,
        /// Share of tasks in the test split, in [0, 1].
        #[arg(long, default_value_t = 0.1)]
        test_share: f64,
        /// Solver nodes for a Connect Four game's start position; games
        /// from a start it does not settle give no trace (lower: faster).
        #[arg(long, default_value_t = stages::distill::DEFAULT_SOLVER_NODES)]
        solver_nodes: u64,
    },
    /// Play one episode and print it step by step.
    Show {
        /// A family (countdown, linear, listdsl, deduction, sudoku, knapsack,
        /// sokoban, gridpath, tictactoe, connect4, game24) or a kind (its
        /// first family).
        #[arg(long)]
        family: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 0.5)]
        difficulty: f32,
        /// best, latest, an id or a folder; uniform-prior rollout MCTS when absent.
        #[arg(long)]
        model: Option<String>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

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

/// The context of a stage that writes into `--out`: the config is checked
/// against (or recorded as) the run's config.toml.
fn ctx(c: &Common, shard: Shard) -> Result<Ctx> {
    let ctx = read_ctx(c, shard)?;
    selfplay::run_config::guard(&ctx.run, &ctx.cfg, c.force)?;
    Ok(ctx)
}

/// The context of a command that only reads (`show`, `config`).
fn read_ctx(c: &Common, shard: Shard) -> Result<Ctx> {
    let cfg = Config::load(c.config.as_deref(), &overrides(c))?;
    Ok(Ctx {
        cfg,
        run: RunDir::open(&c.out)?,
        shard,
        wait: c.wait,
    })
}

fn shard(s: ShardArgs) -> Result<Shard> {
    Shard::resolve(s.shard_index, s.num_shards)
}

fn run(cli: Cli) -> Result<()> {
    let c = &cli.common;
    selfplay::store::set_input_wait(c.wait_inputs.unwrap_or(0));
    match cli.command {
        Command::Tasks {
            import: Some(file),
            format,
            name,
            ..
        } => {
            let ctx = ctx(c, Shard::ALL)?;
            let name = name.unwrap_or_else(|| stages::import::default_name(&file));
            let format = format.unwrap_or_default();
            let (family, rows) = stages::import::run_import(&ctx, &file, &format, &name)?;
            let dir = stages::import::imported_dir(&ctx, &name);
            println!("{}: {rows} {family} tasks", dir.display());
        }
        Command::Tasks { heldout: true, .. } => {
            let ctx = ctx(c, Shard::ALL)?;
            stages::tasks::ensure_heldout(&ctx)?;
            for (family, _) in ctx.cfg.families() {
                println!("{}", ctx.run.heldout(family.name()).display());
            }
        }
        Command::Tasks {
            iteration,
            shard: s,
            ..
        } => {
            let ctx = ctx(c, shard(s)?)?;
            let iteration = iteration.unwrap_or(0);
            let n = stages::tasks::run_tasks(&ctx, iteration)?;
            if ctx.shard.index == 0 {
                stages::tasks::ensure_heldout(&ctx)?;
            }
            eprintln!(
                "tasks iteration {iteration} shard {}: {n} tasks written",
                ctx.shard.index
            );
        }
        Command::Init => {
            let meta = stages::init::run_init(&ctx(c, Shard::ALL)?)?;
            println!("{}", meta.id);
        }
        Command::Play {
            iteration,
            model,
            shard: s,
        } => {
            let ctx = ctx(c, shard(s)?)?;
            let dir = selfplay::model::resolve(&ctx.run, &model)?;
            stages::play::run_play(&ctx, iteration, &dir)?;
        }
        Command::Train { iteration } => train(&ctx(c, Shard::ALL)?, iteration)?,
        Command::Eval {
            model,
            tasks: Some(dir),
            ..
        } => {
            let ctx = ctx(c, Shard::ALL)?;
            let cand = selfplay::model::resolve(&ctx.run, model.as_deref().unwrap_or("best"))?;
            let (rows, written) = stages::eval::run_eval_tasks(&ctx, &dir, &cand)?;
            for r in rows {
                println!(
                    "{:<10} {:<8} {:<9} {:<17} vs {:<7} {:>5.1}% [{:.1}-{:.1}] n={}",
                    r.family.name(),
                    r.bucket,
                    r.agent,
                    r.model_id,
                    r.opponent,
                    r.rate * 100.0,
                    r.ci_low * 100.0,
                    r.ci_high * 100.0,
                    r.games
                );
            }
            for dir in written {
                println!("wrote {}", dir.display());
            }
        }
        Command::Eval {
            iteration,
            model,
            incumbent,
            promote,
            ..
        } => {
            let ctx = ctx(c, Shard::ALL)?;
            let iteration = iteration.ok_or_else(|| {
                Error::Config("eval: expected --iteration N (or --tasks DIR)".into())
            })?;
            let cand = match model {
                Some(m) => selfplay::model::resolve(&ctx.run, &m)?,
                None => selfplay::model::resolve(&ctx.run, &selfplay::model::model_id(iteration))?,
            };
            // No BEST yet means no incumbent; a BEST that names no model is
            // an error (it would silently drop the incumbent).
            let inc = match incumbent.as_str() {
                "best" => ctx
                    .run
                    .best()?
                    .map(|_| selfplay::model::resolve(&ctx.run, "best"))
                    .transpose()?,
                other => Some(selfplay::model::resolve(&ctx.run, other)?),
            };
            let summary = stages::eval::run_eval(&ctx, iteration, &cand, inc.as_deref())?;
            for r in &summary.rows {
                println!(
                    "{:<10} {:<9} {:<12} {:<17} vs {:<12} {:>5.1}% [{:.1}-{:.1}] n={}",
                    r.family.name(),
                    r.bucket,
                    r.agent,
                    r.model_id,
                    r.opponent,
                    r.rate * 100.0,
                    r.ci_low * 100.0,
                    r.ci_high * 100.0,
                    r.games
                );
            }
            if promote && summary.promote {
                let id = selfplay::model::ModelMeta::load(&cand)?.id;
                ctx.run.promote(iteration, &id)?;
                println!("promoted {id}");
            }
        }
        Command::Run { num_shards } => {
            if num_shards == 0 {
                return Err(Error::Config(
                    "run --num-shards 0: expected at least 1 shard".into(),
                ));
            }
            stages::run::run_loop(&ctx(c, Shard::ALL)?, num_shards)?
        }
        Command::Config => {
            let cfg = read_ctx(c, Shard::ALL)?.cfg;
            print!(
                "{}{}",
                selfplay::run_config::summary(&cfg),
                selfplay::run_config::to_toml(&cfg)?
            )
        }
        Command::Inspect { path } => {
            print!(
                "{}",
                stages::inspect::run_inspect(path.as_deref().unwrap_or(&c.out))?
            );
        }
        Command::Report { iteration, plot } => {
            let run = RunDir::open(&c.out)?;
            print!("{}", stages::report::run_report(&run, iteration)?);
            if let Some(dir) = plot {
                for file in stages::plot::write_plots(&run, &dir)? {
                    println!("wrote {}", file.display());
                }
            }
        }
        Command::C4Positions {
            plies,
            count,
            output,
            max_nodes,
        } => {
            let req = stages::c4set::Request {
                plies: stages::c4set::parse_plies(&plies)?,
                count,
                seed: Config::load(c.config.as_deref(), &overrides(c))?.seed,
                max_nodes,
            };
            let found = stages::c4set::run_c4_positions(&req, &output)?;
            println!(
                "wrote {} positions to {} (plies {}-{}, seed {}; {} playouts, {} over {} nodes)",
                found.positions.len(),
                output.display(),
                req.plies.0,
                req.plies.1,
                req.seed,
                found.playouts,
                found.over_budget,
                req.max_nodes
            );
        }
        Command::Game24Hands { hardest, output } => {
            let n = stages::hands::run_game24_hands(hardest, &output)?;
            println!("wrote {n} hands to {}", output.display());
        }
        Command::Distill {
            iteration,
            family,
            outcome,
            difficulty,
            model,
            search_notes,
            solver_references,
            test_share,
            solver_nodes,
        } => {
            if !(0.0..=1.0).contains(&test_share) {
                return Err(Error::Config(format!(
                    "--test-share {test_share}: expected a share in [0, 1]"
                )));
            }
            let selection =
                selfplay::distill::select::Selection::parse(&selfplay::distill::select::Flags {
                    iterations: iteration.as_deref(),
                    families: &family,
                    outcomes: &outcome,
                    difficulty: difficulty.as_deref(),
                    model: model.as_deref(),
                })?;
            // Distill reads stores only: its config plays no part in what
            // it writes, so a run's config.toml is neither checked nor made.
            let ctx = read_ctx(c, Shard::ALL)?;
            let req = stages::distill::Request {
                selection,
                notes: search_notes,
                solver_references,
                test_share,
                solver_nodes,
            };
            let done = stages::distill::run_distill(&ctx, &req)?;
            print!("{}", stages::distill::summary_table(&done.figures));
            for (split, rows) in done.written {
                println!("wrote {} ({rows} rows)", ctx.run.traces(&split).display());
            }
        }
        Command::Show {
            family,
            seed,
            difficulty,
            model,
        } => {
            let family = Family::parse(&family)?;
            if !(0.0..=1.0).contains(&difficulty) {
                return Err(Error::Config(format!(
                    "--difficulty {difficulty}: expected a value in [0, 1]"
                )));
            }
            let ctx = read_ctx(c, Shard::ALL)?;
            let dir = model
                .map(|m| selfplay::model::resolve(&ctx.run, &m))
                .transpose()?;
            print!(
                "{}",
                stages::show::run_show(&ctx, family, seed, difficulty, dir.as_deref())?
            );
        }
    }
    Ok(())
}

#[cfg(feature = "train")]
fn train(ctx: &Ctx, iteration: u32) -> Result<()> {
    let meta = stages::train::run_train(ctx, iteration)?;
    println!("{}", meta.id);
    Ok(())
}

#[cfg(not(feature = "train"))]
fn train(_: &Ctx, _: u32) -> Result<()> {
    Err(Error::Config(
        "train needs the `train` feature (libtorch); this binary was built without it".into(),
    ))
}
