//! Streaming Parquet parts: written to a unique temporary file with the
//! shard's marker in the footer, committed by rename; read with a version
//! and schema check.

use super::commit::{temp_file, Staged};
use super::lock::Claim;
use super::rows::MetricRow;
use super::schema::StoreSchema;
use super::{part_path, Marker};
use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// Rows per row group: large enough for scans, small enough to stream.
pub const ROW_GROUP_ROWS: usize = 8192;

/// Footer key of the shard's [`Marker`] (JSON).
pub const MARKER_KEY: &str = "selfplay.marker";
/// Footer key of the stage's metrics row (JSON), so a metrics part lost to
/// a crash after the data commit is rebuilt exactly.
pub const METRICS_KEY: &str = "selfplay.metrics";

/// What a part's footer says about where it came from.
#[derive(Clone, Debug, Default)]
pub struct FileMeta {
    pub stage: String,
    pub config_hash: String,
    pub model_id: Option<String>,
    pub shard: u32,
    pub num_shards: u32,
    pub seed: u64,
    pub inputs: Vec<String>,
}

/// One part file being written; invisible to readers until committed.
pub struct PartWriter {
    tmp: TempPath,
    dest: PathBuf,
    writer: ArrowWriter<File>,
    schema: StoreSchema,
    meta: FileMeta,
    rows: u64,
}

impl PartWriter {
    /// Starts `dir/part-{shard}.parquet` under `claim` (unique temporary name).
    pub fn create(
        claim: &Claim,
        dir: &Path,
        schema: &StoreSchema,
        meta: &FileMeta,
    ) -> Result<PartWriter> {
        let (file, tmp) = temp_file(&claim.run, &claim.key)?;
        let mut kv = vec![
            KeyValue::new("selfplay.schema_version".into(), schema.version.to_string()),
            KeyValue::new("selfplay.store".into(), schema.store.clone()),
            KeyValue::new("selfplay.stage".into(), meta.stage.clone()),
            KeyValue::new("selfplay.producer".into(), super::producer()),
            KeyValue::new("selfplay.config_hash".into(), meta.config_hash.clone()),
        ];
        if let Some(id) = &meta.model_id {
            kv.push(KeyValue::new("selfplay.model_id".into(), id.clone()));
        }
        let level = ZstdLevel::try_new(3).map_err(|e| Error::Other(e.to_string()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .set_key_value_metadata(Some(kv))
            .build();
        let dest = part_path(dir, meta.shard);
        let writer = ArrowWriter::try_new(file, schema.arrow.clone(), Some(props))
            .map_err(|e| Error::Other(format!("{}: {e}", dest.display())))?;
        Ok(PartWriter {
            tmp,
            dest,
            writer,
            schema: schema.clone(),
            meta: meta.clone(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.schema
            .check(&self.dest.display().to_string(), &batch.schema())?;
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| Error::Other(format!("{}: {}", self.dest.display(), one_line(&e))))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer (marker, and the stage's metrics row when given),
    /// closes and fsyncs; the part still waits for [`Staged::commit`].
    pub fn finish(mut self, metrics: Option<&MetricRow>) -> Result<Staged> {
        let marker = Marker {
            stage: self.meta.stage.clone(),
            shard: self.meta.shard,
            num_shards: self.meta.num_shards.max(1),
            rows: self.rows,
            seed: self.meta.seed,
            config_hash: self.meta.config_hash.clone(),
            inputs: self.meta.inputs.clone(),
            producer: super::producer(),
        };
        self.writer
            .append_key_value_metadata(KeyValue::new(MARKER_KEY.into(), json(&marker)));
        if let Some(m) = metrics {
            self.writer
                .append_key_value_metadata(KeyValue::new(METRICS_KEY.into(), json(m)));
        }
        let file = self
            .writer
            .into_inner()
            .map_err(|e| Error::Other(format!("{}: {}", self.dest.display(), one_line(&e))))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        Ok(Staged::new(self.tmp, self.dest, self.rows))
    }
}

/// Footer values are plain structs of numbers and strings: serialising
/// them cannot fail.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Writes and stages a whole part from batches (small stores).
pub fn stage_part(
    claim: &Claim,
    dir: &Path,
    schema: &StoreSchema,
    meta: &FileMeta,
    batches: &[RecordBatch],
    metrics: Option<&MetricRow>,
) -> Result<Staged> {
    let mut w = PartWriter::create(claim, dir, schema, meta)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish(metrics)
}

/// Reads every batch of a part, checking its version and schema.
pub fn read_part(path: &Path, schema: &StoreSchema) -> Result<Vec<RecordBatch>> {
    let reader = open_reader(path, schema, None)?;
    reader.map(|b| b.map_err(|e| corrupt(path, e))).collect()
}

/// Reads only the named columns of a part (version and schema checked
/// first): wide columns such as observations are never decoded.
pub fn read_columns(
    path: &Path,
    schema: &StoreSchema,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    let builder = checked_builder(path, schema)?;
    let roots: Vec<usize> = columns
        .iter()
        .filter_map(|c| builder.schema().index_of(c).ok())
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(path, e))?;
    reader.map(|b| b.map_err(|e| corrupt(path, e))).collect()
}

/// A streaming reader over a part, checked against the store's schema.
pub fn open_reader(
    path: &Path,
    schema: &StoreSchema,
    batch_size: Option<usize>,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let builder = checked_builder(path, schema)?;
    let builder = match batch_size {
        Some(n) => builder.with_batch_size(n),
        None => builder,
    };
    builder.build().map_err(|e| corrupt(path, e))
}

/// A reader builder over a part whose version and schema were checked.
fn checked_builder(
    path: &Path,
    schema: &StoreSchema,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    let kv = key_values(builder.metadata().file_metadata());
    check_version(path, schema, &kv)?;
    schema.check(&path.display().to_string(), builder.schema())?;
    Ok(builder)
}

/// Rows of each row group of a part (from its footer, no data read).
pub fn row_group_rows(path: &Path, schema: &StoreSchema) -> Result<Vec<usize>> {
    let builder = checked_builder(path, schema)?;
    Ok(builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as usize)
        .collect())
}

/// A streaming reader over the first `limit` rows of row group `group`,
/// in batches of `batch_size` rows: memory is a batch, not the group.
pub fn open_row_group(
    path: &Path,
    schema: &StoreSchema,
    group: usize,
    limit: usize,
    batch_size: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    checked_builder(path, schema)?
        .with_row_groups(vec![group])
        .with_limit(limit)
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| corrupt(path, e))
}

/// A file of another store, or of an older or newer version of this one,
/// is refused before its columns are misread.
fn check_version(path: &Path, schema: &StoreSchema, kv: &[(String, String)]) -> Result<()> {
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let store = get("selfplay.store").unwrap_or("?");
    let version = get("selfplay.schema_version").unwrap_or("?");
    if store != schema.store || version != schema.version.to_string() {
        return Err(Error::Data(format!(
            "{}: a part of store '{store}' v{version}, expected store '{}' v{} (a file from another store or an older selfplay: rerun the stage into a new --out)",
            path.display(),
            schema.store,
            schema.version
        )));
    }
    Ok(())
}

/// The key-value metadata of a part.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    Ok(key_values(builder.metadata().file_metadata()))
}

fn key_values(meta: &parquet::file::metadata::FileMetaData) -> Vec<(String, String)> {
    meta.key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The marker in a committed part's footer.
pub fn read_marker(path: &Path) -> Result<Marker> {
    footer_json(path, MARKER_KEY)?.ok_or_else(|| {
        Error::Data(format!(
            "{}: no {MARKER_KEY} in the footer; expected a part written by selfplay (store layout 2)",
            path.display()
        ))
    })
}

/// The stage's metrics row a part's footer carries, if any.
pub fn read_metrics(path: &Path) -> Result<Option<MetricRow>> {
    footer_json(path, METRICS_KEY)
}

fn footer_json<T: serde::de::DeserializeOwned>(path: &Path, key: &str) -> Result<Option<T>> {
    let kv = read_metadata(path)?;
    let Some((_, text)) = kv.into_iter().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Data(format!("{}: footer {key}: {e}", path.display())))
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Data(format!(
        "{}: not a readable Parquet file ({}); expected a part written by selfplay",
        path.display(),
        one_line(&e)
    ))
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
