//! Row types of each store and their conversion to and from Arrow batches.
//! Column order follows schemas/<store>.json; the golden tests hold them equal.

use super::schema::Store;
use crate::error::{Error, Result};
use crate::tasks::{Family, Task};
use arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Float64Builder, Int32Builder, ListArray, ListBuilder,
    PrimitiveBuilder, RecordBatch, StringBuilder, StructArray, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One self-play episode (episodes store).
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeRow {
    pub task_id: String,
    pub family: Family,
    pub difficulty: f32,
    pub model_id: String,
    pub outcome: String,
    pub total_reward: f32,
    pub actions: Vec<u16>,
    pub action_labels: Vec<String>,
    pub root_values: Vec<f32>,
    pub simulations: u32,
    pub search_us: u64,
    pub seed: u64,
}

/// One decision (examples store).
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleRow {
    pub task_id: String,
    pub family: Family,
    pub step: u32,
    pub obs: Vec<f32>,
    pub legal: Vec<u16>,
    pub policy_actions: Vec<u16>,
    pub policy_probs: Vec<f32>,
    pub value: f32,
    pub weight: f32,
    pub proven: bool,
    pub visit_counts: Vec<u32>,
    pub model_id: String,
    /// The final board from the mover's view ([`crate::tasks::Game::ownership`]);
    /// empty for families without stones.
    pub ownership: Vec<u8>,
}

/// One matchup result (evals store).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalRow {
    pub model_id: String,
    pub agent: String,
    pub opponent: String,
    pub family: Family,
    /// `all`, or a difficulty bucket such as `0.25-0.50`.
    pub bucket: String,
    pub games: u32,
    pub wins: u32,
    pub draws: u32,
    pub losses: u32,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub simulations: u32,
}

/// One evaluation episode of one agent (results store); the evals rows
/// are tallies of these.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub model_id: String,
    pub agent: String,
    pub opponent: String,
    pub family: Family,
    pub task_id: String,
    pub difficulty: f32,
    /// The player the measured agent was (0: the game's first player).
    pub colour: u32,
    /// The measured agent's first move and its label.
    pub first_action: Option<u16>,
    pub first_move: Option<String>,
    /// Every move's label, joined by [`LINE_SEPARATOR`].
    pub line: String,
    /// From the measured agent's view.
    pub outcome: String,
    pub steps: u32,
    pub simulations: u32,
    /// Exact score of a `--tasks` game position for its mover.
    pub solver_score: Option<i32>,
    /// The first move keeps `solver_score`.
    pub optimal: Option<bool>,
    /// Exact score of the first move itself: `solver_score` when optimal,
    /// else how much it gave away (a slower win, a lost draw...).
    pub move_score: Option<i32>,
    /// False when the solver gave up on the position.
    pub scored: bool,
}

/// Joins move labels in `ResultRow::line`: labels hold spaces and commas
/// (`col 4`, `take item 2 (w 3, v 5)`), never a semicolon.
pub const LINE_SEPARATOR: &str = "; ";

/// One stage run on a shard (metrics store). Also kept as JSON in the
/// footer of the stage's data part, so it survives a crash between commits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub stage: String,
    pub iteration: u32,
    pub shard: u32,
    pub items: u64,
    pub unit: String,
    pub seconds: f64,
    pub items_per_s: f64,
    pub cpu_pct: f64,
    pub peak_rss_mb: f64,
    pub detail: MetricDetail,
}

/// Stage-specific figures of a metrics row (the `detail` struct column).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricDetail {
    pub examples: Option<u64>,
    pub sims_per_s: Option<f64>,
    pub evals_per_s: Option<f64>,
    pub net_share: Option<f64>,
    pub policy_loss: Option<f64>,
    pub value_loss: Option<f64>,
    #[serde(default)]
    pub read_share: Option<f64>,
    #[serde(default)]
    pub cache_hit_rate: Option<f64>,
    pub difficulty: Option<Vec<FamilyRange>>,
    #[serde(default)]
    pub traces: Option<Vec<FamilyTraces>>,
}

/// A family's figures in one distill (`detail.traces`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyTraces {
    pub family: String,
    pub rows: u64,
    pub mean_chars: f64,
    pub verified_share: f64,
    pub unverified: u64,
    pub duplicates: u64,
    pub solver_rows: u64,
}

/// One reasoning trace (traces store).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub prompt: String,
    pub completion: String,
    pub answer: String,
    pub task_id: String,
    pub family: Family,
    pub difficulty: f32,
    pub task_seed: u64,
    /// Self-play lineage; `None` for a solver row.
    pub episode: Option<EpisodeLineage>,
    pub iteration: u32,
    pub steps: u32,
    pub notes: bool,
    /// `selfplay` or `solver`.
    pub source: &'static str,
}

/// Where a self-play trace came from.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeLineage {
    pub seed: u64,
    pub model_id: String,
    pub part: u32,
    pub simulations: u32,
    pub outcome: String,
}

/// A family's difficulty range in one iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyRange {
    pub family: String,
    pub lo: f32,
    pub hi: f32,
}

/// One measurement of training (curves store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub iteration: u32,
    pub step: u64,
    /// `train` or `heldout`.
    pub split: String,
    /// `all`, or a family name.
    pub family: String,
    pub rows: u32,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub top1: f64,
    pub value_error: f64,
    pub learning_rate: f64,
    pub grad_norm: Option<f64>,
}

fn batch(store: Store, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(store.schema().arrow, columns)
        .map_err(|e| Error::Other(format!("building a {} batch: {e}", store.name())))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringBuilder::new();
    it.for_each(|s| b.append_value(s));
    Arc::new(b.finish())
}

fn f32s(it: impl Iterator<Item = f32>) -> ArrayRef {
    let mut b = Float32Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

fn f64s(it: impl Iterator<Item = f64>) -> ArrayRef {
    let mut b = Float64Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

fn u32s(it: impl Iterator<Item = u32>) -> ArrayRef {
    let mut b = UInt32Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

/// A partition value repeated on every row (`None`: null, e.g. held-out tasks).
fn partition_i32(n: usize, value: Option<u32>) -> ArrayRef {
    let mut b = Int32Builder::with_capacity(n);
    for _ in 0..n {
        b.append_option(value.map(|v| v as i32));
    }
    Arc::new(b.finish())
}

fn opt_u64s(it: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn opt_f64s(it: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = Float64Builder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn u64s(it: impl Iterator<Item = u64>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

/// A list column of primitive values, one list per row.
fn list_of<'a, T: ArrowPrimitiveType>(it: impl Iterator<Item = &'a [T::Native]>) -> ArrayRef {
    let mut b = ListBuilder::new(PrimitiveBuilder::<T>::new());
    for xs in it {
        b.values().append_slice(xs);
        b.append(true);
    }
    Arc::new(b.finish())
}

fn opt_u16s(it: impl Iterator<Item = Option<u16>>) -> ArrayRef {
    let mut b = UInt16Builder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn opt_i32s(it: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    let mut b = Int32Builder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn opt_strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

fn opt_bools(it: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(arrow::array::BooleanArray::from(
        it.collect::<Vec<Option<bool>>>(),
    ))
}

fn bools(it: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(arrow::array::BooleanArray::from(it.collect::<Vec<bool>>()))
}

fn list_str<'a>(it: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for xs in it {
        xs.iter().for_each(|s| b.values().append_value(s));
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Task rows; `iteration` is the partition (None: held-out or imported).
pub fn tasks_batch(rows: &[Task], iteration: Option<u32>) -> Result<RecordBatch> {
    let mut steps = UInt32Builder::new();
    rows.iter()
        .for_each(|t| steps.append_option(t.optimal_steps));
    batch(
        Store::Tasks,
        vec![
            strings(rows.iter().map(|t| t.task_id.as_str())),
            strings(rows.iter().map(|t| t.family.kind())),
            f32s(rows.iter().map(|t| t.difficulty)),
            u64s(rows.iter().map(|t| t.seed)),
            strings(rows.iter().map(|t| t.statement.as_str())),
            strings(rows.iter().map(|t| t.spec.as_str())),
            strings(rows.iter().map(|t| t.reference_solution.as_str())),
            Arc::new(steps.finish()),
            strings(rows.iter().map(|t| t.family.name())),
            partition_i32(rows.len(), iteration),
        ],
    )
}

pub fn episodes_batch(rows: &[EpisodeRow], iteration: u32) -> Result<RecordBatch> {
    batch(
        Store::Episodes,
        vec![
            strings(rows.iter().map(|r| r.task_id.as_str())),
            strings(rows.iter().map(|r| r.family.name())),
            strings(rows.iter().map(|r| r.family.kind())),
            f32s(rows.iter().map(|r| r.difficulty)),
            strings(rows.iter().map(|r| r.model_id.as_str())),
            strings(rows.iter().map(|r| r.outcome.as_str())),
            f32s(rows.iter().map(|r| r.total_reward)),
            u32s(rows.iter().map(|r| r.actions.len() as u32)),
            list_of::<UInt16Type>(rows.iter().map(|r| r.actions.as_slice())),
            list_str(rows.iter().map(|r| r.action_labels.as_slice())),
            list_of::<Float32Type>(rows.iter().map(|r| r.root_values.as_slice())),
            u32s(rows.iter().map(|r| r.simulations)),
            u64s(rows.iter().map(|r| r.search_us)),
            u64s(rows.iter().map(|r| r.seed)),
            partition_i32(rows.len(), Some(iteration)),
        ],
    )
}

pub fn examples_batch(rows: &[ExampleRow], iteration: u32) -> Result<RecordBatch> {
    batch(
        Store::Examples,
        vec![
            strings(rows.iter().map(|r| r.task_id.as_str())),
            strings(rows.iter().map(|r| r.family.name())),
            u32s(rows.iter().map(|r| r.step)),
            list_of::<Float32Type>(rows.iter().map(|r| r.obs.as_slice())),
            list_of::<UInt16Type>(rows.iter().map(|r| r.legal.as_slice())),
            list_of::<UInt16Type>(rows.iter().map(|r| r.policy_actions.as_slice())),
            list_of::<Float32Type>(rows.iter().map(|r| r.policy_probs.as_slice())),
            f32s(rows.iter().map(|r| r.value)),
            f32s(rows.iter().map(|r| r.weight)),
            bools(rows.iter().map(|r| r.proven)),
            list_of::<UInt32Type>(rows.iter().map(|r| r.visit_counts.as_slice())),
            strings(rows.iter().map(|_| "policy_value")),
            strings(rows.iter().map(|r| r.model_id.as_str())),
            list_of::<UInt8Type>(rows.iter().map(|r| r.ownership.as_slice())),
            partition_i32(rows.len(), Some(iteration)),
        ],
    )
}

/// Eval rows; `iteration` is the partition (None for `eval --tasks`).
pub fn evals_batch(rows: &[EvalRow], iteration: Option<u32>) -> Result<RecordBatch> {
    batch(
        Store::Evals,
        vec![
            strings(rows.iter().map(|r| r.model_id.as_str())),
            strings(rows.iter().map(|r| r.agent.as_str())),
            strings(rows.iter().map(|r| r.opponent.as_str())),
            strings(rows.iter().map(|r| r.family.name())),
            strings(rows.iter().map(|r| r.bucket.as_str())),
            u32s(rows.iter().map(|r| r.games)),
            u32s(rows.iter().map(|r| r.wins)),
            u32s(rows.iter().map(|r| r.draws)),
            u32s(rows.iter().map(|r| r.losses)),
            f64s(rows.iter().map(|r| r.rate)),
            f64s(rows.iter().map(|r| r.ci_low)),
            f64s(rows.iter().map(|r| r.ci_high)),
            u32s(rows.iter().map(|r| r.simulations)),
            partition_i32(rows.len(), iteration),
        ],
    )
}

/// Result rows; `iteration` is the partition (None for `eval --tasks`).
pub fn results_batch(rows: &[ResultRow], iteration: Option<u32>) -> Result<RecordBatch> {
    batch(
        Store::Results,
        vec![
            strings(rows.iter().map(|r| r.model_id.as_str())),
            strings(rows.iter().map(|r| r.agent.as_str())),
            strings(rows.iter().map(|r| r.opponent.as_str())),
            strings(rows.iter().map(|r| r.family.name())),
            strings(rows.iter().map(|r| r.task_id.as_str())),
            f32s(rows.iter().map(|r| r.difficulty)),
            u32s(rows.iter().map(|r| r.colour)),
            opt_u16s(rows.iter().map(|r| r.first_action)),
            opt_strings(rows.iter().map(|r| r.first_move.as_deref())),
            strings(rows.iter().map(|r| r.line.as_str())),
            strings(rows.iter().map(|r| r.outcome.as_str())),
            u32s(rows.iter().map(|r| r.steps)),
            u32s(rows.iter().map(|r| r.simulations)),
            opt_i32s(rows.iter().map(|r| r.solver_score)),
            opt_bools(rows.iter().map(|r| r.optimal)),
            opt_i32s(rows.iter().map(|r| r.move_score)),
            bools(rows.iter().map(|r| r.scored)),
            partition_i32(rows.len(), iteration),
        ],
    )
}

/// Reads result rows back.
pub fn results_from_batch(b: &RecordBatch) -> Result<Vec<ResultRow>> {
    let s = |n| str_col(b, n);
    let u = |n| col(b, n).map(|c| c.as_primitive::<UInt32Type>().clone());
    let (model, agent, opp, fam) = (s("model_id")?, s("agent")?, s("opponent")?, s("family")?);
    let (task, first_move, line, outcome) =
        (s("task_id")?, s("first_move")?, s("line")?, s("outcome")?);
    let difficulty = col(b, "difficulty")?.as_primitive::<Float32Type>();
    let (colour, steps, sims) = (u("colour")?, u("steps")?, u("simulations")?);
    let first = col(b, "first_action")?.as_primitive::<UInt16Type>();
    let i32_col = |n| col(b, n).map(|c| c.as_primitive::<arrow::datatypes::Int32Type>().clone());
    let (score, move_score) = (i32_col("solver_score")?, i32_col("move_score")?);
    let bool_col = |n| {
        col(b, n)?
            .as_boolean_opt()
            .ok_or_else(|| Error::Data(format!("column '{n}': expected bool")))
    };
    let (optimal, scored) = (bool_col("optimal")?, bool_col("scored")?);
    let opt = |a: &dyn Array, i: usize| !a.is_null(i);
    (0..b.num_rows())
        .map(|i| {
            Ok(ResultRow {
                model_id: model.value(i).into(),
                agent: agent.value(i).into(),
                opponent: opp.value(i).into(),
                family: Family::parse(fam.value(i))?,
                task_id: task.value(i).into(),
                difficulty: difficulty.value(i),
                colour: colour.value(i),
                first_action: opt(first, i).then(|| first.value(i)),
                first_move: opt(first_move, i).then(|| first_move.value(i).into()),
                line: line.value(i).into(),
                outcome: outcome.value(i).into(),
                steps: steps.value(i),
                simulations: sims.value(i),
                solver_score: opt(&score, i).then(|| score.value(i)),
                optimal: opt(optimal, i).then(|| optimal.value(i)),
                move_score: opt(&move_score, i).then(|| move_score.value(i)),
                scored: scored.value(i),
            })
        })
        .collect()
}

pub fn metrics_batch(rows: &[MetricRow]) -> Result<RecordBatch> {
    batch(
        Store::Metrics,
        vec![
            u32s(rows.iter().map(|r| r.shard)),
            u64s(rows.iter().map(|r| r.items)),
            strings(rows.iter().map(|r| r.unit.as_str())),
            f64s(rows.iter().map(|r| r.seconds)),
            f64s(rows.iter().map(|r| r.items_per_s)),
            f64s(rows.iter().map(|r| r.cpu_pct)),
            f64s(rows.iter().map(|r| r.peak_rss_mb)),
            detail_column(rows)?,
            strings(rows.iter().map(|r| r.stage.as_str())),
            u32s_as_i32(rows.iter().map(|r| r.iteration)),
        ],
    )
}

pub fn curves_batch(rows: &[CurveRow]) -> Result<RecordBatch> {
    let f = |get: fn(&CurveRow) -> f64| f64s(rows.iter().map(get));
    batch(
        Store::Curves,
        vec![
            u64s(rows.iter().map(|r| r.step)),
            strings(rows.iter().map(|r| r.split.as_str())),
            strings(rows.iter().map(|r| r.family.as_str())),
            u32s(rows.iter().map(|r| r.rows)),
            f(|r| r.policy_loss),
            f(|r| r.value_loss),
            f(|r| r.entropy),
            f(|r| r.top1),
            f(|r| r.value_error),
            f(|r| r.learning_rate),
            opt_f64s(rows.iter().map(|r| r.grad_norm)),
            u32s_as_i32(rows.iter().map(|r| r.iteration)),
        ],
    )
}

/// Reads curve rows back (report).
pub fn curves_from_batch(b: &RecordBatch) -> Result<Vec<CurveRow>> {
    let f = |n| col(b, n).map(|c| c.as_primitive::<Float64Type>().clone());
    let (split, family) = (str_col(b, "split")?, str_col(b, "family")?);
    let step = col(b, "step")?.as_primitive::<UInt64Type>();
    let rows = col(b, "rows")?.as_primitive::<UInt32Type>();
    let it = col(b, "iteration")?.as_primitive::<arrow::datatypes::Int32Type>();
    let (pl, vl, ent, top1, ve, lr, gn) = (
        f("policy_loss")?,
        f("value_loss")?,
        f("entropy")?,
        f("top1")?,
        f("value_error")?,
        f("learning_rate")?,
        f("grad_norm")?,
    );
    Ok((0..b.num_rows())
        .map(|i| CurveRow {
            iteration: it.value(i).max(0) as u32,
            step: step.value(i),
            split: split.value(i).into(),
            family: family.value(i).into(),
            rows: rows.value(i),
            policy_loss: pl.value(i),
            value_loss: vl.value(i),
            entropy: ent.value(i),
            top1: top1.value(i),
            value_error: ve.value(i),
            learning_rate: lr.value(i),
            grad_norm: (!gn.is_null(i)).then(|| gn.value(i)),
        })
        .collect())
}

fn u32s_as_i32(it: impl Iterator<Item = u32>) -> ArrayRef {
    let mut b = Int32Builder::new();
    it.for_each(|v| b.append_value(v as i32));
    Arc::new(b.finish())
}

/// The `detail` struct column, built on the schema file's own field list.
fn detail_column(rows: &[MetricRow]) -> Result<ArrayRef> {
    let schema = Store::Metrics.schema().arrow;
    let field = schema
        .field_with_name("detail")
        .map_err(|e| Error::Other(e.to_string()))?;
    let DataType::Struct(fields) = field.data_type() else {
        return Err(Error::Other(
            "metrics schema: detail is not a struct".into(),
        ));
    };
    let d = || rows.iter().map(|r| &r.detail);
    let children = vec![
        opt_u64s(d().map(|x| x.examples)),
        opt_f64s(d().map(|x| x.sims_per_s)),
        opt_f64s(d().map(|x| x.evals_per_s)),
        opt_f64s(d().map(|x| x.net_share)),
        opt_f64s(d().map(|x| x.policy_loss)),
        opt_f64s(d().map(|x| x.value_loss)),
        opt_f64s(d().map(|x| x.read_share)),
        opt_f64s(d().map(|x| x.cache_hit_rate)),
        ranges_column(fields[8].data_type(), d().map(|x| x.difficulty.as_deref()))?,
        traces_column(fields[9].data_type(), d().map(|x| x.traces.as_deref()))?,
    ];
    StructArray::try_new(fields.clone(), children, None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::Other(format!("building metrics.detail: {e}")))
}

/// `list<struct<family, lo, hi>>`: one list per row, null when absent.
fn ranges_column<'a>(
    list_type: &DataType,
    it: impl Iterator<Item = Option<&'a [FamilyRange]>>,
) -> Result<ArrayRef> {
    let DataType::List(item) = list_type else {
        return Err(Error::Other(
            "metrics schema: detail.difficulty is not a list".into(),
        ));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(Error::Other(
            "metrics schema: detail.difficulty items are not structs".into(),
        ));
    };
    let rows: Vec<Option<&[FamilyRange]>> = it.collect();
    let flat: Vec<&FamilyRange> = rows.iter().flatten().flat_map(|r| r.iter()).collect();
    let values = StructArray::try_new(
        fields.clone(),
        vec![
            strings(flat.iter().map(|r| r.family.as_str())),
            f32s(flat.iter().map(|r| r.lo)),
            f32s(flat.iter().map(|r| r.hi)),
        ],
        None,
    )
    .map_err(|e| Error::Other(format!("building metrics.detail.difficulty: {e}")))?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.map_or(0, <[_]>::len)));
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
    ListArray::try_new(item.clone(), offsets, Arc::new(values), Some(nulls))
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::Other(format!("building metrics.detail.difficulty: {e}")))
}

/// `list<struct<family, rows, ...>>` of `detail.traces`: one list per
/// row, null when absent.
fn traces_column<'a>(
    list_type: &DataType,
    it: impl Iterator<Item = Option<&'a [FamilyTraces]>>,
) -> Result<ArrayRef> {
    let bad = |what: &str| Error::Other(format!("metrics schema: detail.traces {what}"));
    let DataType::List(item) = list_type else {
        return Err(bad("is not a list"));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(bad("items are not structs"));
    };
    let rows: Vec<Option<&[FamilyTraces]>> = it.collect();
    let flat: Vec<&FamilyTraces> = rows.iter().flatten().flat_map(|r| r.iter()).collect();
    let values = StructArray::try_new(
        fields.clone(),
        vec![
            strings(flat.iter().map(|r| r.family.as_str())),
            u64s(flat.iter().map(|r| r.rows)),
            f64s(flat.iter().map(|r| r.mean_chars)),
            f64s(flat.iter().map(|r| r.verified_share)),
            u64s(flat.iter().map(|r| r.unverified)),
            u64s(flat.iter().map(|r| r.duplicates)),
            u64s(flat.iter().map(|r| r.solver_rows)),
        ],
        None,
    )
    .map_err(|e| Error::Other(format!("building metrics.detail.traces: {e}")))?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.map_or(0, <[_]>::len)));
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
    ListArray::try_new(item.clone(), offsets, Arc::new(values), Some(nulls))
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::Other(format!("building metrics.detail.traces: {e}")))
}

/// Trace rows of one split (`split` is the partition value).
pub fn traces_batch(rows: &[TraceRow], split: &str) -> Result<RecordBatch> {
    let ep = || rows.iter().map(|r| r.episode.as_ref());
    batch(
        Store::Traces,
        vec![
            strings(rows.iter().map(|r| r.prompt.as_str())),
            strings(rows.iter().map(|r| r.completion.as_str())),
            messages_column(rows)?,
            strings(rows.iter().map(|r| r.answer.as_str())),
            strings(rows.iter().map(|r| r.task_id.as_str())),
            strings(rows.iter().map(|r| r.family.name())),
            strings(rows.iter().map(|r| r.family.kind())),
            f32s(rows.iter().map(|r| r.difficulty)),
            u64s(rows.iter().map(|r| r.task_seed)),
            opt_u64s(ep().map(|e| e.map(|e| e.seed))),
            opt_strings(ep().map(|e| e.map(|e| e.model_id.as_str()))),
            u32s_as_i32(rows.iter().map(|r| r.iteration)),
            opt_u32s(ep().map(|e| e.map(|e| e.part))),
            u32s(ep().map(|e| e.map_or(0, |e| e.simulations))),
            opt_strings(ep().map(|e| e.map(|e| e.outcome.as_str()))),
            u32s(rows.iter().map(|r| r.steps)),
            bools(rows.iter().map(|r| r.notes)),
            strings(rows.iter().map(|r| r.source)),
            strings(rows.iter().map(|_| split)),
        ],
    )
}

fn opt_u32s(it: impl Iterator<Item = Option<u32>>) -> ArrayRef {
    let mut b = UInt32Builder::new();
    it.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

/// `messages`: a user turn (the prompt) and an assistant turn (the
/// completion) per row, as TRL's conversational format reads them.
fn messages_column(rows: &[TraceRow]) -> Result<ArrayRef> {
    let schema = Store::Traces.schema().arrow;
    let field = schema
        .field_with_name("messages")
        .map_err(|e| Error::Other(e.to_string()))?;
    let DataType::List(item) = field.data_type() else {
        return Err(Error::Other("traces schema: messages is not a list".into()));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(Error::Other(
            "traces schema: messages items are not structs".into(),
        ));
    };
    let turns = || {
        rows.iter().flat_map(|r| {
            [
                ("user", r.prompt.as_str()),
                ("assistant", r.completion.as_str()),
            ]
        })
    };
    let values = StructArray::try_new(
        fields.clone(),
        vec![strings(turns().map(|t| t.0)), strings(turns().map(|t| t.1))],
        None,
    )
    .map_err(|e| Error::Other(format!("building traces.messages: {e}")))?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|_| 2));
    ListArray::try_new(item.clone(), offsets, Arc::new(values), None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::Other(format!("building traces.messages: {e}")))
}

// ---- reading back ----

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| Error::Data(format!("missing column '{name}'")))
}

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::StringArray> {
    col(b, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::Data(format!("column '{name}': expected utf8")))
}

/// Reads task rows; `family` comes from the partition folder.
pub fn tasks_from_batch(b: &RecordBatch, family: Family) -> Result<Vec<Task>> {
    let id = str_col(b, "task_id")?;
    let diff = col(b, "difficulty")?.as_primitive::<Float32Type>();
    let seed = col(b, "seed")?.as_primitive::<UInt64Type>();
    let statement = str_col(b, "statement")?;
    let spec = str_col(b, "spec")?;
    let sol = str_col(b, "reference_solution")?;
    let steps = col(b, "optimal_steps")?.as_primitive::<UInt32Type>();
    Ok((0..b.num_rows())
        .map(|i| Task {
            task_id: id.value(i).to_string(),
            family,
            difficulty: diff.value(i),
            seed: seed.value(i),
            statement: statement.value(i).to_string(),
            spec: spec.value(i).to_string(),
            reference_solution: sol.value(i).to_string(),
            optimal_steps: (!steps.is_null(i)).then(|| steps.value(i)),
        })
        .collect())
}

/// Training view of an example row: what the trainer needs, nothing else.
#[derive(Clone, Debug)]
pub struct TrainExample {
    /// A stable hash of the task id: which tasks are held out.
    pub task_key: u64,
    pub family: Family,
    pub obs: Vec<f32>,
    pub legal: Vec<u16>,
    pub policy_actions: Vec<u16>,
    pub policy_probs: Vec<f32>,
    pub value: f32,
    pub weight: f32,
    /// The ownership target (see [`ExampleRow::ownership`]); may be empty.
    pub ownership: Vec<u8>,
}

pub fn train_examples_from_batch(b: &RecordBatch) -> Result<Vec<TrainExample>> {
    let task = str_col(b, "task_id")?;
    let family = str_col(b, "family")?;
    let obs = col(b, "obs")?.as_list::<i32>();
    let legal = col(b, "legal")?.as_list::<i32>();
    let pa = col(b, "policy_actions")?.as_list::<i32>();
    let pp = col(b, "policy_probs")?.as_list::<i32>();
    let value = col(b, "value")?.as_primitive::<Float32Type>();
    let weight = col(b, "weight")?.as_primitive::<Float32Type>();
    let ownership = col(b, "ownership")?.as_list::<i32>();
    let f32_list = |l: &arrow::array::ListArray, i: usize| -> Vec<f32> {
        l.value(i).as_primitive::<Float32Type>().values().to_vec()
    };
    let u16_list = |l: &arrow::array::ListArray, i: usize| -> Vec<u16> {
        l.value(i).as_primitive::<UInt16Type>().values().to_vec()
    };
    (0..b.num_rows())
        .map(|i| {
            Ok(TrainExample {
                task_key: task_key(task.value(i)),
                family: Family::parse(family.value(i))
                    .map_err(|e| Error::Data(format!("examples row {i}: column family: {e}")))?,
                obs: f32_list(obs, i),
                legal: u16_list(legal, i),
                policy_actions: u16_list(pa, i),
                policy_probs: f32_list(pp, i),
                value: value.value(i),
                weight: weight.value(i),
                ownership: ownership
                    .value(i)
                    .as_primitive::<UInt8Type>()
                    .values()
                    .to_vec(),
            })
        })
        .collect()
}

/// A stable 64-bit hash of a task id (the first 8 bytes of its SHA-256).
pub fn task_key(task_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(task_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// Reads eval rows back (inspect, run table).
pub fn evals_from_batch(b: &RecordBatch) -> Result<Vec<EvalRow>> {
    let s = |n| str_col(b, n);
    let u = |n| col(b, n).map(|c| c.as_primitive::<UInt32Type>().clone());
    let f = |n| col(b, n).map(|c| c.as_primitive::<Float64Type>().clone());
    let (model, agent, opp, fam) = (s("model_id")?, s("agent")?, s("opponent")?, s("family")?);
    let bucket = s("bucket")?;
    let (games, wins, draws, losses, sims) = (
        u("games")?,
        u("wins")?,
        u("draws")?,
        u("losses")?,
        u("simulations")?,
    );
    let (rate, lo, hi) = (f("rate")?, f("ci_low")?, f("ci_high")?);
    (0..b.num_rows())
        .map(|i| {
            Ok(EvalRow {
                model_id: model.value(i).into(),
                agent: agent.value(i).into(),
                opponent: opp.value(i).into(),
                family: Family::parse(fam.value(i))?,
                bucket: bucket.value(i).into(),
                games: games.value(i),
                wins: wins.value(i),
                draws: draws.value(i),
                losses: losses.value(i),
                rate: rate.value(i),
                ci_low: lo.value(i),
                ci_high: hi.value(i),
                simulations: sims.value(i),
            })
        })
        .collect()
}

/// Reads metrics rows back (report --plot), the `detail` struct included.
pub fn metrics_from_batch(b: &RecordBatch) -> Result<Vec<MetricRow>> {
    let f = |n| col(b, n).map(|c| c.as_primitive::<Float64Type>().clone());
    let (unit, stage) = (str_col(b, "unit")?, str_col(b, "stage")?);
    let shard = col(b, "shard")?.as_primitive::<UInt32Type>();
    let items = col(b, "items")?.as_primitive::<UInt64Type>();
    let it = col(b, "iteration")?.as_primitive::<arrow::datatypes::Int32Type>();
    let (seconds, rate, cpu, rss) = (
        f("seconds")?,
        f("items_per_s")?,
        f("cpu_pct")?,
        f("peak_rss_mb")?,
    );
    let detail = col(b, "detail")?
        .as_struct_opt()
        .ok_or_else(|| Error::Data("column 'detail': expected a struct".into()))?;
    let child = |n: &str| {
        detail
            .column_by_name(n)
            .ok_or_else(|| Error::Data(format!("missing column 'detail.{n}'")))
    };
    let df = |n| child(n).map(|c| c.as_primitive::<Float64Type>().clone());
    let examples = child("examples")?.as_primitive::<UInt64Type>();
    let (sims, evals, share, pl, vl, read, hits) = (
        df("sims_per_s")?,
        df("evals_per_s")?,
        df("net_share")?,
        df("policy_loss")?,
        df("value_loss")?,
        df("read_share")?,
        df("cache_hit_rate")?,
    );
    let ranges = child("difficulty")?.as_list::<i32>();
    let traces = child("traces")?.as_list::<i32>();
    let opt = |a: &arrow::array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    (0..b.num_rows())
        .map(|i| {
            let detail = if detail.is_null(i) {
                MetricDetail::default()
            } else {
                MetricDetail {
                    examples: (!examples.is_null(i)).then(|| examples.value(i)),
                    sims_per_s: opt(&sims, i),
                    evals_per_s: opt(&evals, i),
                    net_share: opt(&share, i),
                    policy_loss: opt(&pl, i),
                    value_loss: opt(&vl, i),
                    read_share: opt(&read, i),
                    cache_hit_rate: opt(&hits, i),
                    difficulty: (!ranges.is_null(i))
                        .then(|| family_ranges(&ranges.value(i)))
                        .transpose()?,
                    traces: (!traces.is_null(i))
                        .then(|| family_traces(&traces.value(i)))
                        .transpose()?,
                }
            };
            Ok(MetricRow {
                stage: stage.value(i).into(),
                iteration: it.value(i).max(0) as u32,
                shard: shard.value(i),
                items: items.value(i),
                unit: unit.value(i).into(),
                seconds: seconds.value(i),
                items_per_s: rate.value(i),
                cpu_pct: cpu.value(i),
                peak_rss_mb: rss.value(i),
                detail,
            })
        })
        .collect()
}

/// One row's `detail.difficulty` list (`struct<family, lo, hi>` items).
fn family_ranges(items: &ArrayRef) -> Result<Vec<FamilyRange>> {
    let items = items
        .as_struct_opt()
        .ok_or_else(|| Error::Data("column 'detail.difficulty': expected structs".into()))?;
    let field = |n: &str| {
        items
            .column_by_name(n)
            .ok_or_else(|| Error::Data(format!("missing column 'detail.difficulty.{n}'")))
    };
    let family = field("family")?
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::Data("column 'detail.difficulty.family': expected utf8".into()))?;
    let (lo, hi) = (
        field("lo")?.as_primitive::<Float32Type>(),
        field("hi")?.as_primitive::<Float32Type>(),
    );
    Ok((0..items.len())
        .map(|i| FamilyRange {
            family: family.value(i).into(),
            lo: lo.value(i),
            hi: hi.value(i),
        })
        .collect())
}

/// One row's `detail.traces` list.
fn family_traces(items: &ArrayRef) -> Result<Vec<FamilyTraces>> {
    let items = items
        .as_struct_opt()
        .ok_or_else(|| Error::Data("column 'detail.traces': expected structs".into()))?;
    let field = |n: &str| {
        items
            .column_by_name(n)
            .ok_or_else(|| Error::Data(format!("missing column 'detail.traces.{n}'")))
    };
    let family = field("family")?
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::Data("column 'detail.traces.family': expected utf8".into()))?;
    let u = |n| field(n).map(|c| c.as_primitive::<UInt64Type>().clone());
    let f = |n| field(n).map(|c| c.as_primitive::<Float64Type>().clone());
    let (rows, unverified, duplicates, solver) = (
        u("rows")?,
        u("unverified")?,
        u("duplicates")?,
        u("solver_rows")?,
    );
    let (chars, share) = (f("mean_chars")?, f("verified_share")?);
    Ok((0..items.len())
        .map(|i| FamilyTraces {
            family: family.value(i).into(),
            rows: rows.value(i),
            mean_chars: chars.value(i),
            verified_share: share.value(i),
            unverified: unverified.value(i),
            duplicates: duplicates.value(i),
            solver_rows: solver.value(i),
        })
        .collect())
}

/// Reads episode rows back (distill); the family must be known.
pub fn episodes_from_batch(b: &RecordBatch) -> Result<Vec<EpisodeRow>> {
    let (id, family, model, outcome) = (
        str_col(b, "task_id")?,
        str_col(b, "family")?,
        str_col(b, "model_id")?,
        str_col(b, "outcome")?,
    );
    let diff = col(b, "difficulty")?.as_primitive::<Float32Type>();
    let reward = col(b, "total_reward")?.as_primitive::<Float32Type>();
    let actions = col(b, "actions")?.as_list::<i32>();
    let labels = col(b, "action_labels")?.as_list::<i32>();
    let values = col(b, "root_values")?.as_list::<i32>();
    let sims = col(b, "simulations")?.as_primitive::<UInt32Type>();
    let wall = col(b, "search_us")?.as_primitive::<UInt64Type>();
    let seed = col(b, "seed")?.as_primitive::<UInt64Type>();
    (0..b.num_rows())
        .map(|i| {
            let labels = labels.value(i);
            let labels = labels
                .as_string_opt::<i32>()
                .ok_or_else(|| Error::Data("column 'action_labels': expected utf8".into()))?;
            Ok(EpisodeRow {
                task_id: id.value(i).into(),
                family: Family::parse(family.value(i))
                    .map_err(|e| Error::Data(format!("column 'family': {e}")))?,
                difficulty: diff.value(i),
                model_id: model.value(i).into(),
                outcome: outcome.value(i).into(),
                total_reward: reward.value(i),
                actions: actions
                    .value(i)
                    .as_primitive::<UInt16Type>()
                    .values()
                    .to_vec(),
                action_labels: labels.iter().map(|l| l.unwrap_or("").to_string()).collect(),
                root_values: values
                    .value(i)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec(),
                simulations: sims.value(i),
                search_us: wall.value(i),
                seed: seed.value(i),
            })
        })
        .collect()
}

/// The search policy of each decision (distill's notes): task id, step,
/// the visited root actions and their visit shares, from a batch holding
/// at least those columns of the examples store.
pub type StepPolicy = (String, u32, Vec<u16>, Vec<f32>);

pub fn policies_from_batch(b: &RecordBatch) -> Result<Vec<StepPolicy>> {
    let id = str_col(b, "task_id")?;
    let step = col(b, "step")?.as_primitive::<UInt32Type>();
    let actions = col(b, "policy_actions")?.as_list::<i32>();
    let probs = col(b, "policy_probs")?.as_list::<i32>();
    Ok((0..b.num_rows())
        .map(|i| {
            (
                id.value(i).to_string(),
                step.value(i),
                actions
                    .value(i)
                    .as_primitive::<UInt16Type>()
                    .values()
                    .to_vec(),
                probs
                    .value(i)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec(),
            )
        })
        .collect())
}

/// Episode summary view (inspect): family, outcome, reward, length.
pub fn episode_summaries(b: &RecordBatch) -> Result<Vec<(String, String, f32, u32)>> {
    let fam = str_col(b, "family")?;
    let out = str_col(b, "outcome")?;
    let rew = col(b, "total_reward")?.as_primitive::<Float32Type>();
    let len = col(b, "length")?.as_primitive::<UInt32Type>();
    Ok((0..b.num_rows())
        .map(|i| {
            (
                fam.value(i).into(),
                out.value(i).into(),
                rew.value(i),
                len.value(i),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(stage: &str, detail: MetricDetail) -> MetricRow {
        MetricRow {
            stage: stage.into(),
            iteration: 3,
            shard: 1,
            items: 64,
            unit: "episodes".into(),
            seconds: 2.5,
            items_per_s: 25.6,
            cpu_pct: 180.0,
            peak_rss_mb: 512.0,
            detail,
        }
    }

    #[test]
    fn result_rows_read_back_as_written() {
        let game = ResultRow {
            model_id: "iteration=000002".into(),
            agent: "candidate".into(),
            opponent: "solver".into(),
            family: Family::Connect4,
            task_id: "set-000003".into(),
            difficulty: 0.0,
            colour: 1,
            first_action: Some(3),
            first_move: Some("col 4".into()),
            line: ["col 4", "col 3"].join(LINE_SEPARATOR),
            outcome: "win".into(),
            steps: 2,
            simulations: 64,
            solver_score: Some(-2),
            optimal: Some(false),
            move_score: Some(-5),
            scored: true,
        };
        let puzzle = ResultRow {
            agent: "network".into(),
            opponent: "none".into(),
            family: Family::Countdown,
            colour: 0,
            first_action: None,
            first_move: None,
            line: String::new(),
            outcome: "failure".into(),
            steps: 0,
            simulations: 0,
            solver_score: None,
            optimal: None,
            move_score: None,
            ..game.clone()
        };
        let rows = vec![game, puzzle];
        for iteration in [None, Some(4)] {
            let b = results_batch(&rows, iteration).unwrap();
            assert_eq!(results_from_batch(&b).unwrap(), rows);
        }
    }

    #[test]
    fn metrics_rows_read_back_as_written() {
        let rows = vec![
            metric(
                "play",
                MetricDetail {
                    examples: Some(900),
                    sims_per_s: Some(1e4),
                    net_share: Some(0.4),
                    ..MetricDetail::default()
                },
            ),
            metric(
                "tasks",
                MetricDetail {
                    difficulty: Some(vec![
                        FamilyRange {
                            family: "countdown".into(),
                            lo: 0.2,
                            hi: 0.6,
                        },
                        FamilyRange {
                            family: "connect4".into(),
                            lo: 0.0,
                            hi: 0.4,
                        },
                    ]),
                    ..MetricDetail::default()
                },
            ),
            metric("train", MetricDetail::default()),
            metric(
                "distill",
                MetricDetail {
                    traces: Some(vec![FamilyTraces {
                        family: "sudoku".into(),
                        rows: 12,
                        mean_chars: 301.5,
                        verified_share: 0.75,
                        unverified: 4,
                        duplicates: 1,
                        solver_rows: 2,
                    }]),
                    ..MetricDetail::default()
                },
            ),
        ];
        let back = metrics_from_batch(&metrics_batch(&rows).unwrap()).unwrap();
        assert_eq!(back, rows);
    }
}
