//! Where a batched run's episodes come from and go, and lanes: the
//! episodes split over independent wave loops on their own threads.
//!
//! Finished episodes are handed on in source order, whatever order they
//! end in: an episode's play depends on its own spec alone, so with a
//! deterministic evaluator the output is the same for any number of
//! episodes in flight, overlap or lanes (and a writer's rows with it).
//!
//! A lane is one thread with its own agents (its own ONNX Runtime session
//! and cache), its share of the episodes in flight, and its own waves; its
//! tree work and network calls take turns on that thread. On a CPU, lanes
//! as many as cores keep every core busy with no hand-offs between tree
//! work and the network, where one wave loop leaves cores idle at each
//! hand-over (README, "Search throughput").

use super::{Agent, EpisodeSpec, Finished, SearchStats};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::iter::Enumerate;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A wave loop's supply of episodes and the taker of finished ones.
pub(super) trait Feed {
    /// The next episode to start, with its index in the source.
    fn next(&mut self) -> Option<(usize, EpisodeSpec)>;
    /// Hands on the finished episode of source index `index`.
    fn finished(&mut self, index: usize, episode: Finished) -> Result<()>;
}

/// Calls `on_finish` with finished episodes in source order, holding back
/// those that end before an earlier one.
pub(super) struct InOrder<F> {
    next: usize,
    waiting: BTreeMap<usize, Finished>,
    on_finish: F,
}

impl<F: FnMut(Finished) -> Result<()>> InOrder<F> {
    pub(super) fn new(on_finish: F) -> InOrder<F> {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
            on_finish,
        }
    }

    pub(super) fn push(&mut self, index: usize, episode: Finished) -> Result<()> {
        self.waiting.insert(index, episode);
        while let Some(episode) = self.waiting.remove(&self.next) {
            (self.on_finish)(episode)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// One wave loop on the calling thread: the source and the ordered output.
pub(super) struct Local<S, F> {
    pub(super) source: Enumerate<S>,
    pub(super) out: InOrder<F>,
}

impl<S, F> Feed for Local<S, F>
where
    S: Iterator<Item = EpisodeSpec>,
    F: FnMut(Finished) -> Result<()>,
{
    fn next(&mut self) -> Option<(usize, EpisodeSpec)> {
        self.source.next()
    }

    fn finished(&mut self, index: usize, episode: Finished) -> Result<()> {
        self.out.push(index, episode)
    }
}

/// A lane's feed: episodes from the shared source, finished ones sent to
/// the calling thread, which puts them in order.
struct Shared<'a, S> {
    source: &'a Mutex<Enumerate<S>>,
    done: crossbeam_channel::Sender<(usize, Finished)>,
    stop: &'a AtomicBool,
}

impl<S: Iterator<Item = EpisodeSpec>> Feed for Shared<'_, S> {
    fn next(&mut self) -> Option<(usize, EpisodeSpec)> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        self.source.lock().ok()?.next()
    }

    fn finished(&mut self, index: usize, episode: Finished) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        self.done.send((index, episode)).map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Other("search: another lane or the output stopped the run".into())
}

/// Plays `source` over one lane per agent set in `lanes`, lane `i` running
/// `lane(i, agents, feed)` on its own thread; hands finished episodes to
/// `on_finish` in source order on this thread. The first error stops
/// every lane; it is the one returned (an output error before a lane's).
pub(super) fn run_lanes<S, F>(
    lanes: Vec<Vec<Agent>>,
    source: S,
    on_finish: F,
    lane: impl Fn(usize, &mut [Agent], &mut dyn Feed) -> Result<SearchStats> + Sync,
) -> Result<SearchStats>
where
    S: Iterator<Item = EpisodeSpec> + Send,
    F: FnMut(Finished) -> Result<()>,
{
    let count = lanes.len() as u32;
    let source = Mutex::new(source.enumerate());
    let stop = AtomicBool::new(false);
    let (done, finished) = crossbeam_channel::bounded::<(usize, Finished)>(1024);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .enumerate()
            .map(|(i, mut agents)| {
                let mut feed = Shared {
                    source: &source,
                    done: done.clone(),
                    stop: &stop,
                };
                let (lane, stop) = (&lane, &stop);
                scope.spawn(move || {
                    let r = lane(i, &mut agents, &mut feed);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        drop(done);
        let mut out = InOrder::new(on_finish);
        let mut output = Ok(());
        for (index, episode) in finished {
            if output.is_ok() {
                output = out.push(index, episode);
                if output.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        let mut total = SearchStats::default();
        let mut first_err = output.err();
        for handle in handles {
            let r = handle
                .join()
                .unwrap_or_else(|_| Err(Error::Other("search: a lane panicked".into())));
            match r {
                Ok(s) => total.add(&s),
                Err(e) if first_err.is_none() => first_err = Some(e),
                Err(_) => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total.per_lane_times(count)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Family, Game, Outcome};

    fn finished(seed: u64) -> Finished {
        let task = Family::Connect4.generate(0.0, seed);
        let game = Game::from_task(&task).unwrap();
        Finished {
            task,
            seed,
            agents: [0, 0],
            outcome: Outcome::Draw,
            final_state: game,
            steps: Vec::new(),
            wall: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn episodes_are_handed_on_in_source_order() {
        let mut seen = Vec::new();
        let mut out = InOrder::new(|f: Finished| {
            seen.push(f.seed);
            Ok(())
        });
        for i in [2usize, 0, 3, 1, 5, 4] {
            out.push(i, finished(i as u64)).unwrap();
        }
        drop(out);
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
    }
}
