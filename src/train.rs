//! Training with tch: policy cross-entropy on visit distributions plus value
//! MSE, AdamW, on a replay window of the newest example parts; then export
//! to ONNX with our own exporter.

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::metrics::{metric_row, StageMeter};
use crate::model::mlp::{weights_of, MlpNet};
use crate::model::onnx::export_mlp;
use crate::model::{model_id, Losses, MlpSpec, ModelMeta, INPUT_LAYOUT};
use crate::store::commit::{temp_file_ending, write_file, Staged};
use crate::store::parquet_io::read_part;
use crate::store::rows::MetricDetail;
use crate::store::rows::{train_examples_from_batch, TrainExample};
use crate::store::{complete_parts, RunDir, Store};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// The network spec a run's config asks for.
pub fn spec_for(cfg: &Config) -> MlpSpec {
    let (obs_dim, action_dim) = cfg.model_dims();
    MlpSpec {
        obs_dim,
        action_dim,
        hidden: cfg.model.hidden,
        blocks: cfg.model.blocks,
        value_hidden: cfg.model.value_hidden,
    }
}

/// Writes a freshly initialised model (seeded) as `models/iteration=NNNNNN`,
/// under the caller's claim `key`.
pub fn init_model(cfg: &Config, run: &RunDir, iteration: u32, key: &str) -> Result<ModelMeta> {
    tch::manual_seed(cfg.seed as i64);
    let spec = spec_for(cfg);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = MlpNet::new(&vs.root(), &spec);
    let meta = ModelMeta {
        id: model_id(iteration),
        input_layout: INPUT_LAYOUT,
        iteration,
        arch: cfg.model.arch.clone(),
        spec,
        parent: None,
        trained_on: Vec::new(),
        config_hash: cfg.hash(),
        seed: cfg.seed,
        train_steps: 0,
        examples_seen: 0,
        losses: None,
        producer: crate::store::producer(),
        metrics: None,
    };
    save_model(run, key, &vs, &meta)?;
    Ok(meta)
}

/// Trains the model of `iteration` from `parent` on the replay window and
/// commits it under the caller's claim `key`; `meter` has watched the stage
/// since it started, and its figures go into model.json's metrics row.
pub fn train_model(
    cfg: &Config,
    run: &RunDir,
    iteration: u32,
    parent: &ModelMeta,
    key: &str,
    meter: StageMeter,
) -> Result<ModelMeta> {
    tch::set_num_threads(cfg.train.threads.max(1) as i32);
    tch::manual_seed(cfg.seed.wrapping_add(iteration as u64) as i64);
    let spec = parent.spec.clone();
    let (examples, parts) = load_window(run, iteration, cfg.max_buffer_size)?;
    if examples.is_empty() {
        return Err(Error::Data(format!(
            "{}: no committed example parts up to iteration {iteration}; run `selfplay play` first",
            run.root.join("examples").display()
        )));
    }
    let batch = Batch::from_examples(&examples, &spec)?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = MlpNet::new(&vs.root(), &spec);
    let parent_dir = run.model_dir(&parent.id);
    vs.load(parent_dir.join("weights.safetensors"))
        .context(|| {
            format!(
                "loading {}",
                parent_dir.join("weights.safetensors").display()
            )
        })?;
    let mut opt = nn::AdamW {
        wd: cfg.train.weight_decay,
        ..Default::default()
    }
    .build(&vs, cfg.train.learning_rate)
    .context(|| "building AdamW".into())?;

    let n = examples.len() as i64;
    let bs = (cfg.batch_size as i64).min(n);
    let (mut first, mut last) = (None, (0.0, 0.0));
    let mut ema = (0.0f64, 0.0f64);
    let bar = crate::metrics::progress(cfg.train.steps as u64, "train");
    for step in 0..cfg.train.steps {
        bar.inc(1);
        let idx = Tensor::randint(n, [bs], (Kind::Int64, Device::Cpu));
        let (pl, vl) = batch.losses(&net, &idx);
        let loss = &pl + &vl * cfg.train.value_weight;
        opt.backward_step(&loss);
        let (p, v) = (pl.double_value(&[]), vl.double_value(&[]));
        if step == 0 {
            first = Some((p, v));
            ema = (p, v);
        }
        ema = (0.95 * ema.0 + 0.05 * p, 0.95 * ema.1 + 0.05 * v);
        last = ema;
    }
    bar.finish_and_clear();
    let (p0, v0) = first.unwrap_or((0.0, 0.0));
    let mut meta = ModelMeta {
        id: model_id(iteration),
        input_layout: INPUT_LAYOUT,
        iteration,
        arch: parent.arch.clone(),
        spec,
        parent: Some(parent.id.clone()),
        trained_on: parts,
        config_hash: cfg.hash(),
        seed: cfg.seed,
        train_steps: parent.train_steps + cfg.train.steps as u64,
        examples_seen: parent.examples_seen + (cfg.train.steps * bs as usize) as u64,
        losses: Some(Losses {
            policy: last.0,
            value: last.1,
            total: last.0 + cfg.train.value_weight * last.1,
            policy_start: p0,
            value_start: v0,
        }),
        producer: crate::store::producer(),
        metrics: None,
    };
    let detail = MetricDetail {
        policy_loss: Some((last.0 * 1000.0).round() / 1000.0),
        value_loss: Some((last.1 * 1000.0).round() / 1000.0),
        ..MetricDetail::default()
    };
    let steps = cfg.train.steps as u64;
    let fig = meter.finish();
    meta.metrics = Some(metric_row(
        "train", iteration, 0, steps, "steps", &fig, detail,
    ));
    save_model(run, key, &vs, &meta)?;
    Ok(meta)
}

/// Newest-first example parts up to `iteration`, until `max` examples.
fn load_window(
    run: &RunDir,
    iteration: u32,
    max: usize,
) -> Result<(Vec<TrainExample>, Vec<String>)> {
    let schema = Store::Examples.schema();
    let mut out = Vec::new();
    let mut parts = Vec::new();
    'outer: for it in (0..=iteration).rev() {
        for part in complete_parts(&run.examples(it))?.into_iter().rev() {
            for b in read_part(&part, &schema)? {
                out.extend(train_examples_from_batch(&b)?);
            }
            parts.push(
                part.strip_prefix(&run.root)
                    .unwrap_or(&part)
                    .display()
                    .to_string(),
            );
            if out.len() >= max {
                break 'outer;
            }
        }
    }
    out.truncate(max);
    Ok((out, parts))
}

/// The replay window as dense tensors.
struct Batch {
    obs: Tensor,
    mask: Tensor,
    policy: Tensor,
    value: Tensor,
}

impl Batch {
    fn from_examples(examples: &[TrainExample], spec: &MlpSpec) -> Result<Batch> {
        let (n, od, ad) = (examples.len(), spec.obs_dim, spec.action_dim);
        let mut obs = vec![0f32; n * od];
        let mut mask = vec![0f32; n * ad];
        let mut policy = vec![0f32; n * ad];
        let mut value = vec![0f32; n];
        for (i, e) in examples.iter().enumerate() {
            let bad = e.family.input_dim() > od
                || e.obs.len() != e.family.obs_dim()
                || e.legal
                    .iter()
                    .chain(&e.policy_actions)
                    .any(|&a| a as usize >= ad)
                || e.policy_actions.len() != e.policy_probs.len();
            if bad {
                return Err(Error::Data(format!(
                    "example {i} ({}): obs length {} (expected {}) / actions do not fit the model (obs_dim {od}, action_dim {ad})",
                    e.family,
                    e.obs.len(),
                    e.family.obs_dim()
                )));
            }
            e.family.write_input(&e.obs, &mut obs[i * od..(i + 1) * od]);
            e.legal
                .iter()
                .for_each(|&a| mask[i * ad + a as usize] = 1.0);
            for (&a, &p) in e.policy_actions.iter().zip(&e.policy_probs) {
                policy[i * ad + a as usize] = p;
            }
            value[i] = e.value;
        }
        let t = |v: &[f32], cols: usize| Tensor::from_slice(v).reshape([n as i64, cols as i64]);
        Ok(Batch {
            obs: t(&obs, od),
            mask: t(&mask, ad),
            policy: t(&policy, ad),
            value: Tensor::from_slice(&value),
        })
    }

    /// (policy cross-entropy over legal actions, value MSE) on rows `idx`.
    fn losses(&self, net: &MlpNet, idx: &Tensor) -> (Tensor, Tensor) {
        let obs = self.obs.index_select(0, idx);
        let mask = self.mask.index_select(0, idx);
        let target = self.policy.index_select(0, idx);
        let z = self.value.index_select(0, idx);
        let (logits, v) = net.forward(&obs);
        let masked = logits + (mask - 1.0) * 1e9;
        let logp = masked.log_softmax(-1, Kind::Float);
        let policy_loss = -(target * logp)
            .sum_dim_intlist(-1, false, Kind::Float)
            .mean(Kind::Float);
        let value_loss = (v.squeeze_dim(-1) - z).square().mean(Kind::Float);
        (policy_loss, value_loss)
    }
}

/// Saves weights and the ONNX export, then model.json, the commit point.
fn save_model(run: &RunDir, key: &str, vs: &nn::VarStore, meta: &ModelMeta) -> Result<()> {
    let dir = run.model_dir(&meta.id);
    let weights = weights_of(vs)?;
    let onnx =
        export_mlp(&meta.spec, &weights).map_err(|e| Error::Model(format!("export: {e}")))?;
    write_file(run, key, &dir.join("model.onnx"), &onnx)?;
    let st = dir.join("weights.safetensors");
    let (file, tmp) = temp_file_ending(run, key, ".safetensors")?;
    drop(file);
    vs.save(&tmp)
        .context(|| format!("saving {}", st.display()))?;
    Staged::new(tmp, st, 0).commit()?;
    meta.save(run, key)
}
