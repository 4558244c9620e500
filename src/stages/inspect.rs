//! `inspect`: what a run directory or one Parquet file holds, in numbers.

use super::eval::read_evals;
use crate::error::{Error, Result};
use crate::store::parquet_io::{read_metadata, read_part};
use crate::store::rows::episode_summaries;
use crate::store::schema::type_name;
use crate::store::{committed_parts, list_partition, RunDir, Store};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

pub fn run_inspect(path: &Path) -> Result<String> {
    if path.is_file() {
        return inspect_file(path);
    }
    if !path.is_dir() {
        return Err(Error::Data(format!(
            "{}: no such run directory or Parquet file",
            path.display()
        )));
    }
    inspect_run(&RunDir::new(path))
}

/// Schema, metadata and row count of one part.
fn inspect_file(path: &Path) -> Result<String> {
    let mut out = String::new();
    let meta = read_metadata(path)?;
    let store = meta
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
    let batches = read_part(path, &schema)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let _ = writeln!(out, "{}: store {store}, {rows} rows", path.display());
    for f in schema.arrow.fields() {
        let _ = writeln!(out, "  {}: {}", f.name(), type_name(f.data_type()));
    }
    for (k, v) in meta {
        let _ = writeln!(out, "  {k} = {v}");
    }
    Ok(out)
}

/// Per-store part and row counts, self-play outcomes, and the eval table.
fn inspect_run(run: &RunDir) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "run {}", run.root.display());
    let _ = writeln!(
        out,
        "best model: {}",
        run.best()?.unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(out, "models: {:?}", run.model_iterations());
    let episodes = Store::Episodes.schema();
    for (it, dir) in list_partition(&run.root.join("episodes"), "iteration") {
        let mut by: BTreeMap<(String, String), (u64, f64, u64)> = BTreeMap::new();
        let parts = committed_parts(&dir)?;
        for part in &parts {
            for b in read_part(part, &episodes)? {
                for (fam, outcome, reward, len) in episode_summaries(&b)? {
                    let e = by.entry((fam, outcome)).or_default();
                    e.0 += 1;
                    e.1 += reward as f64;
                    e.2 += len as u64;
                }
            }
        }
        let cells: Vec<String> = by
            .iter()
            .map(|((f, o), (n, _, len))| {
                format!("{f}/{o}: {n} (mean length {:.1})", *len as f64 / *n as f64)
            })
            .collect();
        let _ = writeln!(
            out,
            "episodes iteration {it}: {} parts; {}",
            parts.len(),
            cells.join(", ")
        );
    }
    for (it, dir) in list_partition(&run.root.join("evals"), "iteration") {
        for r in read_evals(&dir)? {
            let _ = writeln!(
                out,
                "eval iteration {it}: {:<10} {:<9} {:<13} {:<17} vs {:<13} {:>5.1}% [{:.1}-{:.1}] over {} ({}W {}D {}L)",
                r.family.name(),
                r.bucket,
                r.agent,
                r.model_id,
                r.opponent,
                r.rate * 100.0,
                r.ci_low * 100.0,
                r.ci_high * 100.0,
                r.games,
                r.wins,
                r.draws,
                r.losses
            );
        }
    }
    Ok(out)
}
