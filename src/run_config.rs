//! The resolved configuration is part of the run: `OUT/config.toml` is
//! written on a run's first stage, and a later stage whose configuration
//! differs in a key that changes results is refused, naming the keys, so
//! `train --set train.learning_rate=0.5` on a run made with another rate
//! never mixes silently. `--force` runs it anyway.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::RunDir;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Keys that change how fast a run goes, or how long, but not what any
/// stage writes for a given iteration: they may differ between stages.
const FREE_KEYS: &[&str] = &[
    "iterations",
    "parallel_batch_size",
    "mcts.cache_entries",
    "infer.device",
    "infer.threads",
    "infer.lanes",
    "infer.overlap",
    "infer.spin",
    "train.threads",
    "train.device",
    "train.checkpoint_every",
    "train.curve_every",
];

/// The file holding a run's resolved configuration.
pub fn path(run: &RunDir) -> PathBuf {
    run.root.join("config.toml")
}

/// The resolved configuration as TOML, as `selfplay config` prints it.
pub fn to_toml(cfg: &Config) -> Result<String> {
    toml::to_string(cfg).map_err(|e| Error::Other(format!("writing the config as TOML: {e}")))
}

/// TOML comment lines on what the config makes: the model's parameter
/// count and the memory training's rows take at most.
pub fn summary(cfg: &Config) -> String {
    let rows = cfg.max_buffer_size.min(cfg.train.shuffle_buffer);
    format!(
        "# model {}: {} parameters\n# training holds at most {rows} example rows (about {:.0} MiB as dense rows)\n",
        cfg.model.name(),
        cfg.model_parameters(),
        cfg.replay_window_bytes() as f64 / (1u64 << 20) as f64
    )
}

/// Records `cfg` as the run's configuration, or checks it against the one
/// recorded: a difference in a key that changes results is an error unless
/// `force`, which only warns.
pub fn guard(run: &RunDir, cfg: &Config, force: bool) -> Result<()> {
    let file = path(run);
    let recorded = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return record(run, cfg),
        Err(e) => return Err(Error::io(&file, e)),
    };
    let before: toml::Table = recorded.parse().map_err(|e: toml::de::Error| {
        Error::Data(format!(
            "{}: {}; expected the run's resolved config written by selfplay",
            file.display(),
            one_line(&e.to_string())
        ))
    })?;
    let now: toml::Table = to_toml(cfg)?
        .parse()
        .map_err(|e| Error::Other(format!("re-reading the config: {e}")))?;
    let defaults: toml::Table = to_toml(&defaults_for(cfg)?)?
        .parse()
        .map_err(|e| Error::Other(format!("re-reading the default config: {e}")))?;
    let changed = differences(&before, &now, &defaults);
    if changed.is_empty() {
        return Ok(());
    }
    let list = changed.join(", ");
    if force {
        tracing::warn!(
            target: crate::output::NOTE,
            "{}: running with a different config (--force): {list}",
            file.display()
        );
        return Ok(());
    }
    Err(Error::Config(format!(
        "{}: this run was made with another config: {list}; use the run's config, a new --out, or --force",
        file.display()
    )))
}

/// The default config with `cfg`'s architecture at its defaults, so a
/// model key newer than a record is judged against its own arch's default.
fn defaults_for(cfg: &Config) -> Result<Config> {
    let mut defaults = Config::load(None, &[])?;
    if let Some(arch) = crate::model::ArchConfig::default_of(cfg.model.name()) {
        defaults.model = arch;
    }
    Ok(defaults)
}

/// Writes config.toml unless another process just did (hard-link creation
/// is atomic and never replaces): the first stage's config wins.
fn record(run: &RunDir, cfg: &Config) -> Result<()> {
    let file = path(run);
    let staged = crate::store::commit::stage_bytes(run, "config", &file, to_toml(cfg)?.as_bytes())?;
    staged.link_new().map(|_| ())
}

/// `key: before -> now` for each result-changing key that differs. A key
/// the record lacks in a table it has (written by a selfplay that did not
/// have the key) that is now at its default is no difference: a new key's
/// default keeps the behaviour from before it existed. A table the record
/// lacks (a family added) is a difference.
fn differences(before: &toml::Table, now: &toml::Table, defaults: &toml::Table) -> Vec<String> {
    let (a, b, d) = (flatten(before), flatten(now), flatten(defaults));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let table_recorded = |k: &str| match k.rsplit_once('.') {
        Some((table, _)) => a.keys().any(|x| x.starts_with(&format!("{table}."))),
        None => true,
    };
    let newer_default = |k: &String| {
        !a.contains_key(k) && table_recorded(k) && b.contains_key(k) && b.get(k) == d.get(k)
    };
    keys.into_iter()
        .filter(|k| !is_free(k, &a) && a.get(*k) != b.get(*k) && !newer_default(k))
        .map(|k| {
            let show = |m: &BTreeMap<String, String>| m.get(k).cloned().unwrap_or("-".into());
            format!("{k} {} -> {}", show(&a), show(&b))
        })
        .collect()
}

/// Is `key` free to differ in a run recorded as `recorded`? `iterations`
/// is not under a cosine schedule, whose span it sets.
fn is_free(key: &str, recorded: &BTreeMap<String, String>) -> bool {
    let cosine = recorded.get("train.lr_schedule").map(String::as_str) == Some("\"cosine\"");
    FREE_KEYS.contains(&key) && !(key == "iterations" && cosine)
}

/// Dotted key -> TOML value text, for every leaf.
fn flatten(t: &toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                v => {
                    out.insert(key, v.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", t, &mut out);
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(set: &[&str]) -> Config {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        Config::load(None, &set).unwrap()
    }

    /// Under a cosine schedule the number of iterations sets the decay's
    /// span, so it stops being free; checkpoint spacing always is.
    #[test]
    fn iterations_are_free_unless_they_set_the_schedule() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        guard(&run, &cfg(&[]), false).unwrap();
        guard(
            &run,
            &cfg(&["iterations=20", "train.checkpoint_every=5"]),
            false,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let cosine = "train.lr_schedule=\"cosine\"";
        guard(&run, &cfg(&[cosine]), false).unwrap();
        guard(&run, &cfg(&[cosine, "train.checkpoint_every=5"]), false).unwrap();
        let msg = guard(&run, &cfg(&[cosine, "iterations=20"]), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("iterations 12 -> 20"), "{msg}");
    }

    /// A run recorded by an older selfplay lacks the keys added since: at
    /// their defaults they keep the old behaviour and pass; set otherwise
    /// they are a change.
    #[test]
    fn keys_newer_than_the_record_pass_at_their_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        record_without(&run, &cfg(&[]), &["discount", "solver"]);
        guard(&run, &cfg(&[]), false).unwrap();
        let msg = guard(&run, &cfg(&["mcts.solver=true"]), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("mcts.solver - -> true"), "{msg}");
    }

    /// Records `config` as an older selfplay would have, without `keys`.
    fn record_without(run: &RunDir, config: &Config, keys: &[&str]) {
        let text = to_toml(config).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !keys.iter().any(|k| l.starts_with(&format!("{k} ="))))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(old, text);
        std::fs::create_dir_all(&run.root).unwrap();
        std::fs::write(path(run), old).unwrap();
    }

    /// The same for a model key: judged against its architecture's
    /// default, not the default run's (another arch).
    #[test]
    fn model_keys_newer_than_the_record_pass_at_their_arch_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let resnet = ["model.arch=\"resnet\"", "families.connect4.weight=1.0"];
        record_without(&run, &cfg(&resnet), &["value_channels", "policy_channels"]);
        guard(&run, &cfg(&resnet), false).unwrap();
        let wide = [resnet[0], resnet[1], "model.value_channels=32"];
        let msg = guard(&run, &cfg(&wide), false).unwrap_err().to_string();
        assert!(msg.contains("model.value_channels - -> 32"), "{msg}");
    }

    #[test]
    fn the_first_config_is_recorded_and_a_changed_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        guard(&run, &cfg(&[]), false).unwrap();
        let text = std::fs::read_to_string(path(&run)).unwrap();
        assert_eq!(text, to_toml(&cfg(&[])).unwrap());
        guard(&run, &cfg(&["infer.threads=1", "iterations=20"]), false).unwrap();
        let e = guard(
            &run,
            &cfg(&["train.learning_rate=0.5", "mcts.num_simulations=8"]),
            false,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("config.toml")
                && msg.contains("mcts.num_simulations 64 -> 8")
                && msg.contains("train.learning_rate 0.002 -> 0.5")
                && !msg.contains("infer.threads"),
            "{msg}"
        );
        guard(&run, &cfg(&["train.learning_rate=0.5"]), true).unwrap();
        assert_eq!(std::fs::read_to_string(path(&run)).unwrap(), text);
    }

    #[test]
    fn a_dropped_family_is_a_difference() {
        let a: toml::Table = to_toml(&cfg(&[])).unwrap().parse().unwrap();
        let mut b = a.clone();
        b["families"].as_table_mut().unwrap().remove("connect4");
        let d = differences(&a, &b, &a);
        assert!(
            d.iter().any(|k| k.starts_with("families.connect4.weight")),
            "{d:?}"
        );
    }
}
