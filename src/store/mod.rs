//! Staged Parquet stores under one run directory.
//!
//! Layout 2 (Hive partitions, read as typed columns by DuckDB, polars,
//! pyarrow and Hugging Face `datasets`; integers are not zero-padded so
//! every reader types them as integers):
//! `tasks/iteration=3/family=countdown/part-00000.parquet`,
//! `heldout/family=countdown/part-00000.parquet`,
//! `episodes/iteration=3/part-00007.parquet`, `examples/...`, `evals/...`,
//! `results/...`,
//! `metrics/stage=play/iteration=3/part-00007.parquet`,
//! `traces/split=train/part-00000.parquet` (`distill`),
//! `models/iteration=000003/`, `models/BEST`, `models/promotions/`. Work files live apart, in
//! `.selfplay/tmp` and `.selfplay/locks`, never inside a store folder.
//!
//! Commit protocol (see [`commit`]): a part is written under a unique name
//! in `.selfplay/tmp`, fsynced, and renamed to `part-NNNNN.parquet`. That
//! rename is the commit: a globbing reader sees the whole part or nothing.
//! The part's footer carries the shard's marker ([`Marker`]: stage, shard,
//! shard count, rows, seed, inputs, config hash, producer), so a stage skips
//! a committed shard, and a consumer refuses a partition with a shard
//! missing. A shard has one writer at a time ([`lock::Claim`]).

pub mod commit;
pub mod lock;
pub mod parquet_io;
pub mod promotion;
pub mod rows;
pub mod schema;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use schema::Store;

/// Version of the folder layout; runs of older layouts are refused.
pub const LAYOUT: u32 = 2;

/// Paths of one run directory (`--out`).
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// A run directory, refusing one written with an older store layout.
    pub fn open(root: impl Into<PathBuf>) -> Result<RunDir> {
        let run = RunDir::new(root);
        run.check_layout()?;
        Ok(run)
    }

    pub fn tasks(&self, iteration: u32, family: &str) -> PathBuf {
        self.root
            .join(format!("tasks/iteration={iteration}/family={family}"))
    }

    pub fn heldout(&self, family: &str) -> PathBuf {
        self.root.join(format!("heldout/family={family}"))
    }

    pub fn episodes(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("episodes/iteration={iteration}"))
    }

    pub fn examples(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("examples/iteration={iteration}"))
    }

    pub fn evals(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("evals/iteration={iteration}"))
    }

    /// Results of `eval --tasks` on an imported tasks store `name`, one
    /// folder per model (`=` in the model id becomes `-`).
    pub fn imported_evals(&self, name: &str, model_id: &str) -> PathBuf {
        self.root.join(format!(
            "imported_evals/name={name}/model={}",
            model_id.replace('=', "-")
        ))
    }

    /// Per-episode rows of iteration `iteration`'s evaluation.
    pub fn results(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("results/iteration={iteration}"))
    }

    /// Per-episode rows of `eval --tasks` on imported store `name`, a
    /// sibling of [`RunDir::imported_evals`] (a folder inside it would put
    /// a non-part in that store's folder).
    pub fn imported_results(&self, name: &str, model_id: &str) -> PathBuf {
        self.root.join(format!(
            "imported_results/name={name}/model={}",
            model_id.replace('=', "-")
        ))
    }

    /// Training curves of one iteration's training.
    pub fn curves(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("curves/iteration={iteration}"))
    }

    /// One split (`train` or `test`) of the distilled reasoning traces.
    pub fn traces(&self, split: &str) -> PathBuf {
        self.root.join(format!("traces/split={split}"))
    }

    pub fn metrics(&self, stage: &str, iteration: u32) -> PathBuf {
        self.root
            .join(format!("metrics/stage={stage}/iteration={iteration}"))
    }

    pub fn model(&self, iteration: u32) -> PathBuf {
        self.model_dir(&crate::model::model_id(iteration))
    }

    /// Unique temporary files; same filesystem as the stores, so a rename
    /// into a store is atomic.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(".selfplay/tmp")
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.root.join(".selfplay/locks")
    }

    pub fn best_file(&self) -> PathBuf {
        self.root.join("models/BEST")
    }

    /// The promoted model's id, if any. A BEST that does not name a model
    /// folder of this run is an error naming `models/BEST`.
    pub fn best(&self) -> Result<Option<String>> {
        let path = self.best_file();
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let id = String::from_utf8_lossy(&text).trim().to_string();
        let valid = crate::model::parse_model_id(&id).is_some()
            && self.model_dir(&id).join("model.json").is_file();
        if !valid {
            let shown: String = id.chars().take(40).collect();
            return Err(Error::Data(format!(
                "{}: holds '{}', expected the id of a model folder of this run (iteration=NNNNNN with model.json); fix or delete it",
                path.display(),
                shown.escape_debug()
            )));
        }
        Ok(Some(id))
    }

    /// Points `models/BEST` at a model id, atomically; promotions go
    /// through [`RunDir::promote`], which records them first.
    pub fn set_best(&self, model_id: &str) -> Result<()> {
        let text = format!("{model_id}\n");
        commit::write_file(self, "best", &self.best_file(), text.as_bytes())
    }

    /// Folder of a model id (`iteration=000003`).
    pub fn model_dir(&self, model_id: &str) -> PathBuf {
        self.root.join("models").join(model_id)
    }

    /// Iterations that have a trained or initialised model, ascending.
    pub fn model_iterations(&self) -> Vec<u32> {
        let mut out: Vec<u32> = list_partition(&self.root.join("models"), "iteration")
            .into_iter()
            .filter(|(_, p)| p.join("model.onnx").is_file() && p.join("model.json").is_file())
            .map(|(i, _)| i)
            .collect();
        out.sort_unstable();
        out
    }

    /// Refuses a run directory of layout 1 (zero-padded `iteration=000003`
    /// store folders and `_SUCCESS` marker files): its parts would be
    /// invisible to this layout and its rows misread.
    fn check_layout(&self) -> Result<()> {
        let old = |dir: &Path| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let padded = name
                        .strip_prefix("iteration=")
                        .is_some_and(|n| n.len() > 1 && n.starts_with('0'));
                    padded || name.starts_with("_SUCCESS")
                })
        };
        let mut dirs: Vec<PathBuf> = ["tasks", "episodes", "examples", "evals"]
            .iter()
            .map(|s| self.root.join(s))
            .collect();
        let subdirs = |store: &str| {
            std::fs::read_dir(self.root.join(store))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        };
        dirs.extend(subdirs("heldout").chain(subdirs("metrics")));
        if let Some(d) = dirs.iter().find(|d| old(d)) {
            return Err(Error::Data(format!(
                "{}: written by an older selfplay (store layout 1: zero-padded iteration folders, _SUCCESS markers); this selfplay reads layout {LAYOUT}: use a new --out",
                d.display()
            )));
        }
        Ok(())
    }
}

/// `key=N` sub-folders of `dir`, parsed.
pub fn list_partition(dir: &Path, key: &str) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{key}=");
    let mut out: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

pub fn part_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("part-{shard:05}.parquet"))
}

/// What a committed part's footer (`selfplay.marker`) records about its shard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub stage: String,
    pub shard: u32,
    /// Shards of the stage run: a consumer needs all of them.
    pub num_shards: u32,
    pub rows: u64,
    pub seed: u64,
    pub config_hash: String,
    pub inputs: Vec<String>,
    pub producer: String,
}

/// A part file is committed when it exists: its rename was the commit.
pub fn is_committed(dir: &Path, shard: u32) -> bool {
    part_path(dir, shard).is_file()
}

/// Committed parts of a partition folder, sorted by shard.
pub fn committed_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut shards: Vec<u32> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("part-")?
                .strip_suffix(".parquet")?
                .parse()
                .ok()
        })
        .collect();
    shards.sort_unstable();
    Ok(shards.into_iter().map(|s| part_path(dir, s)).collect())
}

/// Seconds a consumer polls an incomplete input partition before failing
/// (`--wait-inputs`); 0 fails at once. One value per process, set once by
/// the binary: the readers that need it sit deep under every stage.
static INPUT_WAIT_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets how long [`complete_parts`] waits for missing shards.
pub fn set_input_wait(seconds: u64) {
    INPUT_WAIT_SECS.store(seconds, std::sync::atomic::Ordering::Relaxed);
}

/// Committed parts of a partition whose every shard is committed, under
/// one shard count. A partial partition (a stage killed or still running on
/// some shards) is an error naming the missing shards and the count, after
/// polling for them up to [`set_input_wait`] seconds; an empty folder is an
/// empty partition (the stage has not run), not an error.
pub fn complete_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let wait = INPUT_WAIT_SECS.load(std::sync::atomic::Ordering::Relaxed);
    complete_parts_within(dir, std::time::Duration::from_secs(wait))
}

/// [`complete_parts`] of a partition the consumer cannot do without (train
/// N needs play N's examples): an empty folder is missing too, waited for
/// and then an error naming the stage that makes it.
pub fn required_parts(dir: &Path, made_by: &str) -> Result<Vec<PathBuf>> {
    let wait = INPUT_WAIT_SECS.load(std::sync::atomic::Ordering::Relaxed);
    let wait = std::time::Duration::from_secs(wait);
    poll_partition(dir, wait, Some(made_by))
}

/// [`complete_parts`] polling up to `wait` for missing shards.
pub fn complete_parts_within(dir: &Path, wait: std::time::Duration) -> Result<Vec<PathBuf>> {
    poll_partition(dir, wait, None)
}

/// Reads the partition until it is complete or `wait` is spent; with
/// `required` (the producing stage's command), no part at all is missing.
fn poll_partition(
    dir: &Path,
    wait: std::time::Duration,
    required: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let state = match (check_partition(dir)?, required) {
            (Partition::Complete(parts), Some(made_by)) if parts.is_empty() => Partition::Missing(format!(
                "{}: no shard committed; run `{made_by}` first, or pass --wait-inputs SECONDS to wait for it",
                dir.display()
            )),
            (state, _) => state,
        };
        match state {
            Partition::Complete(parts) => return Ok(parts),
            Partition::Missing(msg) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Err(Error::Data(msg));
                }
                let step = std::time::Duration::from_millis(500);
                std::thread::sleep(step.min(deadline - now));
            }
        }
    }
}

/// A partition as read now: whole, or missing shards (one-line message).
enum Partition {
    Complete(Vec<PathBuf>),
    Missing(String),
}

/// Reads every committed part's marker: one shard count `n` for all, each
/// part's marker naming its own index below `n`, and every index `0..n`
/// present. Inconsistent markers are an error; missing shards are not
/// (yet): their writers may still be running.
fn check_partition(dir: &Path) -> Result<Partition> {
    let parts = committed_parts(dir)?;
    let mut counts: Vec<(u32, PathBuf)> = Vec::with_capacity(parts.len());
    for part in &parts {
        let m = parquet_io::read_marker(part)?;
        if part_path(dir, m.shard) != *part {
            return Err(Error::Data(format!(
                "{}: its marker says shard {} of {}; expected the shard of its file name (a part copied or renamed by hand: delete it and rerun that shard)",
                part.display(),
                m.shard,
                m.num_shards
            )));
        }
        counts.push((m.num_shards, part.clone()));
    }
    let Some((n, first)) = counts.first().cloned() else {
        return Ok(Partition::Complete(parts));
    };
    if let Some((other, part)) = counts.iter().find(|(c, _)| *c != n) {
        return Err(Error::Data(format!(
            "{}: mixed shard counts: {} says {n} shards, {} says {other}; expected one count per partition (delete the folder and rerun the stage with one --num-shards)",
            dir.display(),
            file_name(&first),
            file_name(part)
        )));
    }
    let missing: Vec<u32> = (0..n).filter(|&s| !is_committed(dir, s)).collect();
    if missing.is_empty() {
        return Ok(Partition::Complete(parts));
    }
    let list: Vec<String> = missing.iter().map(u32::to_string).collect();
    Ok(Partition::Missing(format!(
        "{}: incomplete partition: shard{} {} of {n} not committed ({} of {n} parts present); run the missing shards of the stage, or pass --wait-inputs SECONDS to wait for them",
        dir.display(),
        if missing.len() == 1 { "" } else { "s" },
        list.join(", "),
        parts.len()
    )))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Crate version and git sha, recorded as `selfplay.producer`.
pub fn producer() -> String {
    format!(
        "selfplay {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("SELFPLAY_GIT_SHA")
    )
}

#[cfg(test)]
mod tests {
    use super::parquet_io::{read_metadata, read_part, FileMeta, PartWriter};
    use super::rows::{evals_batch, evals_from_batch, EvalRow};
    use super::*;
    use crate::tasks::Family;

    fn row() -> EvalRow {
        EvalRow {
            model_id: "m".into(),
            agent: "candidate".into(),
            opponent: "none".into(),
            family: Family::Countdown,
            bucket: "all".into(),
            games: 10,
            wins: 3,
            draws: 0,
            losses: 7,
            rate: 0.3,
            ci_low: 0.1,
            ci_high: 0.6,
            simulations: 8,
        }
    }

    fn meta(shard: u32, num_shards: u32) -> FileMeta {
        FileMeta {
            stage: "eval".into(),
            config_hash: "abc".into(),
            model_id: Some("m".into()),
            shard,
            num_shards,
            seed: 0,
            inputs: vec![],
        }
    }

    fn write_eval_part(run: &RunDir, dir: &Path, shard: u32, n: u32) -> super::commit::Staged {
        let claim = lock::Claim::acquire(run, &format!("test {shard}"), false).unwrap();
        let mut w =
            PartWriter::create(&claim, dir, &Store::Evals.schema(), &meta(shard, n)).unwrap();
        w.write(&evals_batch(std::slice::from_ref(&row()), Some(3)).unwrap())
            .unwrap();
        w.finish(None).unwrap()
    }

    #[test]
    fn a_part_is_invisible_until_its_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let d = run.evals(3);
        let staged = write_eval_part(&run, &d, 3, 4);
        assert!(committed_parts(&d).unwrap().is_empty());
        assert!(
            !d.exists() || std::fs::read_dir(&d).unwrap().next().is_none(),
            "nothing inside the store folder before the commit"
        );
        staged.commit().unwrap();
        let parts = committed_parts(&d).unwrap();
        assert_eq!(parts, vec![d.join("part-00003.parquet")]);
        let schema = Store::Evals.schema();
        let back = evals_from_batch(&read_part(&parts[0], &schema).unwrap()[0]).unwrap();
        assert_eq!(back, vec![row()]);
        let kv = read_metadata(&parts[0]).unwrap();
        for key in [
            "selfplay.schema_version",
            "selfplay.stage",
            "selfplay.producer",
            "selfplay.config_hash",
            "selfplay.model_id",
            "selfplay.marker",
        ] {
            assert!(kv.iter().any(|(k, _)| k == key), "missing {key}");
        }
        let marker = parquet_io::read_marker(&parts[0]).unwrap();
        assert_eq!((marker.shard, marker.num_shards, marker.rows), (3, 4, 1));
        let err = complete_parts(&d).unwrap_err().to_string();
        assert!(
            err.contains("shards 0, 1, 2 of 4 not committed") && err.contains("evals/iteration=3"),
            "{err}"
        );
        assert!(std::fs::read_dir(run.tmp_dir()).unwrap().next().is_none());
    }

    #[test]
    fn mixed_shard_counts_are_refused_and_a_wait_sees_a_late_shard() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let d = run.evals(1);
        write_eval_part(&run, &d, 0, 2).commit().unwrap();
        let late = write_eval_part(&run, &d, 1, 2);
        let t = std::time::Instant::now();
        let waited = std::thread::scope(|s| {
            let reader = s.spawn(|| complete_parts_within(&d, std::time::Duration::from_secs(30)));
            std::thread::sleep(std::time::Duration::from_millis(300));
            late.commit().unwrap();
            reader.join().unwrap()
        });
        assert_eq!(waited.unwrap().len(), 2);
        assert!(t.elapsed().as_secs() < 20);
        write_eval_part(&run, &d, 2, 3).commit().unwrap();
        let e = complete_parts(&d).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("mixed shard counts")
                && msg.contains("part-00000.parquet says 2")
                && msg.contains("part-00002.parquet says 3"),
            "{msg}"
        );
        // A timed-out wait gives the same one-line message as no wait.
        let d = run.evals(2);
        write_eval_part(&run, &d, 1, 3).commit().unwrap();
        let e = complete_parts_within(&d, std::time::Duration::from_millis(600)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("shards 0, 2 of 3 not committed (1 of 3 parts present)"),
            "{msg}"
        );
        assert_eq!(msg.lines().count(), 1);
    }

    #[test]
    fn reading_with_the_wrong_schema_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let d = run.evals(1);
        write_eval_part(&run, &d, 0, 1).commit().unwrap();
        let err = read_part(&d.join("part-00000.parquet"), &Store::Tasks.schema()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("part-00000.parquet") && msg.contains("store 'evals'"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_best_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        assert_eq!(run.best().unwrap(), None);
        std::fs::create_dir_all(run.root.join("models")).unwrap();
        for junk in ["garbage\n", "iteration=000009\n", "../../etc\n"] {
            std::fs::write(run.best_file(), junk).unwrap();
            let e = run.best().unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("models/BEST"), "{e}");
        }
    }

    #[test]
    fn old_layouts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("episodes/iteration=000001")).unwrap();
        let e = RunDir::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("layout 1") && e.contains("new --out"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("heldout/family=countdown")).unwrap();
        std::fs::write(
            tmp.path().join("heldout/family=countdown/_SUCCESS.00000"),
            "",
        )
        .unwrap();
        assert!(RunDir::open(tmp.path()).is_err());
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("episodes/iteration=10")).unwrap();
        RunDir::open(tmp.path()).unwrap();
    }
}
