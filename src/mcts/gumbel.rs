//! Gumbel AlphaZero (Danihelka et al., ICLR 2022), as mctx's
//! `gumbel_muzero_policy`: Gumbel-top-k sampling of `m` root actions,
//! sequential halving of the simulation budget among them, a deterministic
//! interior rule, and completed Q-values (`qtransform_completed_by_mix_value`)
//! for the move and its policy target `softmax(logits + sigma(q))`.
//!
//! Q-values are the tree's: each child's mean backed-up value from the view
//! of the player choosing it, so two-player sign flips need nothing here.

use super::tree::Tree;
use crate::tasks::Action;

/// The constants of the sigma transform `(c_visit + max N) * c_scale * q`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GumbelParams {
    /// Most root actions considered (Gumbel-top-k's k).
    pub max_considered: u32,
    pub c_visit: f32,
    pub c_scale: f32,
    /// Self-play moves that draw Gumbel noise; later ones play greedily.
    pub noise_moves: u32,
}

/// For each simulation of a budget of `n`, the visit count a root action
/// must have to be chosen (sequential halving over `m` considered
/// actions): each phase gives every remaining action the same visits, then
/// halves the actions, `max(1, n / (ceil(log2 m) * considered))` visits
/// each per phase.
pub fn considered_visits(m: u32, n: u32) -> Vec<u32> {
    if m <= 1 {
        return (0..n).collect();
    }
    let log2max = (m as f64).log2().ceil() as u32;
    let mut sequence = Vec::with_capacity(n as usize);
    let mut visits = vec![0u32; m as usize];
    let mut considered = m;
    while (sequence.len() as u32) < n {
        let extra = (n / (log2max * considered)).max(1);
        for _ in 0..extra {
            sequence.extend_from_slice(&visits[..considered as usize]);
            for v in &mut visits[..considered as usize] {
                *v += 1;
            }
        }
        considered = (considered / 2).max(2);
    }
    sequence.truncate(n as usize);
    sequence
}

/// sigma(completed Q) for each child of `node`: visited children keep
/// their Q, unvisited ones get the mixed value (the network value and the
/// prior-weighted Q of the visited, by visit count); the completed values
/// are min-max rescaled to [0, 1], then scaled by `(c_visit + max N) *
/// c_scale`.
pub fn completed_q(tree: &Tree, node: u32, p: &GumbelParams) -> Vec<f32> {
    let children: Vec<_> = tree.children(node).map(|i| &tree.nodes[i]).collect();
    let total: u32 = children.iter().map(|c| c.visits).sum();
    let visited_prior: f32 = children
        .iter()
        .filter(|c| c.visits > 0)
        .map(|c| c.prior.max(f32::MIN_POSITIVE))
        .sum();
    let weighted_q: f32 = children
        .iter()
        .filter(|c| c.visits > 0)
        .map(|c| c.prior.max(f32::MIN_POSITIVE) * c.q() / visited_prior)
        .sum();
    let raw = tree.nodes[node as usize].net_value;
    let mixed = (raw + total as f32 * weighted_q) / (total as f32 + 1.0);
    let completed: Vec<f32> = children
        .iter()
        .map(|c| if c.visits > 0 { c.q() } else { mixed })
        .collect();
    let lo = completed.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = completed.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let max_visits = children.iter().map(|c| c.visits).max().unwrap_or(0);
    let scale = (p.c_visit + max_visits as f32) * p.c_scale;
    completed
        .iter()
        .map(|&q| scale * (q - lo) / (hi - lo).max(1e-8))
        .collect()
}

/// Log-priors of `node`'s children (the priors are a softmax of the
/// network's logits, so these are the logits up to a constant).
fn logits(tree: &Tree, node: u32) -> Vec<f32> {
    tree.children(node)
        .map(|i| tree.nodes[i].prior.max(1e-30).ln())
        .collect()
}

/// The halving schedule of a move: [`considered_visits`] for the root's
/// `children` (at most `max_considered` of them) and the move's `budget`.
/// Computed once per move, indexed by simulation.
pub fn schedule(children: usize, budget: u32, p: &GumbelParams) -> Vec<u32> {
    let m = p.max_considered.min(children as u32).max(1);
    considered_visits(m, budget.max(1))
}

/// The root child of a simulation under sequential halving, `want` being
/// the visit count the move's [`schedule`] gives that simulation: among
/// the children with `want` visits, the highest `gumbel + logit +
/// sigma(q)`; when none matches (a budget changed mid-move), the least
/// visited of the highest scored.
pub fn select_root(tree: &Tree, gumbel: &[f32], want: u32, p: &GumbelParams) -> u32 {
    let range = tree.children(0);
    let scores = root_scores(tree, gumbel, p);
    let pick = |eligible: &dyn Fn(u32) -> bool| {
        range
            .clone()
            .zip(&scores)
            .filter(|(i, _)| eligible(tree.nodes[*i].visits))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
    };
    pick(&|v| v == want)
        .or_else(|| {
            let least = range
                .clone()
                .map(|i| tree.nodes[i].visits)
                .min()
                .unwrap_or(0);
            pick(&|v| v == least)
        })
        .unwrap_or(range.start as u32)
}

/// `gumbel + logit + sigma(completed q)` for each root child (logits
/// shifted so the largest is 0, floored at -1e9 as mctx does).
fn root_scores(tree: &Tree, gumbel: &[f32], p: &GumbelParams) -> Vec<f32> {
    let logits = logits(tree, 0);
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let q = completed_q(tree, 0, p);
    logits
        .iter()
        .zip(&q)
        .enumerate()
        .map(|(k, (l, q))| (gumbel.get(k).copied().unwrap_or(0.0) + (l - top) + q).max(-1e9))
        .collect()
}

/// The deterministic interior rule: the child maximising
/// `pi'(a) - N(a) / (1 + sum N)`, with `pi' = softmax(logits + sigma(q))`.
pub fn select_interior(tree: &Tree, node: u32, p: &GumbelParams) -> u32 {
    let improved = improved_policy(tree, node, p);
    let range = tree.children(node);
    let total: u32 = range.clone().map(|i| tree.nodes[i].visits).sum();
    range
        .zip(&improved)
        .map(|(i, pi)| (i, pi - tree.nodes[i].visits as f32 / (1.0 + total as f32)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i as u32)
        .unwrap_or(tree.nodes[node as usize].first_child)
}

/// `softmax(logits + sigma(completed q))` over `node`'s children: the
/// improved policy, the root's training target.
pub fn improved_policy(tree: &Tree, node: u32, p: &GumbelParams) -> Vec<f32> {
    let scores: Vec<f32> = logits(tree, node)
        .iter()
        .zip(completed_q(tree, node, p))
        .map(|(l, q)| l + q)
        .collect();
    let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// The move after search and its training target: among the most visited
/// considered actions the highest `gumbel + logit + sigma(q)`, and the
/// improved policy over every legal root action.
pub fn decide(tree: &Tree, gumbel: &[f32], p: &GumbelParams) -> (Action, Vec<(Action, f32)>) {
    let range = tree.children(0);
    let most = range
        .clone()
        .map(|i| tree.nodes[i].visits)
        .max()
        .unwrap_or(0);
    let scores = root_scores(tree, gumbel, p);
    let action = range
        .clone()
        .zip(&scores)
        .filter(|(i, _)| tree.nodes[*i].visits == most)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| tree.nodes[i].action)
        .unwrap_or(0);
    let target = range
        .map(|i| tree.nodes[i].action)
        .zip(improved_policy(tree, 0, p))
        .collect();
    (action, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: GumbelParams = GumbelParams {
        max_considered: 16,
        c_visit: 50.0,
        c_scale: 0.1,
        noise_moves: u32::MAX,
    };

    /// mctx's schedules (the paper's sequential halving): 16 actions and
    /// 64 simulations give one visit to each of 16 (log2 16 = 4 phases of
    /// 16 simulations), two more to each of 8, four to each of 4, eight
    /// to each of 2; 4 actions and 8 simulations go 4 -> 2.
    #[test]
    fn sequential_halving_schedules() {
        let phases = |parts: &[(u32, std::ops::Range<u32>)]| -> Vec<u32> {
            parts
                .iter()
                .flat_map(|(width, visits)| {
                    visits
                        .clone()
                        .flat_map(move |v| std::iter::repeat_n(v, *width as usize))
                })
                .collect()
        };
        let want = phases(&[(16, 0..1), (8, 1..3), (4, 3..7), (2, 7..15)]);
        assert_eq!(considered_visits(16, 64), want);
        assert_eq!(considered_visits(4, 8), vec![0, 0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(considered_visits(1, 3), vec![0, 1, 2]);
        let want = phases(&[(8, 0..1), (4, 1..3), (2, 3..8)]);
        assert_eq!(considered_visits(8, 32)[..want.len()], want[..]);
    }

    /// A root with priors 0.5 / 0.3 / 0.2, network value 0.1, the first
    /// child visited twice with Q 0.6 and the second once with Q -0.2.
    fn tree() -> Tree {
        let mut t = Tree::new(0);
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        t.expand(0, 0, &[0, 1, 2], &logits, 0.1);
        let c: Vec<usize> = t.children(0).collect();
        t.nodes[c[0]].visits = 2;
        t.nodes[c[0]].value_sum = 1.2;
        t.nodes[c[1]].visits = 1;
        t.nodes[c[1]].value_sum = -0.2;
        t
    }

    /// Hand-computed: the mixed value is (0.1 + 3 * (0.5 * 0.6 + 0.3 *
    /// -0.2) / 0.8) / 4 = 0.25; completed Q (0.6, -0.2, 0.25) rescale to
    /// (1, 0, 0.5625) and scale by (50 + 2) * 0.1 = 5.2.
    #[test]
    fn completed_q_matches_a_hand_computed_case() {
        let q = completed_q(&tree(), 0, &P);
        let want = [5.2, 0.0, 0.5625 * 5.2];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{q:?} vs {want:?}");
        }
        let pi = improved_policy(&tree(), 0, &P);
        assert!((pi.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let raw = [0.5f32 * 5.2f32.exp(), 0.3, 0.2 * (0.5625f32 * 5.2).exp()];
        let sum: f32 = raw.iter().sum();
        for (a, b) in pi.iter().zip(raw.iter().map(|r| r / sum)) {
            assert!((a - b).abs() < 1e-5, "{pi:?}");
        }
    }

    /// With no Gumbel noise the first simulations visit the considered
    /// actions in score order; the interior rule follows the improved
    /// policy while discounting visits.
    #[test]
    fn root_and_interior_choices() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1, 2], &[0.0, 2.0, 1.0], 0.0);
        let zero = [0.0; 3];
        let p = GumbelParams {
            max_considered: 2,
            ..P
        };
        let plan = schedule(3, 4, &p);
        let first = select_root(&t, &zero, plan[0], &p);
        assert_eq!(t.nodes[first as usize].action, 1);
        t.nodes[first as usize].visits = 1;
        let second = select_root(&t, &zero, plan[1], &p);
        assert_eq!(t.nodes[second as usize].action, 2);
        // Noise reorders the choice.
        let noisy = select_root(&t, &[5.0, 0.0, 0.0], plan[1], &p);
        assert_eq!(t.nodes[noisy as usize].action, 0);
        let inner = select_interior(&t, 0, &p);
        assert_eq!(t.nodes[inner as usize].action, 2);
    }

    /// The decision follows the most visited considered action, and the
    /// target spans every legal root action.
    #[test]
    fn decision_and_target() {
        let t = tree();
        let (action, target) = decide(&t, &[0.0; 3], &P);
        assert_eq!(action, 0);
        assert_eq!(target.len(), 3);
        assert!((target.iter().map(|x| x.1).sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
