//! Streaming Parquet parts: write to `.tmp`, fsync, rename; read with a schema check.

use super::schema::StoreSchema;
use super::{part_path, tmp_path};
use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per row group: large enough for scans, small enough to stream.
pub const ROW_GROUP_ROWS: usize = 8192;

/// Key-value metadata written on every file.
#[derive(Clone, Debug, Default)]
pub struct FileMeta {
    pub stage: String,
    pub config_hash: String,
    pub model_id: Option<String>,
}

/// One part file being written; invisible to readers until [`PartWriter::finish`].
pub struct PartWriter {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: StoreSchema,
    rows: u64,
}

impl PartWriter {
    pub fn create(
        dir: &Path,
        shard: u32,
        schema: &StoreSchema,
        meta: &FileMeta,
    ) -> Result<PartWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = part_path(dir, shard);
        let tmp = tmp_path(&path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
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
        let writer = ArrowWriter::try_new(file, schema.arrow.clone(), Some(props))
            .map_err(|e| Error::Other(format!("{}: {e}", tmp.display())))?;
        Ok(PartWriter {
            tmp,
            path,
            writer,
            schema: schema.clone(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.schema
            .check(&self.tmp.display().to_string(), &batch.schema())?;
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| Error::Other(format!("{}: {e}", self.tmp.display())))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes, fsyncs and renames the part into place; returns its row count.
    pub fn finish(self) -> Result<u64> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| Error::Other(format!("{}: {e}", self.tmp.display())))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.rows)
    }
}

/// Writes a whole part from batches (small stores: tasks, evals, metrics).
pub fn write_part(
    dir: &Path,
    shard: u32,
    schema: &StoreSchema,
    meta: &FileMeta,
    batches: &[RecordBatch],
) -> Result<u64> {
    let mut w = PartWriter::create(dir, shard, schema, meta)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// Reads every batch of a part, checking its schema against the store's.
pub fn read_part(path: &Path, schema: &StoreSchema) -> Result<Vec<RecordBatch>> {
    let reader = open_reader(path, schema, None)?;
    reader.map(|b| b.map_err(|e| corrupt(path, e))).collect()
}

/// A streaming reader over a part, optionally projected to some columns.
pub fn open_reader(
    path: &Path,
    schema: &StoreSchema,
    batch_size: Option<usize>,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    schema.check(&path.display().to_string(), builder.schema())?;
    let builder = match batch_size {
        Some(n) => builder.with_batch_size(n),
        None => builder,
    };
    builder.build().map_err(|e| corrupt(path, e))
}

/// The key-value metadata of a part.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Data(format!(
        "{}: not a readable Parquet file ({}); expected a part written by selfplay",
        path.display(),
        one_line(&e.to_string())
    ))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
