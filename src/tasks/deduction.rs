//! Deduction: chain Horn rules from known facts to a goal within a budget.
//!
//! # Rules
//!
//! A task has `atoms` propositions named by [`ATOM_NAMES`] (`ash`, `bee`,
//! `cat`, ...; atom `i` is always `ATOM_NAMES[i]`), a set of initial facts,
//! up to [`MAX_RULES`] Horn rules `body => head` (a body is 1..=3 distinct
//! atoms, the head another atom), a goal atom and a budget of rule firings.
//!
//! Action `r` (so [`ACTION_DIM`] = [`MAX_RULES`]) fires rule `r`: it is legal
//! when every body atom is derived and the head is not, and it derives the
//! head. The episode succeeds as soon as the goal is derived, and fails when
//! the budget is spent or no rule can fire. Derivation is monotone, so every
//! firing adds one atom and an episode lasts at most `atoms` steps.
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! The generator first builds a proof backwards from the goal: each proof
//! atom gets one rule whose body mixes initial facts, new proof atoms and
//! (for DAG sharing) proof atoms created after it, until `depth` atoms need
//! deriving. The remaining atoms are distractors: dead-end rules derive
//! them from facts, proof atoms and other distractors, and detour rules
//! offer the proof atoms alternative routes through distractors (longer, or
//! blocked by an underivable atom). Facts the proof does not use are
//! distractor facts. [`solve`] then measures the true shortest derivation,
//! which must reach the band's minimum depth, and the budget is that
//! optimum plus the band's slack.
//!
//! | difficulty   | atoms | facts | depth (min firings) | rules | budget slack |
//! |--------------|-------|-------|---------------------|-------|--------------|
//! | [0.0, 0.2)   | 6     | 2     | 1..=2               | 4     | 3            |
//! | [0.2, 0.4)   | 9     | 3     | 2..=3               | 7     | 2            |
//! | [0.4, 0.6)   | 13    | 3     | 3..=4               | 12    | 2            |
//! | [0.6, 0.8)   | 18    | 4     | 4..=6               | 18    | 1            |
//! | [0.8, 1.0]   | 24    | 5     | 6..=8               | 28    | 0            |
//!
//! Atom roles and rule order are shuffled, so neither names nor action
//! indices reveal the proof. Rejected draws are retried from the same seeded
//! stream (a task is a pure function of `(difficulty, seed)`); after
//! [`MAX_ATTEMPTS`] misses the deepest draw seen is kept, which the tests
//! check does not happen in practice.
//!
//! # Observation ([`OBS_DIM`] = 452 floats, all within `[-4, 4]`)
//!
//! Costs are delete-relaxation estimates from the current derived set:
//! `h_add(a)` (sum of body costs + 1, an over-estimate under sharing) and
//! `h_max(a)` (max of body costs + 1, a lower bound on firings). The
//! *relaxed plan* is FF's (Hoffmann & Nebel 2001): from the goal back, each
//! underived atom takes its cheapest rule under `h_add`. Derivation has no
//! deletes, so that plan is a real derivation and its size `h_ff` bounds the
//! optimum from above: with `h_max <= optimum <= h_ff`, the two slacks below
//! tell "doomed" (negative lower-bound slack) from "a plan fits" (plan
//! slack at least 0), which one clamped slack could not; both verdicts come as
//! flags, since a small network reads a flag far more easily than the sign
//! of a scaled difference. `rel(a)` is
//! `1 / (1 + hops)` where `hops` counts rules from `a` forward to the goal in
//! the rule graph (0 when `a` cannot contribute to the goal). Costs are
//! scaled by `/8` and capped at 4 (4 = underivable).
//!
//! | index        | feature                                                      |
//! |--------------|--------------------------------------------------------------|
//! | 0            | steps taken / budget                                         |
//! | 1            | `min(budget left, 32) / 8`                                   |
//! | 2            | `h_add(goal)` scaled                                         |
//! | 3            | `h_max(goal)` scaled                                         |
//! | 4            | `min(fireable rules, 32) / 8`                                |
//! | 5            | derived atoms / 24                                           |
//! | 6            | `clamp((budget left - h_max(goal)) / 8, -4, 4)` (< 0: doomed; -4 when underivable) |
//! | 7            | goal still derivable (1/0)                                   |
//! | 8            | `clamp((budget left - h_ff(goal)) / 8, -4, 4)` (>= 0: the relaxed plan fits; -4 when underivable) |
//! | 9            | `h_ff(goal)` scaled                                          |
//! | 10           | the relaxed plan fits the budget left (1/0)                  |
//! | 11           | doomed: underivable, or `h_max(goal)` > budget left (1/0)    |
//! | 12 + 5a..    | atom `a` (0..24): present, derived, is goal, `h_add(a)` scaled, `rel(a)` |
//! | 132 + 10r..  | rule `r` (0..32, action order): present, fireable, head derived, head is goal, body size / 3, underived body atoms / 3, `rel(head)`, `(1 + sum of body h_add)` scaled, in the relaxed plan, fireable and in the relaxed plan (FF's helpful action) |
//!
//! The rule block lines up with the action space, so a small MLP can read
//! "fireable and close to the goal" per action directly.

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Most atoms a task may have (one bit each in a `u32`).
pub const MAX_ATOMS: usize = 24;
/// Most rules a task may have; one action per rule.
pub const MAX_RULES: usize = 32;
/// Most atoms in a rule body.
pub const MAX_BODY: usize = 3;
/// One action per rule slot.
pub const ACTION_DIM: usize = MAX_RULES;
/// Generator retries before settling for the best draw seen.
pub const MAX_ATTEMPTS: usize = 200;

/// Readable atom names with distinct initials, atom `i` = `ATOM_NAMES[i]`.
pub const ATOM_NAMES: [&str; MAX_ATOMS] = [
    "ash", "bee", "cat", "dew", "elm", "fog", "gem", "hay", "ink", "jam", "kelp", "lark", "moss",
    "nut", "oak", "pine", "quill", "reed", "sand", "tide", "urn", "vine", "wolf", "yak",
];

const GLOBAL_FEATURES: usize = 12;
const ATOM_FEATURES: usize = 5;
const RULE_FEATURES: usize = 10;
const ATOM_BASE: usize = GLOBAL_FEATURES;
const RULE_BASE: usize = ATOM_BASE + MAX_ATOMS * ATOM_FEATURES;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = RULE_BASE + MAX_RULES * RULE_FEATURES;
const _: () = assert!(OBS_DIM <= 512, "the brief caps deduction at 512 features");

/// Cost standing for "not derivable" in the relaxed heuristics.
const INF: u32 = u32::MAX;
/// Cap on heuristic sums so that `h_add` stays small and overflow-free.
const COST_CAP: u32 = 1000;

/// A Horn rule: `body` is a bit set of atoms, `head` one atom not in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    pub body: u32,
    pub head: u8,
}

impl Rule {
    fn head_bit(self) -> u32 {
        1 << self.head
    }

    /// Body atoms, ascending.
    pub fn body_atoms(self) -> impl Iterator<Item = usize> {
        atoms_of(self.body)
    }
}

/// Atoms of a bit set, ascending.
fn atoms_of(set: u32) -> impl Iterator<Item = usize> {
    (0..MAX_ATOMS).filter(move |&a| set & (1 << a) != 0)
}

/// `"ash and bee => cat"`.
fn rule_text(rule: Rule) -> String {
    let body: Vec<&str> = rule.body_atoms().map(|a| ATOM_NAMES[a]).collect();
    format!(
        "{} => {}",
        body.join(" and "),
        ATOM_NAMES[usize::from(rule.head)]
    )
}

/// A live Deduction episode. Fixed-size with no heap data, so MCTS can
/// clone it cheaply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deduction {
    atoms: u8,
    facts: u32,
    rules: [Rule; MAX_RULES],
    num_rules: u8,
    goal: u8,
    budget: u8,
    derived: u32,
    /// Rules fired so far, in order.
    history: [u8; MAX_ATOMS],
    steps: u8,
}

impl Deduction {
    /// Start state. `facts` and rule bodies are bit sets over `0..atoms`.
    /// The error names the bad field and what was expected.
    pub fn new(
        atoms: usize,
        facts: u32,
        rules: &[Rule],
        goal: usize,
        budget: usize,
    ) -> Result<Self, String> {
        if !(1..=MAX_ATOMS).contains(&atoms) {
            return Err(format!(
                "atoms: expected an integer in 1..={MAX_ATOMS}, got {atoms}"
            ));
        }
        let all = (1u32 << atoms) - 1;
        if facts == 0 || facts & !all != 0 {
            return Err(format!(
                "facts: expected 1..={atoms} distinct atoms in 0..{atoms}"
            ));
        }
        if !(1..=MAX_RULES).contains(&rules.len()) {
            return Err(format!(
                "rules: expected 1..={MAX_RULES} rules, got {}",
                rules.len()
            ));
        }
        for (k, rule) in rules.iter().enumerate() {
            check_rule(k, *rule, atoms)?;
            if rules[..k].contains(rule) {
                return Err(format!("rules[{k}]: expected distinct rules, got a repeat"));
            }
        }
        if goal >= atoms {
            return Err(format!("goal: expected an atom in 0..{atoms}, got {goal}"));
        }
        if !(1..=MAX_ATOMS).contains(&budget) {
            return Err(format!(
                "budget: expected an integer in 1..={MAX_ATOMS}, got {budget}"
            ));
        }
        let mut slots = [Rule::default(); MAX_RULES];
        slots[..rules.len()].copy_from_slice(rules);
        Ok(Deduction {
            atoms: atoms as u8,
            facts,
            rules: slots,
            num_rules: rules.len() as u8,
            goal: goal as u8,
            budget: budget as u8,
            derived: facts,
            history: [0; MAX_ATOMS],
            steps: 0,
        })
    }

    /// Parses `{"atoms":6,"facts":[0,1],"rules":[{"body":[0,1],"head":2}],"goal":2,"budget":3}`.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        const SHAPE: &str = r#"{"atoms":1..=24,"facts":[atom,..],"rules":[{"body":[1..=3 atoms],"head":atom},..],"goal":atom,"budget":1..=24}"#;
        const FIELDS: [&str; 5] = ["atoms", "facts", "rules", "goal", "budget"];
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SHAPE}, got {value}"))?;
        if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only {FIELDS:?}"
            ));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| format!("{name}: missing; expected {SHAPE}"))
        };
        let atoms = json_int("atoms", field("atoms")?, 1, MAX_ATOMS)?;
        let facts = json_atom_set("facts", field("facts")?, atoms, 1, atoms)?;
        let rules = json_rules(field("rules")?, atoms)?;
        let goal = json_int("goal", field("goal")?, 0, atoms - 1)?;
        let budget = json_int("budget", field("budget")?, 1, MAX_ATOMS)?;
        Deduction::new(atoms, facts, &rules, goal, budget)
    }

    /// The start state's spec, so `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        let rules: Vec<String> = self
            .rules()
            .iter()
            .map(|r| {
                format!(
                    "{{\"body\":[{}],\"head\":{}}}",
                    join_atoms(r.body, ","),
                    r.head
                )
            })
            .collect();
        format!(
            "{{\"atoms\":{},\"facts\":[{}],\"rules\":[{}],\"goal\":{},\"budget\":{}}}",
            self.atoms,
            join_atoms(self.facts, ","),
            rules.join(","),
            self.goal,
            self.budget
        )
    }

    pub fn atoms(&self) -> usize {
        usize::from(self.atoms)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules[..usize::from(self.num_rules)]
    }

    pub fn goal(&self) -> usize {
        usize::from(self.goal)
    }

    pub fn budget(&self) -> usize {
        usize::from(self.budget)
    }

    /// Initial facts, as a bit set.
    pub fn facts(&self) -> u32 {
        self.facts
    }

    /// Atoms known now (facts plus derived heads), as a bit set.
    pub fn derived(&self) -> u32 {
        self.derived
    }

    /// Rules fired so far, in order.
    pub fn history(&self) -> &[u8] {
        &self.history[..usize::from(self.steps)]
    }

    /// Whether rule `r` exists and its body is known but its head is not
    /// (ignores whether the episode is over).
    fn fireable(&self, r: usize) -> bool {
        r < usize::from(self.num_rules) && can_fire(self.rules[r], self.derived)
    }

    fn budget_spent(&self) -> bool {
        self.steps >= self.budget
    }

    /// Whether `action` may be played now.
    pub fn is_legal(&self, action: Action) -> bool {
        !self.is_success() && !self.budget_spent() && self.fireable(usize::from(action))
    }

    /// Fireable rules, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        if self.is_success() || self.budget_spent() {
            return;
        }
        out.extend(
            (0..self.num_rules)
                .filter(|&r| self.fireable(usize::from(r)))
                .map(Action::from),
        );
    }

    /// Fires a legal rule. An illegal action is a bug (debug assert) and is
    /// ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let legal = self.is_legal(action);
        debug_assert!(legal, "illegal action {action} in {}", self.render());
        if !legal {
            return;
        }
        let r = usize::from(action);
        self.derived |= self.rules[r].head_bit();
        self.history[usize::from(self.steps)] = r as u8;
        self.steps += 1;
    }

    /// The verifier: the goal atom is derived. Steps never exceed the
    /// budget, so a derived goal was reached within it.
    pub fn is_success(&self) -> bool {
        self.derived & (1 << self.goal) != 0
    }

    pub fn is_terminal(&self) -> bool {
        self.is_success() || self.budget_spent() || !(0..MAX_RULES).any(|r| self.fireable(r))
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let h_add = relaxed_costs(self.rules(), self.derived, |a, b| a.saturating_add(b));
        let h_max = relaxed_costs(self.rules(), self.derived, u32::max);
        let rel = goal_hops(self.rules(), self.goal());
        let goal = self.goal();
        let plan = relaxed_plan(self.rules(), self.derived, goal, &h_add);
        let left = u32::from(self.budget.saturating_sub(self.steps));
        let fireable = (0..MAX_RULES).filter(|&r| self.fireable(r)).count();
        out[0] = f32::from(self.steps) / f32::from(self.budget);
        out[1] = left.min(32) as f32 / 8.0;
        out[2] = scaled_cost(h_add[goal]);
        out[3] = scaled_cost(h_max[goal]);
        out[4] = fireable as f32 / 8.0;
        out[5] = self.derived.count_ones() as f32 / MAX_ATOMS as f32;
        let slack = |need: u32| ((left as f32 - need as f32) / 8.0).clamp(-4.0, 4.0);
        out[6] = -4.0;
        out[8] = -4.0;
        out[9] = 4.0;
        out[11] = 1.0;
        if h_max[goal] != INF {
            let h_ff = plan.count_ones();
            out[6] = slack(h_max[goal]);
            out[7] = 1.0;
            out[8] = slack(h_ff);
            out[9] = scaled_cost(h_ff);
            out[10] = flag(h_ff <= left);
            out[11] = flag(h_max[goal] > left);
        }
        for a in 0..self.atoms() {
            let f = &mut out[ATOM_BASE + a * ATOM_FEATURES..][..ATOM_FEATURES];
            f[0] = 1.0;
            f[1] = flag(self.derived & (1 << a) != 0);
            f[2] = flag(a == goal);
            f[3] = scaled_cost(h_add[a]);
            f[4] = relevance(rel[a]);
        }
        for (r, &rule) in self.rules().iter().enumerate() {
            let f = &mut out[RULE_BASE + r * RULE_FEATURES..][..RULE_FEATURES];
            let head = usize::from(rule.head);
            let body_cost = rule
                .body_atoms()
                .fold(1u32, |c, b| c.saturating_add(h_add[b]));
            f[0] = 1.0;
            f[1] = flag(self.fireable(r));
            f[2] = flag(self.derived & rule.head_bit() != 0);
            f[3] = flag(head == goal);
            f[4] = rule.body.count_ones() as f32 / 3.0;
            f[5] = (rule.body & !self.derived).count_ones() as f32 / 3.0;
            f[6] = relevance(rel[head]);
            f[7] = scaled_cost(body_cost);
            f[8] = flag(plan & (1 << r) != 0);
            f[9] = flag(plan & (1 << r) != 0 && self.fireable(r));
        }
    }

    /// Human label of an action, e.g. `"ash and bee => cat"`.
    pub fn label(&self, action: Action) -> String {
        match self.rules().get(usize::from(action)) {
            Some(&rule) => rule_text(rule),
            None => format!("illegal action {action}"),
        }
    }

    /// A status line, then one line per rule marked `fired`, `ready` (can
    /// fire) or `done` (head already known), then the verdict if over.
    pub fn render(&self) -> String {
        let mut s = format!(
            "goal {} | firings {}/{} | known: {}\n",
            ATOM_NAMES[self.goal()],
            self.steps,
            self.budget,
            join_names(self.derived)
        );
        for (r, &rule) in self.rules().iter().enumerate() {
            let mark = if self.history().contains(&(r as u8)) {
                "fired"
            } else if self.fireable(r) {
                "ready"
            } else if self.derived & rule.head_bit() != 0 {
                "done"
            } else {
                ""
            };
            s.push_str(&format!("{:>2}. {:<28} {mark}\n", r + 1, rule_text(rule)));
        }
        match self.outcome() {
            Some(Outcome::Success) => s.push_str("solved\n"),
            Some(_) if self.budget_spent() => s.push_str("out of budget\n"),
            Some(_) => s.push_str("stuck\n"),
            None => {}
        }
        s
    }

    /// Human statement of the task (start state).
    pub fn statement(&self) -> String {
        let rules: Vec<String> = self
            .rules()
            .iter()
            .enumerate()
            .map(|(r, &rule)| format!("({}) {}", r + 1, rule_text(rule)))
            .collect();
        format!(
            "Known facts: {}. Rules: {}. Derive {} by firing at most {} rules (a rule fires when all its conditions are known and adds its conclusion).",
            join_names(self.facts),
            rules.join("; "),
            ATOM_NAMES[self.goal()],
            self.budget
        )
    }
}

fn can_fire(rule: Rule, derived: u32) -> bool {
    rule.body & !derived == 0 && derived & rule.head_bit() == 0
}

/// A relaxed cost `/8`, capped at 4 (4 also stands for "underivable").
fn scaled_cost(c: u32) -> f32 {
    if c == INF {
        4.0
    } else {
        (c as f32 / 8.0).min(4.0)
    }
}

/// `1 / (1 + hops)` to the goal, 0 when unreachable.
fn relevance(hops: u32) -> f32 {
    if hops == INF {
        0.0
    } else {
        1.0 / (1.0 + hops as f32)
    }
}

/// Fixpoint of `cost(head) = 1 + combine(body costs)` with derived atoms at
/// 0: `h_add` when `combine` sums, `h_max` when it takes the maximum.
fn relaxed_costs(rules: &[Rule], derived: u32, combine: fn(u32, u32) -> u32) -> [u32; MAX_ATOMS] {
    let mut cost = [INF; MAX_ATOMS];
    for a in atoms_of(derived) {
        cost[a] = 0;
    }
    loop {
        let mut changed = false;
        for rule in rules {
            let mut c = 0u32;
            for b in rule.body_atoms() {
                if cost[b] == INF {
                    c = INF;
                    break;
                }
                c = combine(c, cost[b]);
            }
            if c == INF {
                continue;
            }
            let c = (c + 1).min(COST_CAP);
            let head = usize::from(rule.head);
            if c < cost[head] {
                cost[head] = c;
                changed = true;
            }
        }
        if !changed {
            return cost;
        }
    }
}

/// FF's relaxed plan as a bit set of rule indices: from the goal back, each
/// underived atom takes the rule with the cheapest body under `h_add`
/// (lowest index on ties), whose underived body atoms follow. Best
/// supporters have strictly cheaper bodies, so the plan is acyclic and can
/// fire in order: its size bounds the optimal firings from above. Empty when
/// the goal is derived or underivable.
fn relaxed_plan(rules: &[Rule], derived: u32, goal: usize, h_add: &[u32; MAX_ATOMS]) -> u32 {
    if h_add[goal] == INF {
        return 0;
    }
    let body_cost = |rule: &Rule| {
        rule.body_atoms()
            .try_fold(0u32, |c, b| (h_add[b] != INF).then(|| c.saturating_add(h_add[b])))
    };
    let (mut plan, mut seen) = (0u32, derived);
    let mut stack = [0usize; MAX_ATOMS];
    let mut len = 0;
    if seen & (1 << goal) == 0 {
        seen |= 1 << goal;
        stack[0] = goal;
        len = 1;
    }
    while len > 0 {
        len -= 1;
        let atom = stack[len];
        let best = (0..rules.len())
            .filter(|&r| usize::from(rules[r].head) == atom)
            .filter_map(|r| body_cost(&rules[r]).map(|c| (c, r)))
            .min();
        let Some((_, r)) = best else { continue };
        plan |= 1 << r;
        for b in rules[r].body_atoms() {
            if seen & (1 << b) == 0 {
                seen |= 1 << b;
                stack[len] = b;
                len += 1;
            }
        }
    }
    plan
}

/// Fewest rule hops from each atom forward to the goal (goal = 0, INF when
/// the atom appears in no rule chain ending at the goal).
fn goal_hops(rules: &[Rule], goal: usize) -> [u32; MAX_ATOMS] {
    let mut hops = [INF; MAX_ATOMS];
    hops[goal] = 0;
    loop {
        let mut changed = false;
        for rule in rules {
            let h = hops[usize::from(rule.head)];
            if h == INF {
                continue;
            }
            for b in rule.body_atoms() {
                if h + 1 < hops[b] {
                    hops[b] = h + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            return hops;
        }
    }
}

/// `Ok(())` if rule `k` is well formed over `0..atoms`, else an error naming it.
fn check_rule(k: usize, rule: Rule, atoms: usize) -> Result<(), String> {
    let all = (1u32 << atoms) - 1;
    let n = rule.body.count_ones() as usize;
    if !(1..=MAX_BODY).contains(&n) || rule.body & !all != 0 {
        return Err(format!(
            "rules[{k}].body: expected 1..={MAX_BODY} distinct atoms in 0..{atoms}"
        ));
    }
    if usize::from(rule.head) >= atoms {
        return Err(format!(
            "rules[{k}].head: expected an atom in 0..{atoms}, got {}",
            rule.head
        ));
    }
    if rule.body & rule.head_bit() != 0 {
        return Err(format!(
            "rules[{k}].head: expected an atom not in the body, got {}",
            rule.head
        ));
    }
    Ok(())
}

/// A JSON integer in `min..=max`, or an error naming `field`.
fn json_int(
    field: &str,
    value: &serde_json::Value,
    min: usize,
    max: usize,
) -> Result<usize, String> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{field}: expected an integer in {min}..={max}, got {value}"))
}

/// A JSON array of `min..=max` distinct atoms in `0..atoms`, as a bit set.
fn json_atom_set(
    field: &str,
    value: &serde_json::Value,
    atoms: usize,
    min: usize,
    max: usize,
) -> Result<u32, String> {
    let list = value.as_array().ok_or_else(|| {
        format!("{field}: expected an array of {min}..={max} distinct atoms in 0..{atoms}")
    })?;
    if !(min..=max).contains(&list.len()) {
        return Err(format!(
            "{field}: expected {min}..={max} distinct atoms, got {} entries",
            list.len()
        ));
    }
    let mut set = 0u32;
    for (k, v) in list.iter().enumerate() {
        let a = json_int(&format!("{field}[{k}]"), v, 0, atoms - 1)?;
        if set & (1 << a) != 0 {
            return Err(format!(
                "{field}[{k}]: expected distinct atoms, got {a} twice"
            ));
        }
        set |= 1 << a;
    }
    Ok(set)
}

/// The `rules` array: objects `{"body":[..],"head":atom}`.
fn json_rules(value: &serde_json::Value, atoms: usize) -> Result<Vec<Rule>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("rules: expected an array of 1..={MAX_RULES} rules"))?;
    if !(1..=MAX_RULES).contains(&list.len()) {
        return Err(format!(
            "rules: expected 1..={MAX_RULES} rules, got {}",
            list.len()
        ));
    }
    let mut rules = Vec::with_capacity(list.len());
    for (k, v) in list.iter().enumerate() {
        let obj = v.as_object().ok_or_else(|| {
            format!("rules[{k}]: expected an object {{\"body\":[atoms],\"head\":atom}}, got {v}")
        })?;
        if let Some(key) = obj.keys().find(|key| *key != "body" && *key != "head") {
            return Err(format!(
                "rules[{k}]: unknown field \"{key}\"; expected only \"body\" and \"head\""
            ));
        }
        let body = obj
            .get("body")
            .ok_or_else(|| format!("rules[{k}].body: missing; expected 1..={MAX_BODY} atoms"))?;
        let body = json_atom_set(&format!("rules[{k}].body"), body, atoms, 1, MAX_BODY)?;
        let head = obj
            .get("head")
            .ok_or_else(|| format!("rules[{k}].head: missing; expected an atom in 0..{atoms}"))?;
        let head = json_int(&format!("rules[{k}].head"), head, 0, atoms - 1)?;
        rules.push(Rule {
            body,
            head: head as u8,
        });
    }
    Ok(rules)
}

/// Atom indices of a set joined by `sep`, e.g. `"0,3"`.
fn join_atoms(set: u32, sep: &str) -> String {
    atoms_of(set)
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Atom names of a set, e.g. `"ash, dew"`.
fn join_names(set: u32) -> String {
    atoms_of(set)
        .map(|a| ATOM_NAMES[a])
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// Atoms that can matter for the goal: the goal, and every body atom of a
/// rule whose head matters.
fn relevant_atoms(rules: &[Rule], goal: usize) -> u32 {
    let mut rel = 1u32 << goal;
    loop {
        let next = rules
            .iter()
            .filter(|r| rel & r.head_bit() != 0)
            .fold(rel, |acc, r| acc | r.body);
        if next == rel {
            return rel;
        }
        rel = next;
    }
}

/// Everything derivable from `derived` with no budget.
fn closure(rules: &[Rule], mut derived: u32) -> u32 {
    loop {
        let next = rules
            .iter()
            .filter(|r| r.body & !derived == 0)
            .fold(derived, |acc, r| acc | r.head_bit());
        if next == derived {
            return derived;
        }
        derived = next;
    }
}

/// Shortest derivation of the goal from the state's current derived set
/// (ignoring the budget), as rule indices in firing order: `Some(vec![])`
/// when the goal is known, `None` when it is underivable.
///
/// Breadth-first search over derived sets, so the first set holding the
/// goal is reached by a fewest-firings sequence. Only rules whose head is
/// relevant to the goal and not yet known are fired: any other firing can
/// be dropped from a derivation without breaking it, so the pruning keeps
/// the search exact. Sets are deduplicated, so firing orders that reach the
/// same set are explored once.
pub fn solve(state: &Deduction) -> Option<Vec<usize>> {
    let rules = state.rules();
    let goal_bit = 1u32 << state.goal();
    let start = state.derived;
    if start & goal_bit != 0 {
        return Some(Vec::new());
    }
    if closure(rules, start) & goal_bit == 0 {
        return None;
    }
    let rel = relevant_atoms(rules, state.goal());
    let useful: Vec<(usize, Rule)> = rules
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, r)| rel & r.head_bit() != 0 && start & r.head_bit() == 0)
        .collect();
    // Set -> (parent set, rule fired to reach it).
    let mut parent: HashMap<u32, (u32, u8)> = HashMap::new();
    let mut layer = vec![start];
    while !layer.is_empty() {
        let mut next = Vec::new();
        for &set in &layer {
            for &(r, rule) in &useful {
                if !can_fire(rule, set) {
                    continue;
                }
                let child = set | rule.head_bit();
                if child == start || parent.contains_key(&child) {
                    continue;
                }
                parent.insert(child, (set, r as u8));
                if child & goal_bit != 0 {
                    return Some(unwind(&parent, start, child));
                }
                next.push(child);
            }
        }
        layer = next;
    }
    None
}

/// The rule sequence from `start` to `end` recorded in `parent`.
fn unwind(parent: &HashMap<u32, (u32, u8)>, start: u32, mut end: u32) -> Vec<usize> {
    let mut path = Vec::new();
    while end != start {
        let Some(&(prev, r)) = parent.get(&end) else {
            break;
        };
        path.push(usize::from(r));
        end = prev;
    }
    path.reverse();
    path
}

/// `"ash and bee => cat; cat => dew"` for rule indices of `state`.
pub fn format_solution(state: &Deduction, rules: &[usize]) -> String {
    rules
        .iter()
        .filter_map(|&r| state.rules().get(r))
        .map(|&rule| rule_text(rule))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// Checks human text like `"ash and bee => cat; cat => dew"` against the
/// task in `spec`, independently of the game's step logic. Steps are
/// separated by `;` or newlines; a body's atoms by `and`, `&` or `,` in any
/// order; the arrow may be `=>`, `->` or `→`; atom names ignore case. Each
/// step must be a rule of the task whose body is known and whose head is
/// not yet known; the solution is correct when the goal becomes known on
/// the last step and the number of steps is within the budget (an empty
/// solution passes only if the goal is an initial fact).
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(task) = Deduction::from_spec(spec) else {
        return false;
    };
    let goal = 1u32 << task.goal();
    let mut known = task.facts;
    let mut steps = 0usize;
    for text in solution.split([';', '\n']) {
        if text.trim().is_empty() {
            continue;
        }
        let Some(step) = parse_step(text, task.atoms()) else {
            return false;
        };
        let in_task = task.rules().contains(&step);
        let fresh = step.body & !known == 0 && known & step.head_bit() == 0;
        if !in_task || !fresh || known & goal != 0 {
            return false;
        }
        known |= step.head_bit();
        steps += 1;
    }
    known & goal != 0 && steps <= task.budget()
}

/// Parses `"ash and bee => cat"` into a rule over `0..atoms`.
fn parse_step(text: &str, atoms: usize) -> Option<Rule> {
    let text = text.to_lowercase();
    let (body, head) = ["=>", "->", "→"]
        .iter()
        .find_map(|arrow| text.split_once(arrow))?;
    let head = atom_by_name(head, atoms)?;
    let mut set = 0u32;
    for word in body
        .replace('&', ",")
        .split(',')
        .flat_map(|part| part.split(" and "))
    {
        let a = atom_by_name(word, atoms)?;
        if set & (1 << a) != 0 {
            return None;
        }
        set |= 1 << a;
    }
    let n = set.count_ones() as usize;
    let rule = Rule {
        body: set,
        head: head as u8,
    };
    ((1..=MAX_BODY).contains(&n) && set & rule.head_bit() == 0).then_some(rule)
}

/// The atom named `word` (trimmed, any case) among the first `atoms` names.
fn atom_by_name(word: &str, atoms: usize) -> Option<usize> {
    let word = word.trim();
    ATOM_NAMES[..atoms]
        .iter()
        .position(|name| name.eq_ignore_ascii_case(word))
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    atoms: usize,
    facts: usize,
    depth: (usize, usize),
    rules: usize,
    slack: usize,
}

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { atoms: 6, facts: 2, depth: (1, 2), rules: 4, slack: 3 },
    Band { atoms: 9, facts: 3, depth: (2, 3), rules: 7, slack: 2 },
    Band { atoms: 13, facts: 3, depth: (3, 4), rules: 12, slack: 2 },
    Band { atoms: 18, facts: 4, depth: (4, 6), rules: 18, slack: 1 },
    Band { atoms: 24, facts: 5, depth: (6, 8), rules: 28, slack: 0 },
];

/// Share of distractor rules that derive a distractor atom (the rest are
/// detours into the proof atoms).
const DEAD_END_PROB: f32 = 0.6;

/// `difficulty` clamped to `[0, 1]`, NaN -> 0.
pub fn clamp_difficulty(difficulty: f32) -> f32 {
    if difficulty.is_nan() {
        0.0
    } else {
        difficulty.clamp(0.0, 1.0)
    }
}

fn band_for(difficulty: f32) -> &'static Band {
    let k = (clamp_difficulty(difficulty) * BANDS.len() as f32) as usize;
    &BANDS[k.min(BANDS.len() - 1)]
}

/// A generated task. Pure function of `(difficulty, seed)`; see the module
/// docs for the difficulty table.
pub fn generate(difficulty: f32, seed: u64) -> Task {
    let difficulty = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (game, solution) = pick_task(band_for(difficulty), &mut rng);
    Task {
        task_id: format!("deduction-{seed:016x}"),
        family: Family::Deduction,
        difficulty,
        seed,
        statement: game.statement(),
        spec: game.to_spec(),
        reference_solution: format_solution(&game, &solution),
        optimal_steps: Some(solution.len() as u32),
    }
}

/// Draws until a task reaches the band's minimum depth; after
/// [`MAX_ATTEMPTS`] keeps the deepest draw.
fn pick_task(band: &Band, rng: &mut ChaCha8Rng) -> (Deduction, Vec<usize>) {
    let mut best: Option<(Deduction, Vec<usize>)> = None;
    for attempt in 0.. {
        if attempt >= MAX_ATTEMPTS {
            if let Some(found) = best.take() {
                return found;
            }
        }
        let Some((atoms, facts, rules, goal)) = draw_problem(band, rng) else {
            continue;
        };
        // The budget is set once the optimum is known; MAX_ATOMS is a placeholder.
        let Ok(probe) = Deduction::new(atoms, facts, &rules, goal, MAX_ATOMS) else {
            continue;
        };
        let Some(solution) = solve(&probe) else {
            continue;
        };
        let budget = (solution.len() + band.slack).min(MAX_ATOMS);
        let Ok(game) = Deduction::new(atoms, facts, &rules, goal, budget) else {
            continue;
        };
        if solution.len() >= band.depth.0 {
            return (game, solution);
        }
        if best.as_ref().is_none_or(|(_, s)| solution.len() > s.len()) {
            best = Some((game, solution));
        }
    }
    unreachable!("the attempt loop only exits by returning")
}

/// Roles of the atoms while a problem is built.
struct Draft {
    facts: Vec<usize>,
    /// Proof atoms in creation order; the goal is first.
    proof: Vec<usize>,
    distractors: Vec<usize>,
    rules: Vec<Rule>,
}

/// A random problem for the band: `(atoms, facts, rules, goal)`, rules
/// shuffled. `None` if the draft came out degenerate.
fn draw_problem(band: &Band, rng: &mut ChaCha8Rng) -> Option<(usize, u32, Vec<Rule>, usize)> {
    let mut ids: Vec<usize> = (0..band.atoms).collect();
    shuffle(&mut ids, rng);
    let depth = rng.random_range(band.depth.0..=band.depth.1);
    let mut draft = Draft {
        facts: ids[..band.facts].to_vec(),
        proof: vec![ids[band.facts]],
        distractors: Vec::new(),
        rules: Vec::new(),
    };
    let mut fresh = ids[band.facts + 1..].to_vec();
    build_proof(&mut draft, depth, &mut fresh, rng);
    draft.distractors = fresh;
    let mut tries = 0;
    while draft.rules.len() < band.rules && tries < 20 * band.rules {
        tries += 1;
        if let Some(rule) = distractor_rule(&draft, rng) {
            if !draft.rules.contains(&rule) {
                draft.rules.push(rule);
            }
        }
    }
    if draft.rules.len() < band.rules {
        return None;
    }
    shuffle(&mut draft.rules, rng);
    let facts = draft.facts.iter().fold(0u32, |s, &a| s | (1 << a));
    Some((band.atoms, facts, draft.rules, draft.proof[0]))
}

/// Gives every proof atom one rule, backwards from the goal, creating new
/// proof atoms (taken from `fresh`) until there are `depth` of them. A body
/// holds facts, new proof atoms, and proof atoms created later than its
/// head, so the proof graph is acyclic and every proof atom is needed.
fn build_proof(draft: &mut Draft, depth: usize, fresh: &mut Vec<usize>, rng: &mut ChaCha8Rng) {
    let mut open = vec![0usize]; // indices into draft.proof
    while !open.is_empty() {
        let x = open.swap_remove(rng.random_range(0..open.len()));
        let size = body_size(rng);
        let mut body = 0u32;
        for slot in 0..size {
            let must_grow = slot == 0 && open.is_empty() && draft.proof.len() < depth;
            let later = &draft.proof[x + 1..];
            let roll: f32 = rng.random();
            let pick = if must_grow || (draft.proof.len() < depth && roll < 0.55) {
                let Some(a) = fresh.pop() else { break };
                draft.proof.push(a);
                open.push(draft.proof.len() - 1);
                a
            } else if !later.is_empty() && roll < 0.7 {
                later[rng.random_range(0..later.len())]
            } else {
                draft.facts[rng.random_range(0..draft.facts.len())]
            };
            body |= 1 << pick;
        }
        let head = draft.proof[x] as u8;
        draft.rules.push(Rule { body, head });
    }
}

/// 1, 2 or 3 body atoms, favouring 2.
fn body_size(rng: &mut ChaCha8Rng) -> usize {
    match rng.random_range(0..10) {
        0..=2 => 1,
        3..=7 => 2,
        _ => 3,
    }
}

/// A dead end (distractor head from any known-ish atoms) or a detour (proof
/// head through at least one distractor atom). `None` when the draw is
/// degenerate (no distractors, head in body).
fn distractor_rule(draft: &Draft, rng: &mut ChaCha8Rng) -> Option<Rule> {
    if draft.distractors.is_empty() {
        return None;
    }
    let pick = |v: &[usize], rng: &mut ChaCha8Rng| v[rng.random_range(0..v.len())];
    let dead_end = rng.random::<f32>() < DEAD_END_PROB;
    let (head, mut body) = if dead_end {
        (pick(&draft.distractors, rng), 0u32)
    } else {
        let d = pick(&draft.distractors, rng);
        (pick(&draft.proof, rng), 1u32 << d)
    };
    let size = body_size(rng);
    while (body.count_ones() as usize) < size {
        let pool = match rng.random_range(0..3) {
            0 => &draft.facts,
            1 => &draft.proof,
            _ => &draft.distractors,
        };
        body |= 1 << pick(pool, rng);
    }
    let rule = Rule {
        body,
        head: head as u8,
    };
    (body & rule.head_bit() == 0).then_some(rule)
}

/// Fisher-Yates shuffle.
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

impl Puzzle for Deduction {
    fn is_success(&self) -> bool {
        Deduction::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        Deduction::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    /// Rule from atom indices, e.g. `rule(&[0, 1], 2)`.
    fn rule(body: &[usize], head: usize) -> Rule {
        Rule {
            body: body.iter().fold(0, |s, &a| s | (1 << a)),
            head: head as u8,
        }
    }

    fn game(
        atoms: usize,
        facts: &[usize],
        rules: &[Rule],
        goal: usize,
        budget: usize,
    ) -> Deduction {
        let facts = facts.iter().fold(0, |s, &a| s | (1 << a));
        Deduction::new(atoms, facts, rules, goal, budget).expect("valid test spec")
    }

    fn legal(g: &Deduction) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// ash, bee known; goal elm. Shortest: ash&bee=>cat, cat=>elm (2).
    /// Longer: bee=>dew, ash&dew=>fog, fog=>elm (3). dew=>ash is useless.
    fn sample() -> Deduction {
        game(
            6,
            &[0, 1],
            &[
                rule(&[1], 3),
                rule(&[0, 1], 2),
                rule(&[3, 0], 5),
                rule(&[5], 4),
                rule(&[2], 4),
                rule(&[3], 0),
            ],
            4,
            3,
        )
    }

    /// Plays the rules named by `text` through the game; None if one is
    /// not a legal move.
    fn replay(spec: &str, text: &str) -> Option<Deduction> {
        let mut g = Deduction::from_spec(spec).ok()?;
        for step in text.split("; ").filter(|s| !s.is_empty()) {
            let a = legal(&g).into_iter().find(|&a| g.label(a) == step)?;
            g.step(a);
        }
        Some(g)
    }

    /// Exhaustive shortest derivation length over all firing orders.
    fn brute_force(rules: &[Rule], derived: u32, goal: usize, limit: usize) -> Option<usize> {
        if derived & (1 << goal) != 0 {
            return Some(0);
        }
        if limit == 0 {
            return None;
        }
        rules
            .iter()
            .filter(|r| can_fire(**r, derived))
            .filter_map(|r| brute_force(rules, derived | r.head_bit(), goal, limit - 1))
            .map(|d| d + 1)
            .min()
    }

    #[test]
    fn rules_fire_and_the_goal_ends_the_episode() {
        let mut g = sample();
        assert_eq!(legal(&g), vec![0, 1], "dew is unknown");
        assert_eq!(g.label(1), "ash and bee => cat");
        assert_eq!(g.label(2), "ash and dew => fog");
        assert_eq!(g.label(31), "illegal action 31");
        assert!(!g.is_legal(2) && !g.is_legal(5) && !g.is_legal(6));
        g.step(1);
        assert_eq!(g.derived(), 0b111);
        assert_eq!(legal(&g), vec![0, 4]);
        assert!(!g.is_terminal());
        assert_eq!(g.outcome(), None);
        assert_eq!(g.terminal_value(), 0.0);
        g.step(4);
        assert!(g.is_success() && g.is_terminal());
        assert_eq!(g.outcome(), Some(Outcome::Success));
        assert_eq!(g.terminal_value(), 1.0);
        assert!(legal(&g).is_empty());
        assert_eq!(g.history(), &[1, 4]);
        assert_eq!(g.to_move(), 0);
        assert!(g.render().ends_with("solved\n"));
    }

    #[test]
    fn the_budget_runs_out() {
        let mut g = sample();
        g.step(0);
        g.step(2);
        assert_eq!(legal(&g), vec![1, 3]);
        g.step(1);
        assert!(g.is_terminal() && !g.is_success());
        assert_eq!(g.outcome(), Some(Outcome::Failure));
        assert_eq!(g.terminal_value(), -1.0);
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("out of budget\n"));
    }

    #[test]
    fn no_fireable_rule_is_stuck() {
        let mut g = game(4, &[0], &[rule(&[0], 1), rule(&[2], 3)], 3, 5);
        g.step(0);
        assert!(g.is_terminal() && !g.is_success());
        assert!(legal(&g).is_empty());
        assert!(g.render().ends_with("stuck\n"));
        let known = game(3, &[0, 2], &[rule(&[0], 1)], 2, 1);
        assert!(known.is_success() && known.is_terminal(), "goal is a fact");
        assert_eq!(solve(&known), Some(vec![]));
    }

    #[test]
    fn render_marks_rules() {
        let mut g = sample();
        g.step(1);
        let text = g.render();
        assert!(text.starts_with("goal elm | firings 1/3 | known: ash, bee, cat\n"));
        assert!(text.contains(" 2. ash and bee => cat"), "{text}");
        assert!(text.contains("fired"), "{text}");
        assert!(text.contains("ready"), "{text}");
        assert!(text.contains("done"), "dew => ash: {text}");
        assert!(g
            .statement()
            .starts_with("Known facts: ash, bee. Rules: (1) bee => dew;"));
    }

    #[test]
    fn encode_is_bounded_and_informative() {
        let g = sample();
        let mut obs = vec![0.0; OBS_DIM + 3];
        g.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && (-4.0..=4.0).contains(x)));
        assert_eq!(&obs[OBS_DIM..], &[0.0; 3]);
        assert_eq!(obs[3], 2.0 / 8.0, "h_max(goal) = 2");
        assert_eq!(obs[6], 1.0 / 8.0, "budget 3, needs 2");
        assert_eq!(obs[7], 1.0);
        assert_eq!((obs[8], obs[9]), (1.0 / 8.0, 2.0 / 8.0), "plan: cat, elm");
        assert_eq!((obs[10], obs[11]), (1.0, 0.0), "the plan fits, not doomed");
        let atom = |a: usize, f: usize| obs[ATOM_BASE + a * ATOM_FEATURES + f];
        assert_eq!(atom(0, 1), 1.0, "ash known");
        assert_eq!(atom(4, 2), 1.0, "elm is the goal");
        assert_eq!(atom(2, 4), 0.5, "cat is one rule from elm");
        assert_eq!(atom(6, 0), 0.0, "only 6 atoms");
        let rule_f = |r: usize, f: usize| obs[RULE_BASE + r * RULE_FEATURES + f];
        assert_eq!(rule_f(1, 1), 1.0, "ash and bee => cat fires");
        assert_eq!(rule_f(2, 1), 0.0);
        assert_eq!(rule_f(4, 3), 1.0, "cat => elm concludes the goal");
        assert_eq!(rule_f(5, 2), 1.0, "dew => ash: ash known");
        assert_eq!(rule_f(5, 6), 1.0 / 3.0, "ash is two hops from elm");
        assert_eq!(rule_f(6, 0), 0.0, "only 6 rules");
        let in_plan: Vec<usize> = (0..6).filter(|&r| rule_f(r, 8) == 1.0).collect();
        assert_eq!(in_plan, [1, 4], "ash and bee => cat, cat => elm");
        assert_eq!((rule_f(1, 9), rule_f(4, 9)), (1.0, 0.0), "only cat's rule can fire");
        let blocked = game(3, &[0], &[rule(&[1], 2)], 2, 2);
        let mut obs = vec![0.0; OBS_DIM];
        blocked.encode(&mut obs);
        assert_eq!((obs[2], obs[3], obs[7]), (4.0, 4.0, 0.0));
        assert_eq!((obs[6], obs[8], obs[9]), (-4.0, -4.0, 4.0), "underivable");
        assert_eq!((obs[10], obs[11]), (0.0, 1.0), "underivable");
    }

    #[test]
    fn spec_round_trips() {
        let spec = r#"{"atoms":4,"facts":[1,0],"rules":[{"head":2,"body":[1,0]},{"body":[2],"head":3}],"goal":3,"budget":2}"#;
        let g = Deduction::from_spec(spec).unwrap();
        assert_eq!(
            g.to_spec(),
            r#"{"atoms":4,"facts":[0,1],"rules":[{"body":[0,1],"head":2},{"body":[2],"head":3}],"goal":3,"budget":2}"#
        );
        let mut h = Deduction::from_spec(&g.to_spec()).unwrap();
        assert_eq!(h, g);
        h.step(0);
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let ok = r#""facts":[0],"rules":[{"body":[0],"head":1}],"goal":1,"budget":2"#;
        let with = |s: &str| format!("{{{s}}}");
        let cases = [
            (String::new(), "spec"),
            ("[1]".to_string(), "spec"),
            ("null".to_string(), "spec"),
            (with(ok), "atoms"),
            (with(&format!("\"atoms\":0,{ok}")), "atoms"),
            (with(&format!("\"atoms\":25,{ok}")), "atoms"),
            (with(&format!("\"atoms\":2.5,{ok}")), "atoms"),
            (with(&format!("\"atoms\":2,{ok},\"x\":1")), "x"),
            (
                with(r#""atoms":2,"facts":[],"rules":[{"body":[0],"head":1}],"goal":1,"budget":2"#),
                "facts",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0,0],"rules":[{"body":[0],"head":1}],"goal":1,"budget":2"#,
                ),
                "facts[1]",
            ),
            (
                with(
                    r#""atoms":2,"facts":[2],"rules":[{"body":[0],"head":1}],"goal":1,"budget":2"#,
                ),
                "facts[0]",
            ),
            (
                with(
                    r#""atoms":2,"facts":"0","rules":[{"body":[0],"head":1}],"goal":1,"budget":2"#,
                ),
                "facts",
            ),
            (
                with(r#""atoms":2,"facts":[0],"rules":[],"goal":1,"budget":2"#),
                "rules",
            ),
            (
                with(r#""atoms":2,"facts":[0],"rules":[[0,1]],"goal":1,"budget":2"#),
                "rules[0]",
            ),
            (
                with(r#""atoms":2,"facts":[0],"rules":[{"body":[],"head":1}],"goal":1,"budget":2"#),
                "rules[0].body",
            ),
            (
                with(
                    r#""atoms":5,"facts":[0],"rules":[{"body":[0,1,2,3],"head":4}],"goal":1,"budget":2"#,
                ),
                "rules[0].body",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":0}],"goal":1,"budget":2"#,
                ),
                "rules[0].head",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":-1}],"goal":1,"budget":2"#,
                ),
                "rules[0].head",
            ),
            (
                with(r#""atoms":2,"facts":[0],"rules":[{"body":[0]}],"goal":1,"budget":2"#),
                "rules[0].head",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1,"why":1}],"goal":1,"budget":2"#,
                ),
                "why",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1},{"body":[0],"head":1}],"goal":1,"budget":2"#,
                ),
                "rules[1]",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1}],"goal":2,"budget":2"#,
                ),
                "goal",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1}],"goal":1,"budget":0"#,
                ),
                "budget",
            ),
            (
                with(
                    r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1}],"goal":1,"budget":25"#,
                ),
                "budget",
            ),
            (
                with(r#""atoms":2,"facts":[0],"rules":[{"body":[0],"head":1}],"goal":1"#),
                "budget",
            ),
        ];
        for (spec, field) in &cases {
            let err = Deduction::from_spec(spec).expect_err(spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
        let many: Vec<String> = (0..33)
            .map(|_| r#"{"body":[0],"head":1}"#.to_string())
            .collect();
        let spec = format!(
            r#"{{"atoms":2,"facts":[0],"rules":[{}],"goal":1,"budget":2}}"#,
            many.join(",")
        );
        assert!(Deduction::from_spec(&spec).unwrap_err().contains("rules"));
    }

    #[test]
    fn solve_finds_shortest_derivations() {
        let g = sample();
        assert_eq!(solve(&g), Some(vec![1, 4]));
        assert_eq!(
            format_solution(&g, &[1, 4]),
            "ash and bee => cat; cat => elm"
        );
        let blocked = game(3, &[0], &[rule(&[1], 2)], 2, 2);
        assert_eq!(solve(&blocked), None);
        let mut mid = sample();
        mid.step(0);
        assert_eq!(solve(&mid).map(|s| s.len()), Some(2));
    }

    #[test]
    fn solve_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..400 {
            let atoms = rng.random_range(3..=7);
            let n_rules = rng.random_range(1..=8);
            let rules: Vec<Rule> = (0..n_rules)
                .filter_map(|_| {
                    let head = rng.random_range(0..atoms);
                    let body = (0..rng.random_range(1..=3))
                        .fold(0u32, |s, _| s | (1 << rng.random_range(0..atoms)));
                    let r = Rule {
                        body,
                        head: head as u8,
                    };
                    (body & r.head_bit() == 0).then_some(r)
                })
                .fold(Vec::new(), |mut v, r| {
                    if !v.contains(&r) {
                        v.push(r);
                    }
                    v
                });
            if rules.is_empty() {
                continue;
            }
            let facts = 1 | (rng.random_range(0..1u32 << atoms) & !(1 << (atoms - 1)));
            let g = Deduction::new(atoms, facts, &rules, atoms - 1, MAX_ATOMS).unwrap();
            let got = solve(&g);
            assert_eq!(
                got.as_ref().map(Vec::len),
                brute_force(&rules, facts, atoms - 1, atoms),
                "{}",
                g.to_spec()
            );
            if let Some(sol) = got {
                let mut spec = g.to_spec();
                spec = spec.replace("\"budget\":24", &format!("\"budget\":{}", sol.len().max(1)));
                assert!(verify_solution(&spec, &format_solution(&g, &sol)), "{spec}");
            }
        }
    }

    #[test]
    fn verifier_accepts_human_variants() {
        let spec = sample().to_spec();
        let ok = |s: &str| verify_solution(&spec, s);
        assert!(ok("ash and bee => cat; cat => elm"));
        assert!(ok("Bee & ASH -> cat\ncat → elm\n"));
        assert!(ok(" bee, ash => cat ; cat=>elm;"));
        assert!(
            ok("bee => dew; ash and bee => cat; cat => elm"),
            "within budget 3"
        );
        assert!(!ok(
            "bee => dew; dew and ash => fog; fog => elm; ash and bee => cat"
        ));
        assert!(
            !ok("bee => dew; ash and bee => cat; ash and dew => fog; fog => elm"),
            "4 > budget"
        );
        assert!(!ok("cat => elm"), "cat unknown");
        assert!(!ok("ash and bee => cat"), "goal not reached");
        assert!(!ok(""), "goal not a fact");
        assert!(!ok("ash => cat; cat => elm"), "no such rule");
        assert!(
            !ok("ash and bee => cat; cat => elm; bee => dew"),
            "past the goal"
        );
        assert!(
            !ok("ash and bee => cat; ash and bee => cat; cat => elm"),
            "head known"
        );
        assert!(!ok("ash and ash and bee => cat; cat => elm"));
        assert!(!ok("ash and bee => cat, cat => elm"));
        assert!(!ok("ash and bee cat; cat => elm"));
        assert!(!ok("ash and zebra => cat; cat => elm"));
        assert!(
            !ok("ash and bee => gem; cat => elm"),
            "gem is not an atom here"
        );
        assert!(!verify_solution("{}", "ash and bee => cat; cat => elm"));
    }

    /// Corruptions of a reference solution the verifier must reject.
    fn corruptions(reference: &str) -> Vec<(&'static str, String)> {
        let steps: Vec<&str> = reference.split("; ").collect();
        let mut out = vec![("truncated", steps[..steps.len() - 1].join("; "))];
        if steps.len() >= 2 {
            let mut swapped = steps.clone();
            swapped.swap(0, steps.len() - 1);
            out.push(("out of order", swapped.join("; ")));
            let mut dropped = steps.clone();
            dropped.remove(0);
            out.push(("first step dropped", dropped.join("; ")));
        }
        let mut twice = steps.clone();
        twice.insert(1, steps[0]);
        out.push(("step repeated", twice.join("; ")));
        out
    }

    fn check_task(task: &Task) {
        let g = Deduction::from_spec(&task.spec).expect("generated spec parses");
        assert!(!g.is_terminal(), "start is not terminal: {task:?}");
        let sol = solve(&g).expect("solvable");
        assert_eq!(task.optimal_steps, Some(sol.len() as u32));
        assert_eq!(task.reference_solution, format_solution(&g, &sol));
        assert!(
            verify_solution(&task.spec, &task.reference_solution),
            "{task:?}"
        );
        let end = replay(&task.spec, &task.reference_solution).expect("playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        for (what, bad) in corruptions(&task.reference_solution) {
            assert!(!verify_solution(&task.spec, &bad), "{what}: {task:?}");
        }
        let band = band_for(task.difficulty);
        assert_eq!(g.atoms(), band.atoms);
        assert_eq!(g.rules().len(), band.rules);
        assert_eq!(g.facts().count_ones() as usize, band.facts);
        assert!(sol.len() >= band.depth.0, "fallback fired: {task:?}");
        assert!(sol.len() <= band.depth.1, "{task:?}");
        assert_eq!(g.budget(), sol.len() + band.slack);
        assert!(task.statement.starts_with("Known facts: "));
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..4000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn relaxed_plan_brackets_the_optimum_and_fires() {
        for seed in 0..1500u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            let mut g = Deduction::from_spec(&generate(difficulty, seed).spec).unwrap();
            let opt = solve(&g).unwrap().len() as u32;
            let h_add = relaxed_costs(g.rules(), g.derived, |a, b| a.saturating_add(b));
            let h_max = relaxed_costs(g.rules(), g.derived, u32::max);
            let mut plan = relaxed_plan(g.rules(), g.derived, g.goal(), &h_add);
            assert!(h_max[g.goal()] <= opt && opt <= plan.count_ones(), "seed {seed}");
            // Fire the plan's rules whenever one is ready: it must reach the goal.
            while let Some(r) = (0..MAX_RULES).find(|&r| plan & (1 << r) != 0 && g.fireable(r)) {
                plan &= !(1 << r);
                g.derived |= g.rules[r].head_bit();
            }
            assert!(g.is_success(), "seed {seed}: plan left {plan:b}");
        }
    }

    /// Share of random playouts that succeed from the start of `task`.
    fn random_success_rate(task: &Task, rng: &mut ChaCha8Rng) -> f64 {
        let mut wins = 0;
        for _ in 0..20 {
            let mut g = Deduction::from_spec(&task.spec).unwrap();
            while !g.is_terminal() {
                let acts = legal(&g);
                g.step(acts[rng.random_range(0..acts.len())]);
            }
            wins += usize::from(g.is_success());
        }
        f64::from(wins as u32) / 20.0
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let stats: Vec<(f64, f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..200).map(|s| generate(d, s)).collect();
                let mean =
                    |f: &mut dyn FnMut(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 200.0;
                let rules =
                    mean(&mut |t| Deduction::from_spec(&t.spec).unwrap().rules().len() as f64);
                let steps = mean(&mut |t| f64::from(t.optimal_steps.unwrap_or(0)));
                let random = mean(&mut |t| random_success_rate(t, &mut rng));
                (rules, steps, random)
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 > w[0].0, "rules grow: {stats:?}");
            assert!(w[1].1 > w[0].1, "optimal steps grow: {stats:?}");
            assert!(w[1].2 < w[0].2, "random play succeeds less: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,80}") {
            let _ = Deduction::from_spec(&spec);
        }

        #[test]
        fn from_spec_checks_ranges(atoms in 0u64..30, fact in 0u64..30, body in 0u64..30, head in 0u64..30, goal in 0u64..30, budget in 0u64..30) {
            let spec = format!(
                r#"{{"atoms":{atoms},"facts":[{fact}],"rules":[{{"body":[{body}],"head":{head}}}],"goal":{goal},"budget":{budget}}}"#
            );
            let ok = (1..=24).contains(&atoms)
                && fact < atoms && body < atoms && head < atoms && head != body
                && goal < atoms && (1..=24).contains(&budget);
            prop_assert_eq!(Deduction::from_spec(&spec).is_ok(), ok);
        }

        #[test]
        fn verify_never_panics(text in "[a-z &;,=>\n-]{0,60}", seed in 0u64..50) {
            let task = generate(0.9, seed);
            let _ = verify_solution(&task.spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = Deduction::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && (-4.0..=4.0).contains(x)));
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                let known = g.derived().count_ones();
                g.step(a);
                prop_assert_eq!(g.derived().count_ones(), known + 1);
                prop_assert!(g.history().len() <= g.budget());
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            let rules: Vec<usize> = g.history().iter().map(|&r| usize::from(r)).collect();
            let verdict = verify_solution(&task.spec, &format_solution(&g, &rules));
            prop_assert_eq!(verdict, g.is_success());
        }
    }
}
