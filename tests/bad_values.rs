//! Out-of-range, NaN, inf and float-for-integer config values are refused at
//! load with exit code 2 and one line naming the key, before anything is written.

mod common;
use common::*;

/// `--set` overrides and the key each error must name.
const BAD: &[(&str, &str)] = &[
    ("mcts.num_simulations=4000000000", "mcts.num_simulations"),
    ("infer.threads=100000", "infer.threads"),
    ("games_per_iteration=1e11", "games_per_iteration"),
    ("model.hidden=1e8", "model.hidden"),
    ("model.hidden=100000000", "model.hidden"),
    ("mcts.temperature=-1", "mcts.temperature"),
    ("mcts.temperature=nan", "mcts.temperature"),
    ("mcts.dirichlet_alpha=nan", "mcts.dirichlet_alpha"),
    ("eval.gate_threshold=nan", "eval.gate_threshold"),
    ("mcts.fpu_reduction=nan", "mcts.fpu_reduction"),
    ("mcts.c_puct=inf", "mcts.c_puct"),
    ("train.learning_rate=nan", "train.learning_rate"),
    ("train.weight_decay=-0.1", "train.weight_decay"),
    ("train.value_weight=inf", "train.value_weight"),
    ("train.steps=-1", "train.steps"),
    ("eval.games=-inf", "eval.games"),
    (
        "families.countdown.weight=-inf",
        "families.countdown.weight",
    ),
    (
        "families.connect4.rollout_mix=nan",
        "families.connect4.rollout_mix",
    ),
];

/// Runs `selfplay <args> run` into a fresh out dir and checks the refusal.
fn refused(args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut a = args.to_vec();
    a.push("run");
    fails_with(&selfplay(&out, &a), needles);
    assert!(!out.exists(), "{args:?}: wrote under the out dir");
}

#[test]
fn bad_set_values_are_refused_naming_the_key() {
    for (set, key) in BAD {
        refused(&["--set", set], &[&format!("{key} = "), "expected"]);
    }
}

#[test]
fn an_oversized_model_is_refused() {
    refused(
        &["--set", "model.hidden=8192", "--set", "model.blocks=64"],
        &["model.hidden", "model.blocks", "parameters"],
    );
}

#[test]
fn shorthand_flags_are_checked_too() {
    refused(
        &["--games-per-iteration", "99999999999"],
        &["games_per_iteration = 99999999999", "[1, 10000000]"],
    );
    // Not a usize: clap refuses it (exit 2) before the config loads.
    refused(
        &["--games-per-iteration", "1e11"],
        &["--games-per-iteration"],
    );
    refused(
        &["--num-simulations", "4000000000"],
        &["mcts.num_simulations = 4000000000"],
    );
    refused(
        &["--iterations", "4000000000"],
        &["iterations = 4000000000"],
    );
    refused(&["--c-puct", "nan"], &["mcts.c_puct = nan"]);
    refused(&["--c-puct", "inf"], &["mcts.c_puct = inf"]);
}
