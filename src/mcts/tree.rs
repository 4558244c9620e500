//! One search tree in a flat arena: children contiguous, u32 indices, no Rc.

use crate::tasks::Action;

pub const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct Node {
    /// Action that led here from the parent.
    pub action: Action,
    pub parent: u32,
    pub first_child: u32,
    pub num_children: u16,
    /// Player to move at this node's state (set once the node is reached).
    pub mover: u8,
    pub expanded: bool,
    /// A leaf of this node is waiting for the network (collisions stop there).
    pub pending: bool,
    pub prior: f32,
    pub visits: u32,
    /// Sum of backed-up values from the view of the player who chose `action`.
    pub value_sum: f32,
    /// Network value of this state from its mover's view (for first-play urgency).
    pub net_value: f32,
    /// A puzzle success was reached through this node: its chooser can force it.
    pub solved: bool,
}

impl Node {
    fn new(action: Action, parent: u32, prior: f32) -> Node {
        Node {
            action,
            parent,
            first_child: NONE,
            num_children: 0,
            mover: 0,
            expanded: false,
            pending: false,
            prior,
            visits: 0,
            value_sum: 0.0,
            net_value: 0.0,
            solved: false,
        }
    }

    pub fn q(&self) -> f32 {
        if self.visits == 0 {
            0.0
        } else {
            self.value_sum / self.visits as f32
        }
    }
}

/// What search learned about one root action: what a move decision, a
/// training target and `show` read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChildStats {
    pub action: Action,
    pub visits: u32,
    /// Mean backed-up value from the chooser's view (0 when unvisited).
    pub q: f32,
    /// Prior after root noise.
    pub prior: f32,
}

/// A search tree; node 0 is the root.
#[derive(Clone, Debug)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// Virtual loss added per in-flight visit, removed at backup.
const VIRTUAL_LOSS: f32 = 1.0;

impl Tree {
    pub fn new(root_mover: u8) -> Tree {
        let mut root = Node::new(0, NONE, 1.0);
        root.mover = root_mover;
        Tree { nodes: vec![root] }
    }

    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn children(&self, n: u32) -> std::ops::Range<usize> {
        let node = &self.nodes[n as usize];
        if node.first_child == NONE {
            return 0..0;
        }
        let start = node.first_child as usize;
        start..start + node.num_children as usize
    }

    /// PUCT child choice: Q + c * P * sqrt(N) / (1 + n); unvisited children
    /// score the parent's network value minus `fpu_reduction`.
    pub fn select_child(&self, n: u32, c_puct: f32, fpu_reduction: f32) -> u32 {
        let node = &self.nodes[n as usize];
        let sqrt_n = (node.visits.max(1) as f32).sqrt();
        let fpu = node.net_value - fpu_reduction;
        let mut best = (f32::NEG_INFINITY, NONE);
        for i in self.children(n) {
            let c = &self.nodes[i];
            let q = if c.visits == 0 { fpu } else { c.q() };
            let score = q + c_puct * c.prior * sqrt_n / (1.0 + c.visits as f32);
            if score > best.0 {
                best = (score, i as u32);
            }
        }
        best.1
    }

    /// Adds a virtual visit and loss along the path from `leaf` to the root.
    pub fn add_virtual_loss(&mut self, leaf: u32) {
        let mut n = leaf;
        while n != NONE {
            let node = &mut self.nodes[n as usize];
            node.visits += 1;
            node.value_sum -= VIRTUAL_LOSS;
            n = node.parent;
        }
    }

    /// Removes a virtual visit without a value (a collided descent).
    pub fn revert_virtual_loss(&mut self, leaf: u32) {
        let mut n = leaf;
        while n != NONE {
            let node = &mut self.nodes[n as usize];
            node.visits -= 1;
            node.value_sum += VIRTUAL_LOSS;
            n = node.parent;
        }
    }

    /// Backs up `value` (from the view of `leaf_mover`) along the path whose
    /// virtual loss was added, flipping the sign where the chooser differs.
    pub fn backup(&mut self, leaf: u32, leaf_mover: u8, value: f32) {
        let mut n = leaf;
        while n != NONE {
            let parent = self.nodes[n as usize].parent;
            let chooser = if parent == NONE {
                self.nodes[n as usize].mover
            } else {
                self.nodes[parent as usize].mover
            };
            let v = if chooser == leaf_mover { value } else { -value };
            let node = &mut self.nodes[n as usize];
            node.value_sum += v + VIRTUAL_LOSS;
            n = parent;
        }
    }

    /// Marks `leaf` and its ancestors solved: in a single-player puzzle every
    /// node on the path chose it, so each can force the success below.
    pub fn mark_solved(&mut self, leaf: u32) {
        let mut n = leaf;
        while n != NONE && !self.nodes[n as usize].solved {
            self.nodes[n as usize].solved = true;
            n = self.nodes[n as usize].parent;
        }
    }

    /// The root's most visited solved child, if search proved one.
    pub fn solved_child(&self) -> Option<Action> {
        self.children(0)
            .map(|i| &self.nodes[i])
            .filter(|c| c.solved)
            .max_by_key(|c| c.visits)
            .map(|c| c.action)
    }

    /// Expands `n` with children for `legal`, priors from masked-softmax logits.
    pub fn expand(&mut self, n: u32, mover: u8, legal: &[Action], logits: &[f32], value: f32) {
        let first = self.nodes.len() as u32;
        let max = legal
            .iter()
            .map(|&a| logits[a as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for &a in legal {
            let p = (logits[a as usize] - max).exp();
            total += p;
            self.nodes.push(Node::new(a, n, p));
        }
        for c in &mut self.nodes[first as usize..] {
            c.prior /= total;
        }
        let node = &mut self.nodes[n as usize];
        node.first_child = if legal.is_empty() { NONE } else { first };
        node.num_children = legal.len() as u16;
        node.mover = mover;
        node.expanded = true;
        node.pending = false;
        node.net_value = value;
    }

    /// Mixes Dirichlet noise into the root's priors (self-play exploration).
    pub fn add_root_noise(&mut self, noise: &[f32], epsilon: f32) {
        for (i, eta) in self.children(0).zip(noise) {
            let p = &mut self.nodes[i].prior;
            *p = (1.0 - epsilon) * *p + epsilon * eta;
        }
    }

    /// Keeps only the subtree under the root's child for `action` (subtree
    /// reuse); a fresh root when that child was never expanded.
    pub fn advance(&mut self, action: Action, new_mover: u8) {
        let child = self
            .children(0)
            .find(|&i| self.nodes[i].action == action)
            .map(|i| i as u32);
        match child {
            Some(c) if self.nodes[c as usize].expanded => *self = self.extract(c),
            _ => *self = Tree::new(new_mover),
        }
    }

    /// Copies the subtree under `top` into a new arena, breadth first, so
    /// children stay contiguous.
    fn extract(&self, top: u32) -> Tree {
        let mut out = Tree {
            nodes: Vec::with_capacity(self.nodes.len()),
        };
        let mut root = self.nodes[top as usize].clone();
        root.parent = NONE;
        out.nodes.push(root);
        let mut queue = vec![(top, 0u32)];
        let mut head = 0;
        while head < queue.len() {
            let (old, new) = queue[head];
            head += 1;
            let range = self.children(old);
            if range.is_empty() {
                out.nodes[new as usize].first_child = NONE;
                continue;
            }
            let first = out.nodes.len() as u32;
            out.nodes[new as usize].first_child = first;
            for (k, i) in range.enumerate() {
                let mut c = self.nodes[i].clone();
                c.parent = new;
                out.nodes.push(c);
                queue.push((i as u32, first + k as u32));
            }
        }
        out
    }

    /// The statistics of the root's children, in child order.
    pub fn root_stats(&self) -> Vec<ChildStats> {
        self.children(0)
            .map(|i| {
                let c = &self.nodes[i];
                ChildStats {
                    action: c.action,
                    visits: c.visits,
                    q: c.q(),
                    prior: c.prior,
                }
            })
            .collect()
    }

    /// Search value of the root from its mover's view.
    pub fn root_value(&self) -> f32 {
        let (sum, n) = self
            .children(0)
            .map(|i| &self.nodes[i])
            .fold((0.0, 0u32), |(s, n), c| (s + c.value_sum, n + c.visits));
        if n == 0 {
            self.nodes[0].net_value
        } else {
            sum / n as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_gives_masked_softmax_priors() {
        let mut t = Tree::new(0);
        let logits = [0.0, 100.0, 1.0, 1.0];
        t.expand(0, 0, &[0, 2, 3], &logits, 0.5);
        let p: Vec<f32> = t.children(0).map(|i| t.nodes[i].prior).collect();
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[0] && (p[1] - p[2]).abs() < 1e-6);
    }

    #[test]
    fn backup_flips_sign_between_players() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[0.0, 0.0], 0.0);
        let c = t.children(0).start as u32;
        t.expand(c, 1, &[0], &[0.0], 0.0);
        let g = t.children(c).start as u32;
        t.nodes[g as usize].mover = 0;
        t.add_virtual_loss(g);
        // Leaf value +1 for player 0: good for player 0's choice at the root
        // (edge to c), bad for player 1's choice at c (edge to g).
        t.backup(g, 0, 1.0);
        assert_eq!(t.nodes[c as usize].value_sum, 1.0);
        assert_eq!(t.nodes[g as usize].value_sum, -1.0);
        assert_eq!(t.nodes[c as usize].visits, 1);
    }

    #[test]
    fn virtual_loss_reverts_exactly() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[0.0, 0.0], 0.0);
        let c = t.children(0).start as u32;
        t.add_virtual_loss(c);
        t.revert_virtual_loss(c);
        assert_eq!(t.nodes[c as usize].visits, 0);
        assert_eq!(t.nodes[c as usize].value_sum, 0.0);
    }

    #[test]
    fn advance_keeps_the_subtree() {
        let mut t = Tree::new(0);
        let logits = [0.0; 8];
        t.expand(0, 0, &[3, 5], &logits, 0.0);
        let c = (t.children(0).start + 1) as u32;
        t.expand(c, 1, &[1, 2], &logits, 0.0);
        t.nodes[c as usize].visits = 7;
        t.advance(5, 1);
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.root().visits, 7);
        assert_eq!(t.root().parent, NONE);
        let acts: Vec<_> = t.children(0).map(|i| t.nodes[i].action).collect();
        assert_eq!(acts, vec![1, 2]);
        t.advance(9, 0);
        assert_eq!(t.nodes.len(), 1);
    }

    #[test]
    fn solved_marks_the_path_and_survives_advance() {
        let mut t = Tree::new(0);
        let logits = [0.0; 8];
        t.expand(0, 0, &[3, 5], &logits, 0.0);
        let c = (t.children(0).start + 1) as u32;
        t.expand(c, 0, &[1, 2], &logits, 0.0);
        let g = t.children(c).start as u32;
        assert_eq!(t.solved_child(), None);
        t.mark_solved(g);
        assert!(t.root().solved && t.nodes[c as usize].solved);
        assert!(!t.nodes[(c - 1) as usize].solved);
        assert_eq!(t.solved_child(), Some(5));
        t.advance(5, 0);
        assert!(t.root().solved);
        assert_eq!(t.solved_child(), Some(1));
    }

    #[test]
    fn puct_prefers_high_prior_when_unvisited() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[0.0, 3.0], 0.0);
        t.nodes[0].visits = 1;
        let s = t.select_child(0, 1.5, 0.0);
        assert_eq!(t.nodes[s as usize].action, 1);
    }
}
