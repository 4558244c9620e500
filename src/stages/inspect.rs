//! `inspect`: what a run directory holds, store by store and partition by
//! partition, from the parts' footers alone (no data is read): shards
//! committed of the count their markers name, the missing ones, rows, and
//! the model each shard was made by; the models, BEST and the promotion
//! records; and work staged but not committed (temporary files of a
//! running or killed stage). Or one Parquet file: schema, metadata, rows.

use super::{Access, Ctx, StageArgs};
use crate::error::{Error, Result};
use crate::store::parquet_io::{read_metadata, read_part, MARKER_KEY};
use crate::store::schema::type_name;
use crate::store::{committed_parts, part_path, Marker, RunDir, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// `inspect [PATH] [--json]`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InspectArgs {
    /// A run directory or one Parquet file (default: --out).
    pub path: Option<PathBuf>,
    /// Print the inventory as one JSON object (as `--log-format json` does).
    #[arg(long)]
    pub json: bool,
}

impl StageArgs for InspectArgs {
    type Outcome = Inspected;

    /// Reads whatever is there, an older layout included.
    fn access(&self) -> Access {
        Access::Bare
    }

    fn json(&self) -> bool {
        self.json
    }
}

/// What `inspect` found.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inspected {
    Run(RunInventory),
    File(FileInfo),
}

/// A run directory's stores and models.
#[derive(Clone, Debug, Serialize)]
pub struct RunInventory {
    pub root: PathBuf,
    pub best: Option<String>,
    /// Iterations with a model (model.json and model.onnx).
    pub models: Vec<u32>,
    /// Iterations with a promotion record.
    pub promotions: Vec<u32>,
    pub stores: Vec<StoreInventory>,
    /// Work written but not committed: temporary files in `.selfplay/tmp`,
    /// by the claim that wrote them (a stage running now, or one killed;
    /// the next claim of the same work removes them).
    pub staged: Vec<Staged>,
}

/// One store (`episodes`, `metrics`, ...) and its partitions.
#[derive(Clone, Debug, Serialize)]
pub struct StoreInventory {
    pub store: String,
    pub partitions: Vec<Partition>,
}

/// One partition folder (`episodes/iteration=3`).
#[derive(Clone, Debug, Serialize)]
pub struct Partition {
    /// The folder under the run directory.
    pub path: String,
    /// Its partition keys and values (`iteration` = `3`).
    pub keys: BTreeMap<String, String>,
    /// The shard count the parts' markers name (the largest, if they
    /// disagree); None when no part could be read, or when the parts are
    /// per-shard rows each marked one of one (metrics), which name none.
    pub num_shards: Option<u32>,
    /// Shards committed (parts present).
    pub committed: u32,
    /// Shards below `num_shards` with no committed part.
    pub missing: Vec<u32>,
    /// Rows of the committed parts, from their markers.
    pub rows: u64,
    pub parts: Vec<Part>,
}

/// One committed part, as its footer tells.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub shard: u32,
    pub rows: u64,
    pub stage: String,
    /// The model that made it (play: the model played with; eval: the
    /// candidate), when one did.
    pub model_id: Option<String>,
    /// Why the footer could not be read, when it could not.
    pub error: Option<String>,
}

/// Temporary files of one claim.
#[derive(Clone, Debug, Serialize)]
pub struct Staged {
    pub claim: String,
    pub files: u64,
    pub bytes: u64,
}

/// One Parquet file written by selfplay.
#[derive(Clone, Debug, Serialize)]
pub struct FileInfo {
    pub path: PathBuf,
    pub store: String,
    pub rows: u64,
    /// Column names and types.
    pub fields: Vec<(String, String)>,
    /// The footer's key-value metadata.
    pub metadata: Vec<(String, String)>,
}

/// The command: the file, or the run directory (`--out` by default).
pub fn run(ctx: &Ctx, args: &InspectArgs) -> Result<Inspected> {
    let path = args.path.as_deref().unwrap_or(&ctx.run.root);
    if path.is_file() {
        return inspect_file(path).map(Inspected::File);
    }
    if !path.is_dir() {
        return Err(Error::Data(format!(
            "{}: no such run directory or Parquet file",
            path.display()
        )));
    }
    inspect_run(&RunDir::new(path)).map(Inspected::Run)
}

/// Schema, metadata and row count of one part.
fn inspect_file(path: &Path) -> Result<FileInfo> {
    let metadata = read_metadata(path)?;
    let store = metadata
        .iter()
        .find(|(k, _)| k == "selfplay.store")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let schema = Store::ALL
        .into_iter()
        .find(|s| s.name() == store)
        .ok_or_else(|| {
            Error::Data(format!(
                "{}: no selfplay.store metadata; expected a file written by selfplay",
                path.display()
            ))
        })?
        .schema();
    let rows = read_part(path, &schema)?
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum();
    let fields = schema
        .arrow
        .fields()
        .iter()
        .map(|f| (f.name().clone(), type_name(f.data_type())))
        .collect();
    Ok(FileInfo {
        path: path.to_path_buf(),
        store,
        rows,
        fields,
        metadata,
    })
}

/// Folders of a run directory that are not stores.
const NOT_STORES: [&str; 1] = ["models"];

fn inspect_run(run: &RunDir) -> Result<RunInventory> {
    let mut stores = Vec::new();
    for dir in sorted_dirs(&run.root) {
        let name = file_name(&dir);
        if name.starts_with('.') || NOT_STORES.contains(&name.as_str()) {
            continue;
        }
        let mut partitions = Vec::new();
        collect_partitions(&run.root, &dir, &mut partitions)?;
        if !partitions.is_empty() {
            stores.push(StoreInventory {
                store: name,
                partitions,
            });
        }
    }
    Ok(RunInventory {
        root: run.root.clone(),
        best: run.best().unwrap_or(None),
        models: run.model_iterations(),
        promotions: promotions(run),
        stores,
        staged: staged(run),
    })
}

/// Every partition under `dir`: the folders holding parts (a folder with
/// `key=value` sub-folders is descended).
fn collect_partitions(root: &Path, dir: &Path, out: &mut Vec<Partition>) -> Result<()> {
    let parts = committed_parts(dir)?;
    if !parts.is_empty() {
        out.push(partition(root, dir, &parts));
    }
    for sub in sorted_dirs(dir) {
        if file_name(&sub).contains('=') {
            collect_partitions(root, &sub, out)?;
        }
    }
    Ok(())
}

/// A partition from its parts' footers.
fn partition(root: &Path, dir: &Path, paths: &[PathBuf]) -> Partition {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let keys = rel
        .components()
        .filter_map(|c| {
            let c = c.as_os_str().to_string_lossy();
            c.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let mut parts = Vec::new();
    let mut num_shards = None;
    let mut per_shard = false;
    for path in paths {
        let shard = file_name(path)
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut part = Part {
            shard,
            rows: 0,
            stage: String::new(),
            model_id: None,
            error: None,
        };
        match footer(path) {
            Ok((marker, model_id)) => {
                num_shards = num_shards.max(Some(marker.num_shards));
                per_shard |= marker.shard >= marker.num_shards;
                part.rows = marker.rows;
                part.stage = marker.stage;
                part.model_id = model_id;
            }
            Err(e) => part.error = Some(e.to_string()),
        }
        parts.push(part);
    }
    if per_shard {
        num_shards = None;
    }
    let missing = (0..num_shards.unwrap_or(0))
        .filter(|&s| !part_path(dir, s).is_file())
        .collect();
    Partition {
        path: rel.display().to_string(),
        keys,
        num_shards,
        committed: parts.len() as u32,
        missing,
        rows: parts.iter().map(|p| p.rows).sum(),
        parts,
    }
}

/// A part's marker and model id.
fn footer(path: &Path) -> Result<(Marker, Option<String>)> {
    let kv = read_metadata(path)?;
    let get = |key: &str| kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let text = get(MARKER_KEY)
        .ok_or_else(|| Error::Data(format!("{}: no {MARKER_KEY} in the footer", path.display())))?;
    let marker = serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{}: footer {MARKER_KEY}: {e}", path.display())))?;
    Ok((marker, get("selfplay.model_id")))
}

/// Iterations with a promotion record.
fn promotions(run: &RunDir) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(run.promotions_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("iteration=")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    out
}

/// Temporary files by claim: a file is named `KEY.RANDOM.ENDING`.
fn staged(run: &RunDir) -> Vec<Staged> {
    let mut by: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in std::fs::read_dir(run.tmp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        let claim = name.split('.').next().unwrap_or_default().to_string();
        let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
        let entry = by.entry(claim).or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }
    by.into_iter()
        .map(|(claim, (files, bytes))| Staged {
            claim,
            files,
            bytes,
        })
        .collect()
}

/// Sub-folders of `dir`, numbers in `key=N` names in numeric order.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort_by_key(|p| {
        let name = file_name(p);
        match name.split_once('=') {
            Some((k, v)) => (k.to_string(), v.parse::<u64>().ok(), v.to_string()),
            None => (name.clone(), None, String::new()),
        }
    });
    dirs
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl fmt::Display for Inspected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inspected::Run(r) => r.fmt(f),
            Inspected::File(file) => file.fmt(f),
        }
    }
}

impl fmt::Display for FileInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: store {}, {} rows",
            self.path.display(),
            self.store,
            self.rows
        )?;
        for (name, ty) in &self.fields {
            writeln!(f, "  {name}: {ty}")?;
        }
        for (k, v) in &self.metadata {
            writeln!(f, "  {k} = {v}")?;
        }
        Ok(())
    }
}

/// `0-2, 5` for `[0, 1, 2, 5]`.
fn ranges(xs: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < xs.len() {
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == xs[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", xs[i], xs[j])
        } else {
            xs[i].to_string()
        });
        i = j + 1;
    }
    if out.is_empty() {
        "-".into()
    } else {
        out.join(", ")
    }
}

impl fmt::Display for RunInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {}: best {}; models {}; promotions {}",
            self.root.display(),
            self.best.as_deref().unwrap_or("-"),
            ranges(&self.models),
            ranges(&self.promotions)
        )?;
        for store in &self.stores {
            for p in &store.partitions {
                writeln!(f, "{p}")?;
            }
        }
        for s in &self.staged {
            writeln!(
                f,
                "uncommitted: {} ({} temporary files, {} bytes, in .selfplay/tmp)",
                s.claim, s.files, s.bytes
            )?;
        }
        Ok(())
    }
}

/// `episodes/iteration=1: 2/2 shards, 64 rows, by iteration=000000`.
impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.num_shards {
            Some(n) => write!(f, "{}: {}/{n} shards", self.path, self.committed)?,
            None => {
                let shards: Vec<u32> = self.parts.iter().map(|p| p.shard).collect();
                write!(f, "{}: shards {}", self.path, ranges(&shards))?
            }
        }
        if !self.missing.is_empty() {
            write!(f, " (missing {})", ranges(&self.missing))?;
        }
        write!(f, ", {} rows", self.rows)?;
        // Shards by the model that made them, in shard order.
        let mut by: Vec<(&str, Vec<u32>)> = Vec::new();
        for p in &self.parts {
            let Some(id) = p.model_id.as_deref() else {
                continue;
            };
            match by.iter_mut().find(|(m, _)| *m == id) {
                Some((_, shards)) => shards.push(p.shard),
                None => by.push((id, vec![p.shard])),
            }
        }
        match by.as_slice() {
            [] => {}
            [(id, _)] => write!(f, ", by {id}")?,
            many => {
                let cells: Vec<String> = many
                    .iter()
                    .map(|(id, shards)| format!("{id} (shards {})", ranges(shards)))
                    .collect();
                write!(f, ", by {}", cells.join(", "))?;
            }
        }
        let unreadable: Vec<u32> = self
            .parts
            .iter()
            .filter(|p| p.error.is_some())
            .map(|p| p.shard)
            .collect();
        if !unreadable.is_empty() {
            write!(f, ", unreadable footer in shards {}", ranges(&unreadable))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(shard: u32, rows: u64, model: Option<&str>) -> Part {
        Part {
            shard,
            rows,
            stage: "play".into(),
            model_id: model.map(Into::into),
            error: None,
        }
    }

    fn episodes(parts: Vec<Part>, num_shards: u32) -> Partition {
        let present: Vec<u32> = parts.iter().map(|p| p.shard).collect();
        Partition {
            path: "episodes/iteration=1".into(),
            keys: [("iteration".to_string(), "1".to_string())].into(),
            num_shards: Some(num_shards),
            committed: parts.len() as u32,
            missing: (0..num_shards).filter(|s| !present.contains(s)).collect(),
            rows: parts.iter().map(|p| p.rows).sum(),
            parts,
        }
    }

    #[test]
    fn a_partition_is_one_line_naming_its_shards_and_models() {
        let whole = episodes(
            vec![
                part(0, 32, Some("iteration=000000")),
                part(1, 32, Some("iteration=000000")),
            ],
            2,
        );
        assert_eq!(
            whole.to_string(),
            "episodes/iteration=1: 2/2 shards, 64 rows, by iteration=000000"
        );
        let partial = episodes(
            vec![
                part(0, 10, Some("iteration=000001")),
                part(1, 10, Some("iteration=000002")),
                part(3, 10, Some("iteration=000001")),
            ],
            5,
        );
        assert_eq!(
            partial.to_string(),
            "episodes/iteration=1: 3/5 shards (missing 2, 4), 30 rows, by iteration=000001 (shards 0, 3), iteration=000002 (shards 1)"
        );
    }

    #[test]
    fn the_inventory_serialises_with_its_counts() {
        let inv = Inspected::Run(RunInventory {
            root: "runs/x".into(),
            best: Some("iteration=000001".into()),
            models: vec![0, 1],
            promotions: vec![0, 1],
            stores: vec![StoreInventory {
                store: "episodes".into(),
                partitions: vec![episodes(vec![part(0, 32, Some("iteration=000000"))], 2)],
            }],
            staged: vec![Staged {
                claim: "play-iteration-1-shard-1".into(),
                files: 2,
                bytes: 100,
            }],
        });
        let json = serde_json::to_value(&inv).unwrap();
        assert_eq!(json["kind"], "run");
        let p = &json["stores"][0]["partitions"][0];
        assert_eq!(p["keys"]["iteration"], "1");
        assert_eq!(
            (&p["committed"], &p["num_shards"], &p["rows"], &p["missing"]),
            (
                &serde_json::json!(1),
                &serde_json::json!(2),
                &serde_json::json!(32),
                &serde_json::json!([1])
            )
        );
        assert_eq!(p["parts"][0]["model_id"], "iteration=000000");
        assert_eq!(json["staged"][0]["files"], 2);
        let text = inv.to_string();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("run runs/x: best iteration=000001; models 0-1; promotions 0-1\n"));
        assert!(text.contains("uncommitted: play-iteration-1-shard-1 (2 temporary files"));
    }

    #[test]
    fn number_lists_are_ranges() {
        assert_eq!(ranges(&[]), "-");
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
    }
}
