//! Staged Parquet stores under one run directory.
//!
//! Layout (Hive partitions, read as columns by DuckDB/polars/pyarrow):
//! `tasks/iteration=000003/family=countdown/part-00000.parquet`,
//! `heldout/family=countdown/part-00000.parquet`,
//! `episodes/iteration=000003/part-00007.parquet`, `examples/...`, `evals/...`,
//! `metrics/stage=play/iteration=000003/part-00007.parquet`, `models/...`.
//!
//! Commit protocol: a part is written as `*.parquet.tmp`, fsynced, renamed into
//! place, and only then is the shard's `_SUCCESS.{shard:05}` marker written.
//! Readers ignore parts without a marker; stages skip shards that have one.

pub mod parquet_io;
pub mod rows;
pub mod schema;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use schema::Store;

/// Paths of one run directory (`--out`).
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn tasks(&self, iteration: u32, family: &str) -> PathBuf {
        self.root
            .join(format!("tasks/iteration={iteration:06}/family={family}"))
    }

    pub fn heldout(&self, family: &str) -> PathBuf {
        self.root.join(format!("heldout/family={family}"))
    }

    pub fn episodes(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("episodes/iteration={iteration:06}"))
    }

    pub fn examples(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("examples/iteration={iteration:06}"))
    }

    pub fn evals(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("evals/iteration={iteration:06}"))
    }

    /// Results of `eval --tasks` on an imported tasks store `name`, one
    /// folder per model (`=` in the model id becomes `-`).
    pub fn imported_evals(&self, name: &str, model_id: &str) -> PathBuf {
        self.root.join(format!(
            "imported_evals/name={name}/model={}",
            model_id.replace('=', "-")
        ))
    }

    pub fn metrics(&self, stage: &str, iteration: u32) -> PathBuf {
        self.root
            .join(format!("metrics/stage={stage}/iteration={iteration:06}"))
    }

    pub fn model(&self, iteration: u32) -> PathBuf {
        self.root.join(format!("models/iteration={iteration:06}"))
    }

    pub fn best_file(&self) -> PathBuf {
        self.root.join("models/BEST")
    }

    /// The promoted model's id (`iteration=NNNNNN`), if any.
    pub fn best(&self) -> Result<Option<String>> {
        let path = self.best_file();
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Points `models/BEST` at a model id, atomically.
    pub fn set_best(&self, model_id: &str) -> Result<()> {
        write_atomic(&self.best_file(), format!("{model_id}\n").as_bytes())
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
}

/// `key=NNNNNN` sub-folders of `dir`, parsed.
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

pub fn marker_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("_SUCCESS.{shard:05}"))
}

/// What a `_SUCCESS` marker records about the committed shard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub stage: String,
    pub shard: u32,
    pub rows: u64,
    pub seed: u64,
    pub config_hash: String,
    pub inputs: Vec<String>,
    pub producer: String,
}

pub fn is_committed(dir: &Path, shard: u32) -> bool {
    marker_path(dir, shard).is_file()
}

/// Writes a shard's marker: the last step of a commit.
pub fn write_marker(dir: &Path, marker: &Marker) -> Result<()> {
    let text = serde_json::to_string_pretty(marker).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&marker_path(dir, marker.shard), text.as_bytes())
}

/// Removes a shard's marker (before a shard is redone).
pub fn clear_marker(dir: &Path, shard: u32) -> Result<()> {
    let path = marker_path(dir, shard);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Committed parts of a partition folder, sorted by shard: every part with a
/// marker. A marker whose part is gone is an error (the store was damaged).
pub fn committed_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut shards: Vec<u32> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("_SUCCESS.")?
                .parse()
                .ok()
        })
        .collect();
    shards.sort_unstable();
    shards
        .into_iter()
        .map(|shard| {
            let part = part_path(dir, shard);
            if part.is_file() {
                Ok(part)
            } else {
                Err(Error::Data(format!(
                    "{}: missing, but its marker {} says it was committed; expected the part file (rerun the stage after removing the marker)",
                    part.display(),
                    marker_path(dir, shard).display()
                )))
            }
        })
        .collect()
}

/// Write to `path.tmp`, fsync, rename: readers see the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
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
    use super::parquet_io::{read_metadata, read_part, write_part, FileMeta};
    use super::rows::{evals_batch, evals_from_batch, EvalRow};
    use super::*;
    use crate::tasks::Family;

    #[test]
    fn committed_parts_need_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let row = EvalRow {
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
        };
        let schema = Store::Evals.schema();
        let meta = FileMeta {
            stage: "eval".into(),
            config_hash: "abc".into(),
            model_id: Some("m".into()),
        };
        write_part(
            d,
            3,
            &schema,
            &meta,
            &[evals_batch(std::slice::from_ref(&row)).unwrap()],
        )
        .unwrap();
        assert!(
            committed_parts(d).unwrap().is_empty(),
            "a part without a marker is not committed"
        );
        let marker = Marker {
            stage: "eval".into(),
            shard: 3,
            rows: 1,
            seed: 0,
            config_hash: "abc".into(),
            inputs: vec![],
            producer: producer(),
        };
        write_marker(d, &marker).unwrap();
        let parts = committed_parts(d).unwrap();
        assert_eq!(parts, vec![d.join("part-00003.parquet")]);
        let back = evals_from_batch(&read_part(&parts[0], &schema).unwrap()[0]).unwrap();
        assert_eq!(back, vec![row]);
        let kv = read_metadata(&parts[0]).unwrap();
        for key in [
            "selfplay.schema_version",
            "selfplay.stage",
            "selfplay.producer",
            "selfplay.config_hash",
            "selfplay.model_id",
        ] {
            assert!(kv.iter().any(|(k, _)| k == key), "missing {key}");
        }
        assert!(!d.join("part-00003.parquet.tmp").exists());
    }

    #[test]
    fn reading_with_the_wrong_schema_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let meta = FileMeta::default();
        let rows = [crate::tasks::Family::Countdown.generate(0.1, 1)];
        let batch = rows::tasks_batch(&rows).unwrap();
        write_part(dir.path(), 0, &Store::Tasks.schema(), &meta, &[batch]).unwrap();
        let err = read_part(
            &dir.path().join("part-00000.parquet"),
            &Store::Evals.schema(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("part-00000.parquet") && msg.contains("schema mismatch"),
            "{msg}"
        );
    }
}
