//! The replay window, read from Parquet: the newest `max_buffer_size`
//! example rows, less a held-out slice of tasks that training never sees
//! (`train.holdout`; the curves measure on it).
//!
//! A window that fits `train.shuffle_buffer` rows is loaded whole and each
//! minibatch is uniform draws from it. A larger one streams through a
//! shuffle buffer of that many rows: each drawn slot is refilled from a
//! stream that walks the window's row groups in a fresh random order every
//! pass. Memory is that buffer and one row group (at most 8192 rows as
//! selfplay writes them), whatever the window's size.
//!
//! Both are pure functions of (seed, iteration, step): a resumed training
//! replays the stream to its position and then draws exactly what an
//! uninterrupted one would.

use super::example_problem;
use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::stages::derive_seed;
use crate::store::parquet_io::{open_row_group, row_group_rows};
use crate::store::rows::{train_examples_from_batch, TrainExample};
use crate::store::{complete_parts, required_parts, RunDir, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::path::PathBuf;

/// Rows decoded from Parquet at a time while streaming.
const READ_ROWS: usize = 1024;

/// Most held-out rows the curves measure on (the newest ones).
pub const HELDOUT_ROWS: usize = 2048;

/// Seed stream of training minibatches.
const STREAM: u64 = 0x0074_7261_696e;
/// Seed stream of the symmetries drawn for augmentation.
const AUGMENT_STREAM: u64 = 0x0061_7567_6d65;
/// Seed stream of the streaming reader's row-group order.
const ORDER_STREAM: u64 = 0x006f_7264_6572;

/// Up to `rows` rows of one row group of one part.
#[derive(Clone, Debug)]
struct Chunk {
    part: PathBuf,
    group: usize,
    /// Index in the part of the group's first row (for error messages).
    first_row: usize,
    rows: usize,
}

/// The newest `max` rows of committed example parts up to an iteration,
/// as row-group chunks, newest part first: found from the footers alone.
pub struct Window {
    chunks: Vec<Chunk>,
    /// Rows in the window, held-out ones included.
    pub rows: usize,
    /// The parts read, relative to the run root (model.json's `trained_on`).
    pub parts: Vec<String>,
}

impl Window {
    pub fn open(run: &RunDir, iteration: u32, max: usize) -> Result<Window> {
        let schema = Store::Examples.schema();
        let mut window = Window {
            chunks: Vec::new(),
            rows: 0,
            parts: Vec::new(),
        };
        'outer: for it in (0..=iteration).rev() {
            // The iteration's own self-play must be there: never train
            // silently on older examples alone.
            let parts = if it == iteration && iteration > 0 {
                let made_by = format!("selfplay play --iteration {iteration}");
                required_parts(&run.examples(it), &made_by)?
            } else {
                complete_parts(&run.examples(it))?
            };
            for part in parts.into_iter().rev() {
                let mut first_row = 0;
                for (group, rows) in row_group_rows(&part, &schema)?.into_iter().enumerate() {
                    let take = rows.min(max - window.rows);
                    if take > 0 {
                        window.chunks.push(Chunk {
                            part: part.clone(),
                            group,
                            first_row,
                            rows: take,
                        });
                    }
                    window.rows += take;
                    first_row += rows;
                }
                let shown = part.strip_prefix(&run.root).unwrap_or(&part);
                window.parts.push(shown.display().to_string());
                if window.rows >= max {
                    break 'outer;
                }
            }
        }
        Ok(window)
    }
}

/// Which tasks are held out: a stable share of task ids, by hash, so every
/// position of a held-out task stays out of training in every iteration.
#[derive(Clone, Copy, Debug)]
pub struct Holdout {
    share: f64,
}

impl Holdout {
    pub fn new(share: f64) -> Holdout {
        Holdout { share }
    }

    pub fn holds(&self, e: &TrainExample) -> bool {
        (e.task_key as f64) < self.share * u64::MAX as f64
    }
}

/// Reads `chunk`'s rows in order, checking each against `spec`, and hands
/// them to `sink`; stops early when `sink` returns false.
fn read_chunk(
    chunk: &Chunk,
    spec: &ModelSpec,
    sink: &mut impl FnMut(TrainExample) -> bool,
) -> Result<bool> {
    let schema = Store::Examples.schema();
    let reader = open_row_group(&chunk.part, &schema, chunk.group, chunk.rows, READ_ROWS)?;
    let mut row = chunk.first_row;
    for batch in reader {
        let batch = batch.map_err(|e| {
            Error::Data(format!(
                "{}: row group {}: {e}",
                chunk.part.display(),
                chunk.group
            ))
        })?;
        for e in train_examples_from_batch(&batch)? {
            if let Some(why) = example_problem(&e, spec) {
                return Err(Error::Data(format!(
                    "{}: row {row}: {why}",
                    chunk.part.display()
                )));
            }
            row += 1;
            if !sink(e) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The newest held-out rows of the window, at most [`HELDOUT_ROWS`].
fn heldout_slice(window: &Window, spec: &ModelSpec, holdout: Holdout) -> Result<Vec<TrainExample>> {
    let mut out = Vec::new();
    if holdout.share <= 0.0 {
        return Ok(out);
    }
    for chunk in &window.chunks {
        let more = read_chunk(chunk, spec, &mut |e| {
            if holdout.holds(&e) {
                out.push(e);
            }
            out.len() < HELDOUT_ROWS
        })?;
        if !more {
            break;
        }
    }
    Ok(out)
}

/// Minibatches of training rows, and the held-out slice.
pub struct Replay {
    /// The whole window's training rows, or the shuffle buffer.
    rows: Vec<TrainExample>,
    /// Refills the shuffle buffer; `None` when the window is loaded whole.
    stream: Option<Stream>,
    seed: u64,
    iteration: u32,
    /// Rows per minibatch.
    pub batch: usize,
    /// Held-out rows (never trained on), newest first.
    pub heldout: Vec<TrainExample>,
    /// The next minibatch a streaming replay draws.
    next_step: usize,
    augment: bool,
}

/// What the replay needs to know of the run's config.
pub struct ReplayConfig {
    pub seed: u64,
    pub iteration: u32,
    pub batch_size: usize,
    pub shuffle_buffer: usize,
    pub holdout: f64,
    /// Map each drawn row by a random symmetry of its family, where the
    /// family declares symmetries.
    pub augment: bool,
}

impl Replay {
    /// Loads the window whole when it fits the shuffle buffer, else fills
    /// the buffer from a stream over it. Errors name the part and row of a
    /// bad example, or say there is nothing to train on.
    pub fn open(window: &Window, spec: &ModelSpec, cfg: &ReplayConfig) -> Result<Replay> {
        let holdout = Holdout::new(cfg.holdout);
        let mut replay = Replay {
            rows: Vec::new(),
            stream: None,
            seed: cfg.seed,
            iteration: cfg.iteration,
            batch: 0,
            heldout: Vec::new(),
            next_step: 0,
            augment: cfg.augment,
        };
        if window.rows <= cfg.shuffle_buffer {
            for chunk in &window.chunks {
                read_chunk(chunk, spec, &mut |e| {
                    if !holdout.holds(&e) {
                        replay.rows.push(e);
                    } else if replay.heldout.len() < HELDOUT_ROWS {
                        replay.heldout.push(e);
                    }
                    true
                })?;
            }
        } else {
            replay.heldout = heldout_slice(window, spec, holdout)?;
            let mut stream = Stream::new(window, spec.clone(), holdout, cfg);
            while replay.rows.len() < cfg.shuffle_buffer {
                replay.rows.push(stream.next()?);
            }
            replay.stream = Some(stream);
        }
        if replay.rows.is_empty() {
            return Err(Error::Data(format!(
                "no training examples: the window holds {} rows, all of held-out tasks (train.holdout = {}); play more or lower train.holdout",
                window.rows, cfg.holdout
            )));
        }
        replay.batch = cfg.batch_size.min(replay.rows.len());
        Ok(replay)
    }

    /// Is the replay streaming through a shuffle buffer?
    pub fn streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Minibatch `step` of the iteration. A streaming replay draws its
    /// minibatches in order: asking for a later step first replays (and
    /// discards) the ones before it, as a resumed training does.
    pub fn minibatch(&mut self, step: usize) -> Result<Vec<TrainExample>> {
        let mut rows = self.draw(step)?;
        if self.augment {
            let seed = derive_seed(&[
                self.seed,
                AUGMENT_STREAM,
                self.iteration as u64,
                step as u64,
            ]);
            augment(&mut rows, &mut ChaCha8Rng::seed_from_u64(seed));
        }
        Ok(rows)
    }

    /// The rows of minibatch `step`, as stored.
    fn draw(&mut self, step: usize) -> Result<Vec<TrainExample>> {
        let n = self.rows.len();
        let Some(stream) = self.stream.as_mut() else {
            let mut rng = draws(self.seed, self.iteration, step);
            return Ok((0..self.batch)
                .map(|_| self.rows[rng.random_range(0..n)].clone())
                .collect());
        };
        if step < self.next_step {
            return Err(Error::Other(format!(
                "streaming replay: minibatch {step} asked after {}",
                self.next_step
            )));
        }
        let mut out = Vec::with_capacity(self.batch);
        for at in self.next_step..=step {
            let mut rng = draws(self.seed, self.iteration, at);
            out.clear();
            for _ in 0..self.batch {
                let slot = rng.random_range(0..n);
                out.push(std::mem::replace(&mut self.rows[slot], stream.next()?));
            }
        }
        self.next_step = step + 1;
        Ok(out)
    }
}

/// Maps each row by a random symmetry of its family (observation, legal
/// moves, policy target and ownership map together; the value is
/// unchanged).
fn augment(rows: &mut [TrainExample], rng: &mut ChaCha8Rng) {
    for e in rows {
        let Some(s) = e.family.random_symmetry(&e.obs, rng) else {
            continue;
        };
        e.obs = s.obs(&e.obs);
        e.legal.iter_mut().for_each(|a| *a = s.action(*a));
        e.policy_actions.iter_mut().for_each(|a| *a = s.action(*a));
        e.ownership = s.cells(&e.ownership);
    }
}

/// The random source of minibatch `step`'s draws.
fn draws(seed: u64, iteration: u32, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(&[seed, STREAM, iteration as u64, step as u64]))
}

/// The window's training rows, endlessly: its chunks in a seeded random
/// order per pass, each read a record batch at a time.
struct Stream {
    chunks: Vec<Chunk>,
    spec: ModelSpec,
    holdout: Holdout,
    seed: u64,
    iteration: u32,
    pass: u64,
    order: Vec<usize>,
    /// Position in `order` of the next chunk to read.
    next_chunk: usize,
    /// Rows of the chunk being read, not yet handed out.
    pending: VecDeque<TrainExample>,
    /// Training rows handed out this pass (a pass with none is an error).
    yielded: usize,
}

impl Stream {
    fn new(window: &Window, spec: ModelSpec, holdout: Holdout, cfg: &ReplayConfig) -> Stream {
        let mut s = Stream {
            chunks: window.chunks.clone(),
            spec,
            holdout,
            seed: cfg.seed,
            iteration: cfg.iteration,
            pass: 0,
            order: Vec::new(),
            next_chunk: 0,
            pending: VecDeque::new(),
            yielded: 0,
        };
        s.shuffle();
        s
    }

    /// A fresh random chunk order for the current pass.
    fn shuffle(&mut self) {
        use rand::seq::SliceRandom;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(&[
            self.seed,
            ORDER_STREAM,
            self.iteration as u64,
            self.pass,
        ]));
        self.order = (0..self.chunks.len()).collect();
        self.order.shuffle(&mut rng);
        self.next_chunk = 0;
        self.yielded = 0;
    }

    /// The next training row.
    fn next(&mut self) -> Result<TrainExample> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.yielded += 1;
                return Ok(e);
            }
            if self.next_chunk == self.order.len() {
                if self.yielded == 0 {
                    return Err(Error::Data(
                        "no training examples: every row of the window is of a held-out task; play more or lower train.holdout".into(),
                    ));
                }
                self.pass += 1;
                self.shuffle();
            }
            let chunk = &self.chunks[self.order[self.next_chunk]];
            self.next_chunk += 1;
            let (holdout, pending) = (self.holdout, &mut self.pending);
            read_chunk(chunk, &self.spec, &mut |e| {
                if !holdout.holds(&e) {
                    pending.push_back(e);
                }
                true
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::{example, small_cfg, write_examples};
    use std::collections::BTreeSet;

    /// A run with `parts` example parts (the iterations up to 9) of `rows`
    /// rows each; row `k` overall has task id `t{k}` and obs[0] = k.
    fn run_with(parts: u32, rows: usize) -> (tempfile::TempDir, RunDir) {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("run"));
        for j in 1..=parts {
            let it = 9 - parts + j;
            let part: Vec<_> = (0..rows)
                .map(|i| {
                    let k = (j as usize - 1) * rows + i;
                    let mut e = example(0.0);
                    e.task_id = format!("t{k}");
                    e.obs[0] = k as f32;
                    e
                })
                .collect();
            write_examples(&run, it, &part);
        }
        (tmp, run)
    }

    fn open(run: &RunDir, max: usize, buffer: usize, holdout: f64) -> Replay {
        let spec = small_cfg().model_spec();
        let window = Window::open(run, 9, max).unwrap();
        let cfg = ReplayConfig {
            seed: 7,
            iteration: 9,
            batch_size: 8,
            shuffle_buffer: buffer,
            holdout,
            augment: false,
        };
        Replay::open(&window, &spec, &cfg).unwrap()
    }

    fn ids(rows: &[TrainExample]) -> Vec<usize> {
        rows.iter().map(|e| e.obs[0] as usize).collect()
    }

    /// The window is the newest rows; a stream through a small buffer
    /// draws only those, and every one of them over enough minibatches.
    #[test]
    fn the_iterations_own_examples_are_required() {
        let (_tmp, run) = run_with(2, 10);
        assert_eq!(Window::open(&run, 9, 100).unwrap().rows, 20);
        let msg = Window::open(&run, 10, 100).err().unwrap().to_string();
        assert!(
            msg.contains("examples/iteration=10: no shard committed")
                && msg.contains("selfplay play --iteration 10"),
            "{msg}"
        );
    }

    #[test]
    fn streaming_draws_the_window_and_all_of_it() {
        let (_tmp, run) = run_with(3, 50);
        // Parts newest first; the oldest one contributes its first rows.
        let window: BTreeSet<usize> = (0..20).chain(50..150).collect();
        let mut replay = open(&run, 120, 16, 0.0);
        assert!(replay.streaming());
        let mut seen = BTreeSet::new();
        for step in 0..300 {
            for id in ids(&replay.minibatch(step).unwrap()) {
                assert!(window.contains(&id), "row {id} is outside the window");
                seen.insert(id);
            }
        }
        assert_eq!(seen, window);
        let mut whole = open(&run, 120, 120, 0.0);
        assert!(!whole.streaming());
        let drawn: BTreeSet<usize> = (0..100)
            .flat_map(|s| ids(&whole.minibatch(s).unwrap()))
            .collect();
        assert!(drawn.is_subset(&window) && drawn.len() > 100);
    }

    /// Asking for minibatch k first (a resume) gives what drawing 0..k in
    /// order gives, and the same minibatches after it.
    #[test]
    fn a_resumed_stream_draws_the_same_minibatches() {
        let (_tmp, run) = run_with(3, 50);
        let mut straight = open(&run, 150, 20, 0.0);
        let all: Vec<Vec<usize>> = (0..30)
            .map(|s| ids(&straight.minibatch(s).unwrap()))
            .collect();
        let mut resumed = open(&run, 150, 20, 0.0);
        for (step, want) in all.iter().enumerate().skip(17) {
            assert_eq!(&ids(&resumed.minibatch(step).unwrap()), want);
        }
        assert!(resumed.minibatch(3).is_err(), "a stream cannot go back");
    }

    /// Rows of held-out tasks never reach a minibatch, loaded whole or
    /// streamed, and the held-out slice is exactly such rows.
    #[test]
    fn held_out_tasks_stay_out_of_training() {
        let (_tmp, run) = run_with(3, 50);
        let holdout = Holdout::new(0.3);
        for buffer in [10, 1000] {
            let mut replay = open(&run, 150, buffer, 0.3);
            assert!(!replay.heldout.is_empty());
            assert!(replay.heldout.iter().all(|e| holdout.holds(e)));
            for step in 0..50 {
                let rows = replay.minibatch(step).unwrap();
                assert!(rows.iter().all(|e| !holdout.holds(e)), "buffer {buffer}");
            }
        }
    }
}
