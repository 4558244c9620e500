//! Training with tch: policy cross-entropy on visit distributions plus value
//! MSE, AdamW, on a replay window of the newest example parts; then export
//! to ONNX with our own exporter. The optimizer (`optim.rs`) carries its
//! state across iterations, and a killed training resumes from its last
//! checkpoint (`checkpoint.rs`).

mod batch;
mod checkpoint;
mod curves;
pub mod optim;
mod replay;

use crate::config::{Config, PlayWeights, TrainConfig};
use crate::error::{Error, Result};
use crate::metrics::{metric_row, StageMeter};
use crate::model::onnx::export;
use crate::model::{
    input_families, model_id, weights_of, Carry, Losses, ModelMeta, ModelSpec, Net, INPUT_LAYOUT,
};
use crate::store::commit::{temp_file_ending, write_file, Staged};
use crate::store::lock::Claim;
use crate::store::parquet_io::{stage_part, FileMeta};
use crate::store::rows::{curves_batch, CurveRow, MetricDetail, TrainExample};
use crate::store::{RunDir, Store};
pub use batch::{PerRow, Rows};
use curves::TrainSums;
use optim::{learning_rate, AdamW, Ema};
use replay::{Replay, ReplayConfig, Window};
use std::path::Path;
use tch::{nn, Device, Kind, TchError, Tensor};

/// The network spec a run's config asks for.
pub fn spec_for(cfg: &Config) -> ModelSpec {
    cfg.model_spec()
}

/// Writes a freshly initialised model (seeded) as `models/iteration=NNNNNN`,
/// under the caller's claim `key`.
pub fn init_model(cfg: &Config, run: &RunDir, iteration: u32, key: &str) -> Result<ModelMeta> {
    tch::manual_seed(cfg.seed as i64);
    let spec = spec_for(cfg);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = spec.init(&vs.root());
    let meta = ModelMeta {
        id: model_id(iteration),
        input_layout: INPUT_LAYOUT,
        families: input_families(),
        iteration,
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
    save_model(run, key, &vs, None, &meta)?;
    Ok(meta)
}

/// Trains the model of `iteration` from `parent` on the replay window and
/// commits it, with its curves, under the caller's `claim`; `meter` has
/// watched the stage since it started, and its figures go into
/// model.json's metrics row.
pub fn train_model(
    cfg: &Config,
    claim: &Claim,
    iteration: u32,
    parent: &ModelMeta,
    meter: StageMeter,
) -> Result<ModelMeta> {
    let run = &claim.run;
    tch::set_num_threads(cfg.train.threads.max(1) as i32);
    tch::manual_seed(cfg.seed.wrapping_add(iteration as u64) as i64);
    let spec = parent.spec.clone();
    // Time spent reading examples: opening the window, then each minibatch.
    let opening = std::time::Instant::now();
    let window = Window::open(run, iteration, cfg.max_buffer_size)?;
    if window.rows == 0 {
        return Err(Error::Data(format!(
            "{}: no committed example parts up to iteration {iteration}; run `selfplay play` first",
            run.root.join("examples").display()
        )));
    }
    let mut replay = Replay::open(
        &window,
        &spec,
        &ReplayConfig {
            seed: cfg.seed,
            iteration,
            batch_size: cfg.batch_size,
            shuffle_buffer: cfg.train.shuffle_buffer,
            holdout: cfg.train.holdout,
            augment: cfg.train.augment,
        },
    )?;
    let read = opening.elapsed();
    if replay.streaming() {
        tracing::info!(
            target: crate::output::NOTE,
            stage = "train",
            iteration,
            window_rows = window.rows,
            shuffle_buffer = cfg.train.shuffle_buffer,
            "train iteration {iteration}: streaming a window of {} rows through a shuffle buffer of {} (train.shuffle_buffer)",
            window.rows,
            cfg.train.shuffle_buffer
        );
    }
    let out_dir = run.model_dir(&model_id(iteration));
    let parent_dir = run.model_dir(&parent.id);
    let total = (cfg.iterations as u64).max(iteration as u64) * cfg.train.steps as u64;
    let device = train_device(&cfg.train)?;
    let mut trainer = Trainer::new(&spec, &cfg.train, total, device);
    load_weights(&trainer.vs, &parent_dir.join("weights.safetensors"))?;
    if cfg.train.continue_optimizer {
        trainer.load_optimizer(&parent_dir.join(OPTIMIZER_FILE))?;
    }
    trainer.start_ema();
    // Where this iteration's minibatches start in the run's schedule.
    let position = parent.train_steps;
    let mut progress = checkpoint::Progress {
        parent: parent.id.clone(),
        config_hash: cfg.hash(),
        done: 0,
        adam_step: trainer.opt.step,
        first: None,
        smooth: (0.0, 0.0),
        sums: TrainSums::default(),
        curves: Vec::new(),
    };
    if let Some((named, saved)) = checkpoint::load(run, iteration, &parent.id, &cfg.hash())? {
        let file = checkpoint::path(run, iteration);
        trainer.load_state(&named, saved.adam_step).map_err(|why| {
            Error::Model(format!(
                "{}: {why}; delete it to train from the start",
                file.display()
            ))
        })?;
        tracing::info!(
            target: crate::output::NOTE,
            stage = "train",
            iteration,
            resumed_after = saved.done,
            steps = cfg.train.steps,
            "train iteration {iteration}: resuming after step {} of {} from {}",
            saved.done,
            cfg.train.steps,
            file.display()
        );
        progress = saved;
    }

    let bs = replay.batch;
    let steps = cfg.train.steps;
    let bar = crate::metrics::progress(crate::metrics::Work {
        stage: "train",
        iteration: Some(iteration),
        shard: 0,
        unit: "steps",
        total: Some(steps as u64),
    });
    bar.inc(progress.done as u64);
    // Smoothed like the others, from this run of the stage (not checkpointed).
    let mut ownership: Option<f64> = None;
    let mut run_steps = || -> Result<std::time::Duration> {
        let mut read = read;
        for step in progress.done..steps {
            let at = || format!("training step {} of {steps}", step + 1);
            let started = std::time::Instant::now();
            let examples = replay.minibatch(step)?;
            let rows = Rows::from_examples(&examples, &spec).to(device);
            read += started.elapsed();
            let out = trainer
                .step(&rows, position + step as u64)
                .map_err(|e| torch_error(&at(), &out_dir, e))?;
            let (p, v, total) = (out.policy, out.value, out.total);
            if !(p.is_finite() && v.is_finite() && total.is_finite()) {
                let vw = cfg.train.value_weight;
                return Err(Error::Model(format!(
                    "training iteration {iteration}, step {} of {steps}: non-finite loss (policy {p:.4}, value {v:.4}, policy + train.value_weight x value = {total:.4}); stopped, {} not written; expected finite losses: lower train.learning_rate (now {}) or check train.value_weight (now {vw})",
                    step + 1,
                    out_dir.display(),
                    cfg.train.learning_rate
                )));
            }
            let s = progress.first.map_or((p, v), |_| progress.smooth);
            progress.first.get_or_insert((p, v));
            progress.smooth = (0.95 * s.0 + 0.05 * p, 0.95 * s.1 + 0.05 * v);
            if let Some(o) = out.ownership {
                ownership = Some(ownership.map_or(o, |s| 0.95 * s + 0.05 * o));
            }
            progress.sums.add((p, v), &out.per_row, out.grad_norm);
            progress.done = step + 1;
            bar.inc(1);
            progress.adam_step = trainer.opt.step;
            let every = cfg.train.curve_every as usize;
            if progress.done == steps || (every > 0 && progress.done.is_multiple_of(every)) {
                let at = position + progress.done as u64;
                progress.curves.extend(trainer.curve_point(
                    &mut progress.sums,
                    &replay.heldout,
                    iteration,
                    at,
                    out.learning_rate,
                ));
            }
            let every = cfg.train.checkpoint_every as usize;
            if every > 0 && progress.done.is_multiple_of(every) && progress.done < steps {
                checkpoint::save(run, &claim.key, iteration, &trainer, &progress)?;
            }
            crate::failpoint::hit(&format!(
                "train-step:iteration={iteration}/step={}/",
                step + 1
            ));
        }
        Ok(read)
    };
    let result = run_steps();
    bar.finish();
    let read = result?;
    let (first, last) = (progress.first, progress.smooth);
    let average = trainer.finish().map(on_cpu);
    trainer.vs.set_device(Device::Cpu);
    let (p0, v0) = first.unwrap_or((0.0, 0.0));
    let mut meta = ModelMeta {
        id: model_id(iteration),
        input_layout: INPUT_LAYOUT,
        families: input_families(),
        iteration,
        spec,
        parent: Some(parent.id.clone()),
        trained_on: window.parts.clone(),
        config_hash: cfg.hash(),
        seed: cfg.seed,
        train_steps: parent.train_steps + cfg.train.steps as u64,
        examples_seen: parent.examples_seen + (cfg.train.steps * bs) as u64,
        losses: Some(Losses {
            policy: last.0,
            value: last.1,
            total: last.0
                + cfg.train.value_weight * last.1
                + ownership.map_or(0.0, |o| cfg.train.ownership_weight * o),
            policy_start: p0,
            value_start: v0,
            ownership,
        }),
        producer: crate::store::producer(),
        metrics: None,
    };
    let fig = meter.finish();
    let detail = MetricDetail {
        policy_loss: Some((last.0 * 1000.0).round() / 1000.0),
        value_loss: Some((last.1 * 1000.0).round() / 1000.0),
        read_share: Some(read.as_secs_f64() / fig.seconds.max(1e-9)),
        ..MetricDetail::default()
    };
    let steps = cfg.train.steps as u64;
    meta.metrics = Some(metric_row(
        "train", iteration, 0, steps, "steps", &fig, detail,
    ));
    commit_curves(claim, iteration, &progress.curves, &cfg.hash())?;
    if let Some(average) = average {
        let file = run.model_dir(&meta.id).join(AVERAGE_FILE);
        write_tensors(
            run,
            &claim.key,
            &average,
            &file,
            "saving the weight average",
        )?;
    }
    save_model(run, &claim.key, &trainer.vs, Some(&trainer.opt), &meta)?;
    checkpoint::remove(run, iteration)?;
    Ok(meta)
}

/// Commits `iteration`'s curves part (before its model, so a model never
/// lacks its curves).
fn commit_curves(
    claim: &Claim,
    iteration: u32,
    rows: &[CurveRow],
    config_hash: &str,
) -> Result<()> {
    let meta = FileMeta {
        stage: "train".into(),
        config_hash: config_hash.into(),
        num_shards: 1,
        ..FileMeta::default()
    };
    let batch = curves_batch(rows)?;
    let dir = claim.run.curves(iteration);
    stage_part(claim, &dir, &Store::Curves.schema(), &meta, &[batch], None)?.commit()?;
    Ok(())
}

/// What is wrong with an example, if anything: a non-finite number, or
/// sizes that do not fit the model.
fn example_problem(e: &TrainExample, spec: &ModelSpec) -> Option<String> {
    let non_finite = |col: &str, values: &[f32]| {
        values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
            .map(|(k, v)| format!("{col}[{k}] = {v}; expected finite numbers"))
    };
    let scalar = |col: &str, v: f32| {
        (!v.is_finite()).then(|| format!("{col} = {v}; expected a finite number"))
    };
    let (od, ad) = (spec.obs_dim, spec.action_dim);
    let sizes = || {
        if e.family.input_dim() > od {
            return Some(format!(
                "family {} needs obs_dim >= {}, but the model has {od}",
                e.family,
                e.family.input_dim()
            ));
        }
        if e.obs.len() != e.family.obs_dim() {
            return Some(format!(
                "obs has {} values; expected {} for family {}",
                e.obs.len(),
                e.family.obs_dim(),
                e.family
            ));
        }
        if let Some(a) = e
            .legal
            .iter()
            .chain(&e.policy_actions)
            .find(|&&a| a as usize >= ad)
        {
            return Some(format!(
                "action {a}; expected actions below the model's action_dim {ad}"
            ));
        }
        (e.policy_actions.len() != e.policy_probs.len()).then(|| {
            format!(
                "{} policy_actions but {} policy_probs; expected as many of each",
                e.policy_actions.len(),
                e.policy_probs.len()
            )
        })
    };
    non_finite("obs", &e.obs)
        .or_else(|| non_finite("policy_probs", &e.policy_probs))
        .or_else(|| scalar("value", e.value))
        .or_else(|| scalar("weight", e.weight))
        .or_else(sizes)
        .or_else(|| ownership_problem(e))
}

/// An ownership map must be empty or one class (0-2) per cell of the
/// family's grid (the head's cross-entropy cannot take other classes).
fn ownership_problem(e: &TrainExample) -> Option<String> {
    if e.ownership.is_empty() {
        return None;
    }
    let cells = e.family.grid().map_or(0, |g| g.height * g.width);
    if e.ownership.len() != cells {
        return Some(format!(
            "ownership has {} cells; expected {cells} for family {} or none",
            e.ownership.len(),
            e.family
        ));
    }
    let (k, c) = e.ownership.iter().enumerate().find(|(_, &c)| c > 2)?;
    Some(format!("ownership[{k}] = {c}; expected 0, 1 or 2"))
}

/// The libtorch device `train.device` names, if this binary and machine
/// have it: a CUDA device that is missing is an error, never a silent
/// fall back to the CPU.
pub fn train_device(cfg: &TrainConfig) -> Result<Device> {
    let device = crate::config::parse_device(&cfg.device)
        .map_err(|e| Error::Config(format!("train.device: {e}")))?;
    let crate::infer::Device::Cuda(n) = device else {
        return Ok(Device::Cpu);
    };
    let count = tch::Cuda::device_count();
    if n < 0 || n as i64 >= count {
        let why = if !cfg!(selfplay_torch_cuda) {
            "this binary was built without libtorch CUDA (build it with `scripts/setup.sh --cuda`)"
                .to_string()
        } else {
            format!("libtorch sees {count} CUDA device(s)")
        };
        return Err(Error::Config(format!(
            "train.device = \"{}\": {why}; expected a machine with that NVIDIA GPU, or train.device = \"cpu\"",
            cfg.device
        )));
    }
    Ok(Device::Cuda(n as usize))
}

/// What one minibatch's training step gives back: the last supervision
/// step's losses (policy, value, total as optimized), its per-row
/// figures, the gradient norm before clipping and the learning rate.
#[derive(Debug, Default)]
pub struct StepOut {
    pub policy: f64,
    pub value: f64,
    /// The ownership head's loss, when the network has one.
    pub ownership: Option<f64>,
    pub total: f64,
    pub per_row: PerRow,
    pub grad_norm: f64,
    pub learning_rate: f64,
}

/// A network with its optimizer (AdamW), learning-rate schedule and weight
/// average: what one training step needs. `train_model` drives it over the
/// replay window; the model bench times [`Trainer::step`] on its own.
pub struct Trainer {
    pub vs: nn::VarStore,
    spec: ModelSpec,
    net: Box<dyn Net>,
    opt: AdamW,
    ema: Ema,
    cfg: TrainConfig,
    /// Minibatches over which the schedule runs (the run's).
    total: u64,
}

impl Trainer {
    /// A freshly initialised `spec` network (tch's seeded RNG) on
    /// `device`, with fresh optimizer state; the schedule spans `total`
    /// minibatches.
    pub fn new(spec: &ModelSpec, cfg: &TrainConfig, total: u64, device: Device) -> Trainer {
        let vs = nn::VarStore::new(device);
        let net = spec.init(&vs.root());
        let opt = AdamW::new(&vs, cfg.weight_decay);
        Trainer {
            vs,
            spec: spec.clone(),
            net,
            opt,
            ema: Ema::off(),
            cfg: cfg.clone(),
            total,
        }
    }

    /// Starts the network's weight average from the current weights
    /// (call after loading them).
    pub fn start_ema(&mut self) {
        let decay = match self.cfg.ema_decay {
            d if d > 0.0 => d,
            _ => self.net.ema_decay(),
        };
        self.ema = Ema::new(&self.vs, decay);
    }

    /// Continues the optimizer state saved with a model (its moments and
    /// step), when the file exists; a model without one starts fresh.
    pub fn load_optimizer(&mut self, path: &Path) -> Result<()> {
        if !path.is_file() {
            return Ok(());
        }
        let named: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| torch_error("reading optimizer state", path, e))?
            .into_iter()
            .collect();
        let step = named
            .get("step")
            .and_then(|t| t.f_int64_value(&[0]).ok())
            .ok_or_else(|| {
                Error::Model(format!(
                    "{}: no `step` tensor; expected optimizer state written by selfplay",
                    path.display()
                ))
            })?;
        self.opt.load_state(&named, step).map_err(|why| {
            Error::Model(format!(
                "{}: {why}; expected the optimizer state of the network model.json describes",
                path.display()
            ))
        })
    }

    /// One minibatch at position `position` of the run's schedule: up to
    /// [`Net::supervision_steps`] supervision steps, each with its loss and
    /// optimizer step (gradients clipped to `train.grad_clip`), the carry
    /// passed on detached and halted rows left out. Returns the last
    /// step's losses and figures; a non-finite loss stops before its
    /// optimizer step.
    pub fn step(&mut self, rows: &Rows, position: u64) -> std::result::Result<StepOut, TchError> {
        let lr = learning_rate(&self.cfg, position, self.total);
        let mut carry: Option<Carry> = None;
        let mut active = Tensor::ones([rows.z.size()[0]], (Kind::Float, rows.z.device()));
        let mut out = StepOut {
            learning_rate: lr,
            ..StepOut::default()
        };
        for _ in 0..self.net.supervision_steps() {
            let step = self.net.supervise(&rows.obs, carry.as_ref());
            let (pl, vl, halt) = rows.losses(&step, &active);
            let mut loss = &pl + &vl * self.cfg.value_weight;
            if let Some(own) = rows.ownership_loss(&step, &active) {
                out.ownership = Some(own.f_double_value(&[])?);
                loss += own * self.cfg.ownership_weight;
            }
            if let Some((bce, _)) = &halt {
                loss += bce;
            }
            out.policy = pl.f_double_value(&[])?;
            out.value = vl.f_double_value(&[])?;
            out.total = loss.f_double_value(&[])?;
            if !(out.policy.is_finite() && out.value.is_finite() && out.total.is_finite()) {
                return Ok(out);
            }
            self.opt.zero_grad();
            loss.f_backward()?;
            out.grad_norm = self.opt.grad_norm()?;
            if self.cfg.grad_clip > 0.0 && out.grad_norm > self.cfg.grad_clip {
                self.opt.scale_grads(self.cfg.grad_clip / out.grad_norm);
            }
            self.opt.step(lr);
            self.ema.update();
            out.per_row = rows.per_row(&step.policy, &step.value);
            carry = step.carry.map(|c| c.iter().map(Tensor::detach).collect());
            match halt {
                Some((_, still)) => active = still,
                None => break,
            }
            if active.f_sum(Kind::Float)?.f_double_value(&[])? == 0.0 {
                break;
            }
        }
        Ok(out)
    }

    /// A curve point at the run's minibatch position `at`: the train row
    /// from `sums` (then reset) and the held-out rows measured now.
    fn curve_point(
        &self,
        sums: &mut TrainSums,
        heldout: &[TrainExample],
        iteration: u32,
        at: u64,
        learning_rate: f64,
    ) -> Vec<CurveRow> {
        let spec = self.spec.clone();
        let mut rows: Vec<CurveRow> = sums
            .take(iteration, at, learning_rate)
            .into_iter()
            .collect();
        rows.extend(curves::heldout_rows(
            self.net.as_ref(),
            &spec,
            heldout,
            iteration,
            at,
            learning_rate,
            self.vs.device(),
        ));
        rows
    }

    /// Everything a checkpoint holds: `w/<name>` for every variable of the
    /// network, the optimizer's moments, the weight average.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| (format!("w/{name}"), t))
            .collect();
        out.extend(self.opt.state());
        out.extend(self.ema.state());
        out
    }

    /// Restores [`Trainer::state`] (and the optimizer's step count).
    pub fn load_state(
        &mut self,
        named: &std::collections::HashMap<String, Tensor>,
        adam_step: i64,
    ) -> std::result::Result<(), String> {
        for (name, mut var) in self.vs.variables() {
            optim::restore(named, &format!("w/{name}"), &mut var)?;
        }
        self.opt.load_state(named, adam_step)?;
        self.ema.load_state(named)
    }

    /// Ends training. With an average kept, the weights become it
    /// (`train.play_weights = "average"`), or stay the trained ones and the
    /// average is returned, to be saved beside them (`"trained"`).
    pub fn finish(&mut self) -> Option<Vec<(String, Tensor)>> {
        if self.ema.is_off() {
            return None;
        }
        match self.cfg.play_weights {
            PlayWeights::Average => {
                self.ema.apply();
                None
            }
            PlayWeights::Trained => Some(self.ema.averages()),
        }
    }
}

/// One line from a libtorch error: its first meaningful line, without the
/// C++ stack ("Exception raised from ...", "frame #N") or Rust debug text.
fn torch_message(e: &TchError) -> String {
    match e {
        TchError::Torch(msg) => first_line(msg),
        TchError::SafeTensorError { err, .. } => {
            format!(
                "not a valid safetensors file ({})",
                debug_words(&err.to_string())
            )
        }
        other => first_line(&other.to_string()),
    }
}

fn first_line(msg: &str) -> String {
    let line = msg
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Exception raised from") && !l.starts_with("frame #"))
        .find(|l| !l.is_empty())
        .unwrap_or("libtorch error without a message");
    let line = line.split(" Exception raised from ").next().unwrap_or(line);
    // `[enforce fail at file.cc:123] ` prefixes name libtorch's source, not ours.
    let line = match line.strip_prefix("[enforce fail at ") {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, r)| r),
        None => line,
    };
    line.trim().trim_end_matches('.').trim().to_string()
}

/// `InvalidOffset("x")` -> `invalid offset (x)`: an error's Debug text
/// (which the safetensors crate uses as Display) in words.
fn debug_words(text: &str) -> String {
    let name: String = text.chars().take_while(|c| c.is_alphanumeric()).collect();
    let mut words = String::new();
    for c in name.chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    let rest = &text[name.len()..];
    let quoted = rest
        .split_once('"')
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(q, _)| q);
    match quoted {
        Some(q) if !q.is_empty() => format!("{words} ({q})"),
        _ if words.is_empty() => first_line(text),
        _ => words,
    }
}

/// A failed tch/libtorch call as one line naming `path` and what was being
/// done: I/O failures stay [`Error::Io`]; the rest are [`Error::Model`].
pub(crate) fn torch_error(what: &str, path: &Path, e: TchError) -> Error {
    torch_error_as(Error::Model, what, path, e)
}

/// [`torch_error`] with the category chosen by the caller.
fn torch_error_as(category: fn(String) -> Error, what: &str, path: &Path, e: TchError) -> Error {
    match e {
        TchError::Io(io) => Error::io(path, io).with_context(what),
        e => category(format!("{}: {what}: {}", path.display(), torch_message(&e))),
    }
}

/// Is every value of `t` finite?
fn all_finite(t: &Tensor) -> std::result::Result<bool, TchError> {
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0)
}

/// Loads `path` (a safetensors file) into `vs`, checking each tensor's
/// presence, shape, dtype and values first: a bad file is one line naming it.
fn load_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let named: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| torch_error("reading weights", path, e))?
        .into_iter()
        .collect();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in vars {
        let bad = |why: String| {
            Error::Model(format!(
                "{}: tensor '{name}' {why}; expected the weights of the network model.json describes",
                path.display()
            ))
        };
        let Some(src) = named.get(&name) else {
            return Err(bad("is missing".into()));
        };
        if src.size() != var.size() {
            return Err(bad(format!(
                "has shape {:?}, but the network's is {:?}",
                src.size(),
                var.size()
            )));
        }
        if !matches!(
            src.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(bad(format!("has dtype {:?}, not a float type", src.kind())));
        }
        let what = format!("tensor '{name}'");
        let torch = |e| torch_error(&what, path, e);
        if !all_finite(src).map_err(torch)? {
            return Err(bad("has non-finite values (NaN or inf)".into()));
        }
        let src = src.f_to_kind(Kind::Float).map_err(torch)?;
        tch::no_grad(|| var.f_copy_(&src)).map_err(torch)?;
    }
    Ok(())
}

/// Named tensors copied to the CPU, where they are written from.
fn on_cpu(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .map(|(name, t)| (name, t.to_device(Device::Cpu)))
        .collect()
}

/// The weight average saved beside a model that plays with its trained
/// weights (`train.play_weights = "trained"`): its trainable tensors by
/// their names in weights.safetensors.
pub const AVERAGE_FILE: &str = "average.safetensors";

/// The optimizer state saved beside a trained model's weights, which the
/// next iteration's training continues from.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Saves the ONNX export, the weights and the optimizer state (when
/// given), then model.json, the commit point.
/// Non-finite weights are refused before anything is written.
fn save_model(
    run: &RunDir,
    key: &str,
    vs: &nn::VarStore,
    opt: Option<&AdamW>,
    meta: &ModelMeta,
) -> Result<()> {
    let dir = run.model_dir(&meta.id);
    let weights = weights_of(vs)?;
    for (name, (_, data)) in &weights.0 {
        if let Some(v) = data.iter().find(|v| !v.is_finite()) {
            return Err(Error::Model(format!(
                "model {}: weight tensor '{name}' has a non-finite value ({v}); {} not written; expected finite weights: lower train.learning_rate or check train.value_weight",
                meta.id,
                dir.display()
            )));
        }
    }
    let onnx = export(&meta.spec, &weights, Some(&meta.id))
        .map_err(|e| Error::Model(format!("export: {e}")))?;
    write_file(run, key, &dir.join("model.onnx"), &onnx)?;
    let st = dir.join("weights.safetensors");
    let (file, tmp) = temp_file_ending(run, key, ".safetensors")?;
    drop(file);
    vs.save(&tmp)
        .map_err(|e| torch_error_as(Error::Other, "saving the weights", &tmp, e))?;
    Staged::new(tmp, st, 0).commit()?;
    if let Some(opt) = opt {
        let mut tensors = on_cpu(opt.state());
        tensors.push(("step".into(), Tensor::from_slice(&[opt.step])));
        let file = dir.join(OPTIMIZER_FILE);
        write_tensors(run, key, &tensors, &file, "saving the optimizer state")?;
    }
    meta.save(run, key)
}

/// Commits named tensors as a safetensors file at `dest`.
fn write_tensors(
    run: &RunDir,
    key: &str,
    tensors: &[(String, Tensor)],
    dest: &Path,
    what: &str,
) -> Result<()> {
    let (file, tmp) = temp_file_ending(run, key, ".safetensors")?;
    Tensor::write_safetensors(tensors, &tmp)
        .map_err(|e| torch_error_as(Error::Other, what, &tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    Staged::new(tmp, dest.to_path_buf(), 0).commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::{examples_batch, ExampleRow};
    use crate::tasks::Family;

    pub(super) fn small_cfg() -> Config {
        let set: Vec<String> = [
            "model.hidden=8",
            "model.blocks=1",
            "model.value_hidden=4",
            "train.steps=3",
            "train.threads=1",
            "batch_size=4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Config::load(None, &set).unwrap()
    }

    /// A resnet of 4 filters and one block, training on one thread, with
    /// the `extra` keys set.
    fn tiny_resnet(extra: &[&str]) -> Config {
        let base = [
            "model.arch=\"resnet\"",
            "model.filters=4",
            "model.blocks=1",
            "train.threads=1",
        ];
        let set: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        Config::load(None, &set).unwrap()
    }

    pub(super) fn example(value: f32) -> ExampleRow {
        let f = Family::Countdown;
        ExampleRow {
            task_id: "t".into(),
            family: f,
            step: 0,
            obs: vec![0.5; f.obs_dim()],
            legal: vec![0, 1],
            policy_actions: vec![0, 1],
            policy_probs: vec![0.25, 0.75],
            value,
            weight: 1.0,
            proven: false,
            visit_counts: vec![1, 3],
            model_id: "iteration=000000".into(),
            ownership: Vec::new(),
        }
    }

    /// The one place these tests touch the store API: a committed example part.
    pub(super) fn write_examples(
        run: &RunDir,
        iteration: u32,
        rows: &[ExampleRow],
    ) -> std::path::PathBuf {
        let dir = run.examples(iteration);
        let claim = Claim::acquire(run, "test examples", false).unwrap();
        let batch = examples_batch(rows, iteration).unwrap();
        let schema = Store::Examples.schema();
        let meta = FileMeta {
            stage: "play".into(),
            num_shards: 1,
            ..FileMeta::default()
        };
        stage_part(&claim, &dir, &schema, &meta, &[batch], None)
            .unwrap()
            .commit()
            .unwrap();
        crate::store::part_path(&dir, 0)
    }

    /// A run dir with an initialised model 0 and examples for iteration 1.
    fn prepared(cfg: &Config, rows: &[ExampleRow]) -> (tempfile::TempDir, RunDir, ModelMeta) {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("run"));
        let parent = init_model(cfg, &run, 0, "test").unwrap();
        write_examples(&run, 1, rows);
        (tmp, run, parent)
    }

    /// Trains `iteration` from `parent`.
    fn train_at(
        cfg: &Config,
        run: &RunDir,
        iteration: u32,
        parent: &ModelMeta,
    ) -> Result<ModelMeta> {
        let claim = Claim::acquire(run, &format!("train {iteration}"), false)?;
        train_model(cfg, &claim, iteration, parent, StageMeter::start())
    }

    /// Trains iteration 1 from `parent`.
    fn train(cfg: &Config, run: &RunDir, parent: &ModelMeta) -> Result<ModelMeta> {
        train_at(cfg, run, 1, parent)
    }

    /// Training iteration 1 fails with exit 2, one line holding every
    /// needle, and no model folder.
    fn assert_refused(cfg: &Config, run: &RunDir, parent: &ModelMeta, needles: &[&str]) {
        let err = train(cfg, run, parent).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.exit_code(), 2, "{msg}");
        assert_one_line(&msg);
        for needle in needles {
            assert!(msg.contains(needle), "lacks '{needle}': {msg}");
        }
        assert!(!run.model_dir(&model_id(1)).exists());
    }

    fn assert_one_line(msg: &str) {
        eprintln!("{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(!msg.contains("frame #"), "{msg}");
        assert!(!msg.contains("Exception raised"), "{msg}");
        assert!(!msg.contains("Torch("), "{msg}");
    }

    #[test]
    fn trains_and_saves_on_good_examples() {
        let cfg = small_cfg();
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
        let meta = train(&cfg, &run, &parent).unwrap();
        let dir = run.model_dir(&meta.id);
        assert!(dir.join("weights.safetensors").is_file());
        assert!(dir.join("model.json").is_file());
        assert!(meta.losses.unwrap().total.is_finite());
    }

    /// Every architecture at its defaults trains (deep supervision, halting
    /// and the EMA included, where it has them) and saves a model.
    #[test]
    fn every_architecture_trains_and_saves() {
        for arch in crate::model::ArchConfig::known() {
            let set: Vec<String> = [
                format!("model.arch=\"{}\"", arch.name()),
                "train.steps=3".into(),
                "train.threads=1".into(),
                "batch_size=4".into(),
            ]
            .into();
            let cfg = Config::load(None, &set).unwrap();
            let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
            let meta = train(&cfg, &run, &parent).unwrap();
            assert_eq!(meta.spec.model, arch);
            assert!(meta.losses.unwrap().total.is_finite(), "{}", arch.name());
            assert!(run.model_dir(&meta.id).join("model.onnx").is_file());
        }
    }

    /// A value head with bins learns its targets by cross-entropy, and the
    /// exported graph's value (the bins' mean, through ONNX Runtime) moves
    /// from the untrained network's to the target.
    #[test]
    fn a_value_head_with_bins_learns_the_target() {
        let cfg = tiny_resnet(&["model.value_bins=21", "train.steps=150", "batch_size=8"]);
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.6); 8]);
        let value_of = |meta: &ModelMeta| {
            crate::infer::init_runtime(None).unwrap();
            let path = run.model_dir(&meta.id).join("model.onnx");
            let mut m = crate::infer::OnnxModel::load(&path, crate::infer::Device::Cpu, 1).unwrap();
            let mut obs = vec![0f32; meta.spec.obs_dim];
            obs[Family::Countdown as usize] = 1.0;
            example(0.0)
                .obs
                .iter()
                .enumerate()
                .for_each(|(i, v)| obs[crate::tasks::FAMILY_TAG + i] = *v);
            let (mut p, mut v) = (vec![0f32; meta.spec.action_dim], [0f32]);
            m.run(&obs, 1, &mut p, &mut v).unwrap();
            v[0]
        };
        let before = value_of(&parent);
        let meta = train(&cfg, &run, &parent).unwrap();
        let losses = meta.losses.clone().unwrap();
        assert!(losses.value < losses.value_start, "{losses:?}");
        let after = value_of(&meta);
        assert!(
            (after - 0.6).abs() < 0.1 && (after - 0.6).abs() < (before - 0.6).abs(),
            "value {before} before training, {after} after; target 0.6"
        );
    }

    /// With `model.ownership`, each step also optimizes the ownership
    /// head's cross-entropy (times `train.ownership_weight`), which falls
    /// as the head learns a fixed final board.
    #[test]
    fn the_ownership_head_learns_its_map() {
        let cfg = tiny_resnet(&["model.ownership=true", "train.ownership_weight=2"]);
        let spec = spec_for(&cfg);
        let f = Family::Connect4;
        let map: Vec<u8> = (0..42).map(|c| (c / 7 % 3) as u8).collect();
        let rows = vec![batch::tests::example(f, map); 8];
        let rows = Rows::from_examples(&rows, &spec);
        let mut t = Trainer::new(&spec, &cfg.train, 200, Device::Cpu);
        let own = |o: &StepOut| {
            let weighted = o.total - o.policy - o.value * cfg.train.value_weight;
            assert!(
                (weighted - 2.0 * o.ownership.unwrap()).abs() < 1e-4,
                "{o:?}"
            );
            o.ownership.unwrap()
        };
        let first = own(&t.step(&rows, 0).unwrap());
        let last = (1..200).map(|i| t.step(&rows, i).unwrap()).last().unwrap();
        assert!(first > 0.8, "start {first}: about ln 3 or more, untrained");
        assert!(
            own(&last) < first / 4.0,
            "ownership loss {first} -> {}",
            own(&last)
        );
    }

    /// The optimizer state is saved with each model and the next
    /// iteration continues it: its step count runs on over iterations.
    #[test]
    fn optimizer_state_continues_across_iterations() {
        let cfg = small_cfg();
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
        let first = train(&cfg, &run, &parent).unwrap();
        write_examples(&run, 2, &vec![example(-0.5); 6]);
        let second = train_at(&cfg, &run, 2, &first).unwrap();
        let step = |meta: &ModelMeta| {
            let file = run.model_dir(&meta.id).join(OPTIMIZER_FILE);
            let named = Tensor::read_safetensors(file).unwrap();
            let (_, t) = named.iter().find(|(n, _)| n == "step").unwrap();
            t.int64_value(&[0])
        };
        assert_eq!(step(&first), 3);
        assert_eq!(step(&second), 6);
        assert_eq!(second.train_steps, 6);
    }

    #[test]
    fn a_nan_example_is_named_and_nothing_is_saved() {
        let cfg = small_cfg();
        let mut rows = vec![example(0.5); 5];
        rows[3].value = f32::NAN;
        let (_tmp, run, parent) = prepared(&cfg, &rows);
        let needles = [
            "examples/iteration=1/part-00000.parquet",
            "row 3",
            "value = NaN",
            "finite",
        ];
        assert_refused(&cfg, &run, &parent, &needles);

        let mut rows = vec![example(0.5); 2];
        rows[1].policy_probs[0] = f32::INFINITY;
        let (_tmp, run, parent) = prepared(&cfg, &rows);
        let msg = train(&cfg, &run, &parent).unwrap_err().to_string();
        assert!(msg.contains("row 1: policy_probs[0] = inf"), "{msg}");
        assert!(!run.model_dir(&model_id(1)).exists());

        let mut rows = vec![example(0.5); 2];
        rows[0].ownership = vec![0, 1, 2];
        let (_tmp, run, parent) = prepared(&cfg, &rows);
        let needles = [
            "row 0",
            "ownership has 3 cells; expected 0 for family countdown",
        ];
        assert_refused(&cfg, &run, &parent, &needles);
    }

    /// A map's class outside 0-2 is named before the head's loss sees it.
    #[test]
    fn a_bad_ownership_class_is_named() {
        let mut e = batch::tests::example(Family::TicTacToe, vec![0; 9]);
        assert_eq!(ownership_problem(&e), None);
        e.ownership[4] = 3;
        let msg = ownership_problem(&e).unwrap();
        assert_eq!(msg, "ownership[4] = 3; expected 0, 1 or 2");
    }

    #[test]
    fn a_non_finite_loss_stops_training_and_nothing_is_saved() {
        let mut cfg = small_cfg();
        // Config checks may refuse inf at load time; set it on the struct.
        cfg.train.value_weight = f64::INFINITY;
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
        let needles = [
            "iteration 1",
            "step 1 of 3",
            "non-finite loss",
            "train.learning_rate",
            "train.value_weight",
        ];
        assert_refused(&cfg, &run, &parent, &needles);
    }

    /// A weight average for the MLP: with `play_weights = "trained"` the
    /// model holds exactly the weights of training without an average and
    /// the average sits beside them; with `"average"` the model is the
    /// average.
    #[test]
    fn the_average_is_played_or_kept_beside_as_asked() {
        let names = |path: &std::path::Path| -> Vec<String> {
            let mut n: Vec<String> = Tensor::read_safetensors(path)
                .unwrap()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            n.sort();
            n
        };
        // (weights.safetensors, the names in average.safetensors if any).
        let weights = |extra: &[&str]| {
            let mut set: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            set.extend(
                ["model.hidden=8", "model.blocks=1", "model.value_hidden=4"].map(String::from),
            );
            set.extend(["train.steps=5", "train.threads=1", "batch_size=4"].map(String::from));
            let cfg = Config::load(None, &set).unwrap();
            let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
            let meta = train(&cfg, &run, &parent).unwrap();
            let dir = run.model_dir(&meta.id);
            let average = dir.join(AVERAGE_FILE);
            let weights = dir.join("weights.safetensors");
            assert!(!average.exists() || names(&average) == names(&weights));
            (std::fs::read(weights).unwrap(), average.exists())
        };
        let (plain, kept) = weights(&[]);
        assert!(!kept);
        let (trained, kept) = weights(&["train.ema_decay=0.9", "train.play_weights=\"trained\""]);
        assert_eq!(trained, plain, "the average changed the trained weights");
        assert!(kept, "average.safetensors beside the model");
        let (played, kept) = weights(&["train.ema_decay=0.9"]);
        assert!(!kept);
        assert_ne!(played, plain, "the model should play the average");
    }

    /// Without a GPU (or a libtorch CUDA build) `train.device = "cuda"`
    /// is refused with one line naming the key, never run on the CPU.
    #[test]
    fn a_missing_cuda_device_is_refused_not_replaced() {
        if tch::Cuda::device_count() > 0 {
            return;
        }
        let mut cfg = small_cfg();
        cfg.train.device = "cuda".into();
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 6]);
        assert_refused(
            &cfg,
            &run,
            &parent,
            &["train.device = \"cuda\"", "expected"],
        );
        cfg.train.device = "cuda:x".into();
        assert_refused(&cfg, &run, &parent, &["train.device", "cuda:N"]);
    }

    #[test]
    fn non_finite_weights_are_not_saved() {
        let cfg = small_cfg();
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = spec_for(&cfg);
        let _net = spec.init(&vs.root());
        for (_, mut t) in vs.variables() {
            let _ = tch::no_grad(|| t.fill_(f64::NAN));
        }
        let meta = init_model(&cfg, &run, 0, "test").unwrap();
        let meta = ModelMeta {
            id: model_id(7),
            ..meta
        };
        let msg = save_model(&run, "test", &vs, None, &meta)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("non-finite") && msg.contains("iteration=000007"),
            "{msg}"
        );
        assert!(!run.model_dir(&meta.id).exists());
    }

    #[test]
    fn corrupt_weights_are_one_line_naming_the_file() {
        let cfg = small_cfg();
        let (_tmp, run, parent) = prepared(&cfg, &vec![example(0.5); 4]);
        let weights = run.model_dir(&parent.id).join("weights.safetensors");
        let good = std::fs::read(&weights).unwrap();
        for bytes in [
            &b"not a safetensors file at all, just text"[..],
            &[0xffu8; 8][..],
            &[][..],
        ] {
            std::fs::write(&weights, bytes).unwrap();
            let err = train(&cfg, &run, &parent).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 2, "{msg}");
            assert_one_line(&msg);
            assert!(msg.contains(&weights.display().to_string()), "{msg}");
            assert!(
                msg.contains("reading weights: not a valid safetensors file ("),
                "{msg}"
            );
            assert!(!run.model_dir(&model_id(1)).exists());
        }
        // A well-formed file with the wrong shapes (a wider network).
        std::fs::write(&weights, good).unwrap();
        let mut wide = parent.clone();
        wide.spec = spec_for(&Config::load(None, &["model.hidden=16".into()]).unwrap());
        let msg = train(&cfg, &run, &wide).unwrap_err().to_string();
        assert_one_line(&msg);
        assert!(msg.contains("has shape"), "{msg}");
    }

    #[test]
    fn libtorch_messages_lose_their_stack() {
        let a = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let e = a.f_matmul(&a).unwrap_err();
        let msg = torch_error("multiplying", Path::new("/runs/x"), e).to_string();
        assert_one_line(&msg);
        assert!(msg.starts_with("model: /runs/x: multiplying: "), "{msg}");
        let e = TchError::Torch(
            "shapes cannot be multiplied (2x3 and 2x3)\nException raised from meta at /pytorch/aten/src/ATen/native/LinearAlgebra.cpp:193 (most recent call first):\nframe #0: c10::Error::Error() + 0x9c (0x7f in libc10.so)\n".into(),
        );
        let msg = torch_error("x", Path::new("/p"), e).to_string();
        assert_eq!(
            msg,
            "model: /p: x: shapes cannot be multiplied (2x3 and 2x3)"
        );
        assert_eq!(
            debug_words("InvalidOffset(\"blocks.0.fc1.weight\")"),
            "invalid offset (blocks.0.fc1.weight)"
        );
        assert_eq!(debug_words("HeaderTooLarge"), "header too large");
    }
}
