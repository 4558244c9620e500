//! Batched synchronous MCTS: many episodes advance in lock-step and one
//! evaluator call per wave serves all of them.
//!
//! Each wave: (1) rayon over episodes: descend each tree with PUCT, taking up
//! to `leaves_per_wave` leaves (virtual loss keeps them apart); terminal
//! leaves back up at once. (2) one evaluator call per agent on all leaves.
//! (3) rayon over episodes: expand with masked-softmax priors and back up
//! (sign flips between players); an episode whose move budget is spent picks
//! its move, reuses the chosen subtree, and when it ends hands its record to
//! the caller, and the slot takes the next task.
//!
//! Step (2) may answer leaves from the evaluation cache (`cache.rs`); with
//! overlap, two groups of episodes alternate so that one group's steps (3)
//! and (1) run while the other's step (2) does (`run_overlapped`).

pub mod agent;
pub mod cache;
pub mod evaluator;
pub mod gumbel;
mod lanes;
pub mod tree;

use crate::config::Algorithm;
use crate::error::{Error, Result};
use crate::tasks::{Action, Game, Outcome, Task};
pub use agent::{Agent, Mode};
use evaluator::Served;
use gumbel::GumbelParams;
use lanes::Feed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use rayon::prelude::*;
use std::time::{Duration, Instant};
pub use tree::ChildStats;
use tree::{Proof, Tree};

/// Search settings for one batch of episodes.
#[derive(Clone, Debug)]
pub struct SearchParams {
    pub num_simulations: u32,
    pub c_puct: f32,
    pub fpu_reduction: f32,
    pub dirichlet_alpha: f32,
    pub dirichlet_epsilon: f32,
    pub temperature: f32,
    pub temperature_moves: u32,
    pub leaves_per_wave: u32,
    /// Self-play: Dirichlet noise at roots and temperature sampling.
    pub explore: bool,
    /// Keep observations and policies for the examples store.
    pub record_examples: bool,
    /// Keep per-child root statistics (for `show`).
    pub record_stats: bool,
    /// Gumbel search's constants, for agents that search with it.
    pub gumbel: GumbelParams,
    /// Playout cap randomization in self-play: (share of full moves, the
    /// fast moves' budget); `None` when every move is full.
    pub playout_cap: Option<(f32, u32)>,
    /// Forced playouts' k in PUCT self-play (`mcts.forced_playouts`; 0: off).
    pub forced_playouts: f32,
    /// Per-ply value discount (`mcts.discount`; 1: none).
    pub discount: f32,
    /// Per-stone length penalty of two-player endings
    /// (`mcts.length_penalty`; 0: none).
    pub length_penalty: f32,
    /// Prove two-player endings (`mcts.solver`); puzzle successes always are.
    pub solver: bool,
    /// Transpositions share one subtree (`mcts.graph`).
    pub graph: bool,
}

impl SearchParams {
    pub fn from_config(m: &crate::config::MctsConfig, explore: bool) -> SearchParams {
        SearchParams {
            num_simulations: m.num_simulations,
            c_puct: m.c_puct,
            fpu_reduction: m.fpu_reduction,
            dirichlet_alpha: m.dirichlet_alpha,
            dirichlet_epsilon: m.dirichlet_epsilon,
            temperature: m.temperature,
            temperature_moves: m.temperature_moves,
            leaves_per_wave: m.leaves_per_wave,
            explore,
            record_examples: explore,
            record_stats: false,
            gumbel: GumbelParams {
                max_considered: m.gumbel_m,
                c_visit: m.c_visit,
                c_scale: m.c_scale,
                noise_moves: m.gumbel_noise_moves,
            },
            playout_cap: (explore && m.full_search_prob < 1.0)
                .then_some((m.full_search_prob, m.fast_simulations)),
            forced_playouts: if explore { m.forced_playouts } else { 0.0 },
            discount: m.discount,
            length_penalty: m.length_penalty,
            solver: m.solver,
            graph: m.graph,
        }
    }
}

/// One episode to play: a task, its start state, a seed, and who plays each side.
pub struct EpisodeSpec {
    pub task: Task,
    pub game: Game,
    pub seed: u64,
    /// Agent index (into the evaluators) for player 0 and player 1.
    pub agents: [usize; 2],
}

/// One decision of a finished episode.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub mover: u8,
    pub obs: Vec<f32>,
    pub legal: Vec<Action>,
    /// Visit share per root action (the policy target).
    pub policy: Vec<(Action, f32)>,
    /// Raw root visit count of each `policy` action.
    pub visits: Vec<u32>,
    /// The search proved `action` reaches success; `policy` is all on it.
    pub proven: bool,
    /// A full search made this move: its policy is a training target (a
    /// fast move under the playout cap is not).
    pub target: bool,
    pub action: Action,
    pub label: String,
    /// Search value of the root, from the mover's view.
    pub root_value: f32,
    /// Per root child, when `record_stats`.
    pub stats: Vec<ChildStats>,
}

/// A finished episode.
pub struct Finished {
    pub task: Task,
    pub seed: u64,
    pub agents: [usize; 2],
    pub outcome: Outcome,
    pub final_state: Game,
    pub steps: Vec<StepRecord>,
    pub wall: Duration,
}

/// Counters of a batched run, for throughput figures.
#[derive(Clone, Debug, Default)]
pub struct SearchStats {
    pub episodes: u64,
    pub moves: u64,
    pub simulations: u64,
    /// Leaves sent to evaluators.
    pub evaluations: u64,
    /// Rows the networks ran: leaves less cache hits and duplicates.
    pub network_rows: u64,
    /// Leaves answered from the evaluation cache.
    pub cache_hits: u64,
    pub waves: u64,
    pub eval_time: Duration,
    pub tree_time: Duration,
}

impl SearchStats {
    /// The share of leaves answered without running the network (cache
    /// hits and duplicates within a wave), rounded to 4 places.
    pub fn cache_hit_rate(&self) -> f64 {
        let saved = self.evaluations.saturating_sub(self.network_rows);
        (saved as f64 / self.evaluations.max(1) as f64 * 1e4).round() / 1e4
    }

    /// Adds another run's (a lane's) counters and times.
    fn add(&mut self, o: &SearchStats) {
        self.episodes += o.episodes;
        self.moves += o.moves;
        self.simulations += o.simulations;
        self.evaluations += o.evaluations;
        self.network_rows += o.network_rows;
        self.cache_hits += o.cache_hits;
        self.waves += o.waves;
        self.eval_time += o.eval_time;
        self.tree_time += o.tree_time;
    }

    /// The times as a mean per lane, so that a time over the run's wall
    /// time stays a share of it.
    fn per_lane_times(mut self, lanes: u32) -> SearchStats {
        self.eval_time /= lanes.max(1);
        self.tree_time /= lanes.max(1);
        self
    }
}

/// A leaf waiting for its evaluation.
struct Leaf {
    /// The descent from the root to it (the leaf last).
    path: Vec<u32>,
    tree: usize,
    game: Game,
    legal: Vec<Action>,
    seed: u64,
    /// (agent, row) of its result in that agent's output buffers.
    result: (usize, usize),
}

/// One running episode.
struct Slot {
    /// The episode's index in the run's source (the output order).
    index: usize,
    spec: EpisodeSpec,
    game: Game,
    /// One shared tree when both sides are the same agent, else one per side.
    trees: Vec<Tree>,
    sims_done: u32,
    pending: Vec<Leaf>,
    steps: Vec<StepRecord>,
    rng: ChaCha8Rng,
    /// The root has been prepared for this move (noise drawn).
    noised: bool,
    /// Gumbel noise per root child (gumbel search; zeros outside self-play).
    gumbel: Vec<f32>,
    /// The move's sequential-halving schedule (gumbel search).
    schedule: Vec<u32>,
    /// This move's simulation budget and whether it is a full search;
    /// `None` until the move's first wave decides.
    budget: Option<(u32, bool)>,
    started: Instant,
}

impl Slot {
    fn new((index, spec): (usize, EpisodeSpec)) -> Slot {
        let shared = spec.agents[0] == spec.agents[1];
        let mover = spec.game.to_move();
        let trees = if shared {
            vec![Tree::new(mover)]
        } else {
            vec![Tree::new(mover), Tree::new(mover)]
        };
        Slot {
            index,
            game: spec.game.clone(),
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            spec,
            trees,
            sims_done: 0,
            pending: Vec::new(),
            steps: Vec::new(),
            noised: false,
            gumbel: Vec::new(),
            schedule: Vec::new(),
            budget: None,
            started: Instant::now(),
        }
    }

    fn tree_index(&self) -> usize {
        if self.trees.len() == 1 {
            0
        } else {
            self.game.to_move() as usize
        }
    }

    fn agent(&self) -> usize {
        self.spec.agents[self.tree_index()]
    }

    /// Phase 1: descend until this slot has leaves for the network or its
    /// simulation budget for the move is spent.
    fn collect_leaves(&mut self, p: &SearchParams, modes: &[Mode]) -> u64 {
        let mode = modes[self.agent()];
        let (budget, _) = self.budget(p, mode);
        let Some(algo) = mode.algorithm() else {
            // The random agent moves without search.
            self.sims_done = budget;
            return 0;
        };
        let t = self.tree_index();
        if !self.noised && self.trees[t].root().expanded {
            self.prepare_root(t, p, mode);
        }
        let forced = self.forcing(p);
        let mut terminal_sims = 0;
        while (self.pending.len() as u32) < p.leaves_per_wave
            && self.sims_done + (self.pending.len() as u32) < budget
        {
            if self.settled(t).is_some() {
                // A settled root needs no more search: move now.
                self.sims_done = budget - self.pending.len() as u32;
                break;
            }
            let tree = &mut self.trees[t];
            let sim = self.sims_done as usize + self.pending.len();
            let halving = (&self.gumbel[..], &self.schedule[..]);
            let (path, game) = descend(tree, &self.game, (p, algo), halving, sim, forced);
            let node = path[path.len() - 1];
            tree.add_virtual_loss(&path);
            if let Some(proof) = tree.proof_of(node) {
                // Proven: back up its exact value, like a terminal.
                if tree.nodes[node as usize].proof != Some(proof) {
                    tree.prove(node, proof);
                }
                let chooser = tree.chooser(node);
                tree.backup(&path, chooser, proof_value(proof, &game, p), p.discount);
                self.sims_done += 1;
                terminal_sims += 1;
                continue;
            }
            if game.is_terminal() {
                tree.nodes[node as usize].mover = game.to_move();
                let value = game.terminal_value() * game.length_scale(p.length_penalty, 0);
                tree.backup(&path, game.to_move(), value, p.discount);
                if let Some(proof) = terminal_proof(&game, tree.chooser(node), p.solver) {
                    tree.prove(node, proof);
                }
                self.sims_done += 1;
                terminal_sims += 1;
                continue;
            }
            let primary = if p.graph {
                game.position()
                    .and_then(|key| tree.transposition(key, node))
            } else {
                None
            };
            if tree.nodes[primary.unwrap_or(node) as usize].pending {
                tree.revert_virtual_loss(&path);
                break;
            }
            if let Some(primary) = primary {
                // A transposition: share the primary's subtree, and back
                // up what search knows of the position, no network call.
                tree.link(node, primary);
                let value = tree.nodes[primary as usize].q();
                tree.backup(&path, tree.chooser(node), value, p.discount);
                self.sims_done += 1;
                terminal_sims += 1;
                continue;
            }
            tree.nodes[node as usize].pending = true;
            let mut legal = Vec::new();
            game.legal_actions(&mut legal);
            self.pending.push(Leaf {
                path,
                tree: t,
                game,
                legal,
                seed: self.rng.random(),
                result: (0, 0),
            });
        }
        terminal_sims
    }

    /// This move's (budget, full search): under the playout cap a draw
    /// makes it full with the cap's probability, else fast; without the
    /// cap (and outside self-play) every move is full and no draw is made.
    /// The policy agent's move is one simulation, the root's evaluation.
    fn budget(&mut self, p: &SearchParams, mode: Mode) -> (u32, bool) {
        *self.budget.get_or_insert_with(|| match p.playout_cap {
            Some((prob, fast)) if mode != Mode::Policy && self.rng.random::<f32>() >= prob => {
                (fast, false)
            }
            _ => (mode.simulations(p.num_simulations), true),
        })
    }

    /// Forced playouts' k for this move, once its budget is drawn: a fast
    /// move under the playout cap forces nothing.
    fn forcing(&self, p: &SearchParams) -> f32 {
        if self.budget.is_some_and(|(_, full)| full) {
            p.forced_playouts
        } else {
            0.0
        }
    }

    /// Root preparation, once per move when the root is expanded: PUCT
    /// mixes Dirichlet noise into the priors in self-play; Gumbel draws a
    /// Gumbel(0, 1) per root action in self-play's first
    /// `gumbel.noise_moves` moves (zeros otherwise).
    fn prepare_root(&mut self, t: usize, p: &SearchParams, mode: Mode) {
        self.noised = true;
        let n = self.trees[t].children(0).len();
        // A fast move under the playout cap searches without noise.
        let explore = p.explore && self.budget(p, mode).1;
        match mode.algorithm() {
            Some(Algorithm::Puct) if explore => self.add_noise(t, n, p),
            Some(Algorithm::Puct) | None => {}
            Some(Algorithm::Gumbel) => {
                self.schedule = gumbel::schedule(n, self.budget(p, mode).0, &p.gumbel);
                let noisy = (self.steps.len() as u32) < p.gumbel.noise_moves;
                self.gumbel = if explore && noisy {
                    (0..n)
                        .map(|_| {
                            let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
                            -(-u.ln()).ln() as f32
                        })
                        .collect()
                } else {
                    vec![0.0; n]
                };
            }
        }
    }

    fn add_noise(&mut self, t: usize, n: usize, p: &SearchParams) {
        if n < 2 || p.dirichlet_epsilon == 0.0 {
            return;
        }
        let noise = dirichlet(&mut self.rng, p.dirichlet_alpha, n);
        self.trees[t].add_root_noise(&noise, p.dirichlet_epsilon);
    }

    /// Phase 3: expand and back up this slot's evaluated leaves; move when due.
    /// Returns true when the episode has ended.
    fn absorb(
        &mut self,
        p: &SearchParams,
        out: &AgentOutputs,
        action_dim: usize,
        modes: &[Mode],
    ) -> bool {
        for leaf in self.pending.drain(..) {
            let (agent, row) = leaf.result;
            let logits = &out.logits[agent][row * action_dim..(row + 1) * action_dim];
            let value = out.values[agent][row];
            let mover = leaf.game.to_move();
            let tree = &mut self.trees[leaf.tree];
            let node = leaf.path[leaf.path.len() - 1];
            tree.expand(node, mover, &leaf.legal, logits, value);
            tree.backup(&leaf.path, mover, value, p.discount);
            self.sims_done += 1;
        }
        let mode = modes[self.agent()];
        if self.sims_done < self.budget(p, mode).0 {
            return false;
        }
        let action = match mode.algorithm() {
            Some(algo) => self.make_move(p, (mode, algo)),
            None => self.make_random_move(),
        };
        self.advance(action, modes);
        self.game.is_terminal()
    }

    /// Plays `action` and moves every tree past it: PUCT keeps the chosen
    /// subtree; Gumbel starts afresh, as sequential halving plans a budget
    /// from zero visits, and so does the policy agent, whose one
    /// simulation must be its new root's evaluation.
    fn advance(&mut self, action: Action, modes: &[Mode]) {
        self.game.step(action);
        let mover = self.game.to_move();
        for (tree, agent) in self.trees.iter_mut().zip(self.spec.agents) {
            match modes[agent] {
                Mode::Search(Algorithm::Gumbel) | Mode::Policy => *tree = Tree::new(mover),
                _ => tree.advance(action, mover),
            }
        }
        self.sims_done = 0;
        self.noised = false;
        self.budget = None;
    }

    /// Decides a searched move and records it.
    fn make_move(&mut self, p: &SearchParams, (mode, algo): (Mode, Algorithm)) -> Action {
        let t = self.tree_index();
        let stats = self.trees[t].root_stats();
        let solved = self.settled(t);
        let (action, policy) = self.decide((p, algo), t, &stats);
        let target = self.budget(p, mode).1;
        let mut legal = Vec::new();
        self.game.legal_actions(&mut legal);
        let obs = if p.record_examples {
            let mut obs = vec![0.0; self.game.family().obs_dim()];
            self.game.encode(&mut obs);
            obs
        } else {
            Vec::new()
        };
        self.steps.push(StepRecord {
            mover: self.game.to_move(),
            obs,
            legal,
            policy,
            visits: stats.iter().map(|s| s.visits).collect(),
            proven: solved.is_some(),
            target,
            action,
            label: self.game.label(action),
            root_value: self.trees[t].root_value(),
            stats: if p.record_stats { stats } else { Vec::new() },
        });
        action
    }

    /// The move and its training target, by the search policy: a settled
    /// proven move (the soonest win, else a draw, else the latest loss)
    /// with the whole target on it; else PUCT's visit shares (the
    /// priors before any visit) with temperature sampling early in
    /// self-play, the best proven move instead when its exact value is no
    /// worse; or Gumbel's decision with its improved policy.
    fn decide(
        &mut self,
        (p, algo): (&SearchParams, Algorithm),
        t: usize,
        stats: &[ChildStats],
    ) -> (Action, Vec<(Action, f32)>) {
        if let Some(a) = self.settled(t) {
            let target = stats
                .iter()
                .map(|s| (s.action, if s.action == a { 1.0 } else { 0.0 }))
                .collect();
            return (a, target);
        }
        if algo == Algorithm::Gumbel {
            return gumbel::decide(&self.trees[t], &self.gumbel, &p.gumbel);
        }
        // Under forced playouts the target (and a sampled move) counts only
        // the visits PUCT would have spent.
        let counted: Vec<ChildStats> = if self.forcing(p) > 0.0 {
            let kept = pruned_visits(stats, p.forced_playouts, p.c_puct);
            (stats.iter().zip(kept))
                .map(|(s, visits)| ChildStats { visits, ..*s })
                .collect()
        } else {
            stats.to_vec()
        };
        let total: u32 = counted.iter().map(|s| s.visits).sum();
        let target = if total == 0 {
            counted.iter().map(|s| (s.action, s.prior)).collect()
        } else {
            counted
                .iter()
                .map(|s| (s.action, s.visits as f32 / total as f32))
                .collect()
        };
        // Moves search proved lost are not played while another is open.
        let open: Vec<ChildStats> = counted
            .iter()
            .filter(|s| !self.trees[t].proven_lost(s.action))
            .copied()
            .collect();
        let choices = if open.is_empty() { &counted } else { &open };
        let sample =
            p.explore && p.temperature > 0.0 && (self.steps.len() as u32) < p.temperature_moves;
        let action = if sample {
            sample_action(choices, p.temperature, &mut self.rng)
        } else {
            greedy_action(choices)
        };
        // A proven move is played over an open one whose mean is no better
        // (a proven loss far off over a move that only looks lost sooner).
        let q = |a: Action| stats.iter().find(|s| s.action == a).map_or(0.0, |s| s.q);
        let action = match self.trees[t].best_proven() {
            Some((proven, proof)) if proof_value(proof, &self.game, p) >= q(action) => proven,
            _ => action,
        };
        (action, target)
    }

    /// The root's proven move when search has settled it (see
    /// [`Tree::settled_child`]; in a puzzle any success settles it).
    fn settled(&self, t: usize) -> Option<Action> {
        self.trees[t].settled_child(self.game.family().num_players() == 1)
    }

    /// The random agent: a uniformly random legal move, no search.
    fn make_random_move(&mut self) -> Action {
        let mut legal = Vec::new();
        self.game.legal_actions(&mut legal);
        let action = legal[self.rng.random_range(0..legal.len())];
        self.steps.push(StepRecord {
            mover: self.game.to_move(),
            obs: Vec::new(),
            policy: Vec::new(),
            visits: Vec::new(),
            proven: false,
            target: false,
            action,
            label: self.game.label(action),
            root_value: 0.0,
            stats: Vec::new(),
            legal,
        });
        action
    }

    fn finish(self) -> Finished {
        let outcome = self.game.outcome().unwrap_or(Outcome::Failure);
        Finished {
            task: self.spec.task,
            seed: self.spec.seed,
            agents: self.spec.agents,
            outcome,
            final_state: self.game,
            steps: self.steps,
            wall: self.started.elapsed(),
        }
    }
}

/// Descends from the root to an unexpanded or terminal node by the search
/// policy's selection (PUCT, after any root child `forced` playouts owe a
/// visit; or Gumbel's sequential halving at the root, for simulation `sim`
/// of the move's halving `schedule`, with its Gumbel draws, and its
/// deterministic rule below), through a transposition into its primary's
/// children; returns the path (root first) with the last node's state.
fn descend(
    tree: &Tree,
    root: &Game,
    (p, algo): (&SearchParams, Algorithm),
    (gumbel, schedule): (&[f32], &[u32]),
    sim: usize,
    forced: f32,
) -> (Vec<u32>, Game) {
    let mut game = root.clone();
    let mut path = vec![0u32];
    let mut at = 0u32;
    // A proof that only bounds a two-player distance stays open.
    let puzzle = root.family().num_players() == 1;
    let settled = |q: Proof| q.exact || puzzle;
    while tree.nodes[at as usize].expanded && tree.nodes[at as usize].num_children > 0 {
        let n = match algo {
            Algorithm::Puct if at == 0 && forced > 0.0 => tree
                .forced_root_child(forced)
                .unwrap_or_else(|| tree.select_child(at, p.c_puct, p.fpu_reduction)),
            Algorithm::Puct => tree.select_child(at, p.c_puct, p.fpu_reduction),
            Algorithm::Gumbel if at == 0 => {
                let want = schedule.get(sim).or(schedule.last()).copied();
                gumbel::select_root(tree, gumbel, want.unwrap_or(0), &p.gumbel)
            }
            Algorithm::Gumbel => gumbel::select_interior(tree, at, &p.gumbel),
        };
        game.step(tree.nodes[n as usize].action);
        path.push(n);
        at = tree.follow(n);
        if game.is_terminal() || tree.proof_of(n).is_some_and(settled) {
            break;
        }
    }
    (path, game)
}

/// The value a proof at `game` backs up for its chooser: the outcome
/// discounted per ply and shortened by the game's length at its end.
fn proof_value(proof: Proof, game: &Game, p: &SearchParams) -> f32 {
    proof.discounted(p.discount) * game.length_scale(p.length_penalty, u32::from(proof.plies))
}

/// What a terminal state proves for the player who chose the move into
/// it: with `solver`, every two-player ending; in a puzzle only a success
/// (a failure along one line says nothing of the others).
fn terminal_proof(game: &Game, chooser: u8, solver: bool) -> Option<Proof> {
    if game.family().num_players() == 1 {
        return (game.outcome() == Some(Outcome::Success)).then_some(Proof::WIN);
    }
    if !solver {
        return None;
    }
    let v = game.terminal_value();
    let v = if chooser == game.to_move() { v } else { -v };
    let value = if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    };
    Some(Proof::exact(value, 0))
}

fn greedy_action(stats: &[ChildStats]) -> Action {
    most_visited(stats).map_or(0, |i| stats[i].action)
}

/// Index of the most visited child (ties: the higher prior).
fn most_visited(stats: &[ChildStats]) -> Option<usize> {
    (0..stats.len()).max_by(|&a, &b| {
        let (a, b) = (&stats[a], &stats[b]);
        a.visits.cmp(&b.visits).then(a.prior.total_cmp(&b.prior))
    })
}

/// Policy target pruning (KataGo), the other half of forced playouts:
/// every root child but the most visited gives back up to its forced
/// visits, as far as PUCT would still rank it no higher than the most
/// visited one; a child left with one visit (a lone evaluation) gives
/// that too. Returns the visits the target counts, in `stats` order.
fn pruned_visits(stats: &[ChildStats], k: f32, c_puct: f32) -> Vec<u32> {
    let total: u32 = stats.iter().map(|s| s.visits).sum();
    let Some(best) = most_visited(stats) else {
        return Vec::new();
    };
    let explore = |s: &ChildStats| c_puct * s.prior * (total.max(1) as f32).sqrt();
    let b = &stats[best];
    let bar = b.q + explore(b) / (1.0 + b.visits as f32);
    let prune = |s: &ChildStats| {
        let floor = s.visits as f32 - tree::forced_visits(k, s.prior, total);
        // The fewest visits at which PUCT's score is still <= the bar.
        let least = if bar > s.q {
            (explore(s) / (bar - s.q) - 1.0).ceil()
        } else {
            s.visits as f32
        };
        let kept = floor.max(least).clamp(0.0, s.visits as f32) as u32;
        if kept <= 1 {
            0
        } else {
            kept
        }
    };
    (stats.iter().enumerate())
        .map(|(i, s)| if i == best { s.visits } else { prune(s) })
        .collect()
}

fn sample_action(stats: &[ChildStats], temperature: f32, rng: &mut impl Rng) -> Action {
    let weights: Vec<f64> = stats
        .iter()
        .map(|s| (s.visits as f64).powf(1.0 / temperature as f64))
        .collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return greedy_action(stats);
    }
    let mut x = rng.random::<f64>() * total;
    for (s, w) in stats.iter().zip(&weights) {
        if x < *w {
            return s.action;
        }
        x -= w;
    }
    greedy_action(stats)
}

fn dirichlet(rng: &mut impl Rng, alpha: f32, n: usize) -> Vec<f32> {
    let Ok(gamma) = Gamma::new(alpha as f64, 1.0) else {
        return vec![1.0 / n as f32; n];
    };
    let xs: Vec<f64> = (0..n).map(|_| gamma.sample(rng)).collect();
    let sum: f64 = xs.iter().sum();
    if sum <= 0.0 {
        return vec![1.0 / n as f32; n];
    }
    xs.iter().map(|x| (x / sum) as f32).collect()
}

/// One group of slots with its wave buffers: what the evaluation thread
/// and the tree thread hand each other when search overlaps the network.
struct Group {
    slots: Vec<Slot>,
    /// Per-agent logits and values of the group's last wave.
    logits: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    scratch: Vec<f32>,
    /// Counters of the group's last evaluation.
    evaluated: Evaluated,
}

/// What one evaluation of a group's leaves did.
#[derive(Default)]
struct Evaluated {
    leaves: u64,
    served: Served,
    time: Duration,
}

impl Group {
    fn new(slots: Vec<Slot>, n_agents: usize) -> Group {
        Group {
            slots,
            logits: vec![Vec::new(); n_agents],
            values: vec![Vec::new(); n_agents],
            scratch: Vec::new(),
            evaluated: Evaluated::default(),
        }
    }
}

/// Runs batches of episodes against a set of agents.
pub struct BatchedSearch<'a> {
    pub params: SearchParams,
    pub agents: &'a mut [Agent],
    pub obs_dim: usize,
    pub action_dim: usize,
    /// Episodes in flight at once (over all lanes).
    pub parallel: usize,
    /// Split the episodes into two groups, so that one group's tree work
    /// runs on this thread while an evaluation thread takes the other's
    /// leaves to the network. Otherwise tree work (on rayon's pool) and
    /// the network take turns.
    pub overlap: bool,
    /// Independent wave loops on their own threads (`lanes.rs`), each with
    /// its own copy of the agents ([`Agent::fork`]: a session, a share of
    /// the cache) and its share of the episodes; 1: one loop on the
    /// caller's agents, its tree work on rayon's pool.
    pub lanes: usize,
}

/// How one wave loop runs, besides its agents and feed.
struct Loop<'p> {
    params: &'p SearchParams,
    dims: (usize, usize),
    parallel: usize,
    overlap: bool,
    workers: Workers,
}

impl BatchedSearch<'_> {
    /// Plays every episode of `source`, calling `on_finish` with each in
    /// source order. Each episode's play depends on its own spec alone,
    /// not on which others share its waves or its lane.
    pub fn run(
        &mut self,
        source: impl Iterator<Item = EpisodeSpec> + Send,
        on_finish: impl FnMut(Finished) -> Result<()>,
    ) -> Result<SearchStats> {
        let lanes = self.lanes.clamp(1, self.parallel.max(1));
        let dims = (self.obs_dim, self.action_dim);
        if lanes == 1 {
            let mut feed = lanes::Local {
                source: source.enumerate(),
                out: lanes::InOrder::new(on_finish),
            };
            let setup = Loop {
                params: &self.params,
                dims,
                parallel: self.parallel,
                overlap: self.overlap,
                workers: Workers::Global,
            };
            return setup.run(self.agents, &mut feed);
        }
        // Every lane plays with forks, so the caller's agents (and their
        // caches, never touched) are the same however often it runs.
        let forks: Vec<Vec<Agent>> = (0..lanes)
            .map(|_| self.agents.iter().map(|a| a.fork(lanes)).collect())
            .collect::<Result<_>>()?;
        let (params, parallel, overlap) = (&self.params, self.parallel, self.overlap);
        lanes::run_lanes(forks, source, on_finish, |lane, agents, feed| {
            // This lane's share of the episodes in flight.
            let share = parallel / lanes + usize::from(lane < parallel % lanes);
            let setup = Loop {
                params,
                dims,
                parallel: share,
                overlap,
                workers: Workers::Here,
            };
            setup.run(agents, feed)
        })
    }
}

impl Loop<'_> {
    /// One wave loop over the episodes of `feed`.
    fn run(&self, agents: &mut [Agent], feed: &mut dyn Feed) -> Result<SearchStats> {
        let slots: Vec<Slot> = std::iter::from_fn(|| feed.next())
            .take(self.parallel.max(1))
            .map(Slot::new)
            .collect();
        let mut stats = SearchStats::default();
        let n_agents = agents.len();
        if self.overlap && slots.len() > 1 {
            let mut slots = slots;
            let second = slots.split_off(slots.len() / 2);
            let groups = [Group::new(slots, n_agents), Group::new(second, n_agents)];
            self.run_overlapped(agents, groups, feed, &mut stats)?;
            return Ok(stats);
        }
        let modes: Vec<Mode> = agents.iter().map(Agent::mode).collect();
        let (p, w) = (self.params, self.workers);
        let mut group = Group::new(slots, n_agents);
        while !group.slots.is_empty() {
            collect_group(&mut group, p, &modes, &mut stats, w);
            let parallel = matches!(w, Workers::Global);
            evaluate_group(agents, self.dims, &mut group, parallel)?;
            absorb_group(&mut group, p, &modes, self.dims.1, feed, &mut stats, w)?;
        }
        Ok(stats)
    }

    /// The pipeline: an evaluation thread takes one group's leaves to the
    /// networks while this thread absorbs the other group's results,
    /// refills its slots and collects its next leaves; then they swap.
    fn run_overlapped(
        &self,
        agents: &mut [Agent],
        [mut mine, mut first]: [Group; 2],
        feed: &mut dyn Feed,
        stats: &mut SearchStats,
    ) -> Result<()> {
        let (p, dims) = (self.params, self.dims);
        let modes: Vec<Mode> = agents.iter().map(Agent::mode).collect();
        std::thread::scope(|scope| {
            let (to_eval, jobs) = crossbeam_channel::bounded::<Group>(1);
            let (done, evaluated) = crossbeam_channel::bounded::<Result<Group>>(1);
            scope.spawn(move || {
                for mut group in jobs {
                    let r = evaluate_group(agents, dims, &mut group, false).map(|_| group);
                    if done.send(r).is_err() {
                        break;
                    }
                }
            });
            let stopped = || Error::Other("search: the evaluation thread stopped".into());
            let here = Workers::Here;
            collect_group(&mut first, p, &modes, stats, here);
            to_eval.send(first).map_err(|_| stopped())?;
            collect_group(&mut mine, p, &modes, stats, here);
            loop {
                let mut back = evaluated.recv().map_err(|_| stopped())??;
                if back.slots.is_empty() && mine.slots.is_empty() {
                    return Ok(());
                }
                to_eval.send(mine).map_err(|_| stopped())?;
                absorb_group(&mut back, p, &modes, dims.1, feed, stats, here)?;
                collect_group(&mut back, p, &modes, stats, here);
                mine = back;
            }
        })
    }
}

/// Phase 1 for a group: every slot descends to its leaves.
fn collect_group(
    group: &mut Group,
    p: &SearchParams,
    modes: &[Mode],
    stats: &mut SearchStats,
    workers: Workers,
) {
    stats.waves += 1;
    let t0 = Instant::now();
    let slots = &mut group.slots;
    let terminal: u64 = each_slot(slots, workers, |s| s.collect_leaves(p, modes))
        .into_iter()
        .sum();
    stats.simulations += terminal;
    stats.tree_time += t0.elapsed();
}

/// Phase 2 for a group: each agent's leaves in one evaluator call.
fn evaluate_group(
    agents: &mut [Agent],
    (obs_dim, action_dim): (usize, usize),
    group: &mut Group,
    parallel: bool,
) -> Result<()> {
    let t = Instant::now();
    let mut done = Evaluated::default();
    for agent in 0..agents.len() {
        let mut row = 0;
        for slot in group.slots.iter_mut() {
            let agents = slot.spec.agents;
            for leaf in slot.pending.iter_mut().filter(|l| agents[l.tree] == agent) {
                leaf.result = (agent, row);
                row += 1;
            }
        }
        let Some(evaluator) = agents[agent].evaluator_mut() else {
            continue;
        };
        if row == 0 {
            continue;
        }
        let leaves: Vec<(&Game, u64)> = group
            .slots
            .iter()
            .flat_map(|s| {
                s.pending
                    .iter()
                    .filter(move |l| s.spec.agents[l.tree] == agent)
                    .map(|l| (&l.game, l.seed))
            })
            .collect();
        let served = evaluator.evaluate(
            (&leaves, parallel),
            obs_dim,
            action_dim,
            &mut group.scratch,
            &mut group.logits[agent],
            &mut group.values[agent],
        )?;
        done.leaves += row as u64;
        done.served.network += served.network;
        done.served.cached += served.cached;
    }
    done.time = t.elapsed();
    group.evaluated = done;
    Ok(())
}

/// Phase 3 for a group: expand and back up the evaluated leaves, move
/// where the budget is spent, hand finished episodes on and refill.
fn absorb_group(
    group: &mut Group,
    p: &SearchParams,
    modes: &[Mode],
    action_dim: usize,
    feed: &mut dyn Feed,
    stats: &mut SearchStats,
    workers: Workers,
) -> Result<()> {
    let e = std::mem::take(&mut group.evaluated);
    stats.evaluations += e.leaves;
    stats.network_rows += e.served.network as u64;
    stats.cache_hits += e.served.cached as u64;
    stats.eval_time += e.time;
    let t = Instant::now();
    let before: u64 = group.slots.iter().map(|s| s.pending.len() as u64).sum();
    let out = AgentOutputs {
        logits: &group.logits,
        values: &group.values,
    };
    let slots = &mut group.slots;
    let done: Vec<bool> = each_slot(slots, workers, |s| s.absorb(p, &out, action_dim, modes));
    stats.simulations += before;
    stats.tree_time += t.elapsed();
    let slots = std::mem::take(&mut group.slots);
    for (slot, done) in slots.into_iter().zip(done) {
        if !done {
            group.slots.push(slot);
            continue;
        }
        stats.episodes += 1;
        stats.moves += slot.steps.len() as u64;
        feed.finished(slot.index, slot.finish())?;
        if let Some(next) = feed.next() {
            group.slots.push(Slot::new(next));
        }
    }
    Ok(())
}

/// Where a group's tree work runs.
#[derive(Clone, Copy)]
enum Workers {
    /// Rayon's global pool: every core, while the network waits.
    Global,
    /// This thread alone, while the evaluation thread runs the network:
    /// no hand-offs, and the network keeps its cores.
    Here,
}

/// `f` of every slot, in slot order, on `workers`.
fn each_slot<R: Send>(
    slots: &mut [Slot],
    workers: Workers,
    f: impl Fn(&mut Slot) -> R + Sync + Send,
) -> Vec<R> {
    match workers {
        Workers::Global => slots.par_iter_mut().map(f).collect(),
        Workers::Here => slots.iter_mut().map(f).collect(),
    }
}

/// Per-agent outputs of one wave, borrowed from its group.
struct AgentOutputs<'a> {
    logits: &'a [Vec<f32>],
    values: &'a [Vec<f32>],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{connect4::Connect4, Family};
    use evaluator::Evaluator;

    fn params(sims: u32, leaves: u32) -> SearchParams {
        SearchParams {
            num_simulations: sims,
            c_puct: 1.5,
            fpu_reduction: 0.2,
            dirichlet_alpha: 0.3,
            dirichlet_epsilon: 0.25,
            temperature: 1.0,
            temperature_moves: 0,
            leaves_per_wave: leaves,
            explore: false,
            record_examples: true,
            record_stats: true,
            gumbel: GumbelParams {
                max_considered: 16,
                c_visit: 50.0,
                c_scale: 0.1,
                noise_moves: u32::MAX,
            },
            playout_cap: None,
            forced_playouts: 0.0,
            discount: 1.0,
            length_penalty: 0.0,
            solver: true,
            graph: false,
        }
    }

    fn puct(e: Evaluator) -> Agent {
        Agent::search(e, Algorithm::Puct)
    }

    fn gumbel(e: Evaluator) -> Agent {
        Agent::search(e, Algorithm::Gumbel)
    }

    fn play(specs: Vec<EpisodeSpec>, agents: &mut [Agent], p: SearchParams) -> Vec<Finished> {
        let mut out = Vec::new();
        let mut search = BatchedSearch {
            params: p,
            agents,
            obs_dim: 84,
            action_dim: 60,
            parallel: 8,
            overlap: false,
            lanes: 1,
        };
        search
            .run(specs.into_iter(), |f| {
                out.push(f);
                Ok(())
            })
            .unwrap();
        out
    }

    fn c4_spec(moves: &str, agents: [usize; 2]) -> EpisodeSpec {
        let game = Game::Connect4(Connect4::from_moves(moves).unwrap());
        let task = Family::Connect4.generate(0.0, 1);
        EpisodeSpec {
            task,
            game,
            seed: 3,
            agents,
        }
    }

    /// `n` self-play games from the empty board, seeds 0 to n - 1.
    fn c4_starts(n: u64) -> Vec<EpisodeSpec> {
        (0..n)
            .map(|seed| EpisodeSpec {
                seed,
                ..c4_spec("", [0, 0])
            })
            .collect()
    }

    #[test]
    fn search_takes_an_immediate_connect4_win_for_either_colour() {
        // X (first) has 1-2-3 on the bottom row and is to move: col 4 wins.
        // O to move with three stacked on column 5 wins at col 5.
        for (moves, want) in [("112233", 3u16), ("1515257", 4u16)] {
            for leaves in [1, 4] {
                let f = play(
                    vec![c4_spec(moves, [0, 0])],
                    &mut [puct(Evaluator::Uniform)],
                    params(64, leaves),
                );
                assert_eq!(f[0].steps[0].action, want, "moves {moves}, leaves {leaves}");
            }
        }
    }

    /// Gumbel search keeps the two-player signs: it takes the win for
    /// either colour, blocks the loss, and its targets are distributions
    /// over the legal moves peaked on those moves.
    #[test]
    fn gumbel_search_takes_wins_and_blocks_losses_for_either_colour() {
        // (moves, winning or blocking column, rollout values, simulations).
        let cases = [
            ("112233", 3u16, false, 64),
            ("1515257", 4, false, 64),
            ("17273", 3, true, 400),
        ];
        for (moves, want, rollout, sims) in cases {
            // Self-play's noise samples the move: checked on sure wins only.
            for explore in [false, !rollout] {
                let p = SearchParams {
                    explore,
                    ..params(sims, 1)
                };
                let agent = if rollout {
                    Evaluator::Rollout
                } else {
                    Evaluator::Uniform
                };
                let f = play(vec![c4_spec(moves, [0, 0])], &mut [gumbel(agent)], p);
                let step = &f[0].steps[0];
                assert_eq!(step.action, want, "moves {moves}, explore {explore}");
                let total: f32 = step.policy.iter().map(|p| p.1).sum();
                assert!((total - 1.0).abs() < 1e-4);
                let best = step
                    .policy
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                assert_eq!(best.0, want, "target {:?}", step.policy);
            }
        }
    }

    /// Gumbel self-play draws noise in its first `noise_moves` moves only:
    /// games that agree on those moves agree on the rest.
    #[test]
    fn gumbel_noise_stops_after_its_moves() {
        let episodes = |noise_moves: u32| -> Vec<Vec<Action>> {
            let specs = c4_starts(12);
            let mut p = SearchParams {
                explore: true,
                ..params(16, 1)
            };
            p.gumbel.noise_moves = noise_moves;
            let f = play(specs, &mut [gumbel(Evaluator::Uniform)], p);
            f.iter()
                .map(|e| e.steps.iter().map(|s| s.action).collect())
                .collect()
        };
        let distinct = |games: &[Vec<Action>], plies: usize| {
            let prefixes: std::collections::HashSet<&[Action]> =
                games.iter().map(|g| &g[..plies.min(g.len())]).collect();
            prefixes.len()
        };
        assert!(distinct(&episodes(u32::MAX), 42) > 6, "noise varies play");
        assert_eq!(distinct(&episodes(0), 42), 1, "no noise, one game");
        let two = episodes(2);
        assert!(distinct(&two, 2) > 1);
        assert_eq!(distinct(&two, 42), distinct(&two, 2));
    }

    /// Forced playouts give every root child its sqrt(k P N) visits, which
    /// plain PUCT does not where playouts make some moves look bad, and the
    /// policy target then counts fewer visits on children other than the
    /// most visited.
    #[test]
    fn forced_playouts_visit_every_root_child_and_are_pruned_from_targets() {
        let steps = |k: f32| -> Vec<StepRecord> {
            let specs = c4_starts(24);
            let p = SearchParams {
                explore: true,
                forced_playouts: k,
                ..params(128, 1)
            };
            let f = play(specs, &mut [puct(Evaluator::Rollout)], p);
            // The opening moves, before any child can be proven lost
            // (never forced) or a root inherits visits from a reused tree.
            f.into_iter()
                .flat_map(|e| e.steps.into_iter().take(1))
                .collect()
        };
        let short = |s: &StepRecord| {
            let total: u32 = s.stats.iter().map(|c| c.visits).sum();
            (s.stats.iter())
                .filter(|c| c.visits + 1 < tree::forced_visits(2.0, c.prior, total) as u32)
                .count()
        };
        let plain = steps(0.0);
        let forced = steps(2.0);
        assert!(
            plain.iter().map(short).sum::<usize>() > 0,
            "PUCT alone skips some"
        );
        assert_eq!(forced.iter().map(short).sum::<usize>(), 0);
        let mut pruned = 0;
        for s in &forced {
            let sum: f32 = s.policy.iter().map(|(_, x)| x).sum();
            assert!((sum - 1.0).abs() < 1e-4, "target sums to {sum}");
            let total: u32 = s.visits.iter().sum();
            for ((_, share), &visits) in s.policy.iter().zip(&s.visits) {
                let raw = visits as f32 / total.max(1) as f32;
                pruned += usize::from(*share < raw - 1e-6);
            }
        }
        assert!(pruned > 0, "no target was pruned");
    }

    /// Pruning returns forced visits PUCT would not have spent, keeps the
    /// ones it would have, and never touches the most visited child.
    #[test]
    fn pruning_gives_back_only_visits_puct_would_not_spend() {
        let child = |visits, q, prior| ChildStats {
            action: 0,
            visits,
            q,
            prior,
        };
        // 64 visits in all; the bar is 0.5 + 1.5 x 0.5 x 8 / 51 = 0.62.
        let stats = [
            child(50, 0.5, 0.5),
            child(10, 0.0, 0.1), // forced sqrt(2 x 0.1 x 64) = 3.6: keeps 6
            child(4, -0.2, 0.4), // PUCT would visit it at 5: keeps all 4
        ];
        assert_eq!(pruned_visits(&stats, 2.0, 1.5), vec![50, 6, 4]);
        // A child left with one visit gives it back too.
        let stats = [
            child(60, 0.5, 0.9),
            child(2, -0.5, 0.05),
            child(2, 0.0, 0.05),
        ];
        assert_eq!(pruned_visits(&stats, 2.0, 1.5), vec![60, 0, 0]);
        assert!(pruned_visits(&[], 2.0, 1.5).is_empty());
    }

    #[test]
    fn the_playout_cap_mixes_full_and_fast_moves() {
        let specs = c4_starts(20);
        let p = SearchParams {
            explore: true,
            playout_cap: Some((0.25, 4)),
            ..params(32, 1)
        };
        let f = play(specs, &mut [puct(Evaluator::Uniform)], p);
        let steps: Vec<&StepRecord> = f.iter().flat_map(|e| &e.steps).collect();
        let (full, fast): (Vec<&StepRecord>, Vec<&StepRecord>) =
            steps.iter().partition(|s| s.target);
        let share = full.len() as f64 / steps.len() as f64;
        assert!(
            (0.15..0.35).contains(&share),
            "{} of {} full",
            full.len(),
            steps.len()
        );
        // Root visits (the reused subtree's included) by kind of move.
        let mean = |moves: &[&StepRecord]| {
            let visits: u32 = moves.iter().flat_map(|s| &s.stats).map(|x| x.visits).sum();
            visits as f64 / moves.len().max(1) as f64
        };
        assert!(
            mean(&fast) < mean(&full) / 2.0,
            "fast {} full {}",
            mean(&fast),
            mean(&full)
        );
        // Without the cap every move is a full one.
        let specs = vec![c4_spec("", [0, 0])];
        let f = play(specs, &mut [puct(Evaluator::Uniform)], params(32, 1));
        assert!(f[0].steps.iter().all(|s| s.target));
    }

    /// End positions from random playouts (ply 30-38) where two wins (or two
    /// losses) differ in length: every first move search proves is one the
    /// exact solver rates optimal (the soonest win or the latest loss), and
    /// search proves most of them at this budget.
    #[test]
    fn proven_connect4_moves_are_solver_optimal() {
        use crate::tasks::connect4::{solve_moves, UNBOUNDED};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut positions = Vec::new();
        while positions.len() < 24 {
            let plies = rng.random_range(26..=36);
            let mut pos = Connect4::new();
            let mut legal = Vec::new();
            for _ in 0..plies {
                legal.clear();
                Game::Connect4(pos.clone()).legal_actions(&mut legal);
                if legal.is_empty() || pos.is_terminal() {
                    break;
                }
                pos.step(legal[rng.random_range(0..legal.len())]);
            }
            let Some(scores) = (!pos.is_terminal()).then(|| solve_moves(&pos, UNBOUNDED).unwrap())
            else {
                continue;
            };
            // Keep those where a move with the best move's sign is worse:
            // only the distance to the end tells them apart.
            let best = scores.iter().map(|s| s.1).max().unwrap();
            if scores
                .iter()
                .any(|s| s.1 < best && s.1.signum() == best.signum())
            {
                positions.push((pos, scores, best));
            }
        }
        let mut p = params(400, 1);
        // Distances told apart by a discount, then by a length penalty;
        // then in a search graph, where proofs also reach links.
        for (discount, length_penalty, graph) in
            [(0.9, 0.0, false), (1.0, 0.02, false), (0.9, 0.0, true)]
        {
            (p.discount, p.length_penalty, p.graph) = (discount, length_penalty, graph);
            let mut proven = 0;
            for (pos, scores, best) in &positions {
                let spec = c4_spec(&pos.moves(), [0, 0]);
                let f = play(vec![spec], &mut [puct(Evaluator::Uniform)], p.clone());
                let step = &f[0].steps[0];
                if step.proven {
                    proven += 1;
                    let score = scores.iter().find(|s| s.0 == step.action).unwrap().1;
                    let moves = pos.moves();
                    assert_eq!(
                        score,
                        *best,
                        "{moves}: col {} of {scores:?}",
                        step.action + 1
                    );
                }
            }
            assert!(proven >= 16, "proved {proven} of 24 at {length_penalty}");
        }
        // Without the solver no game move is proven.
        p.solver = false;
        let specs = positions
            .iter()
            .map(|(pos, _, _)| c4_spec(&pos.moves(), [0, 0]));
        let f = play(specs.collect(), &mut [puct(Evaluator::Uniform)], p);
        assert!(f.iter().all(|e| e.steps.iter().all(|s| !s.proven)));
    }

    /// Searches one move of `moves` with a uniform network (zero logits
    /// and values); returns the tree kept for the next move, its root's
    /// state and how many leaves went to the network.
    fn search_one_move(moves: &str, p: &SearchParams) -> (Tree, Game, u32) {
        let mut slot = Slot::new((0, c4_spec(moves, [0, 0])));
        let modes = [Mode::Search(Algorithm::Puct)];
        let (logits, values) = (vec![vec![0.0; 60 * 8]], vec![vec![0.0; 8]]);
        let out = AgentOutputs {
            logits: &logits,
            values: &values,
        };
        let mut evaluated = 0;
        loop {
            slot.collect_leaves(p, &modes);
            for (row, leaf) in slot.pending.iter_mut().enumerate() {
                leaf.result = (0, row);
            }
            evaluated += slot.pending.len() as u32;
            let moved = slot.steps.len();
            slot.absorb(p, &out, 60, &modes);
            if slot.steps.len() > moved {
                return (slot.trees.swap_remove(0), slot.game, evaluated);
            }
        }
    }

    /// Every node's position, replayed from the root's.
    fn positions(t: &Tree, root: &Game) -> Vec<Game> {
        let mut out: Vec<Game> = vec![root.clone(); t.nodes.len()];
        for n in 1..t.nodes.len() {
            let mut g = out[t.nodes[n].parent as usize].clone();
            g.step(t.nodes[n].action);
            out[n] = g;
        }
        out
    }

    /// With `mcts.graph`, a position reached by two move orders is
    /// expanded once: the other node links to it, which saves network
    /// calls, and the links stay right in the subtree kept for the next
    /// move. A tree expands transpositions twice.
    #[test]
    fn a_search_graph_expands_each_position_once() {
        let mut p = params(2000, 4);
        p.solver = false;
        let mut calls = Vec::new();
        for graph in [false, true] {
            p.graph = graph;
            let (t, game, evaluated) = search_one_move("4453", &p);
            let at = positions(&t, &game);
            let mut seen = std::collections::HashMap::new();
            let mut twice = 0;
            for (n, node) in t.nodes.iter().enumerate() {
                if node.link != tree::NONE {
                    let primary = &t.nodes[node.link as usize];
                    assert!(primary.expanded && !node.expanded && node.first_child == tree::NONE);
                    assert_eq!(at[node.link as usize].position(), at[n].position());
                }
                if node.expanded && seen.insert(at[n].position(), n).is_some() {
                    twice += 1;
                }
            }
            let links = t.nodes.iter().filter(|n| n.link != tree::NONE).count();
            assert_eq!(twice > 0, !graph, "positions expanded twice: {twice}");
            assert_eq!(links > 0, graph, "links: {links}");
            calls.push(evaluated);
        }
        assert!(calls[1] < calls[0], "network calls {calls:?}");
    }

    /// An unsettled root plays its best proven move over the most visited
    /// open one when the proof's exact value is no worse than that move's
    /// mean, and the open move otherwise.
    #[test]
    fn the_best_proven_move_beats_an_open_one_that_looks_worse() {
        let decide_with = |open_q: f32, proof: Proof, (discount, length_penalty)| {
            let mut slot = Slot::new((0, c4_spec("", [0, 0])));
            let t = &mut slot.trees[0];
            t.expand(0, 0, &[0, 1, 2], &[0.0; 7], 0.0);
            let c = t.children(0).start;
            t.nodes[c].visits = 50;
            t.nodes[c].value_sum = 50.0 * open_q;
            t.nodes[c + 1].visits = 10;
            t.prove(c as u32 + 1, proof);
            let stats = slot.trees[0].root_stats();
            let mut p = params(64, 1);
            (p.discount, p.length_penalty) = (discount, length_penalty);
            assert_eq!(slot.settled(0), None);
            slot.decide((&p, Algorithm::Puct), 0, &stats).0
        };
        let decide = |open_q, proof| decide_with(open_q, proof, (0.9, 0.0));
        // A loss proven 11 plies off (-0.31) over a move that looks lost sooner.
        let far_loss = Proof::exact(-1, 11);
        assert_eq!(decide(-0.8, far_loss), 1);
        assert_eq!(decide(-0.2, far_loss), 0);
        // A win proven 5 plies off (0.59) leaves room for a sooner one.
        let win = Proof::exact(1, 5);
        assert_eq!(decide(0.5, win), 1);
        assert_eq!(decide(0.8, win), 0);
        // Under a length penalty of 0.02 the win ends on stone 5 (0.9).
        assert_eq!(decide_with(0.85, win, (1.0, 0.02)), 1);
        assert_eq!(decide_with(0.95, win, (1.0, 0.02)), 0);
    }

    /// Descent stops at an exact proof, like a terminal, and goes on below
    /// one that only bounds a two-player distance; in a puzzle any proof
    /// stops it.
    #[test]
    fn descent_searches_below_a_proof_that_only_bounds_its_distance() {
        let game = Game::Connect4(Connect4::new());
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0);
        let c = t.children(0).start as u32;
        t.expand(c, 1, &[0, 1], &[0.0; 7], 0.0);
        let mut descend_once = |proof: Proof, game: &Game| {
            t.nodes[c as usize].proof = Some(proof);
            let path = descend(
                &t,
                game,
                (&params(8, 1), Algorithm::Puct),
                (&[], &[]),
                0,
                0.0,
            )
            .0;
            path[path.len() - 1]
        };
        let bounded = Proof {
            value: 1,
            plies: 5,
            exact: false,
        };
        let puzzle = Game::from_task(&Family::Countdown.generate(0.1, 1)).unwrap();
        assert_eq!(descend_once(Proof::exact(1, 5), &game), c);
        assert_eq!(descend_once(bounded, &puzzle), c);
        let below = descend_once(bounded, &game);
        assert_eq!(t.nodes[below as usize].parent, c);
    }

    #[test]
    fn search_blocks_an_immediate_connect4_loss() {
        // O to move; X threatens col 4 on the bottom row: O must block there.
        let f = play(
            vec![c4_spec("17273", [0, 0])],
            &mut [puct(Evaluator::Rollout)],
            params(400, 1),
        );
        assert_eq!(f[0].steps[0].action, 3, "stats {:?}", f[0].steps[0].stats);
    }

    #[test]
    fn uniform_search_solves_easy_countdown_puzzles() {
        // PUCT with 2 leaves per wave, and Gumbel.
        for (algorithm, p) in [
            (Algorithm::Puct, params(200, 2)),
            (Algorithm::Gumbel, params(64, 1)),
        ] {
            let specs: Vec<EpisodeSpec> = (0..20)
                .map(|s| {
                    let task = Family::Countdown.generate(0.0, s);
                    EpisodeSpec {
                        game: Game::from_task(&task).unwrap(),
                        task,
                        seed: s,
                        agents: [0, 0],
                    }
                })
                .collect();
            let f = play(
                specs,
                &mut [Agent::search(Evaluator::Uniform, algorithm)],
                p,
            );
            assert_eq!(f.len(), 20);
            let solved = f.iter().filter(|e| e.outcome == Outcome::Success).count();
            assert!(solved >= 18, "{algorithm:?}: solved {solved}/20");
            for s in f.iter().flat_map(|e| &e.steps) {
                let total: f32 = s.policy.iter().map(|p| p.1).sum();
                assert!((total - 1.0).abs() < 1e-4);
                assert!(s.policy.iter().all(|p| s.legal.contains(&p.0)));
            }
        }
    }

    #[test]
    fn solved_puzzles_are_played_out_without_spending_the_budget() {
        // Countdown with one step to go: the first simulations prove it.
        let task = Family::Countdown.generate(0.0, 7);
        let spec = EpisodeSpec {
            game: Game::from_task(&task).unwrap(),
            task,
            seed: 1,
            agents: [0, 0],
        };
        let f = play(vec![spec], &mut [puct(Evaluator::Uniform)], params(4000, 1));
        assert_eq!(f[0].outcome, Outcome::Success);
        let last = f[0].steps.last().unwrap();
        let total: u32 = last.stats.iter().map(|s| s.visits).sum();
        assert!(total < 4000, "search stopped once solved, visits {total}");
        let p: Vec<f32> = last
            .policy
            .iter()
            .map(|p| p.1)
            .filter(|&p| p > 0.0)
            .collect();
        assert_eq!(p, vec![1.0], "proven move is the whole target");
    }

    /// Self-play on a real network (its outputs depend on the input row
    /// alone) with and without the evaluation cache, overlapped with the
    /// network, over several lanes and with other numbers of episodes in
    /// flight: the same episodes in the same (source) order, with the same
    /// moves, targets and values, bit for bit, for both search policies,
    /// while the cache answers part of the leaves.
    #[test]
    fn neither_the_cache_nor_overlap_nor_lanes_change_results() {
        use crate::model::onnx::{export, tests::random_weights};
        let cfg = crate::config::Config::load(None, &[]).unwrap();
        let spec = cfg.model_spec();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        let bytes = export(&spec, &random_weights(&spec, 5), None).unwrap();
        std::fs::write(&path, bytes).unwrap();
        crate::infer::init_runtime(None).unwrap();
        let specs = || {
            (0..24u64).map(|i| {
                let family = [Family::Connect4, Family::Countdown][i as usize % 2];
                // Connect Four from the empty board: games share openings.
                let task = family.generate(if i % 2 == 0 { 0.0 } else { 0.3 }, i);
                EpisodeSpec {
                    game: Game::from_task(&task).unwrap(),
                    task,
                    seed: i,
                    agents: [0, 0],
                }
            })
        };
        let source_order: Vec<String> = specs().map(|s| s.task.task_id).collect();
        // (cache entries, overlap, lanes, episodes in flight)
        let settings = [
            (0, false, 1, 8),
            (4096, false, 1, 8),
            (4096, true, 1, 8),
            (4096, false, 3, 8),
            (0, true, 2, 5),
            (0, false, 1, 1),
        ];
        for algorithm in [Algorithm::Puct, Algorithm::Gumbel] {
            let mut runs = Vec::new();
            for (entries, overlap, lanes, parallel) in settings {
                let model =
                    crate::infer::OnnxModel::load(&path, crate::infer::Device::Cpu, 1).unwrap();
                let net = Evaluator::network(model, "m".into(), Vec::new(), entries);
                let mut agents = [Agent::search(net, algorithm)];
                let mut search = BatchedSearch {
                    params: SearchParams {
                        explore: true,
                        temperature_moves: 4,
                        ..params(32, 2)
                    },
                    agents: &mut agents,
                    obs_dim: spec.obs_dim,
                    action_dim: spec.action_dim,
                    parallel,
                    overlap,
                    lanes,
                };
                let mut out = Vec::new();
                let stats = search
                    .run(specs(), |f| {
                        out.push(f);
                        Ok(())
                    })
                    .unwrap();
                let order: Vec<String> = out.iter().map(|f| f.task.task_id.clone()).collect();
                assert_eq!(order, source_order, "{algorithm:?}: not in source order");
                let record: Vec<_> = out
                    .iter()
                    .map(|f| {
                        let steps: Vec<_> = f
                            .steps
                            .iter()
                            .map(|s| (s.action, s.policy.clone(), s.root_value, s.stats.clone()))
                            .collect();
                        (f.task.task_id.clone(), f.outcome, steps)
                    })
                    .collect();
                runs.push((record, stats));
            }
            let (off, on) = (&runs[0], &runs[1]);
            assert!(off.0 == on.0, "{algorithm:?}: the cache changed a result");
            for (run, setting) in runs.iter().zip(settings).skip(2) {
                assert!(
                    run.0 == off.0,
                    "{algorithm:?}: {setting:?} changed a result"
                );
                assert_eq!(run.1.simulations, off.1.simulations, "{setting:?}");
                assert_eq!(run.1.episodes, 24, "{setting:?}");
            }
            assert_eq!(off.1.cache_hits, 0);
            assert_eq!(off.1.network_rows, off.1.evaluations);
            assert_eq!(off.1.simulations, on.1.simulations);
            assert!(
                on.1.network_rows + on.1.cache_hits <= on.1.evaluations
                    && on.1.cache_hits > on.1.evaluations / 20,
                "{algorithm:?}: {:?}",
                on.1
            );
        }
    }

    /// A small random network as an evaluator, its outputs a function of
    /// the input row alone.
    fn random_network(dir: &std::path::Path) -> (Evaluator, crate::model::ModelSpec) {
        use crate::model::onnx::{export, tests::random_weights};
        let cfg = crate::config::Config::load(None, &[]).unwrap();
        let spec = cfg.model_spec();
        let path = dir.join("model.onnx");
        let bytes = export(&spec, &random_weights(&spec, 5), None).unwrap();
        std::fs::write(&path, bytes).unwrap();
        crate::infer::init_runtime(None).unwrap();
        let model = crate::infer::OnnxModel::load(&path, crate::infer::Device::Cpu, 1).unwrap();
        (Evaluator::network(model, "m".into(), Vec::new(), 0), spec)
    }

    /// The policy agent evaluates each root once and plays its highest
    /// prior, whatever the simulation budget, in puzzles and in games
    /// against another agent.
    /// Averaged over the mirror, a Connect Four position and its mirror
    /// image get the same value and mirrored logits (to float rounding),
    /// with the cache on or off; without averaging a random network gives
    /// them different outputs. Other families are untouched.
    #[test]
    fn averaging_symmetries_makes_outputs_mirror_invariant() {
        let dir = tempfile::tempdir().unwrap();
        let game = |moves: &str| Game::Connect4(Connect4::from_moves(moves).unwrap());
        let (a, b) = (game("4435"), game("4453"));
        let countdown = Game::from_task(&Family::Countdown.generate(0.3, 1)).unwrap();
        let outputs = |net: &mut Evaluator, spec: &crate::model::ModelSpec| {
            let leaves = [(&a, 0), (&b, 0), (&countdown, 0)];
            let (mut scratch, mut logits, mut values) = (Vec::new(), Vec::new(), Vec::new());
            let dims = (spec.obs_dim, spec.action_dim);
            let io = (&mut scratch, &mut logits, &mut values);
            net.evaluate((&leaves, false), dims.0, dims.1, io.0, io.1, io.2)
                .unwrap();
            (logits, values, dims.1)
        };
        let mirrored = |(logits, values, w): &(Vec<f32>, Vec<f32>, usize)| {
            let d = (values[0] - values[1]).abs();
            (0..7)
                .map(|c| (logits[c] - logits[w + 6 - c]).abs())
                .fold(d, f32::max)
        };
        let (plain, spec) = random_network(dir.path());
        let mut plain = plain;
        let off = outputs(&mut plain, &spec);
        assert!(mirrored(&off) > 1e-3, "a random network is not symmetric");
        for entries in [0, 64] {
            let model = crate::infer::OnnxModel::load(
                &dir.path().join("model.onnx"),
                crate::infer::Device::Cpu,
                1,
            )
            .unwrap();
            let mut net = Evaluator::network(model, "m".into(), Vec::new(), entries)
                .averaging_symmetries(true);
            let on = outputs(&mut net, &spec);
            assert!(mirrored(&on) < 1e-5, "cache {entries}: {}", mirrored(&on));
            // Countdown declares no symmetry: its row is as before.
            let w = spec.action_dim;
            assert_eq!(on.1[2], off.1[2]);
            assert_eq!(on.0[2 * w..3 * w], off.0[2 * w..3 * w]);
        }
    }

    #[test]
    fn the_policy_agent_plays_the_argmax_prior_of_one_evaluation() {
        let dir = tempfile::tempdir().unwrap();
        let (net, spec) = random_network(dir.path());
        let mut agents = [Agent::Policy { evaluator: net }, Agent::Random];
        let specs = (0..12u64).map(|i| {
            let family = [Family::Connect4, Family::Countdown][i as usize % 2];
            let task = family.generate(0.3, i);
            // Connect Four against random play, either colour.
            let agents = match (family, i % 4) {
                (Family::Connect4, 0) => [0, 1],
                (Family::Connect4, _) => [1, 0],
                _ => [0, 0],
            };
            EpisodeSpec {
                game: Game::from_task(&task).unwrap(),
                task,
                seed: i,
                agents,
            }
        });
        let mut search = BatchedSearch {
            params: params(64, 4),
            agents: &mut agents,
            obs_dim: spec.obs_dim,
            action_dim: spec.action_dim,
            parallel: 5,
            overlap: false,
            lanes: 1,
        };
        let mut out = Vec::new();
        let stats = search
            .run(specs, |f| {
                out.push(f);
                Ok(())
            })
            .unwrap();
        assert_eq!(out.len(), 12);
        let mut policy_moves = 0;
        for f in &out {
            for s in f.steps.iter().filter(|s| f.agents[s.mover as usize] == 0) {
                policy_moves += 1;
                assert!(
                    s.visits.iter().all(|&v| v == 0),
                    "no search: {:?}",
                    s.visits
                );
                let best = s.policy.iter().map(|p| p.1).fold(f32::MIN, f32::max);
                let played = s.policy.iter().find(|p| p.0 == s.action).unwrap();
                assert_eq!(played.1, best, "argmax prior: {:?}", s.policy);
                let total: f32 = s.policy.iter().map(|p| p.1).sum();
                assert!((total - 1.0).abs() < 1e-4);
            }
        }
        assert!(policy_moves > 12);
        assert_eq!(stats.evaluations, policy_moves, "one evaluation per move");
    }

    #[test]
    fn two_agents_play_their_own_colours() {
        // Random vs rollout MCTS: every game ends, and the record alternates movers.
        let specs = (0..6)
            .map(|i| c4_spec("", if i % 2 == 0 { [0, 1] } else { [1, 0] }))
            .collect();
        let f = play(
            specs,
            &mut [puct(Evaluator::Rollout), Agent::Random],
            params(32, 1),
        );
        assert_eq!(f.len(), 6);
        for e in &f {
            assert!(e.final_state.is_terminal());
            for (i, s) in e.steps.iter().enumerate() {
                assert_eq!(s.mover as usize, i % 2);
            }
        }
        // Rollout MCTS beats random play most of the time.
        let mcts_wins = f
            .iter()
            .filter(|e| {
                matches!(
                    (e.agents[0], e.outcome),
                    (0, Outcome::Win) | (1, Outcome::Loss)
                )
            })
            .count();
        assert!(mcts_wins >= 4, "mcts won {mcts_wins}/6");
    }
}
