//! List DSL: synthesise a list program from input/output examples.
//!
//! # Language
//!
//! A program is a straight-line pipeline over one list of integers
//! (DeepCoder-style): every instruction maps the current value to a new one.
//! The instruction set is fixed and typed ([`Op::ALL`], in action order):
//!
//! | ids    | instructions                                                    | type         |
//! |--------|-----------------------------------------------------------------|--------------|
//! | 0..=4  | `map(+1)` `map(-1)` `map(*2)` `map(*-1)` `map(^2)`              | list -> list |
//! | 5..=8  | `filter(>0)` `filter(<0)` `filter(even)` `filter(odd)`          | list -> list |
//! | 9..=11 | `sort` (ascending) `reverse` `scan(+)` (prefix sums)            | list -> list |
//! | 12..=17| `take(1)` `take(2)` `take(3)` `drop(1)` `drop(2)` `drop(3)`     | list -> list |
//! | 18..=23| `sum` `max` `min` `count` `head` `last`                         | list -> int  |
//!
//! A reducer (ids 18..=23) ends the program. Programs are written
//! `"filter(even) | map(*2) | sum"`; the empty program is the identity.
//!
//! The interpreter ([`run`]) keeps every value within `±`[`VALUE_CAP`]: the
//! operands are at most `10^6`, so `i64` arithmetic cannot overflow, and every
//! result is checked against the cap. A result over the cap, and `max` /
//! `min` / `head` / `last` of an empty list, make the program fail on that
//! input (never a panic). No instruction makes a list longer, so lists never
//! exceed [`MAX_LIST_LEN`].
//!
//! # Episodes
//!
//! The task lists the allowed instructions, a length budget `max_len`
//! (<= [`MAX_PROGRAM_LEN`]), `K` visible examples and `H` hidden tests (all in
//! the spec; the network only sees the visible ones). Outputs are all
//! integers or all lists. An action appends one instruction; action
//! [`STOP`] ends a list-output program. Legal moves are typed:
//!
//! * list outputs: allowed list instructions and `stop` (reducers never fit);
//! * integer outputs: allowed reducers, and allowed list instructions only
//!   while a reducer still fits after them (no `stop`: a list never matches).
//!
//! The episode ends on `stop`, on a reducer, or when the program holds
//! `max_len` instructions. The verifier ([`ListDsl::is_success`]) judges the
//! ended program alone: run by [`run`], it must reproduce every visible AND
//! hidden output. It need not be the generator's program.
//!
//! `optimal_steps` counts actions: the shortest program's length, plus one
//! for the `stop` that a list-output program needs when it is shorter than
//! `max_len` (generated tasks always leave room, so list tasks count `L + 1`).
//!
//! # Difficulty mapping
//!
//! `difficulty` is clamped to `[0, 1]` (NaN counts as 0) and picks a band.
//! `L` is the length of the hidden target program, `max_len = L + 2`.
//!
//! | difficulty   | L | instructions                     | K | H | list length | values   |
//! |--------------|---|----------------------------------|---|---|-------------|----------|
//! | [0.0, 0.2)   | 1 | basic (16)                       | 3 | 3 | 3..=5       | -5..=5   |
//! | [0.2, 0.4)   | 2 | basic (16)                       | 3 | 3 | 3..=6       | -6..=6   |
//! | [0.4, 0.6)   | 3 | basic + `map(^2)` `scan(+)` (18) | 4 | 4 | 4..=7       | -8..=8   |
//! | [0.6, 0.8)   | 4 | all (24)                         | 4 | 4 | 5..=8       | -9..=9   |
//! | [0.8, 1.0]   | 5 | all (24)                         | 5 | 5 | 5..=10      | -10..=10 |
//!
//! "basic" is every instruction except `map(^2)`, `scan(+)`, `take(k)` and
//! `drop(k)`. Inputs are drawn uniformly (all `K + H` distinct); the target's
//! last instruction is a reducer with probability 1/2, the others are
//! uniform over the band's list instructions. A target is rejected when it
//! fails on an input, when its outputs are all equal (over all examples, or
//! over the visible ones), when more than a third of its list outputs are
//! empty, or when a shorter program matches all `K + H` examples. That last
//! check is the solver's search ([`solve`]) bounded at `L - 1`, so the
//! target is a shortest program and `L` is the exact optimum; it is the
//! reference solution. Rejected targets are redrawn (a fresh input set
//! every [`TARGETS_PER_DRAW`] targets) from the seeded stream, so a task is
//! a pure function of `(difficulty, seed)`. After [`MAX_DRAWS`] input sets
//! the generator retries with `L - 1`; the tests check that this fallback
//! does not fire in practice.
//!
//! # Solver
//!
//! [`solve`] is a breadth-first enumeration by length with observational
//! equivalence: a state is the tuple of current lists on all `K + H` inputs,
//! and each distinct state is expanded once, at the depth where it first
//! appears. The last instruction is never materialised: the states one
//! level up are expanded on the fly and compared with the expected outputs,
//! input by input, stopping at the first mismatch. For list outputs, states
//! holding a list shorter than the expected one are dropped (no instruction
//! lengthens a list).
//!
//! # Observation ([`OBS_DIM`] = 460 floats, all within `[-4, 4]`)
//!
//! Values are scaled by `slog(v) = sign(v) ln(1 + |v|) / 3.5` (clamped to
//! `±4`; `slog(10) = 0.69`, `slog(10^6) = 3.95`).
//!
//! | index           | feature                                                      |
//! |-----------------|--------------------------------------------------------------|
//! | 0               | outputs are integers                                         |
//! | 1               | instructions so far / 7                                      |
//! | 2               | instructions left (`max_len - len`) / 7                      |
//! | 3               | fraction of visible examples the program reproduces now      |
//! | 4               | the program reproduces every visible example now             |
//! | 5               | the program fails on some visible input                      |
//! | 6, 7            | `K / 5`, `H / 8`                                             |
//! | 8..32           | allowed instructions (one flag per instruction id)           |
//! | 32..200         | program so far: 7 positions x 24 instruction one-hot         |
//! | 200 + 52e..     | visible example `e` (0..5), see below; all 0 when absent     |
//!
//! Example block (52 floats): `0` present, `1` input length / 10, `2..12`
//! input values; `12` expected list length / 10, `13` expected integer,
//! `14..24` expected list values; `24` current output fails, `25` current
//! output is an integer, `26` current list length / 10, `27` current
//! integer, `28..38` current list values; `38` exact match, `39` same type
//! and length, `40` (current - expected list length) / 10, `41`
//! `slog(current - expected)` for integers, `42..52` position `j` holds the
//! same value in both (position 0 for integers). The current output is the
//! program so far run on the visible inputs, so the network sees how close
//! it is.

use crate::tasks::{flag, Puzzle, Action, Family, Outcome, Task};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Number of instructions.
pub const NUM_OPS: usize = 24;
/// The action that ends a list-output program.
pub const STOP: Action = NUM_OPS as Action;
/// One action per instruction, plus `stop`.
pub const ACTION_DIM: usize = NUM_OPS + 1;
/// Longest program (and largest `max_len` in a spec).
pub const MAX_PROGRAM_LEN: usize = 7;
/// Longest list in a spec (inputs and outputs).
pub const MAX_LIST_LEN: usize = 10;
/// Largest `|v|` of an input value in a spec.
pub const MAX_INPUT_ABS: i32 = 1000;
/// Largest `|v|` of any value the interpreter produces.
pub const VALUE_CAP: i32 = 1_000_000;
/// Most visible examples in a spec.
pub const MAX_VISIBLE: usize = 5;
/// Most hidden tests in a spec.
pub const MAX_HIDDEN: usize = 8;
/// Target programs tried per input set before new inputs are drawn.
pub const TARGETS_PER_DRAW: usize = 40;
/// Input sets drawn before the generator settles for a shorter target.
pub const MAX_DRAWS: usize = 50;

const GLOBAL_FEATURES: usize = 8;
const MASK_BASE: usize = GLOBAL_FEATURES;
const PROGRAM_BASE: usize = MASK_BASE + NUM_OPS;
const EXAMPLE_BASE: usize = PROGRAM_BASE + MAX_PROGRAM_LEN * NUM_OPS;
const EXAMPLE_FEATURES: usize = 52;
/// Observation length; see the module docs for the layout.
pub const OBS_DIM: usize = EXAMPLE_BASE + MAX_VISIBLE * EXAMPLE_FEATURES;
const _: () = assert!(OBS_DIM <= 512, "models expect at most 512 features");

// ---------------------------------------------------------------------------
// Instructions and interpreter
// ---------------------------------------------------------------------------

/// One instruction; the discriminant is its id and its action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Inc,
    Dec,
    Double,
    Negate,
    Square,
    KeepPos,
    KeepNeg,
    KeepEven,
    KeepOdd,
    Sort,
    Reverse,
    Scan,
    Take1,
    Take2,
    Take3,
    Drop1,
    Drop2,
    Drop3,
    Sum,
    Max,
    Min,
    Count,
    Head,
    Last,
}

impl Op {
    /// Every instruction, in id (= action) order.
    #[rustfmt::skip]
    pub const ALL: [Op; NUM_OPS] = [
        Op::Inc, Op::Dec, Op::Double, Op::Negate, Op::Square,
        Op::KeepPos, Op::KeepNeg, Op::KeepEven, Op::KeepOdd,
        Op::Sort, Op::Reverse, Op::Scan,
        Op::Take1, Op::Take2, Op::Take3, Op::Drop1, Op::Drop2, Op::Drop3,
        Op::Sum, Op::Max, Op::Min, Op::Count, Op::Head, Op::Last,
    ];

    /// Id of the instruction: its index in [`Op::ALL`] and its action.
    pub fn id(self) -> usize {
        self as usize
    }

    /// The instruction with id `id`, if any.
    pub fn from_id(id: usize) -> Option<Op> {
        Op::ALL.get(id).copied()
    }

    /// Reducers turn the list into an integer and end the program.
    pub fn is_reducer(self) -> bool {
        self >= Op::Sum
    }

    /// The instruction's text, e.g. `"filter(even)"`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Inc => "map(+1)",
            Op::Dec => "map(-1)",
            Op::Double => "map(*2)",
            Op::Negate => "map(*-1)",
            Op::Square => "map(^2)",
            Op::KeepPos => "filter(>0)",
            Op::KeepNeg => "filter(<0)",
            Op::KeepEven => "filter(even)",
            Op::KeepOdd => "filter(odd)",
            Op::Sort => "sort",
            Op::Reverse => "reverse",
            Op::Scan => "scan(+)",
            Op::Take1 => "take(1)",
            Op::Take2 => "take(2)",
            Op::Take3 => "take(3)",
            Op::Drop1 => "drop(1)",
            Op::Drop2 => "drop(2)",
            Op::Drop3 => "drop(3)",
            Op::Sum => "sum",
            Op::Max => "max",
            Op::Min => "min",
            Op::Count => "count",
            Op::Head => "head",
            Op::Last => "last",
        }
    }

    /// Parses an instruction's text; spaces are ignored (`"map( +1 )"`).
    pub fn parse(text: &str) -> Option<Op> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        Op::ALL.into_iter().find(|op| op.name() == compact)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A program's result on one input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i32),
    List(Vec<i32>),
}

impl fmt::Display for Value {
    /// `5` or `[1, -2, 3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::List(xs) => write!(f, "{}", format_list(xs)),
        }
    }
}

fn format_list(xs: &[i32]) -> String {
    let items: Vec<String> = xs.iter().map(i32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// `v` as a value if it is within the cap.
fn capped(v: i64) -> Option<i32> {
    if v.unsigned_abs() <= VALUE_CAP as u64 {
        Some(v as i32)
    } else {
        None
    }
}

/// Appends every `f(x)` to `out`; `None` if one leaves the cap.
fn map_into(xs: &[i32], out: &mut Vec<i32>, f: impl Fn(i64) -> i64) -> Option<()> {
    // One overflow flag instead of an early exit keeps the loop branch-free.
    let mut over = false;
    out.extend(xs.iter().map(|&x| {
        let v = f(i64::from(x));
        over |= v.unsigned_abs() > VALUE_CAP as u64;
        v as i32
    }));
    (!over).then_some(())
}

/// Appends `op(xs)` for a list instruction to `out`; `None` on overflow (or
/// for a reducer, a caller bug). `out` may hold a partial result then.
fn apply_list(op: Op, xs: &[i32], out: &mut Vec<i32>) -> Option<()> {
    let keep = |out: &mut Vec<i32>, pred: fn(i32) -> bool| {
        out.extend(xs.iter().copied().filter(|&x| pred(x)));
        Some(())
    };
    let slice = |out: &mut Vec<i32>, part: &[i32]| {
        out.extend_from_slice(part);
        Some(())
    };
    let n = xs.len();
    match op {
        Op::Inc => map_into(xs, out, |x| x + 1),
        Op::Dec => map_into(xs, out, |x| x - 1),
        Op::Double => map_into(xs, out, |x| 2 * x),
        Op::Negate => map_into(xs, out, |x| -x),
        Op::Square => map_into(xs, out, |x| x * x),
        Op::KeepPos => keep(out, |x| x > 0),
        Op::KeepNeg => keep(out, |x| x < 0),
        Op::KeepEven => keep(out, |x| x % 2 == 0),
        Op::KeepOdd => keep(out, |x| x % 2 != 0),
        Op::Sort => {
            let start = out.len();
            out.extend_from_slice(xs);
            out[start..].sort_unstable();
            Some(())
        }
        Op::Reverse => {
            out.extend(xs.iter().rev());
            Some(())
        }
        Op::Scan => {
            let mut acc = 0i64;
            for &x in xs {
                acc += i64::from(x);
                out.push(capped(acc)?);
            }
            Some(())
        }
        Op::Take1 => slice(out, &xs[..n.min(1)]),
        Op::Take2 => slice(out, &xs[..n.min(2)]),
        Op::Take3 => slice(out, &xs[..n.min(3)]),
        Op::Drop1 => slice(out, &xs[n.min(1)..]),
        Op::Drop2 => slice(out, &xs[n.min(2)..]),
        Op::Drop3 => slice(out, &xs[n.min(3)..]),
        Op::Sum | Op::Max | Op::Min | Op::Count | Op::Head | Op::Last => None,
    }
}

/// `op(xs)` for a reducer; `None` on overflow, on an empty list where the
/// reducer needs an element, or for a list instruction (a caller bug).
fn reduce(op: Op, xs: &[i32]) -> Option<i32> {
    match op {
        Op::Sum => capped(xs.iter().map(|&x| i64::from(x)).sum()),
        Op::Max => xs.iter().max().copied(),
        Op::Min => xs.iter().min().copied(),
        Op::Count => i32::try_from(xs.len()).ok(),
        Op::Head => xs.first().copied(),
        Op::Last => xs.last().copied(),
        _ => None,
    }
}

/// Runs `program` on `input`; `None` when it fails (overflow, a reducer on
/// an empty list, or an instruction after a reducer).
pub fn run(program: &[Op], input: &[i32]) -> Option<Value> {
    let mut cur = input.to_vec();
    let mut next = Vec::with_capacity(cur.len());
    for (k, &op) in program.iter().enumerate() {
        if op.is_reducer() {
            if k + 1 != program.len() {
                return None;
            }
            return reduce(op, &cur).map(Value::Int);
        }
        next.clear();
        apply_list(op, &cur, &mut next)?;
        std::mem::swap(&mut cur, &mut next);
    }
    Some(Value::List(cur))
}

/// `"filter(even) | map(*2) | sum"`; the empty program is `""`.
pub fn format_program(program: &[Op]) -> String {
    program
        .iter()
        .map(|op| op.name())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Parses `"filter(even) | map(*2) | sum"` (spaces free, blank = empty
/// program); `None` if a part is not an instruction.
pub fn parse_program(text: &str) -> Option<Vec<Op>> {
    if text.trim().is_empty() {
        return Some(Vec::new());
    }
    text.split('|').map(Op::parse).collect()
}

// ---------------------------------------------------------------------------
// Task data and the episode state
// ---------------------------------------------------------------------------

/// One input with its expected output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub input: Vec<i32>,
    pub output: Value,
}

/// The immutable part of a task, shared between clones of a state.
#[derive(Debug, PartialEq, Eq)]
struct TaskData {
    /// Bit `id` set when instruction `id` may be used.
    allowed: u32,
    max_len: u8,
    visible: Vec<Example>,
    hidden: Vec<Example>,
    int_output: bool,
}

impl TaskData {
    fn allows(&self, op: Op) -> bool {
        self.allowed & (1 << op.id()) != 0
    }

    fn all_examples(&self) -> impl Iterator<Item = &Example> {
        self.visible.iter().chain(&self.hidden)
    }
}

/// A live episode: the task (shared, so clones are cheap) and the program
/// built so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDsl {
    task: Arc<TaskData>,
    program: [Op; MAX_PROGRAM_LEN],
    len: u8,
    ended: bool,
    /// The verifier's verdict, computed once when the episode ends.
    success: bool,
}

const SPEC_SHAPE: &str = r#"{"ops":["map(+1)",..],"max_len":1..=7,"examples":[{"input":[..],"output":int or [..]}, 1..=5],"hidden":[0..=8 more]}"#;

impl ListDsl {
    /// Start state for a task. The error names the bad field and what was
    /// expected.
    pub fn new(
        ops: &[Op],
        max_len: usize,
        visible: Vec<Example>,
        hidden: Vec<Example>,
    ) -> Result<Self, String> {
        let mut allowed = 0u32;
        for (k, op) in ops.iter().enumerate() {
            if allowed & (1 << op.id()) != 0 {
                return Err(format!(
                    "ops[{k}]: expected distinct instructions, got {op} twice"
                ));
            }
            allowed |= 1 << op.id();
        }
        if ops.is_empty() {
            return Err("ops: expected 1..=24 instructions, got none".to_string());
        }
        if !(1..=MAX_PROGRAM_LEN).contains(&max_len) {
            return Err(format!(
                "max_len: expected an integer in 1..={MAX_PROGRAM_LEN}, got {max_len}"
            ));
        }
        check_examples("examples", &visible, 1, MAX_VISIBLE)?;
        check_examples("hidden", &hidden, 0, MAX_HIDDEN)?;
        let int_output = matches!(visible[0].output, Value::Int(_));
        let tagged = visible.iter().enumerate().map(|(k, e)| ("examples", k, e));
        let tagged = tagged.chain(hidden.iter().enumerate().map(|(k, e)| ("hidden", k, e)));
        for (field, k, e) in tagged {
            if matches!(e.output, Value::Int(_)) != int_output {
                let want = if int_output { "an integer" } else { "a list" };
                return Err(format!(
                    "{field}[{k}].output: expected {want} like examples[0].output"
                ));
            }
        }
        if int_output && !ops.iter().any(|op| op.is_reducer()) {
            return Err("ops: expected a reducer (sum, max, min, count, head, last) since the outputs are integers".to_string());
        }
        Ok(ListDsl {
            task: Arc::new(TaskData {
                allowed,
                max_len: max_len as u8,
                visible,
                hidden,
                int_output,
            }),
            program: [Op::Inc; MAX_PROGRAM_LEN],
            len: 0,
            ended: false,
            success: false,
        })
    }

    /// Parses the JSON spec
    /// `{"ops":[names],"max_len":n,"examples":[{"input":[..],"output":..}],"hidden":[..]}`;
    /// never panics.
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| format!("spec: invalid JSON ({e}); expected {SPEC_SHAPE}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("spec: expected a JSON object {SPEC_SHAPE}"))?;
        const FIELDS: [&str; 4] = ["ops", "max_len", "examples", "hidden"];
        if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "spec: unknown field \"{key}\"; expected only ops, max_len, examples, hidden"
            ));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| format!("{name}: missing; expected {SPEC_SHAPE}"))
        };
        let ops = parse_ops(field("ops")?)?;
        let max_len = field("max_len")?;
        let max_len = max_len
            .as_u64()
            .filter(|n| (1..=MAX_PROGRAM_LEN as u64).contains(n))
            .ok_or_else(|| {
                format!("max_len: expected an integer in 1..={MAX_PROGRAM_LEN}, got {max_len}")
            })?;
        let visible = parse_examples("examples", field("examples")?, MAX_VISIBLE)?;
        let hidden = parse_examples("hidden", field("hidden")?, MAX_HIDDEN)?;
        ListDsl::new(&ops, max_len as usize, visible, hidden)
    }

    /// The start state's spec (the task, not the program built so far), so
    /// `from_spec(to_spec())` always round-trips.
    pub fn to_spec(&self) -> String {
        let t = &self.task;
        let ops: Vec<String> = self
            .allowed_ops()
            .map(|op| format!("\"{}\"", op.name()))
            .collect();
        format!(
            "{{\"ops\":[{}],\"max_len\":{},\"examples\":{},\"hidden\":{}}}",
            ops.join(","),
            t.max_len,
            examples_json(&t.visible),
            examples_json(&t.hidden)
        )
    }

    /// Allowed instructions, in id order.
    pub fn allowed_ops(&self) -> impl Iterator<Item = Op> + '_ {
        Op::ALL.into_iter().filter(|&op| self.task.allows(op))
    }

    pub fn max_len(&self) -> usize {
        usize::from(self.task.max_len)
    }

    pub fn visible(&self) -> &[Example] {
        &self.task.visible
    }

    pub fn hidden(&self) -> &[Example] {
        &self.task.hidden
    }

    /// Whether the expected outputs are integers (else lists).
    pub fn int_output(&self) -> bool {
        self.task.int_output
    }

    /// The program built so far.
    pub fn program(&self) -> &[Op] {
        &self.program[..usize::from(self.len)]
    }

    /// Whether `op` fits the program's type and length budget now (ignores
    /// whether the instruction is allowed or the episode is over).
    fn fits(&self, op: Op) -> bool {
        let (len, max) = (usize::from(self.len), self.max_len());
        match (self.task.int_output, op.is_reducer()) {
            (true, true) => len < max,
            (true, false) => len + 2 <= max,
            (false, true) => false,
            (false, false) => len < max,
        }
    }

    /// Whether `action` may be played now.
    pub fn is_legal(&self, action: Action) -> bool {
        if self.ended {
            return false;
        }
        if action == STOP {
            return !self.task.int_output;
        }
        Op::from_id(usize::from(action)).is_some_and(|op| self.task.allows(op) && self.fits(op))
    }

    /// Legal actions, ascending; empty once the episode is over.
    pub fn legal_actions(&self, out: &mut Vec<Action>) {
        out.extend((0..ACTION_DIM as Action).filter(|&a| self.is_legal(a)));
    }

    /// Appends an instruction (or stops). The episode ends on `stop`, on a
    /// reducer, or at `max_len`, and the verifier runs once then. An illegal
    /// action is a bug (debug assert) and is ignored in release builds.
    pub fn step(&mut self, action: Action) {
        let legal = self.is_legal(action);
        debug_assert!(legal, "illegal action {action} in {}", self.render());
        if !legal {
            return;
        }
        match Op::from_id(usize::from(action)) {
            Some(op) => {
                self.program[usize::from(self.len)] = op;
                self.len += 1;
                self.ended = op.is_reducer() || usize::from(self.len) == self.max_len();
            }
            None => self.ended = true,
        }
        if self.ended {
            self.success = self.matches_all();
        }
    }

    /// The program reproduces every visible and hidden output.
    fn matches_all(&self) -> bool {
        let program = self.program();
        self.task
            .all_examples()
            .all(|e| run(program, &e.input).as_ref() == Some(&e.output))
    }

    /// The verifier: the episode is over and the program reproduces every
    /// visible and hidden output.
    pub fn is_success(&self) -> bool {
        self.ended && self.success
    }

    pub fn is_terminal(&self) -> bool {
        self.ended
    }

    /// The program so far on each visible input (`None` = it fails).
    fn current_outputs(&self) -> Vec<Option<Value>> {
        let program = self.program();
        self.task
            .visible
            .iter()
            .map(|e| run(program, &e.input))
            .collect()
    }

    /// Writes the observation (layout in the module docs) into
    /// `out[..OBS_DIM]`, which must be pre-zeroed; panics if `out` is shorter.
    pub fn encode(&self, out: &mut [f32]) {
        let out = &mut out[..OBS_DIM];
        let t = &self.task;
        let current = self.current_outputs();
        let matched = current
            .iter()
            .zip(&t.visible)
            .filter(|(c, e)| c.as_ref() == Some(&e.output))
            .count();
        out[0] = flag(t.int_output);
        out[1] = f32::from(self.len) / MAX_PROGRAM_LEN as f32;
        out[2] = (self.max_len() - usize::from(self.len)) as f32 / MAX_PROGRAM_LEN as f32;
        out[3] = matched as f32 / t.visible.len() as f32;
        out[4] = flag(matched == t.visible.len());
        out[5] = flag(current.iter().any(Option::is_none));
        out[6] = t.visible.len() as f32 / MAX_VISIBLE as f32;
        out[7] = t.hidden.len() as f32 / MAX_HIDDEN as f32;
        for op in self.allowed_ops() {
            out[MASK_BASE + op.id()] = 1.0;
        }
        for (p, op) in self.program().iter().enumerate() {
            out[PROGRAM_BASE + p * NUM_OPS + op.id()] = 1.0;
        }
        for (k, (e, cur)) in t.visible.iter().zip(&current).enumerate() {
            let base = EXAMPLE_BASE + k * EXAMPLE_FEATURES;
            example_features(e, cur.as_ref(), &mut out[base..base + EXAMPLE_FEATURES]);
        }
    }

    /// Human label of an action, e.g. `"filter(even)"` or `"stop"`.
    pub fn label(&self, action: Action) -> String {
        match Op::from_id(usize::from(action)) {
            Some(op) => op.name().to_string(),
            None if action == STOP => "stop".to_string(),
            None => format!("illegal action {action}"),
        }
    }

    /// The program, each visible example with the current output, the
    /// number of hidden tests, and the status.
    pub fn render(&self) -> String {
        let t = &self.task;
        let program = if self.len == 0 {
            "(empty)".to_string()
        } else {
            format_program(self.program())
        };
        let mut s = format!("program: {program}  [{}/{}]\n", self.len, t.max_len);
        for (e, cur) in t.visible.iter().zip(self.current_outputs()) {
            let now = match &cur {
                Some(v) if *v == e.output => "ok".to_string(),
                Some(v) => format!("now {v}"),
                None => "now fails".to_string(),
            };
            s.push_str(&format!(
                "{} -> {}  ({now})\n",
                format_list(&e.input),
                e.output
            ));
        }
        let status = match self.outcome() {
            None => "running",
            Some(Outcome::Success) => "solved",
            Some(_) => "failed",
        };
        s.push_str(&format!("+{} hidden tests | {status}", t.hidden.len()));
        s
    }
}

/// Signed log scale, within `[-4, 4]`.
fn slog(v: i64) -> f32 {
    let m = ((v.unsigned_abs() as f64) + 1.0).ln() / 3.5;
    (m.min(4.0) as f32) * (v.signum() as f32)
}

fn write_values(xs: &[i32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = slog(i64::from(x));
    }
}

/// The 52 features of one visible example (module docs).
fn example_features(e: &Example, cur: Option<&Value>, out: &mut [f32]) {
    let len10 = |n: usize| n as f32 / MAX_LIST_LEN as f32;
    out[0] = 1.0;
    out[1] = len10(e.input.len());
    write_values(&e.input, &mut out[2..12]);
    match &e.output {
        Value::Int(v) => out[13] = slog(i64::from(*v)),
        Value::List(xs) => {
            out[12] = len10(xs.len());
            write_values(xs, &mut out[14..24]);
        }
    }
    match cur {
        None => out[24] = 1.0,
        Some(Value::Int(v)) => {
            out[25] = 1.0;
            out[27] = slog(i64::from(*v));
        }
        Some(Value::List(xs)) => {
            out[26] = len10(xs.len());
            write_values(xs, &mut out[28..38]);
        }
    }
    out[38] = flag(cur == Some(&e.output));
    match (cur, &e.output) {
        (Some(Value::Int(c)), Value::Int(x)) => {
            out[39] = 1.0;
            out[41] = slog(i64::from(*c) - i64::from(*x));
            out[42] = flag(c == x);
        }
        (Some(Value::List(c)), Value::List(x)) => {
            out[39] = flag(c.len() == x.len());
            out[40] = (c.len() as f32 - x.len() as f32) / MAX_LIST_LEN as f32;
            for (j, (a, b)) in c.iter().zip(x).enumerate() {
                out[42 + j] = flag(a == b);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Spec parsing
// ---------------------------------------------------------------------------

fn check_examples(field: &str, examples: &[Example], min: usize, max: usize) -> Result<(), String> {
    if !(min..=max).contains(&examples.len()) {
        return Err(format!(
            "{field}: expected {min}..={max} examples, got {}",
            examples.len()
        ));
    }
    for (k, e) in examples.iter().enumerate() {
        check_list(&format!("{field}[{k}].input"), &e.input, MAX_INPUT_ABS)?;
        match &e.output {
            Value::Int(v) => check_value(&format!("{field}[{k}].output"), *v, VALUE_CAP)?,
            Value::List(xs) => check_list(&format!("{field}[{k}].output"), xs, VALUE_CAP)?,
        }
    }
    Ok(())
}

fn check_list(field: &str, xs: &[i32], bound: i32) -> Result<(), String> {
    if xs.len() > MAX_LIST_LEN {
        return Err(format!(
            "{field}: expected at most {MAX_LIST_LEN} values, got {}",
            xs.len()
        ));
    }
    for (j, &x) in xs.iter().enumerate() {
        check_value(&format!("{field}[{j}]"), x, bound)?;
    }
    Ok(())
}

fn check_value(field: &str, v: i32, bound: i32) -> Result<(), String> {
    if (-bound..=bound).contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "{field}: expected an integer in -{bound}..={bound}, got {v}"
        ))
    }
}

/// A JSON integer in `-bound..=bound`.
fn json_value(field: &str, v: &serde_json::Value, bound: i32) -> Result<i32, String> {
    v.as_i64()
        .filter(|n| (-i64::from(bound)..=i64::from(bound)).contains(n))
        .map(|n| n as i32)
        .ok_or_else(|| format!("{field}: expected an integer in -{bound}..={bound}, got {v}"))
}

/// A JSON array of at most [`MAX_LIST_LEN`] integers in `-bound..=bound`.
fn json_list(field: &str, v: &serde_json::Value, bound: i32) -> Result<Vec<i32>, String> {
    let items = v.as_array().ok_or_else(|| {
        format!("{field}: expected an array of at most {MAX_LIST_LEN} integers, got {v}")
    })?;
    if items.len() > MAX_LIST_LEN {
        return Err(format!(
            "{field}: expected at most {MAX_LIST_LEN} values, got {}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(j, x)| json_value(&format!("{field}[{j}]"), x, bound))
        .collect()
}

fn parse_ops(v: &serde_json::Value) -> Result<Vec<Op>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("ops: expected an array of instruction names, got {v}"))?;
    if items.is_empty() || items.len() > NUM_OPS {
        return Err(format!(
            "ops: expected 1..={NUM_OPS} instructions, got {}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            item.as_str().and_then(Op::parse).ok_or_else(|| {
                format!("ops[{k}]: expected an instruction name like \"map(+1)\" or \"sum\", got {item}")
            })
        })
        .collect()
}

fn parse_examples(field: &str, v: &serde_json::Value, max: usize) -> Result<Vec<Example>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("{field}: expected an array of at most {max} examples, got {v}"))?;
    if items.len() > max {
        return Err(format!(
            "{field}: expected at most {max} examples, got {}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(k, item)| parse_example(&format!("{field}[{k}]"), item))
        .collect()
}

fn parse_example(field: &str, v: &serde_json::Value) -> Result<Example, String> {
    let obj = v.as_object().ok_or_else(|| {
        format!("{field}: expected an object {{\"input\":[..],\"output\":..}}, got {v}")
    })?;
    if let Some(key) = obj.keys().find(|k| *k != "input" && *k != "output") {
        return Err(format!(
            "{field}: unknown field \"{key}\"; expected only input and output"
        ));
    }
    let input = obj
        .get("input")
        .ok_or_else(|| format!("{field}.input: missing; expected an array of integers"))?;
    let input = json_list(&format!("{field}.input"), input, MAX_INPUT_ABS)?;
    let output = obj
        .get("output")
        .ok_or_else(|| format!("{field}.output: missing; expected an integer or an array"))?;
    let name = format!("{field}.output");
    let output = if output.is_array() {
        Value::List(json_list(&name, output, VALUE_CAP)?)
    } else {
        Value::Int(json_value(&name, output, VALUE_CAP)?)
    };
    Ok(Example { input, output })
}

fn examples_json(examples: &[Example]) -> String {
    let list = |xs: &[i32]| {
        let items: Vec<String> = xs.iter().map(i32::to_string).collect();
        format!("[{}]", items.join(","))
    };
    let items: Vec<String> = examples
        .iter()
        .map(|e| {
            let output = match &e.output {
                Value::Int(v) => v.to_string(),
                Value::List(xs) => list(xs),
            };
            format!("{{\"input\":{},\"output\":{output}}}", list(&e.input))
        })
        .collect();
    format!("[{}]", items.join(","))
}

// ---------------------------------------------------------------------------
// Solver
// ---------------------------------------------------------------------------

/// A cheap mixing hasher for precomputed fingerprints.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Fingerprint of a state's data (splitmix-finalised FNV-style mix).
fn fingerprint(data: &[i32]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ data.len() as u64;
    let mut pairs = data.chunks_exact(2);
    for p in &mut pairs {
        let w = u64::from(p[0] as u32) | (u64::from(p[1] as u32) << 32);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    if let [x] = pairs.remainder() {
        h = (h ^ u64::from(*x as u32)).wrapping_mul(K).rotate_left(29);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// What a program must produce on each input, in the solver's layout.
enum Goal {
    /// Concatenated `[len, values..]` per input.
    List(Vec<i32>),
    /// One integer per input.
    Int(Vec<i32>),
}

/// Concatenates `[len, values..]` for each list.
fn pack<'a>(lists: impl Iterator<Item = &'a [i32]>) -> Vec<i32> {
    let mut data = Vec::new();
    for xs in lists {
        data.push(xs.len() as i32);
        data.extend_from_slice(xs);
    }
    data
}

/// The lists of a packed state, in input order.
fn segments(data: &[i32]) -> impl Iterator<Item = &[i32]> {
    let mut p = 0;
    std::iter::from_fn(move || {
        let len = *data.get(p)? as usize;
        let xs = data.get(p + 1..p + 1 + len)?;
        p += 1 + len;
        Some(xs)
    })
}

/// Length of `op(xs)` for a list instruction, when known without running
/// it (not for filters).
fn result_len(op: Op, xs: &[i32]) -> Option<usize> {
    let n = xs.len();
    match op {
        Op::Take1 => Some(n.min(1)),
        Op::Take2 => Some(n.min(2)),
        Op::Take3 => Some(n.min(3)),
        Op::Drop1 => Some(n.saturating_sub(1)),
        Op::Drop2 => Some(n.saturating_sub(2)),
        Op::Drop3 => Some(n.saturating_sub(3)),
        Op::KeepPos | Op::KeepNeg | Op::KeepEven | Op::KeepOdd => None,
        _ => Some(n),
    }
}

/// `op` on every list of a packed state into `out`; false if it fails on one.
fn apply_state(op: Op, data: &[i32], out: &mut Vec<i32>) -> bool {
    out.clear();
    for xs in segments(data) {
        let at = out.len();
        out.push(0);
        if apply_list(op, xs, out).is_none() {
            return false;
        }
        out[at] = (out.len() - at - 1) as i32;
    }
    true
}

/// One distinct state of the enumeration.
struct Node {
    start: u32,
    end: u32,
    parent: u32,
    op: Op,
    /// Next node with the same fingerprint (`u32::MAX`: none).
    next: u32,
}

const NONE: u32 = u32::MAX;

/// Breadth-first enumeration of distinct list states, grown lazily level by
/// level and shared by every goal checked on the same inputs.
struct Enumerator {
    ops: Vec<Op>,
    reducers: Vec<Op>,
    /// Drop states holding a list shorter than this (per input).
    min_lens: Option<Vec<usize>>,
    pool: Vec<i32>,
    nodes: Vec<Node>,
    /// Fingerprint -> first node of its chain.
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    /// Node ranges per depth (nodes are pushed level by level).
    levels: Vec<(u32, u32)>,
    scratch: Vec<i32>,
}

impl Enumerator {
    fn new(inputs: &[&[i32]], ops: &[Op]) -> Self {
        let root = pack(inputs.iter().copied());
        let mut e = Enumerator {
            ops: ops.iter().copied().filter(|op| !op.is_reducer()).collect(),
            reducers: ops.iter().copied().filter(|op| op.is_reducer()).collect(),
            min_lens: None,
            pool: Vec::new(),
            nodes: Vec::new(),
            index: HashMap::default(),
            levels: vec![(0, 1)],
            scratch: Vec::new(),
        };
        e.insert(&root, fingerprint(&root), NONE, Op::Inc);
        e
    }

    fn data(&self, id: u32) -> &[i32] {
        let n = &self.nodes[id as usize];
        &self.pool[n.start as usize..n.end as usize]
    }

    /// The node holding exactly `data`, if any.
    fn find_node(&self, data: &[i32], fp: u64) -> Option<u32> {
        let mut id = *self.index.get(&fp)?;
        while id != NONE {
            if self.data(id) == data {
                return Some(id);
            }
            id = self.nodes[id as usize].next;
        }
        None
    }

    /// Adds a new node with fingerprint `fp` (the caller checked it is new).
    fn insert(&mut self, data: &[i32], fp: u64, parent: u32, op: Op) {
        let id = self.nodes.len() as u32;
        let start = self.pool.len() as u32;
        self.pool.extend_from_slice(data);
        let next = self.index.insert(fp, id).unwrap_or(NONE);
        self.nodes.push(Node {
            start,
            end: self.pool.len() as u32,
            parent,
            op,
            next,
        });
    }

    fn long_enough(&self, data: &[i32]) -> bool {
        match &self.min_lens {
            Some(min) => segments(data).zip(min).all(|(xs, &m)| xs.len() >= m),
            None => true,
        }
    }

    /// Builds levels until `depth` exists.
    fn ensure_level(&mut self, depth: usize) {
        while self.levels.len() <= depth {
            let (lo, hi) = self.levels[self.levels.len() - 1];
            for id in lo..hi {
                for k in 0..self.ops.len() {
                    let op = self.ops[k];
                    let mut child = std::mem::take(&mut self.scratch);
                    if apply_state(op, self.data(id), &mut child) && self.long_enough(&child) {
                        let fp = fingerprint(&child);
                        if self.find_node(&child, fp).is_none() {
                            self.insert(&child, fp, id, op);
                        }
                    }
                    self.scratch = child;
                }
            }
            self.levels.push((hi, self.nodes.len() as u32));
        }
    }

    /// The program that reaches node `id`, then `last`.
    fn program(&self, mut id: u32, last: Op) -> Vec<Op> {
        let mut ops = vec![last];
        while self.nodes[id as usize].parent != NONE {
            ops.push(self.nodes[id as usize].op);
            id = self.nodes[id as usize].parent;
        }
        ops.reverse();
        ops
    }

    /// Whether `op` takes the state `data` to the list goal, checked input
    /// by input so most misses cost one short list.
    fn list_hit(op: Op, data: &[i32], goal: &[i32], scratch: &mut Vec<i32>) -> bool {
        segments(data).zip(segments(goal)).all(|(xs, want)| {
            if result_len(op, xs).is_some_and(|n| n != want.len()) {
                return false;
            }
            scratch.clear();
            apply_list(op, xs, scratch).is_some() && scratch[..] == *want
        })
    }

    /// Whether reducer `op` takes the state `data` to the integer goal.
    fn int_hit(op: Op, data: &[i32], goal: &[i32]) -> bool {
        segments(data)
            .zip(goal)
            .all(|(xs, &want)| reduce(op, xs) == Some(want))
    }

    /// A shortest program of length `<= max_len` reaching `goal`, if any.
    fn find(&mut self, goal: &Goal, max_len: usize) -> Option<Vec<Op>> {
        if let Goal::List(g) = goal {
            if self.data(0) == &g[..] {
                return Some(Vec::new());
            }
        }
        let mut scratch = Vec::new();
        for len in 1..=max_len {
            self.ensure_level(len - 1);
            let (lo, hi) = self.levels[len - 1];
            for id in lo..hi {
                let data = self.data(id);
                let hit = match goal {
                    // No instruction lengthens a list: skip short states whole.
                    Goal::List(g) if data.first() < g.first() => None,
                    Goal::List(g) => self
                        .ops
                        .iter()
                        .find(|&&op| Self::list_hit(op, data, g, &mut scratch)),
                    Goal::Int(g) => self.reducers.iter().find(|&&op| Self::int_hit(op, data, g)),
                };
                if let Some(&op) = hit {
                    return Some(self.program(id, op));
                }
            }
        }
        None
    }
}

/// The goal of a task's examples (visible then hidden).
fn goal_of(examples: &[&Example]) -> Goal {
    match examples.first().map(|e| &e.output) {
        Some(Value::Int(_)) => Goal::Int(
            examples
                .iter()
                .map(|e| match e.output {
                    Value::Int(v) => v,
                    Value::List(_) => i32::MIN,
                })
                .collect(),
        ),
        _ => Goal::List(pack(examples.iter().map(|e| match &e.output {
            Value::List(xs) => &xs[..],
            Value::Int(_) => &[i32::MIN][..],
        }))),
    }
}

/// A shortest program, within the task's allowed instructions and
/// `max_len`, that reproduces every visible and hidden output (from the
/// start: the program built so far is ignored); `None` if there is none.
/// Ties go to the first program in breadth-first, id order.
pub fn solve(game: &ListDsl) -> Option<Vec<Op>> {
    let examples: Vec<&Example> = game.task.all_examples().collect();
    let inputs: Vec<&[i32]> = examples.iter().map(|e| &e.input[..]).collect();
    let ops: Vec<Op> = game.allowed_ops().collect();
    let mut search = Enumerator::new(&inputs, &ops);
    let goal = goal_of(&examples);
    if let Goal::List(g) = &goal {
        search.min_lens = Some(segments(g).map(<[i32]>::len).collect());
    }
    search.find(&goal, game.max_len())
}

/// Actions an episode needs for `program`: one per instruction, plus `stop`
/// when it ends on a list before `max_len`.
pub fn episode_steps(program: &[Op], max_len: usize) -> u32 {
    let needs_stop = program.last().is_none_or(|op| !op.is_reducer()) && program.len() < max_len;
    program.len() as u32 + u32::from(needs_stop)
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// Checks a program text like `"filter(even) | map(*2) | sum"` against the
/// task in `spec`: it must parse, use only allowed instructions, fit
/// `max_len`, end with a reducer exactly when the outputs are integers, and,
/// run by [`run`], reproduce every visible and hidden output. Never panics.
pub fn verify_solution(spec: &str, solution: &str) -> bool {
    let Ok(game) = ListDsl::from_spec(spec) else {
        return false;
    };
    let Some(program) = parse_program(solution) else {
        return false;
    };
    let t = &game.task;
    let ends_int = program.last().is_some_and(|op| op.is_reducer());
    program.len() <= game.max_len()
        && program.iter().all(|&op| t.allows(op))
        && ends_int == t.int_output
        && t.all_examples()
            .all(|e| run(&program, &e.input).as_ref() == Some(&e.output))
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// One row of the difficulty table (module docs).
struct Band {
    len: usize,
    ops: &'static [Op],
    visible: usize,
    hidden: usize,
    list_len: (usize, usize),
    value: i32,
}

#[rustfmt::skip]
const BASIC: [Op; 16] = [
    Op::Inc, Op::Dec, Op::Double, Op::Negate,
    Op::KeepPos, Op::KeepNeg, Op::KeepEven, Op::KeepOdd, Op::Sort, Op::Reverse,
    Op::Sum, Op::Max, Op::Min, Op::Count, Op::Head, Op::Last,
];

#[rustfmt::skip]
const MEDIUM: [Op; 18] = [
    Op::Inc, Op::Dec, Op::Double, Op::Negate, Op::Square,
    Op::KeepPos, Op::KeepNeg, Op::KeepEven, Op::KeepOdd, Op::Sort, Op::Reverse, Op::Scan,
    Op::Sum, Op::Max, Op::Min, Op::Count, Op::Head, Op::Last,
];

#[rustfmt::skip]
const BANDS: [Band; 5] = [
    Band { len: 1, ops: &BASIC, visible: 3, hidden: 3, list_len: (3, 5), value: 5 },
    Band { len: 2, ops: &BASIC, visible: 3, hidden: 3, list_len: (3, 6), value: 6 },
    Band { len: 3, ops: &MEDIUM, visible: 4, hidden: 4, list_len: (4, 7), value: 8 },
    Band { len: 4, ops: &Op::ALL, visible: 4, hidden: 4, list_len: (5, 8), value: 9 },
    Band { len: 5, ops: &Op::ALL, visible: 5, hidden: 5, list_len: (5, 10), value: 10 },
];

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
    let band = band_for(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (inputs, program) = pick_task(band, &mut rng);
    let examples: Vec<Example> = inputs
        .into_iter()
        .map(|input| {
            let output = run(&program, &input).unwrap_or(Value::Int(0));
            Example { input, output }
        })
        .collect();
    let mut visible = examples;
    let hidden = visible.split_off(band.visible);
    let max_len = program.len() + 2;
    let game = ListDsl::new(band.ops, max_len, visible, hidden)
        .unwrap_or_else(|e| unreachable!("generated task is valid: {e}"));
    Task {
        task_id: format!("listdsl-{seed:016x}"),
        family: Family::ListDsl,
        difficulty,
        seed,
        statement: statement(&game),
        spec: game.to_spec(),
        reference_solution: format_program(&program),
        optimal_steps: Some(episode_steps(&program, max_len)),
    }
}

fn statement(game: &ListDsl) -> String {
    let ops: Vec<&str> = game.allowed_ops().map(Op::name).collect();
    let examples: Vec<String> = game
        .visible()
        .iter()
        .map(|e| format!("{} -> {}", format_list(&e.input), e.output))
        .collect();
    format!(
        "Write a list program of at most {} instructions from {{{}}} that maps {}; it is also checked on {} hidden inputs",
        game.max_len(),
        ops.join(", "),
        examples.join("; "),
        game.hidden().len()
    )
}

/// Inputs (visible first) and a shortest target program of the band's
/// length; falls back to shorter targets only if every draw fails.
fn pick_task(band: &Band, rng: &mut ChaCha8Rng) -> (Vec<Vec<i32>>, Vec<Op>) {
    for len in (1..=band.len).rev() {
        for _ in 0..MAX_DRAWS {
            let inputs = draw_inputs(band, rng);
            if let Some(program) = pick_target(band, len, &inputs, rng) {
                return (inputs, program);
            }
        }
    }
    // Unreachable in practice: `sort` of distinct random inputs is never
    // constant. Keep a valid task anyway.
    (draw_inputs(band, rng), vec![Op::Sort])
}

/// `visible + hidden` distinct random lists.
fn draw_inputs(band: &Band, rng: &mut ChaCha8Rng) -> Vec<Vec<i32>> {
    let n = band.visible + band.hidden;
    let mut inputs: Vec<Vec<i32>> = Vec::with_capacity(n);
    while inputs.len() < n {
        let len = rng.random_range(band.list_len.0..=band.list_len.1);
        let xs: Vec<i32> = (0..len)
            .map(|_| rng.random_range(-band.value..=band.value))
            .collect();
        if !inputs.contains(&xs) {
            inputs.push(xs);
        }
    }
    inputs
}

/// A random program of `len` instructions over the band's instructions;
/// the last is a reducer with probability 1/2.
fn random_program(band: &Band, len: usize, rng: &mut ChaCha8Rng) -> Vec<Op> {
    let pick = |rng: &mut ChaCha8Rng, reducer: bool| {
        let pool: Vec<Op> = band
            .ops
            .iter()
            .copied()
            .filter(|op| op.is_reducer() == reducer)
            .collect();
        pool[rng.random_range(0..pool.len())]
    };
    let reducer = rng.random_bool(0.5);
    let mut program: Vec<Op> = (1..len).map(|_| pick(rng, false)).collect();
    program.push(pick(rng, reducer));
    program
}

/// Up to [`TARGETS_PER_DRAW`] random targets on `inputs`; the first that is
/// not degenerate and has no shorter equivalent on all inputs.
fn pick_target(
    band: &Band,
    len: usize,
    inputs: &[Vec<i32>],
    rng: &mut ChaCha8Rng,
) -> Option<Vec<Op>> {
    let refs: Vec<&[i32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut search = Enumerator::new(&refs, band.ops);
    for _ in 0..TARGETS_PER_DRAW {
        let program = random_program(band, len, rng);
        let Some(outputs) = inputs
            .iter()
            .map(|xs| run(&program, xs))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if degenerate(&outputs, band.visible) {
            continue;
        }
        let examples: Vec<Example> = inputs
            .iter()
            .zip(outputs)
            .map(|(input, output)| Example {
                input: input.clone(),
                output,
            })
            .collect();
        let goal = goal_of(&examples.iter().collect::<Vec<_>>());
        if search.find(&goal, len - 1).is_none() {
            return Some(program);
        }
    }
    None
}

/// All outputs equal, visible ones all equal, or over a third empty lists.
fn degenerate(outputs: &[Value], visible: usize) -> bool {
    let all_equal = |vs: &[Value]| vs.windows(2).all(|w| w[0] == w[1]);
    let empty = outputs
        .iter()
        .filter(|v| matches!(v, Value::List(xs) if xs.is_empty()))
        .count();
    all_equal(outputs) || all_equal(&outputs[..visible]) || 3 * empty > outputs.len()
}

impl Puzzle for ListDsl {
    fn is_success(&self) -> bool {
        ListDsl::is_success(self)
    }

    fn is_terminal(&self) -> bool {
        ListDsl::is_terminal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

    fn ops(text: &str) -> Vec<Op> {
        parse_program(text).expect("valid test program")
    }

    fn ex(input: &[i32], output: Value) -> Example {
        Example {
            input: input.to_vec(),
            output,
        }
    }

    fn list(xs: &[i32]) -> Value {
        Value::List(xs.to_vec())
    }

    /// A task whose outputs are `target` run on `inputs`; the last input is
    /// hidden.
    fn task_of(target: &str, allowed: &[Op], max_len: usize, inputs: &[&[i32]]) -> ListDsl {
        let program = ops(target);
        let mut all: Vec<Example> = inputs
            .iter()
            .map(|xs| ex(xs, run(&program, xs).expect("target runs")))
            .collect();
        let hidden = vec![all.pop().expect("at least two inputs")];
        ListDsl::new(allowed, max_len, all, hidden).expect("valid test task")
    }

    fn legal(g: &ListDsl) -> Vec<Action> {
        let mut out = Vec::new();
        g.legal_actions(&mut out);
        out
    }

    /// Plays `program` (plus `stop` if the episode is still running).
    fn replay(g: &ListDsl, program: &[Op]) -> Option<(ListDsl, u32)> {
        let mut g = g.clone();
        let mut steps = 0;
        for &op in program {
            if !g.is_legal(op.id() as Action) {
                return None;
            }
            g.step(op.id() as Action);
            steps += 1;
        }
        if !g.is_terminal() {
            if !g.is_legal(STOP) {
                return None;
            }
            g.step(STOP);
            steps += 1;
        }
        Some((g, steps))
    }

    const INPUTS: [&[i32]; 4] = [
        &[3, -1, 4, -2],
        &[5, 2, -7],
        &[-6, 0, 1, 8, -3],
        &[2, 2, -5],
    ];

    #[test]
    fn instruction_table_is_consistent() {
        assert_eq!(ACTION_DIM, 25);
        assert_eq!(OBS_DIM, 460);
        for (id, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.id(), id);
            assert_eq!(Op::from_id(id), Some(op));
            assert_eq!(Op::parse(op.name()), Some(op));
            assert_eq!(op.is_reducer(), id >= 18, "{op}");
        }
        assert_eq!(Op::from_id(NUM_OPS), None);
        assert_eq!(Op::parse(" map( * -1 ) "), Some(Op::Negate));
        assert_eq!(Op::parse("map(+2)"), None);
        assert_eq!(Op::parse("SUM"), None);
        assert_eq!(Op::parse(""), None);
    }

    #[test]
    fn interpreter_follows_the_rules() {
        let xs = [3, -1, 4, -2, 0];
        let cases = [
            ("map(+1)", list(&[4, 0, 5, -1, 1])),
            ("map(-1)", list(&[2, -2, 3, -3, -1])),
            ("map(*2)", list(&[6, -2, 8, -4, 0])),
            ("map(*-1)", list(&[-3, 1, -4, 2, 0])),
            ("map(^2)", list(&[9, 1, 16, 4, 0])),
            ("filter(>0)", list(&[3, 4])),
            ("filter(<0)", list(&[-1, -2])),
            ("filter(even)", list(&[4, -2, 0])),
            ("filter(odd)", list(&[3, -1])),
            ("sort", list(&[-2, -1, 0, 3, 4])),
            ("reverse", list(&[0, -2, 4, -1, 3])),
            ("scan(+)", list(&[3, 2, 6, 4, 4])),
            ("take(2)", list(&[3, -1])),
            ("drop(3)", list(&[-2, 0])),
            ("sum", Value::Int(4)),
            ("max", Value::Int(4)),
            ("min", Value::Int(-2)),
            ("count", Value::Int(5)),
            ("head", Value::Int(3)),
            ("last", Value::Int(0)),
            ("", list(&xs)),
            ("filter(even) | map(*2) | sum", Value::Int(4)),
            ("sort | reverse | take(3) | last", Value::Int(0)),
        ];
        for (program, want) in cases {
            assert_eq!(run(&ops(program), &xs), Some(want), "{program}");
        }
        let short = [7, 8];
        assert_eq!(run(&ops("take(3)"), &short), Some(list(&short)));
        assert_eq!(run(&ops("drop(3)"), &short), Some(list(&[])));
        assert_eq!(
            run(&ops("filter(odd) | filter(even) | sum"), &short),
            Some(Value::Int(0))
        );
        assert_eq!(run(&ops("drop(2) | count"), &short), Some(Value::Int(0)));
        for reducer in ["max", "min", "head", "last"] {
            assert_eq!(
                run(&ops(&format!("drop(2) | {reducer}")), &short),
                None,
                "{reducer} of []"
            );
        }
        assert_eq!(
            run(&ops("sum | map(+1)"), &short),
            None,
            "nothing after a reducer"
        );
        assert_eq!(run(&ops("sum | count"), &short), None);
    }

    #[test]
    fn values_stay_within_the_cap() {
        assert_eq!(
            run(&ops("map(^2)"), &[1000, -1000]),
            Some(list(&[VALUE_CAP, VALUE_CAP]))
        );
        assert_eq!(run(&ops("map(^2) | map(+1)"), &[1000]), None, "10^6 + 1");
        assert_eq!(
            run(&ops("map(^2) | map(-1)"), &[1000]),
            Some(list(&[999_999]))
        );
        assert_eq!(run(&ops("map(^2) | map(*-1) | map(-1)"), &[1000]), None);
        assert_eq!(
            run(&ops("map(^2) | map(^2)"), &[1000]),
            None,
            "10^12 overflows"
        );
        assert_eq!(run(&ops("map(^2) | map(*2)"), &[1000]), None);
        assert_eq!(run(&ops("map(^2) | scan(+)"), &[1000, 1]), None);
        assert_eq!(run(&ops("map(^2) | sum"), &[1000, 1]), None);
        assert_eq!(
            run(&ops("map(^2) | sum"), &[1000, 0]),
            Some(Value::Int(VALUE_CAP))
        );
        // Even a hostile input far beyond the spec's range fails cleanly.
        assert_eq!(run(&ops("map(^2)"), &[i32::MIN]), None);
        assert_eq!(run(&ops("scan(+)"), &[i32::MAX, i32::MAX]), None);
        assert_eq!(run(&ops("sum"), &[i32::MIN; 10]), None);
        assert_eq!(run(&ops("map(*-1)"), &[i32::MIN]), None);
    }

    #[test]
    fn programs_format_and_parse() {
        let p = ops("filter(even)|map(*2) |  sum");
        assert_eq!(p, vec![Op::KeepEven, Op::Double, Op::Sum]);
        assert_eq!(format_program(&p), "filter(even) | map(*2) | sum");
        assert_eq!(parse_program(&format_program(&p)), Some(p));
        assert_eq!(parse_program("  "), Some(vec![]));
        assert_eq!(format_program(&[]), "");
        assert_eq!(parse_program("sort |"), None);
        assert_eq!(parse_program("| sort"), None);
        assert_eq!(parse_program("sort | | reverse"), None);
        assert_eq!(parse_program("sort, reverse"), None);
        assert_eq!(Value::Int(-3).to_string(), "-3");
        assert_eq!(list(&[1, -2]).to_string(), "[1, -2]");
    }

    #[test]
    fn legal_moves_are_typed() {
        let list_task = task_of("filter(>0) | sort", &Op::ALL, 4, &INPUTS);
        let acts = legal(&list_task);
        let expected: Vec<Action> = (0..18).chain([STOP]).collect();
        assert_eq!(acts, expected, "list instructions and stop, no reducer");
        assert!(!list_task.is_legal(Op::Sum.id() as Action));
        assert!(!list_task.is_legal(ACTION_DIM as Action));

        let int_task = task_of("filter(>0) | sum", &Op::ALL, 3, &INPUTS);
        assert_eq!(
            legal(&int_task),
            (0..24).collect::<Vec<Action>>(),
            "no stop"
        );
        let mut g = int_task.clone();
        g.step(Op::Sort.id() as Action);
        assert_eq!(legal(&g), (0..24).collect::<Vec<Action>>());
        g.step(Op::Reverse.id() as Action);
        assert_eq!(
            legal(&g),
            (18..24).collect::<Vec<Action>>(),
            "last slot: reducers only"
        );

        let subset = [Op::Sort, Op::Reverse, Op::Max];
        let g = task_of("sort | max", &subset, 3, &INPUTS);
        let ids: Vec<Action> = subset.iter().map(|op| op.id() as Action).collect();
        assert_eq!(legal(&g), ids);
        assert_eq!(g.label(Op::Max.id() as Action), "max");
        assert_eq!(g.label(STOP), "stop");
        assert_eq!(g.label(99), "illegal action 99");
    }

    #[test]
    fn episodes_end_on_stop_reducer_or_budget() {
        let g = task_of("filter(>0) | sort", &Op::ALL, 3, &INPUTS);
        let (end, steps) = replay(&g, &ops("sort | filter(>0)")).expect("legal");
        assert_eq!(steps, 3);
        assert!(end.is_terminal() && end.is_success());
        assert_eq!(end.outcome(), Some(Outcome::Success));
        assert_eq!(end.terminal_value(), 1.0);
        assert!(legal(&end).is_empty());
        assert!(end.render().ends_with("| solved"), "{}", end.render());

        let mut full = g.clone();
        for op in ops("filter(>0) | sort | reverse") {
            assert!(!full.is_terminal());
            full.step(op.id() as Action);
        }
        assert!(full.is_terminal(), "max_len reached");
        assert_eq!(full.outcome(), Some(Outcome::Failure));
        assert_eq!(full.terminal_value(), -1.0);
        assert!(legal(&full).is_empty());

        let mut early = g.clone();
        early.step(Op::KeepPos.id() as Action);
        assert!(!early.is_success(), "not over yet");
        assert_eq!(early.outcome(), None);
        assert_eq!(early.terminal_value(), 0.0);
        early.step(STOP);
        assert!(early.is_terminal() && !early.is_success());
        assert!(early.render().ends_with("| failed"));

        let h = task_of("sort | head", &Op::ALL, 4, &INPUTS);
        let (end, steps) = replay(&h, &ops("min")).expect("legal");
        assert_eq!(steps, 1, "a reducer ends the episode");
        assert!(end.is_success(), "min equals sort | head");
        let (end, _) = replay(&h, &ops("max")).expect("legal");
        assert!(end.is_terminal() && !end.is_success());
        assert_eq!(end.to_move(), 0);
    }

    #[test]
    fn hidden_tests_count() {
        // `filter(>0) | sum` and `sum` agree on the visible inputs only.
        let visible = vec![ex(&[1, 2], Value::Int(3)), ex(&[4, 0], Value::Int(4))];
        let hidden = vec![ex(&[5, -1], Value::Int(5))];
        let g = ListDsl::new(&Op::ALL, 3, visible, hidden).expect("valid");
        let (end, _) = replay(&g, &ops("sum")).expect("legal");
        assert!(!end.is_success(), "fails the hidden test");
        let mut obs = vec![0.0; OBS_DIM];
        let mut almost = g.clone();
        almost.encode(&mut obs);
        assert_eq!(obs[3], 0.0);
        almost.step(Op::Sum.id() as Action);
        obs.fill(0.0);
        almost.encode(&mut obs);
        assert_eq!(obs[4], 1.0, "every visible example matches");
        let (end, _) = replay(&g, &ops("filter(>0) | sum")).expect("legal");
        assert!(end.is_success());
        assert_eq!(solve(&g), Some(ops("filter(>0) | sum")));
    }

    #[test]
    fn encode_is_bounded_and_informative() {
        let g = task_of("filter(>0) | sort", &Op::ALL, 4, &INPUTS);
        let mut obs = vec![0.0; OBS_DIM + 3];
        g.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
        assert_eq!(&obs[OBS_DIM..], &[0.0; 3]);
        assert_eq!(obs[0], 0.0, "list outputs");
        assert!((obs[2] - 4.0 / 7.0).abs() < 1e-6);
        assert!(obs[MASK_BASE..PROGRAM_BASE].iter().all(|&x| x == 1.0));
        assert!(obs[PROGRAM_BASE..EXAMPLE_BASE].iter().all(|&x| x == 0.0));
        let e0 = EXAMPLE_BASE;
        assert_eq!(obs[e0], 1.0);
        assert!((obs[e0 + 1] - 0.4).abs() < 1e-6, "input [3, -1, 4, -2]");
        assert!((obs[e0 + 2] - slog(3)).abs() < 1e-6);
        assert!((obs[e0 + 12] - 0.2).abs() < 1e-6, "expected [3, 4]");
        assert_eq!(obs[e0 + 38], 0.0);
        let absent = EXAMPLE_BASE + 3 * EXAMPLE_FEATURES;
        assert!(obs[absent..OBS_DIM].iter().all(|&x| x == 0.0), "3 visible");

        let mut h = g.clone();
        h.step(Op::Sort.id() as Action);
        h.step(Op::KeepPos.id() as Action);
        obs.fill(0.0);
        h.encode(&mut obs);
        assert_eq!(obs[PROGRAM_BASE + Op::Sort.id()], 1.0);
        assert_eq!(obs[PROGRAM_BASE + NUM_OPS + Op::KeepPos.id()], 1.0);
        assert_eq!((obs[3], obs[4]), (1.0, 1.0), "all visible matched");
        assert_eq!(
            (obs[e0 + 38], obs[e0 + 39], obs[e0 + 42], obs[e0 + 43]),
            (1.0, 1.0, 1.0, 1.0)
        );

        let big = ListDsl::from_spec(
            r#"{"ops":["map(^2)","sum"],"max_len":3,"examples":[{"input":[-1000,1000],"output":-1000000}],"hidden":[]}"#,
        )
        .expect("valid");
        let mut b = big.clone();
        b.step(Op::Square.id() as Action);
        b.step(Op::Sum.id() as Action);
        obs.fill(0.0);
        b.encode(&mut obs);
        assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
        assert_eq!(obs[5], 1.0, "the sum overflows");
        assert_eq!(obs[e0 + 24], 1.0);
    }

    #[test]
    fn spec_round_trips() {
        let spec = r#"{"hidden":[{"output":[2],"input":[-2]}],"examples":[{"input":[-3,1],"output":[-1,3]}],"max_len":4,"ops":["sort","map(*-1)"]}"#;
        let g = ListDsl::from_spec(spec).expect("valid");
        assert_eq!(
            g.to_spec(),
            r#"{"ops":["map(*-1)","sort"],"max_len":4,"examples":[{"input":[-3,1],"output":[-1,3]}],"hidden":[{"input":[-2],"output":[2]}]}"#
        );
        let mut h = ListDsl::from_spec(&g.to_spec()).expect("round trip");
        assert_eq!(h, g);
        h.step(Op::Sort.id() as Action);
        assert_eq!(h.to_spec(), g.to_spec(), "the spec is the start state");
        assert_eq!(solve(&g), Some(ops("map(*-1) | sort")));
    }

    #[test]
    fn bad_specs_are_errors_naming_the_field() {
        let ok_ex = r#"[{"input":[1],"output":1}]"#;
        let with = |ops: &str, max_len: &str, examples: &str, hidden: &str| {
            format!(
                r#"{{"ops":{ops},"max_len":{max_len},"examples":{examples},"hidden":{hidden}}}"#
            )
        };
        let good = with(r#"["sum"]"#, "2", ok_ex, "[]");
        assert!(ListDsl::from_spec(&good).is_ok());
        let cases = [
            (String::new(), "spec"),
            ("{".to_string(), "spec"),
            ("[1]".to_string(), "spec"),
            ("null".to_string(), "spec"),
            (good.replace(r#","hidden":[]"#, ""), "hidden"),
            (good.replace(r#""max_len":2,"#, ""), "max_len"),
            (good.replace('}', r#","extra":1}"#), "extra"),
            (with(r#"[]"#, "2", ok_ex, "[]"), "ops"),
            (with(r#""sum""#, "2", ok_ex, "[]"), "ops"),
            (with(r#"["sum","nope"]"#, "2", ok_ex, "[]"), "ops[1]"),
            (with(r#"["sum",3]"#, "2", ok_ex, "[]"), "ops[1]"),
            (with(r#"["sum","sum"]"#, "2", ok_ex, "[]"), "ops[1]"),
            (with(r#"["sort"]"#, "2", ok_ex, "[]"), "ops"),
            (with(r#"["sum"]"#, "0", ok_ex, "[]"), "max_len"),
            (with(r#"["sum"]"#, "8", ok_ex, "[]"), "max_len"),
            (with(r#"["sum"]"#, "-1", ok_ex, "[]"), "max_len"),
            (with(r#"["sum"]"#, "2.5", ok_ex, "[]"), "max_len"),
            (with(r#"["sum"]"#, "2", "[]", "[]"), "examples"),
            (with(r#"["sum"]"#, "2", "{}", "[]"), "examples"),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    &format!("[{}]", [r#"{"input":[],"output":0}"#; 6].join(",")),
                    "[]",
                ),
                "examples",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    ok_ex,
                    &format!("[{}]", [r#"{"input":[],"output":0}"#; 9].join(",")),
                ),
                "hidden",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":[1]}]"#, "[]"),
                "examples[0].output",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"output":1}]"#, "[]"),
                "examples[0].input",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[1],"output":1,"x":0}]"#,
                    "[]",
                ),
                "examples[0]",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":[1001],"output":1}]"#, "[]"),
                "examples[0].input[0]",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":[1,"2"],"output":1}]"#, "[]"),
                "examples[0].input[1]",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":[1.5],"output":1}]"#, "[]"),
                "examples[0].input[0]",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[0,0,0,0,0,0,0,0,0,0,0],"output":1}]"#,
                    "[]",
                ),
                "examples[0].input",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":5,"output":1}]"#, "[]"),
                "examples[0].input",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[1],"output":1000001}]"#,
                    "[]",
                ),
                "examples[0].output",
            ),
            (
                with(r#"["sum"]"#, "2", r#"[{"input":[1],"output":"1"}]"#, "[]"),
                "examples[0].output",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[1],"output":[1e30]}]"#,
                    "[]",
                ),
                "examples[0].output[0]",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[1],"output":18446744073709551615}]"#,
                    "[]",
                ),
                "examples[0].output",
            ),
            (
                with(r#"["sum"]"#, "2", ok_ex, r#"[{"input":[1],"output":[1]}]"#),
                "hidden[0].output",
            ),
            (
                with(
                    r#"["sum"]"#,
                    "2",
                    r#"[{"input":[1],"output":1},{"input":[],"output":[]}]"#,
                    "[]",
                ),
                "examples[1].output",
            ),
        ];
        for (spec, field) in cases {
            let err = ListDsl::from_spec(&spec).expect_err(&spec);
            assert!(err.contains(field), "{spec}: {err}");
            assert!(err.contains("expected"), "{spec}: {err}");
        }
        assert!(ListDsl::new(&[Op::Sum], 2, vec![], vec![]).is_err());
        assert!(ListDsl::new(&[], 2, vec![ex(&[1], list(&[1]))], vec![]).is_err());
    }

    /// Shortest matching program length by plain enumeration (no pruning).
    fn brute_force(g: &ListDsl) -> Option<usize> {
        let allowed: Vec<Op> = g.allowed_ops().collect();
        let examples: Vec<&Example> = g.task.all_examples().collect();
        let hits = |p: &[Op]| {
            examples
                .iter()
                .all(|e| run(p, &e.input).as_ref() == Some(&e.output))
        };
        let mut frontier: Vec<Vec<Op>> = vec![vec![]];
        for len in 0..=g.max_len() {
            if frontier.iter().any(|p| hits(p)) {
                return Some(len);
            }
            frontier = frontier
                .iter()
                .filter(|p| p.last().is_none_or(|op| !op.is_reducer()))
                .flat_map(|p| {
                    allowed.iter().map(move |&op| {
                        let mut q = p.clone();
                        q.push(op);
                        q
                    })
                })
                .collect();
        }
        None
    }

    #[test]
    fn solve_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut lengths = [0usize; 4];
        for _ in 0..150 {
            let n = rng.random_range(2..=4);
            let inputs: Vec<Vec<i32>> = (0..n)
                .map(|_| {
                    let len = rng.random_range(0..=5);
                    (0..len).map(|_| rng.random_range(-4..=4)).collect()
                })
                .collect();
            let len = rng.random_range(1..=3);
            let program: Vec<Op> = (0..len)
                .map(|k| {
                    let pool = if k + 1 == len { NUM_OPS } else { 18 };
                    Op::ALL[rng.random_range(0..pool)]
                })
                .collect();
            let Some(outputs) = inputs
                .iter()
                .map(|xs| run(&program, xs))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let mut examples: Vec<Example> = inputs
                .into_iter()
                .zip(outputs)
                .map(|(input, output)| Example { input, output })
                .collect();
            let hidden = examples.split_off(1);
            let g = ListDsl::new(&Op::ALL, 3, examples, hidden).expect("valid");
            let got = solve(&g);
            assert_eq!(
                got.as_ref().map(Vec::len),
                brute_force(&g),
                "{}",
                g.to_spec()
            );
            let got = got.expect("the target itself matches");
            assert!(verify_solution(&g.to_spec(), &format_program(&got)));
            lengths[got.len()] += 1;
        }
        assert!(lengths[2] > 5 && lengths[3] > 5, "{lengths:?}");
    }

    #[test]
    fn solve_respects_the_task_limits() {
        let g = task_of("sort | reverse | head", &Op::ALL, 4, &INPUTS);
        assert_eq!(solve(&g), Some(ops("max")));
        let no_max = [Op::Sort, Op::Reverse, Op::Head, Op::Last];
        let g = task_of("sort | reverse | head", &no_max, 4, &INPUTS);
        assert_eq!(solve(&g), Some(ops("sort | last")));
        let g = task_of(
            "sort | reverse | head",
            &[Op::Sort, Op::Reverse, Op::Head],
            2,
            &INPUTS,
        );
        assert_eq!(solve(&g), None, "needs 3 instructions");
        let g = task_of("map(+1) | map(+1) | map(+1)", &Op::ALL, 5, &INPUTS);
        assert_eq!(solve(&g), Some(ops("map(+1) | map(+1) | map(+1)")));
        let identity = task_of("", &Op::ALL, 2, &INPUTS);
        assert_eq!(solve(&identity), Some(vec![]));
        assert_eq!(episode_steps(&[], 2), 1, "just stop");
        assert_eq!(episode_steps(&ops("sort"), 1), 1, "max_len ends it");
        assert_eq!(episode_steps(&ops("sort"), 3), 2);
        assert_eq!(episode_steps(&ops("sort | sum"), 3), 2);
    }

    #[test]
    fn verifier_checks_the_whole_task() {
        let g = task_of("filter(odd) | map(*2) | sum", &MEDIUM, 4, &INPUTS);
        let spec = g.to_spec();
        assert!(verify_solution(&spec, "filter(odd) | map(*2) | sum"));
        assert!(verify_solution(&spec, " filter( odd )|map(*2)|  sum "));
        assert!(!verify_solution(&spec, "map(*2) | filter(odd) | sum"));
        assert!(
            !verify_solution(&spec, "filter(odd) | sum | map(*2)"),
            "nothing after a reducer"
        );
        assert!(
            !verify_solution(&spec, "filter(odd) | map(*2)"),
            "list for int outputs"
        );
        assert!(!verify_solution(&spec, "filter(odd) | sum"));
        assert!(!verify_solution(&spec, ""));
        assert!(!verify_solution(&spec, "filter(odd) | map(*2) | sum | sum"));
        assert!(!verify_solution(
            &spec,
            "filter(odd) | map(*2) | sum, please"
        ));
        assert!(
            !verify_solution(&spec, "filter(odd) | take(9) | map(*2) | sum"),
            "unknown instruction"
        );
        assert!(
            !verify_solution(&spec, "filter(odd) | take(3) | map(*2) | sum"),
            "take(3) is not allowed here"
        );
        assert!(
            !verify_solution(&spec, "filter(odd) | map(*2) | map(+1) | map(-1) | sum"),
            "too long"
        );
        assert!(
            verify_solution(&spec, "filter(odd) | sort | map(*2) | sum"),
            "any matching program"
        );
        assert!(!verify_solution("{}", "sum"));
        assert!(!verify_solution("", ""));
    }

    fn check_task(task: &Task) {
        let g = ListDsl::from_spec(&task.spec).expect("generated spec parses");
        let band = band_for(task.difficulty);
        assert!(!g.is_terminal() && !legal(&g).is_empty());
        let reference = parse_program(&task.reference_solution).expect("reference parses");
        assert_eq!(reference.len(), band.len, "fallback fired: {task:?}");
        let best = solve(&g).expect("solvable");
        assert_eq!(
            best.len(),
            band.len,
            "target is a shortest program: {task:?}"
        );
        let steps = episode_steps(&best, g.max_len());
        assert_eq!(task.optimal_steps, Some(steps));
        assert!(
            verify_solution(&task.spec, &task.reference_solution),
            "{task:?}"
        );
        assert!(
            verify_solution(&task.spec, &format_program(&best)),
            "{task:?}"
        );
        let (end, played) = replay(&g, &reference).expect("reference is playable");
        assert!(end.is_terminal() && end.is_success(), "{task:?}");
        assert_eq!(end.outcome(), Some(Outcome::Success));
        assert_eq!(played, steps);
        // Corruptions the verifier must reject.
        let truncated = format_program(&reference[..reference.len() - 1]);
        assert!(
            !verify_solution(&task.spec, &truncated),
            "shorter: {task:?}"
        );
        let mut padded = reference.clone();
        padded.splice(0..0, [Op::Sort; 3]);
        assert!(
            !verify_solution(&task.spec, &format_program(&padded)),
            "too long: {task:?}"
        );
        // Band parameters.
        assert_eq!(g.max_len(), band.len + 2);
        assert_eq!(g.allowed_ops().collect::<Vec<_>>(), band.ops.to_vec());
        assert_eq!(
            (g.visible().len(), g.hidden().len()),
            (band.visible, band.hidden)
        );
        let examples: Vec<&Example> = g.task.all_examples().collect();
        for (k, e) in examples.iter().enumerate() {
            assert!((band.list_len.0..=band.list_len.1).contains(&e.input.len()));
            assert!(e.input.iter().all(|v| v.abs() <= band.value));
            assert!(
                examples[..k].iter().all(|f| f.input != e.input),
                "distinct inputs"
            );
        }
        let outputs: Vec<Value> = examples.iter().map(|e| e.output.clone()).collect();
        assert!(!degenerate(&outputs, band.visible), "{task:?}");
        assert!(task.statement.starts_with(&format!(
            "Write a list program of at most {} instructions",
            g.max_len()
        )));
    }

    #[test]
    fn generated_tasks_are_sound() {
        for seed in 0..3000u64 {
            let difficulty = (seed % 11) as f32 / 10.0;
            check_task(&generate(difficulty, seed));
        }
    }

    #[test]
    fn harder_difficulty_gives_harder_tasks() {
        let stats: Vec<(f64, f64, f64)> = [0.1f32, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&d| {
                let tasks: Vec<Task> = (0..200).map(|s| generate(d, s)).collect();
                let mean = |f: &dyn Fn(&Task) -> f64| tasks.iter().map(f).sum::<f64>() / 200.0;
                let game = |t: &Task| ListDsl::from_spec(&t.spec).expect("valid");
                (
                    mean(&|t| f64::from(t.optimal_steps.unwrap_or(0))),
                    mean(&|t| game(t).allowed_ops().count() as f64),
                    mean(&|t| {
                        let g = game(t);
                        g.visible().iter().map(|e| e.input.len()).sum::<usize>() as f64
                    }),
                )
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 > w[0].0 + 0.5, "optimal steps grow: {stats:?}");
            assert!(w[1].1 >= w[0].1, "instruction sets grow: {stats:?}");
            assert!(w[1].2 > w[0].2, "more visible data: {stats:?}");
        }
    }

    proptest! {
        #[test]
        fn from_spec_never_panics(spec in ".{0,80}") {
            let _ = ListDsl::from_spec(&spec);
        }

        #[test]
        fn from_spec_never_panics_on_near_specs(
            ops in prop::collection::vec("[a-z()+*<>^0-9-]{1,12}", 0..4),
            max_len in -2i64..10,
            input in prop::collection::vec(-1500i64..1500, 0..13),
            output in prop::option::of(-2_000_000i64..2_000_000),
        ) {
            let names: Vec<String> = ops.iter().map(|s| format!("\"{s}\"")).collect();
            let xs: Vec<String> = input.iter().map(i64::to_string).collect();
            let out = output.map_or_else(|| format!("[{}]", xs.join(",")), |v| v.to_string());
            let spec = format!(
                r#"{{"ops":[{}],"max_len":{max_len},"examples":[{{"input":[{}],"output":{out}}}],"hidden":[]}}"#,
                names.join(","), xs.join(",")
            );
            let ok = !ops.is_empty()
                && ops.iter().all(|s| Op::parse(s).is_some())
                && (1..=7).contains(&max_len)
                && input.len() <= 10
                && input.iter().all(|v| v.abs() <= 1000)
                && output.is_none_or(|v| v.abs() <= 1_000_000)
                && (output.is_none() || ops.iter().any(|s| Op::parse(s).is_some_and(Op::is_reducer)))
                && {
                    let mut ids: Vec<_> = ops.iter().filter_map(|s| Op::parse(s)).collect();
                    ids.sort();
                    ids.dedup();
                    ids.len() == ops.len()
                };
            prop_assert_eq!(ListDsl::from_spec(&spec).is_ok(), ok, "{}", spec);
        }

        #[test]
        fn verify_never_panics(text in "[a-z()+*<>^0-9| -]{0,50}", seed in 0u64..50) {
            let task = generate(0.9, seed);
            let _ = verify_solution(&task.spec, &text);
        }

        #[test]
        fn random_play_keeps_invariants(seed in any::<u64>(), d in 0.0f32..=1.0) {
            let task = generate(d, seed);
            let mut g = ListDsl::from_spec(&task.spec).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut obs = vec![0.0; OBS_DIM];
            let mut steps = 0;
            loop {
                obs.fill(0.0);
                g.encode(&mut obs);
                prop_assert!(obs.iter().all(|x| x.is_finite() && x.abs() <= 4.0));
                prop_assert!(!g.render().is_empty());
                let acts = legal(&g);
                prop_assert_eq!(acts.is_empty(), g.is_terminal());
                prop_assert!(acts.windows(2).all(|w| w[0] < w[1]));
                if acts.is_empty() {
                    break;
                }
                let a = acts[rng.random_range(0..acts.len())];
                prop_assert!(!g.label(a).starts_with("illegal"));
                g.step(a);
                steps += 1;
                prop_assert!(steps <= g.max_len() + 1);
            }
            prop_assert!(g.outcome().is_some());
            prop_assert_eq!(g.outcome() == Some(Outcome::Success), g.is_success());
            let verdict = verify_solution(&task.spec, &format_program(g.program()));
            prop_assert_eq!(verdict, g.is_success());
        }
    }
}
