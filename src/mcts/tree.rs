//! One search tree in a flat arena: children contiguous, u32 indices, no Rc.
//!
//! With transpositions on (`mcts.graph`), the tree is a graph: a node
//! reaching a position already expanded elsewhere becomes a link to that
//! node (its primary) and searches on through the primary's children, so
//! both move orders share one subtree (Czech, Korus and Kersting's
//! Monte-Carlo Graph Search, 2021). Each node keeps its own visits and
//! value (an edge's statistics), which is why selection, virtual loss and
//! backup follow the descent's path rather than parent links.

use crate::tasks::Action;
use std::collections::HashMap;

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
    /// What search proved about this node, from its chooser's view; a
    /// proven node is played like a terminal (its exact value is backed up).
    pub proof: Option<Proof>,
    /// The primary node of the same position when this one is a
    /// transposition (never expanded itself), else [`NONE`].
    pub link: u32,
}

/// A game-theoretic value proved by search (the MCTS-Solver of Winands et
/// al. 2008, with the distance kept so that the fastest win and the
/// slowest loss are preferred, as a perfect solver scores them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    /// +1 a win (a puzzle success), 0 a draw, -1 a loss.
    pub value: i8,
    /// Plies from this node's state to the end of the proved line.
    pub plies: u16,
    /// `plies` is the true distance under best play. A win proven along
    /// one line while a sibling line is still open only bounds it (the
    /// winner may win sooner), and so does every proof built on one: such
    /// a node stays open to search in a two-player game (Cazenave and
    /// Saffidine's score-bounded MCTS, for distances).
    pub exact: bool,
}

impl Proof {
    pub const WIN: Proof = Proof::exact(1, 0);

    /// A proof whose distance is known to be the best play's.
    pub const fn exact(value: i8, plies: u16) -> Proof {
        Proof {
            value,
            plies,
            exact: true,
        }
    }

    /// The value this proof backs up: the outcome discounted per ply.
    pub fn discounted(self, discount: f32) -> f32 {
        self.value as f32 * discount.powi(self.plies as i32)
    }

    /// The chooser's order: sooner wins, then draws, then later losses.
    fn rank(self) -> (i8, i32) {
        match self.value {
            1 => (1, -(self.plies as i32)),
            0 => (0, 0),
            _ => (-1, self.plies as i32),
        }
    }

    /// The same line seen from the other player, one ply earlier.
    fn for_opponent_before(self) -> Proof {
        Proof {
            value: -self.value,
            plies: self.plies.saturating_add(1),
            exact: self.exact,
        }
    }

    /// The same line for the same player, one ply earlier.
    fn before(self) -> Proof {
        Proof {
            value: self.value,
            plies: self.plies.saturating_add(1),
            exact: self.exact,
        }
    }
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
            proof: None,
            link: NONE,
        }
    }

    /// Proven lost for the chooser of this node (its parent's mover).
    fn proven_lost(&self) -> bool {
        self.proof.is_some_and(|p| p.value < 0)
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
    /// Position key to the node first expanded for it (with transpositions).
    primaries: HashMap<u128, u32>,
}

/// Visits forced playouts owe a root child: sqrt(k x prior x visits of
/// all the root's children).
pub fn forced_visits(k: f32, prior: f32, total: u32) -> f32 {
    (k * prior * total as f32).sqrt()
}

/// Virtual loss added per in-flight visit, removed at backup.
const VIRTUAL_LOSS: f32 = 1.0;

impl Tree {
    pub fn new(root_mover: u8) -> Tree {
        let mut root = Node::new(0, NONE, 1.0);
        root.mover = root_mover;
        Tree {
            nodes: vec![root],
            primaries: HashMap::new(),
        }
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
    /// score the parent's network value minus `fpu_reduction`. Children
    /// proven lost for the chooser are not chosen while another is open
    /// (an unproven node always has one); when all are lost, as below a
    /// node whose proof only bounds its distance, PUCT picks among them.
    /// A primary's children are also visited through its links, so its
    /// visit count is at least theirs. A linked child scores its primary's
    /// mean: the same position, searched from where it was first reached.
    pub fn select_child(&self, n: u32, c_puct: f32, fpu_reduction: f32) -> u32 {
        let node = &self.nodes[n as usize];
        let below: u32 = self.children(n).map(|i| self.nodes[i].visits).sum();
        let sqrt_n = (node.visits.max(below).max(1) as f32).sqrt();
        let fpu = node.net_value - fpu_reduction;
        let best_of = |skip_lost: bool| {
            let mut best = (f32::NEG_INFINITY, NONE);
            for i in self.children(n) {
                let c = &self.nodes[i];
                if skip_lost && c.proven_lost() {
                    continue;
                }
                let q = if c.visits == 0 { fpu } else { self.shared_q(i) };
                let score = q + c_puct * c.prior * sqrt_n / (1.0 + c.visits as f32);
                if score > best.0 {
                    best = (score, i as u32);
                }
            }
            best.1
        };
        [best_of(true), best_of(false)]
            .into_iter()
            .find(|&c| c != NONE)
            .unwrap_or(self.children(n).start as u32)
    }

    /// Forced playouts (KataGo): the root child furthest below its
    /// [`forced_visits`], if any is below; children proven lost for the
    /// chooser are never forced.
    pub fn forced_root_child(&self, k: f32) -> Option<u32> {
        let total: u32 = self.children(0).map(|i| self.nodes[i].visits).sum();
        self.children(0)
            .filter(|&i| !self.nodes[i].proven_lost())
            .map(|i| {
                let c = &self.nodes[i];
                (i, forced_visits(k, c.prior, total) - c.visits as f32)
            })
            .filter(|&(_, owed)| owed > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i as u32)
    }

    /// Adds a virtual visit and loss on every node of a descent's `path`
    /// (root first, one node per ply).
    pub fn add_virtual_loss(&mut self, path: &[u32]) {
        for &n in path {
            let node = &mut self.nodes[n as usize];
            node.visits += 1;
            node.value_sum -= VIRTUAL_LOSS;
        }
    }

    /// Removes a virtual visit without a value (a collided descent).
    pub fn revert_virtual_loss(&mut self, path: &[u32]) {
        for &n in path {
            let node = &mut self.nodes[n as usize];
            node.visits -= 1;
            node.value_sum += VIRTUAL_LOSS;
        }
    }

    /// Backs up `value` (from the view of `leaf_mover`) along the `path`
    /// whose virtual loss was added, flipping the sign where the chooser
    /// differs and multiplying by `discount` per ply above the leaf.
    pub fn backup(&mut self, path: &[u32], leaf_mover: u8, value: f32, discount: f32) {
        let mut value = value;
        for &n in path.iter().rev() {
            let v = if self.chooser(n) == leaf_mover {
                value
            } else {
                -value
            };
            let node = &mut self.nodes[n as usize];
            node.value_sum += v + VIRTUAL_LOSS;
            value *= discount;
        }
    }

    /// The path from the root to `n` by parent links (a tree's only one).
    #[cfg(test)]
    pub fn path_to(&self, n: u32) -> Vec<u32> {
        let mut path = vec![n];
        while let Some(&last) = path.last() {
            match self.nodes[last as usize].parent {
                NONE => break,
                p => path.push(p),
            }
        }
        path.reverse();
        path
    }

    /// The node whose children search `n`'s position: its primary when
    /// `n` is a transposition, else `n`.
    pub fn follow(&self, n: u32) -> u32 {
        match self.nodes[n as usize].link {
            NONE => n,
            p => p,
        }
    }

    /// `n`'s mean value for its chooser, its primary's when it is a link
    /// (the same position, so the same chooser).
    fn shared_q(&self, n: usize) -> f32 {
        let primary = &self.nodes[self.follow(n as u32) as usize];
        if primary.visits > 0 {
            primary.q()
        } else {
            self.nodes[n].q()
        }
    }

    /// What is proven of `n`'s position: its own proof, else its primary's.
    pub fn proof_of(&self, n: u32) -> Option<Proof> {
        self.nodes[n as usize]
            .proof
            .or(self.nodes[self.follow(n) as usize].proof)
    }

    /// The node already expanded (or waiting for the network) for
    /// position `key`, or `None` after registering `n` as its primary.
    pub fn transposition(&mut self, key: u128, n: u32) -> Option<u32> {
        match self.primaries.get(&key) {
            Some(&p) if p != n => Some(p),
            Some(_) => None,
            None => {
                self.primaries.insert(key, n);
                None
            }
        }
    }

    /// Makes `n` a transposition of `primary`: it keeps its own visits
    /// and searches on through the primary's children.
    pub fn link(&mut self, n: u32, primary: u32) {
        let p = &self.nodes[primary as usize];
        let (mover, net_value) = (p.mover, p.net_value);
        let node = &mut self.nodes[n as usize];
        node.link = primary;
        node.mover = mover;
        node.net_value = net_value;
    }

    /// The player whose choice led to `n` (the root's own mover).
    pub fn chooser(&self, n: u32) -> u8 {
        match self.nodes[n as usize].parent {
            NONE => self.nodes[n as usize].mover,
            p => self.nodes[p as usize].mover,
        }
    }

    /// Records `proof` for `n` and carries it up: a parent is proven once
    /// one child is a win for its mover, or once every child is proven; a
    /// parent proven before is proven again, as a sooner win or an exact
    /// distance below it may better its proof.
    pub fn prove(&mut self, n: u32, proof: Proof) {
        self.nodes[n as usize].proof = Some(proof);
        let mut n = self.nodes[n as usize].parent;
        while n != NONE {
            let Some(best) = self.proof_from_children(n) else {
                return;
            };
            let own = if self.chooser(n) == self.nodes[n as usize].mover {
                best.before()
            } else {
                best.for_opponent_before()
            };
            if self.nodes[n as usize].proof == Some(own) {
                return;
            }
            self.nodes[n as usize].proof = Some(own);
            n = self.nodes[n as usize].parent;
        }
    }

    /// The best proven child of `n` for its mover, when its children prove
    /// `n`'s value (a winning child, or all proven); plies count from the child.
    fn best_proven_child(&self, n: u32) -> Option<&Node> {
        let children = self.children(n);
        if children.is_empty() {
            return None;
        }
        let best = self.best_proven_node(n)?;
        let decided = best.proof.is_some_and(|p| p.value > 0)
            || self.nodes[children].iter().all(|c| c.proof.is_some());
        decided.then_some(best)
    }

    /// `n`'s proven child best for its mover (sooner wins, later losses;
    /// most visited among equals), whether or not it decides `n`.
    fn best_proven_node(&self, n: u32) -> Option<&Node> {
        self.nodes[self.children(n)]
            .iter()
            .filter(|c| c.proof.is_some())
            .max_by_key(|c| (c.proof.map(Proof::rank), c.visits))
    }

    /// `n`'s proven value for its mover, counted from `n`'s state. Its
    /// distance is exact when nothing open or only bounded can beat it:
    /// a win at once, or every child proven with every win among them
    /// exact; a draw's outcome is exact; the latest loss when every loss
    /// is exact.
    fn proof_from_children(&self, n: u32) -> Option<Proof> {
        self.decided_child(n).map(|(_, p)| p)
    }

    /// [`Tree::best_proven_child`] with `n`'s proof it decides (see
    /// [`Tree::proof_from_children`]).
    fn decided_child(&self, n: u32) -> Option<(&Node, Proof)> {
        let node = self.best_proven_child(n)?;
        let best = node.proof?;
        let children = &self.nodes[self.children(n)];
        let exact = match best.value {
            0 => true,
            1 if best.plies == 0 => best.exact,
            1 => children
                .iter()
                .all(|c| c.proof.is_some_and(|p| p.value < 1 || p.exact)),
            _ => children.iter().all(|c| c.proof.is_some_and(|p| p.exact)),
        };
        Some((node, Proof { exact, ..best }))
    }

    /// Whether search proved the root's value (not always its best move:
    /// see [`Tree::settled_child`]).
    #[cfg(test)]
    pub fn root_proven(&self) -> bool {
        self.best_proven_child(0).is_some()
    }

    /// The root's best proven move (sooner wins, later losses; most visited
    /// among equals), when search proved the root's value.
    #[cfg(test)]
    pub fn proven_child(&self) -> Option<Action> {
        self.best_proven_child(0).map(|c| c.action)
    }

    /// The root's best proven move once no more search can better it:
    /// the root's proof is exact (see [`Tree::proof_from_children`]), or
    /// (`any_win`, a puzzle) it succeeds at all. A win proven along one
    /// line is otherwise a bound on its distance, and a move not yet
    /// searched may win sooner, which a solver-scored game counts.
    pub fn settled_child(&self, any_win: bool) -> Option<Action> {
        let (best, proof) = self.decided_child(0)?;
        (any_win || proof.exact).then_some(best.action)
    }

    /// The root's best proven move and its proof for the root's mover,
    /// whether or not that settles the move.
    pub fn best_proven(&self) -> Option<(Action, Proof)> {
        let best = self.best_proven_node(0)?;
        Some((best.action, best.proof?))
    }

    /// Whether the root child for `action` is proven lost for the root's mover.
    pub fn proven_lost(&self, action: Action) -> bool {
        self.children(0)
            .map(|i| &self.nodes[i])
            .any(|c| c.action == action && c.proven_lost())
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
        match child.map(|c| self.follow(c)) {
            Some(c) if self.nodes[c as usize].expanded => *self = self.extract(c),
            _ => *self = Tree::new(new_mover),
        }
    }

    /// Copies the subtree under `top` into a new arena, breadth first, so
    /// children stay contiguous; a link whose primary was left behind
    /// becomes an unexpanded node again.
    fn extract(&self, top: u32) -> Tree {
        let mut out = Tree {
            nodes: Vec::with_capacity(self.nodes.len()),
            primaries: HashMap::new(),
        };
        let mut moved = vec![NONE; self.nodes.len()];
        moved[top as usize] = 0;
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
                moved[i] = first + k as u32;
            }
        }
        for node in &mut out.nodes {
            if node.link != NONE {
                node.link = moved[node.link as usize];
            }
        }
        out.primaries = self
            .primaries
            .iter()
            .filter(|&(_, &n)| moved[n as usize] != NONE)
            .map(|(&key, &n)| (key, moved[n as usize]))
            .collect();
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
        t.add_virtual_loss(&t.path_to(g));
        // Leaf value +1 for player 0: good for player 0's choice at the root
        // (edge to c), bad for player 1's choice at c (edge to g).
        t.backup(&t.path_to(g), 0, 1.0, 1.0);
        assert_eq!(t.nodes[c as usize].value_sum, 1.0);
        assert_eq!(t.nodes[g as usize].value_sum, -1.0);
        assert_eq!(t.nodes[c as usize].visits, 1);
        // Discounted: each ply above the leaf halves the value.
        t.add_virtual_loss(&t.path_to(g));
        t.backup(&t.path_to(g), 0, 1.0, 0.5);
        assert_eq!(t.nodes[c as usize].value_sum, 1.5);
        assert_eq!(t.nodes[g as usize].value_sum, -2.0);
        assert_eq!(t.nodes[0].value_sum, 1.25);
    }

    #[test]
    fn virtual_loss_reverts_exactly() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[0.0, 0.0], 0.0);
        let c = t.children(0).start as u32;
        t.add_virtual_loss(&t.path_to(c));
        t.revert_virtual_loss(&t.path_to(c));
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

    /// A link searches on through its primary's children, keeps its own
    /// visits, and shares its primary's proof; the subtree kept for the
    /// next move remaps links inside it and makes one whose primary
    /// stayed behind a leaf again.
    #[test]
    fn links_share_their_primary_and_survive_advance() {
        let mut t = Tree::new(0);
        let logits = [0.0; 8];
        t.expand(0, 0, &[0, 1], &logits, 0.0); // 1, 2
        t.expand(1, 1, &[2, 3], &logits, 0.0); // 3, 4
        t.expand(3, 0, &[4], &logits, 0.0); // 5
        t.expand(4, 0, &[4], &logits, 0.0); // 6
        t.expand(2, 1, &[2], &logits, 0.0); // 7
        assert_eq!(t.transposition(9, 5), None);
        t.expand(5, 1, &[5], &logits, 0.25); // 8
        for link in [6, 7] {
            assert_eq!(t.transposition(9, link), Some(5));
            t.link(link, 5);
            assert_eq!(
                (t.follow(link), t.nodes[link as usize].net_value),
                (5, 0.25)
            );
        }
        let path = [0, 1, 4, 6, 8];
        t.add_virtual_loss(&path);
        t.backup(&path, 1, 0.5, 1.0);
        assert_eq!((t.nodes[6].visits, t.nodes[6].value_sum), (1, -0.5));
        assert_eq!((t.nodes[8].visits, t.nodes[5].visits), (1, 0));
        t.nodes[5].proof = Some(Proof::exact(1, 3));
        assert_eq!(t.proof_of(6), Some(Proof::exact(1, 3)));
        let mut other = t.clone();
        t.advance(0, 1);
        let at = |t: &Tree, actions: &[Action]| {
            actions.iter().fold(0, |n, &a| {
                let c = t.children(n).find(|&i| t.nodes[i].action == a);
                c.unwrap() as u32
            })
        };
        let (primary, link) = (at(&t, &[2, 4]), at(&t, &[3, 4]));
        assert_eq!(t.nodes[link as usize].link, primary);
        assert_eq!(t.follow(link), primary);
        assert_eq!(t.transposition(9, 99), Some(primary));
        other.advance(1, 1);
        let dropped = &other.nodes[at(&other, &[2]) as usize];
        assert!(dropped.link == NONE && !dropped.expanded);
        assert_eq!(other.transposition(9, 1), None);
    }

    #[test]
    fn a_puzzle_success_proves_the_path_and_survives_advance() {
        let mut t = Tree::new(0);
        let logits = [0.0; 8];
        t.expand(0, 0, &[3, 5], &logits, 0.0);
        let c = (t.children(0).start + 1) as u32;
        t.expand(c, 0, &[1, 2], &logits, 0.0);
        let g = t.children(c).start as u32;
        assert!(!t.root_proven());
        t.prove(g, Proof::WIN);
        assert_eq!(t.nodes[c as usize].proof, Some(Proof::exact(1, 1)));
        assert_eq!(t.nodes[(c - 1) as usize].proof, None);
        assert_eq!(t.proven_child(), Some(5));
        t.advance(5, 0);
        assert!(t.root_proven());
        assert_eq!(t.proven_child(), Some(1));
    }

    /// Root (player 0) with moves 0 and 1; below move 0, player 1 wins at once.
    fn two_player_tree() -> (Tree, u32, u32) {
        let mut t = Tree::new(0);
        let logits = [0.0; 8];
        t.expand(0, 0, &[0, 1], &logits, 0.0);
        let (a0, a1) = (t.children(0).start as u32, t.children(0).start as u32 + 1);
        t.expand(a0, 1, &[2, 3], &logits, 0.0);
        let g = t.children(a0).start as u32;
        t.nodes[g as usize].mover = 0;
        t.prove(g, Proof::WIN);
        (t, a0, a1)
    }

    #[test]
    fn an_opponent_win_proves_a_loss_that_selection_avoids() {
        let (mut t, a0, a1) = two_player_tree();
        assert_eq!(t.nodes[a0 as usize].proof, Some(Proof::exact(-1, 1)));
        assert!(!t.root_proven() && t.proven_lost(0) && !t.proven_lost(1));
        t.nodes[0].visits = 10;
        t.nodes[a1 as usize].prior = 0.001;
        assert_eq!(t.select_child(0, 1.5, 0.0), a1);
        // A draw behind move 1 proves the root: the draw beats the loss.
        t.prove(a1, Proof::exact(0, 0));
        assert!(t.root_proven());
        assert_eq!(t.proven_child(), Some(1));
        assert_eq!(t.nodes[0].proof, Some(Proof::exact(0, 1)));
    }

    #[test]
    fn proven_moves_prefer_sooner_wins_and_later_losses() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1, 2], &[0.0; 3], 0.0);
        let c = t.children(0).start;
        t.nodes[c].visits = 50;
        t.prove(c as u32, Proof::exact(1, 5));
        assert_eq!(t.proven_child(), Some(0));
        t.prove(c as u32 + 1, Proof::exact(1, 3));
        assert_eq!(t.proven_child(), Some(1));
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1, 2], &[0.0; 3], 0.0);
        for (k, plies) in [2, 6, 4].into_iter().enumerate() {
            assert!(!t.root_proven());
            t.prove((c + k) as u32, Proof::exact(-1, plies));
        }
        assert_eq!(t.proven_child(), Some(1));
    }

    /// A win proven along one line settles the root only when nothing can
    /// beat it: an immediate win, every move proven, or any puzzle success.
    #[test]
    fn a_distant_proven_win_leaves_the_move_open_until_nothing_can_be_sooner() {
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1, 2], &[0.0; 3], 0.0);
        let c = t.children(0).start as u32;
        t.prove(c, Proof::exact(1, 4));
        assert_eq!(t.proven_child(), Some(0));
        assert_eq!(t.settled_child(false), None);
        assert_eq!(t.settled_child(true), Some(0));
        assert_eq!(t.best_proven(), Some((0, Proof::exact(1, 4))));
        assert_eq!(Proof::exact(1, 4).discounted(0.5), 0.0625);
        t.prove(c + 1, Proof::exact(-1, 1));
        assert_eq!(t.settled_child(false), None);
        t.prove(c + 2, Proof::exact(1, 2));
        assert_eq!(t.settled_child(false), Some(2));
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0, 1], &[0.0; 2], 0.0);
        let c = t.children(0).start as u32;
        t.prove(c + 1, Proof::exact(1, 0));
        assert_eq!(t.settled_child(false), Some(1));
        t.prove(c, Proof::exact(-1, 3));
        assert_eq!(t.best_proven(), Some((1, Proof::WIN)));
    }

    /// A win proven along one line while a sibling is open bounds its
    /// distance: proofs built on it are inexact and leave the root
    /// unsettled, until the open line is proven and the proofs above it
    /// are proven again, sooner and exact.
    #[test]
    fn a_bounded_win_is_proven_again_when_a_sooner_one_is_found() {
        let logits = [0.0; 8];
        // Root (player 0) -> a (player 1) -> g1, g2 (player 0) -> y1, y2.
        let mut t = Tree::new(0);
        t.expand(0, 0, &[0], &logits, 0.0);
        let a = t.children(0).start as u32;
        t.expand(a, 1, &[0, 1], &logits, 0.0);
        let (g1, g2) = (t.children(a).start as u32, t.children(a).start as u32 + 1);
        t.expand(g1, 0, &[0, 1], &logits, 0.0);
        let (y1, y2) = (t.children(g1).start as u32, t.children(g1).start as u32 + 1);
        t.prove(y1, Proof::exact(1, 2));
        let bounded = Proof {
            value: 1,
            plies: 3,
            exact: false,
        };
        // For player 1, who chose g1: a loss within 3 plies, maybe sooner.
        assert_eq!(
            t.nodes[g1 as usize].proof,
            Some(Proof {
                value: -1,
                ..bounded
            })
        );
        t.prove(g2, Proof::exact(-1, 1));
        // Every reply of player 1 loses: a is a win for player 0, bounded.
        assert_eq!(
            t.nodes[a as usize].proof,
            Some(Proof {
                value: 1,
                plies: 4,
                exact: false
            })
        );
        assert_eq!(t.settled_child(false), None);
        assert_eq!(t.proven_child(), Some(0));
        // All of a's children are lost for its mover: PUCT picks among them.
        t.nodes[a as usize].visits = 4;
        t.nodes[g1 as usize].prior = 0.1;
        t.nodes[g2 as usize].prior = 0.9;
        assert_eq!(t.select_child(a, 1.5, 0.0), g2);
        // Player 0 wins at once along y2: g1 and a are proven again, exact.
        t.prove(y2, Proof::WIN);
        assert_eq!(t.nodes[g1 as usize].proof, Some(Proof::exact(-1, 1)));
        assert_eq!(t.nodes[a as usize].proof, Some(Proof::exact(1, 2)));
        assert_eq!(t.settled_child(false), Some(0));
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
