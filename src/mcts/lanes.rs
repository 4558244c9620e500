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
/// `on_finish` in source order on this thread. The first error (a lane's
/// or the output's) stops every lane and is the one returned, not the
/// "stopped" errors of the lanes it stopped.
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
    let stop = Stop::default();
    let (done, finished) = crossbeam_channel::bounded::<(usize, Finished)>(1024);
    let total = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .enumerate()
            .map(|(i, mut agents)| {
                let mut feed = Shared {
                    source: &source,
                    done: done.clone(),
                    stop: &stop.flag,
                };
                let (lane, stop) = (&lane, &stop);
                scope.spawn(move || stop.keep(lane(i, &mut agents, &mut feed)))
            })
            .collect();
        drop(done);
        let mut out = InOrder::new(on_finish);
        for (index, episode) in finished {
            if !stop.flag.load(Ordering::Relaxed) {
                stop.keep(out.push(index, episode));
            }
        }
        let mut total = SearchStats::default();
        for handle in handles {
            match handle.join() {
                Ok(Some(s)) => total.add(&s),
                Ok(None) => {}
                Err(_) => {
                    stop.keep::<()>(Err(Error::Other("search: a lane panicked".into())));
                }
            }
        }
        total
    });
    match stop.first.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(total.per_lane_times(count)),
    }
}

/// The lanes' shared stop: the flag every feed reads, and the error that
/// raised it first.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    first: Mutex<Option<Error>>,
}

impl Stop {
    /// `r`'s value; an error raises the flag and, if it is the first, is
    /// kept as the run's error.
    fn keep<T>(&self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                if !self.flag.swap(true, Ordering::SeqCst) {
                    if let Ok(mut first) = self.first.lock() {
                        *first = Some(e);
                    }
                }
                None
            }
        }
    }
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

    fn specs(n: u64) -> impl Iterator<Item = EpisodeSpec> + Send {
        (0..n).map(|seed| {
            let f = finished(seed);
            EpisodeSpec {
                game: f.final_state,
                task: f.task,
                seed,
                agents: [0, 0],
            }
        })
    }

    /// A lane that finishes every episode it takes at once, or fails.
    fn lane(
        fail: Option<usize>,
    ) -> impl Fn(usize, &mut [Agent], &mut dyn Feed) -> Result<SearchStats> + Sync {
        move |i, _, feed| {
            if fail == Some(i) {
                return Err(Error::Data("lane failed".into()));
            }
            while let Some((index, spec)) = feed.next() {
                feed.finished(index, finished(spec.seed))?;
            }
            Ok(SearchStats::default())
        }
    }

    #[test]
    fn lanes_hand_on_every_episode_in_order_and_the_first_error_wins() {
        let mut seen = Vec::new();
        let ok = run_lanes(
            vec![Vec::new(), Vec::new(), Vec::new()],
            specs(40),
            |f| {
                seen.push(f.seed);
                Ok(())
            },
            lane(None),
        );
        assert!(ok.is_ok());
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        // A failing lane stops the others; its error, not theirs, is returned.
        let err = run_lanes(
            vec![Vec::new(), Vec::new()],
            specs(40),
            |_| Ok(()),
            lane(Some(1)),
        );
        assert!(matches!(err, Err(Error::Data(m)) if m == "lane failed"));
        // So does a failing output.
        let err = run_lanes(
            vec![Vec::new(), Vec::new()],
            specs(40),
            |f| match f.seed {
                5 => Err(Error::Config("output failed".into())),
                _ => Ok(()),
            },
            lane(None),
        );
        assert!(matches!(err, Err(Error::Config(m)) if m == "output failed"));
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
