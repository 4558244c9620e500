//! Store schemas, defined by the files in schemas/ (embedded at build time).
//! Writers build their Arrow schema from them; readers check files against them.

use crate::error::{Error, Result};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;
use std::sync::Arc;

/// The stores and their schema files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Tasks,
    Episodes,
    Examples,
    Evals,
    /// One row per evaluation episode, beside the aggregate evals.
    Results,
    Metrics,
    Curves,
    /// Reasoning traces for fine-tuning (`distill`).
    Traces,
}

impl Store {
    /// Every store, in the order listings show them.
    pub const ALL: [Store; 8] = [
        Store::Tasks,
        Store::Episodes,
        Store::Examples,
        Store::Evals,
        Store::Results,
        Store::Metrics,
        Store::Curves,
        Store::Traces,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Store::Tasks => "tasks",
            Store::Episodes => "episodes",
            Store::Examples => "examples",
            Store::Evals => "evals",
            Store::Results => "results",
            Store::Metrics => "metrics",
            Store::Curves => "curves",
            Store::Traces => "traces",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Store::Tasks => include_str!("../../schemas/tasks.json"),
            Store::Episodes => include_str!("../../schemas/episodes.json"),
            Store::Examples => include_str!("../../schemas/examples.json"),
            Store::Evals => include_str!("../../schemas/evals.json"),
            Store::Results => include_str!("../../schemas/results.json"),
            Store::Metrics => include_str!("../../schemas/metrics.json"),
            Store::Curves => include_str!("../../schemas/curves.json"),
            Store::Traces => include_str!("../../schemas/traces.json"),
        }
    }

    /// The store's schema as declared in schemas/<store>.json.
    pub fn schema(self) -> StoreSchema {
        // ok: the embedded files are checked by the golden tests.
        StoreSchema::parse(self.file()).expect("embedded schema file is valid")
    }
}

#[derive(Deserialize)]
struct SchemaFile {
    store: String,
    version: u32,
    fields: Vec<FieldFile>,
}

#[derive(Deserialize)]
struct FieldFile {
    name: String,
    /// A scalar (`utf8`, `f32`, ...), `list<scalar>`, or `struct` /
    /// `list<struct>` with `fields`.
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    doc: Option<String>,
    #[serde(default)]
    fields: Vec<FieldFile>,
}

impl FieldFile {
    /// The Arrow field, its doc in the field metadata (`doc`), which
    /// Parquet keeps in the embedded Arrow schema for every reader.
    fn arrow(&self) -> Result<Field> {
        let ty = match self.ty.as_str() {
            "struct" => DataType::Struct(self.children()?),
            "list<struct>" => DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(self.children()?),
                true,
            ))),
            other => data_type(other)?,
        };
        let field = Field::new(&self.name, ty, self.nullable);
        Ok(match &self.doc {
            Some(doc) => field.with_metadata([("doc".to_string(), doc.clone())].into()),
            None => field,
        })
    }

    fn children(&self) -> Result<arrow::datatypes::Fields> {
        self.fields
            .iter()
            .map(FieldFile::arrow)
            .collect::<Result<Vec<_>>>()
            .map(Into::into)
    }
}

/// A store's name, version and Arrow schema.
#[derive(Clone, Debug)]
pub struct StoreSchema {
    pub store: String,
    pub version: u32,
    pub arrow: SchemaRef,
}

impl StoreSchema {
    pub fn parse(text: &str) -> Result<StoreSchema> {
        let file: SchemaFile =
            serde_json::from_str(text).map_err(|e| Error::Data(format!("schema file: {e}")))?;
        let fields = file
            .fields
            .iter()
            .map(FieldFile::arrow)
            .collect::<Result<Vec<_>>>()?;
        Ok(StoreSchema {
            store: file.store,
            version: file.version,
            arrow: Arc::new(Schema::new(fields)),
        })
    }

    /// Checks a file's schema; the error names the file, expected and found.
    pub fn check(&self, file: &str, found: &Schema) -> Result<()> {
        let same = found.fields().len() == self.arrow.fields().len()
            && found
                .fields()
                .iter()
                .zip(self.arrow.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type().equals_datatype(b.data_type()));
        if same {
            return Ok(());
        }
        Err(Error::Data(format!(
            "{file}: schema mismatch for store '{}' v{}: expected [{}], found [{}]",
            self.store,
            self.version,
            describe(&self.arrow),
            describe(found)
        )))
    }
}

fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn data_type(name: &str) -> Result<DataType> {
    if let Some(inner) = name.strip_prefix("list<").and_then(|s| s.strip_suffix('>')) {
        return Ok(DataType::List(Arc::new(Field::new(
            "item",
            data_type(inner)?,
            true,
        ))));
    }
    Ok(match name {
        "utf8" => DataType::Utf8,
        "f32" => DataType::Float32,
        "f64" => DataType::Float64,
        "u8" => DataType::UInt8,
        "u16" => DataType::UInt16,
        "u32" => DataType::UInt32,
        "u64" => DataType::UInt64,
        "i32" => DataType::Int32,
        "i64" => DataType::Int64,
        "bool" => DataType::Boolean,
        other => return Err(Error::Data(format!("schema file: unknown type '{other}'"))),
    })
}

/// The schema-file spelling of an Arrow type.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::List(f) => format!("list<{}>", type_name(f.data_type())),
        DataType::Utf8 => "utf8".into(),
        DataType::Float32 => "f32".into(),
        DataType::Float64 => "f64".into(),
        DataType::UInt8 => "u8".into(),
        DataType::UInt16 => "u16".into(),
        DataType::UInt32 => "u32".into(),
        DataType::UInt64 => "u64".into(),
        DataType::Int32 => "i32".into(),
        DataType::Int64 => "i64".into(),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Boolean => "bool".into(),
        other => format!("{other:?}"),
    }
}
