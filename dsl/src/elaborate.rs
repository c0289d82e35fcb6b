//! Elaboration: from the syntax tree to the IR graph. Evaluates expressions,
//! expands block calls and `repeat`, names every op (the rules of
//! docs/language.md, "Names"), infers shapes and reports every independent
//! error in one pass.

use crate::ast::{self, Arg, Define, LabelPart, Merge, OpCall, Project, Stmt, StmtKind};
use crate::diagnostic::{Diagnostic, Source, Span};
use crate::ir::{
    CallChain, CallSite, ExpectValue, Expectation, Name, Network, Node, Op, Quantity, Role, Shape,
    Statement,
};
use crate::shape::{infer, ShapeError};
use crate::value::{eval, Scope, Value};
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap;
use std::collections::{HashMap, HashSet};

/// A network larger than this is refused: the limit turns a runaway
/// `repeat` into an error instead of an OOM. Every op costs about 270 bytes
/// in the IR (tests/ir_memory.rs) and as much again in an analysis, so the
/// limit bounds a compile near 1 GB; the zoo's largest network has under
/// 1,000 ops.
pub const MAX_OPS: usize = 2_000_000;

/// Elaborating more statements than this is an error: with `MAX_OPS`, it
/// bounds the time and memory any input can take.
pub const MAX_STATEMENTS: usize = 2 * MAX_OPS;

/// Statements nested deeper than this, counting through block calls, are an
/// error: each level takes stack, and no real network comes near it.
pub const MAX_DEPTH: usize = 100;

/// Completes an "unknown word" error: the words that are known, and the
/// closest one if it is close enough to be a typo.
fn unknown_word(d: Diagnostic, word: &str, known: &[&str]) -> Diagnostic {
    let d = d.help(format!("one of: {}", known.join(", ")));
    match crate::suggest(word, known.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// What a `meta` value must be.
#[derive(Clone, Copy)]
enum MetaKind {
    Text,
    Percent,
    Year,
}

/// The facts a `meta` line may record (not computed: published accuracy,
/// the paper, the year). A misspelt key is an error, as an unknown op is.
const META_KEYS: [(&str, MetaKind); 8] = [
    ("paper", MetaKind::Text),
    ("year", MetaKind::Year),
    ("dataset", MetaKind::Text),
    ("top1", MetaKind::Percent),
    ("top5", MetaKind::Percent),
    ("accuracy_source", MetaKind::Text),
    ("source", MetaKind::Text),
    ("url", MetaKind::Text),
];

/// What the command line may change: `--set name=value` and `--input CxHxW`.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Values for declared parameters; naming an undeclared one is an error.
    pub set: Vec<(String, Value)>,
    /// Values for parameters *if* the network declares them, below `set`:
    /// what the data implies (`classes` from a dataset), which a network
    /// without such a parameter simply does not take.
    pub defaults: Vec<(String, Value)>,
    pub input: Option<[u64; 3]>,
}

/// The value flowing from one statement to the next: a node, or `None` after
/// an error (later ops are still checked for their own errors, but nothing
/// that depends on the lost shape is reported).
type Flow = Option<NodeIndex>;

/// The naming context of a sequence of statements.
struct Seq {
    prefix: String,
    counter: usize,
}

impl Seq {
    fn new(prefix: String) -> Seq {
        Seq { prefix, counter: 0 }
    }
    /// The next positional name, e.g. `features.4`.
    fn next(&mut self) -> Name {
        let n = format!("{}{}", self.prefix, self.counter);
        self.counter += 1;
        n.into()
    }
    /// A labelled item: takes its position too, named by its label.
    fn labelled(&mut self, label: &str) -> Name {
        self.counter += 1;
        format!("{}{}", self.prefix, label).into()
    }
    fn scope(name: &str) -> Seq {
        Seq::new(format!("{name}."))
    }
}

struct Elab<'a> {
    source: &'a Source,
    defines: HashMap<&'a str, &'a Define>,
    graph: DiGraph<Node, u32>,
    diags: Vec<Diagnostic>,
    /// Network parameters: every block sees them.
    globals: Vec<(String, Value)>,
    /// Variables of the current block and its `repeat` loops.
    locals: Vec<(String, Value)>,
    /// The input shape of the statement being elaborated (`in.c`).
    in_shape: Option<Shape>,
    /// The block calls being elaborated, innermost first: the one record of
    /// the call stack, shared with the nodes made inside it.
    chain: CallChain,
    /// Every full name given so far. FxHash: this map takes one insert per
    /// op, and SipHash made it the largest cost of a big network.
    names: FxHashMap<Name, Span>,
    statements: Vec<Statement>,
    stmt_stack: Vec<u32>,
    role: Role,
    heads: Vec<NodeIndex>,
    too_large: bool,
    /// How deep the statement being elaborated is nested (through calls).
    depth: usize,
    /// Statements elaborated so far (every copy counts).
    work: usize,
    /// Blocks and arguments already checked with no input flowing.
    checked_without_flow: HashSet<String>,
    /// `min_ops` of bodies already measured, by address.
    min_ops_memo: HashMap<(usize, usize, Option<String>), u64>,
    /// Blocks `min_ops` is inside of (a guard against recursion).
    min_ops_active: Vec<usize>,
}

/// What `min_ops` knows ahead of elaboration: a block's variables when they
/// are known (then the network parameters are visible too), else nothing
/// but literals. Never the input shape.
struct Known<'e> {
    env: Option<&'e [(String, Value)]>,
    globals: &'e [(String, Value)],
}

impl Scope for Known<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        let env = self.env?;
        env.iter()
            .rev()
            .chain(self.globals.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn in_shape(&self) -> Option<Shape> {
        None
    }
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The variables of a call of `def` with `args`, evaluated as elaboration
/// would, from the caller's known variables; `None` when any is unknown.
fn bind_known(
    def: &Define,
    args: &[Arg],
    caller: &[(String, Value)],
    globals: &[(String, Value)],
) -> Option<Vec<(String, Value)>> {
    let scope = Known {
        env: Some(caller),
        globals,
    };
    let mut bound: Vec<(String, Value)> = Vec::new();
    let mut positional = 0;
    for a in args {
        let (name, e) = match a {
            Arg::Positional(e) => {
                positional += 1;
                (&def.params.get(positional - 1)?.name.name, e)
            }
            Arg::Named(k, e) => (
                &def.params.iter().find(|p| p.name.name == k.name)?.name.name,
                e,
            ),
        };
        if bound.iter().any(|(n, _)| n == name) {
            return None;
        }
        bound.push((name.clone(), eval(e, &scope).ok()?));
    }
    for p in &def.params {
        if !bound.iter().any(|(n, _)| *n == p.name.name) {
            let v = eval(
                p.default.as_ref()?,
                &Known {
                    env: Some(&bound),
                    globals,
                },
            )
            .ok()?;
            bound.push((p.name.name.clone(), v));
        }
    }
    Some(bound)
}

impl Scope for Elab<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.locals
            .iter()
            .rev()
            .chain(self.globals.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn in_shape(&self) -> Option<Shape> {
        self.in_shape
    }
    fn names(&self) -> Vec<String> {
        self.locals
            .iter()
            .chain(self.globals.iter())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

pub fn elaborate(
    file: &ast::File,
    source: &Source,
    overrides: &Overrides,
) -> Result<Network, Vec<Diagnostic>> {
    let mut e = Elab {
        source,
        defines: HashMap::new(),
        graph: DiGraph::new(),
        diags: Vec::new(),
        globals: Vec::new(),
        locals: Vec::new(),
        in_shape: None,
        chain: CallChain::default(),
        names: FxHashMap::default(),
        statements: Vec::new(),
        stmt_stack: Vec::new(),
        role: Role::Main,
        heads: Vec::new(),
        too_large: false,
        depth: 0,
        work: 0,
        checked_without_flow: HashSet::new(),
        min_ops_memo: HashMap::new(),
        min_ops_active: Vec::new(),
    };
    if let Some(h) = &file.header {
        e.check_params(&h.params);
    }
    for d in &file.defines {
        e.check_params(&d.params);
        if let Some(first) = e.defines.get(d.name.name.as_str()) {
            e.diags.push(
                Diagnostic::new(
                    format!("block `{}` is defined twice", d.name.name),
                    d.name.span,
                )
                .label("second definition")
                .help("rename one of the blocks")
                .note(format!(
                    "the first definition is at {}",
                    source.location(first.name.span.start)
                )),
            );
            continue;
        }
        if crate::ops::is_op(&d.name.name) {
            e.diags.push(
                Diagnostic::new(
                    format!("`{}` is an op and cannot be redefined", d.name.name),
                    d.name.span,
                )
                .label("op name")
                .help("choose another name for the block"),
            );
        }
        e.defines.insert(&d.name.name, d);
    }
    let name = e.header(file, overrides);
    let input_shape = e.input(file, overrides);
    let input = input_shape.map(|shape| {
        e.graph.add_node(Node {
            op: Op::Input,
            name: "input".into(),
            span: file.input.as_ref().map_or(Span::default(), |i| i.span),
            shape,
            role: Role::Main,
            statement: 0,
            calls: e.chain.clone(),
        })
    });
    // Statement 0 is the input line.
    e.statements.push(Statement {
        name: "input".into(),
        parent: None,
        level: 1,
        span: file.input.as_ref().map_or(Span::default(), |i| i.span),
    });
    let mut seq = Seq::new(String::new());
    let output = e.body(&file.body, &mut seq, input);
    let expectations = e.expectations(file);
    let meta = e.meta(file);
    if output.is_none() && e.diags.is_empty() {
        e.diags.push(Diagnostic::new(
            "the network has no output",
            Span::default(),
        ));
    }
    if !e.diags.is_empty() {
        return Err(merge_repeats(e.diags));
    }
    let output = output.expect("no errors means an output");
    // The graph is only read from here on: its growth slack (up to half of
    // it for a large network) is given back.
    e.graph.shrink_to_fit();
    e.statements.shrink_to_fit();
    Ok(Network {
        name,
        source: source.clone(),
        input: input_shape.expect("no errors means an input"),
        params: e.globals,
        graph: e.graph,
        output,
        heads: e.heads,
        statements: e.statements,
        expectations,
        meta,
    })
}

/// Sorts errors by place and keeps one per place and message: an error in a
/// block called several times is reported once (with the first call chain),
/// with a note saying how many other calls hit it.
fn merge_repeats(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut repeats: Vec<usize> = Vec::new();
    let mut first: HashMap<(usize, usize, String), usize> = HashMap::new();
    for d in diags {
        let key = (d.span.start, d.span.end, d.message.clone());
        match first.get(&key) {
            Some(&i) => repeats[i] += 1,
            None => {
                first.insert(key, out.len());
                out.push(d);
                repeats.push(0);
            }
        }
    }
    for (d, n) in out.iter_mut().zip(repeats) {
        if n > 0 && d.notes.iter().any(|n| n.starts_with("in block `")) {
            d.notes.push(format!(
                "the same error occurs in {n} other call{} (not shown)",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    // Stable: errors at one place keep the order they were found in.
    out.sort_by_key(|d| d.span.start);
    out
}

/// Whether the number of ops of `stmts` can depend on a variable: only
/// through a `repeat` count or a block's arguments.
fn sizes_may_vary(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        StmtKind::Chain(_) => false,
        StmtKind::Call { .. } | StmtKind::Repeat { .. } => true,
        StmtKind::Group(body) | StmtKind::Head { body, .. } => sizes_may_vary(body),
        StmtKind::Parallel { branches, .. } => sizes_may_vary(branches),
        StmtKind::Residual { body, .. } => sizes_may_vary(body),
    })
}

/// A call chain of more than 8 calls keeps its 3 innermost and 3 outermost.
fn shorten(mut notes: Vec<String>) -> Vec<String> {
    if notes.len() > 8 {
        let k = notes.len() - 6;
        notes.drain(3..notes.len() - 3);
        notes.insert(3, format!("... {k} more calls ..."));
    }
    notes
}

/// Where an error about a statement's name points: its label, or the
/// statement itself when it has none.
fn name_span(s: &Stmt) -> Span {
    s.label.as_ref().map_or(s.span, |l| l.span)
}

impl<'a> Elab<'a> {
    // ---- header, input, expect ----

    fn header(&mut self, file: &ast::File, overrides: &Overrides) -> String {
        let Some(h) = &file.header else {
            self.diags.push(
                Diagnostic::new("missing `network` header", Span::default())
                    .label("the file must start with the network's name")
                    .help("add a first line such as `network mynet(classes = 10)`"),
            );
            return String::new();
        };
        for p in &h.params {
            let given = overrides
                .set
                .iter()
                .rev()
                .chain(overrides.defaults.iter().rev())
                .find(|(n, _)| *n == p.name.name);
            let value = match (given, &p.default) {
                (Some((_, v)), _) => Some(v.clone()),
                (None, Some(d)) => match eval(d, self) {
                    Ok(v) => Some(v),
                    Err(d) => {
                        self.diags.push(d);
                        None
                    }
                },
                (None, None) => {
                    self.diags.push(
                        Diagnostic::new(
                            format!("parameter `{}` has no value", p.name.name),
                            p.name.span,
                        )
                        .label("no default")
                        .help(format!(
                            "give a default (`{} = 10`) or pass `--set {}=...`",
                            p.name.name, p.name.name
                        )),
                    );
                    None
                }
            };
            if let Some(v) = value {
                self.globals.push((p.name.name.clone(), v));
            }
        }
        for (n, _) in &overrides.set {
            if !h.params.iter().any(|p| &p.name.name == n) {
                let known: Vec<&str> = h.params.iter().map(|p| p.name.name.as_str()).collect();
                let mut d = Diagnostic::new(
                    format!("`--set {n}`: the network has no parameter `{n}`"),
                    h.name.span,
                )
                .label(format!(
                    "parameters: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
                if let Some(s) = crate::suggest(n, known.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
            }
        }
        h.name.name.clone()
    }

    fn input(&mut self, file: &ast::File, overrides: &Overrides) -> Option<Shape> {
        let Some(decl) = &file.input else {
            self.diags.push(
                Diagnostic::new("missing `input` line", Span::default())
                    .label("the network needs its input shape")
                    .help("add a line such as `input 3x224x224` after the header"),
            );
            return None;
        };
        let d = overrides
            .input
            .unwrap_or([decl.dims[0], decl.dims[1], decl.dims[2]]);
        let shape = Shape::Image {
            c: d[0],
            h: d[1],
            w: d[2],
        };
        let bad = if d.contains(&0) {
            Diagnostic::new("the input shape has a zero dimension", decl.span)
                .label(format!("{shape} has no elements"))
                .help("every dimension of the input must be at least 1")
        } else if shape.elements().is_none() {
            Diagnostic::new("shape arithmetic overflow", decl.span)
                .label(format!("the input {shape} has more than 2^64 - 1 elements"))
                .help("use a smaller input")
        } else {
            return Some(shape);
        };
        self.diags.push(if overrides.input.is_some() {
            bad.note("the shape comes from `--input`")
        } else {
            bad
        });
        None
    }

    /// The `meta` lines; a key given twice is an error.
    fn meta(&mut self, file: &ast::File) -> Vec<(String, ast::MetaValue)> {
        let mut out: Vec<(String, ast::MetaValue)> = Vec::new();
        for (i, m) in file.metas.iter().enumerate() {
            if let Some(first) = file.metas[..i].iter().find(|f| f.key.name == m.key.name) {
                self.diags.push(
                    Diagnostic::new(format!("`meta {}` is given twice", m.key.name), m.key.span)
                        .label("second value")
                        .help("give each `meta` key once")
                        .note(format!(
                            "the first is at {}",
                            self.source.location(first.key.span.start)
                        )),
                );
                continue;
            }
            let Some(&(_, kind)) = META_KEYS.iter().find(|(k, _)| *k == m.key.name) else {
                self.diags.push(unknown_word(
                    Diagnostic::new(format!("unknown `meta` key `{}`", m.key.name), m.key.span)
                        .label("not a key cnncost knows"),
                    &m.key.name,
                    &META_KEYS.map(|(k, _)| k),
                ));
                continue;
            };
            let problem = match (kind, &m.value) {
                (MetaKind::Text, ast::MetaValue::Text(_)) => None,
                (MetaKind::Text, _) => Some("text in double quotes".to_string()),
                (MetaKind::Percent, ast::MetaValue::Number { value, .. })
                    if (0.0..=100.0).contains(value) =>
                {
                    None
                }
                (MetaKind::Percent, _) => Some("a percentage between 0 and 100".to_string()),
                (MetaKind::Year, ast::MetaValue::Number { value, .. })
                    if value.fract() == 0.0 && (1900.0..=2200.0).contains(value) =>
                {
                    None
                }
                (MetaKind::Year, _) => Some("a year such as 2016".to_string()),
            };
            if let Some(expected) = problem {
                self.diags.push(
                    Diagnostic::new(format!("`meta {}` needs {expected}", m.key.name), m.span)
                        .label(format!("expected {expected}")),
                );
                continue;
            }
            out.push((m.key.name.clone(), m.value.clone()));
        }
        out
    }

    fn expectations(&mut self, file: &ast::File) -> Vec<Expectation> {
        let mut out = Vec::new();
        // `expect` lines see the network's parameters, not an op's input.
        self.in_shape = None;
        for x in &file.expects {
            if x.tolerance.is_some() && x.cmp != ast::Cmp::Approx {
                self.diags.push(
                    Diagnostic::new("a tolerance needs `~`", x.span)
                        .label(format!(
                            "`{}` compares exactly, with no tolerance",
                            x.cmp.symbol()
                        ))
                        .help("write `expect QUANTITY ~ VALUE ± TOLERANCE`"),
                );
                continue;
            }
            if x.quantity.name == "output" && x.cmp != ast::Cmp::Eq {
                self.diags.push(
                    Diagnostic::new("`expect output` compares shapes with `=`", x.span)
                        .label(format!("`{}` has no meaning for a shape", x.cmp.symbol()))
                        .help("write e.g. `expect output = 1000` or `expect output = 512x7x7`"),
                );
                continue;
            }
            let Some(&(_, quantity)) = Quantity::ALL.iter().find(|(n, _)| *n == x.quantity.name)
            else {
                self.diags.push(unknown_word(
                    Diagnostic::new(
                        format!("unknown quantity `{}`", x.quantity.name),
                        x.quantity.span,
                    )
                    .label("not something `expect` can check"),
                    &x.quantity.name,
                    &Quantity::ALL.map(|(n, _)| n),
                ));
                continue;
            };
            let value = match (&x.value.kind, quantity) {
                (ast::ExprKind::Dims(d), Quantity::Output) if d.len() == 3 => {
                    ExpectValue::Shape(Shape::Image {
                        c: d[0],
                        h: d[1],
                        w: d[2],
                    })
                }
                (ast::ExprKind::Number { int: Some(n), .. }, Quantity::Output) if *n > 0 => {
                    ExpectValue::Shape(Shape::Flat(*n as u64))
                }
                (_, Quantity::Output) => {
                    self.diags.push(
                        Diagnostic::new("`expect output` needs a shape", x.value.span)
                            .label("expected CxHxW or a feature count")
                            .help("e.g. `expect output = 1000` or `expect output = 512x7x7`"),
                    );
                    continue;
                }
                (ast::ExprKind::Number { value, text, .. }, _) => ExpectValue::Number {
                    value: *value,
                    text: text.clone(),
                },
                _ => match eval(&x.value, self) {
                    Ok(v) if v.as_f64().is_some() => ExpectValue::Number {
                        value: v.as_f64().unwrap_or_default(),
                        text: v.to_string(),
                    },
                    Ok(v) => {
                        self.diags.push(
                            Diagnostic::new(
                                format!("`expect {}` needs a number", quantity.name()),
                                x.value.span,
                            )
                            .label(format!("this is {}", v.type_name())),
                        );
                        continue;
                    }
                    Err(d) => {
                        self.diags.push(d);
                        continue;
                    }
                },
            };
            if x.cmp == ast::Cmp::Approx && quantity == Quantity::Output {
                self.diags.push(
                    Diagnostic::new("`~` does not apply to a shape", x.span).label("use `=`"),
                );
                continue;
            }
            let text = self.source.text[x.span.start..x.span.end].to_string();
            out.push(Expectation {
                train: x.train,
                quantity,
                cmp: x.cmp,
                value,
                tolerance: x.tolerance.clone(),
                span: x.span,
                text,
            });
        }
        out
    }

    // ---- helpers ----

    fn shape(&self, x: Flow) -> Option<Shape> {
        x.map(|n| self.graph[n].shape)
    }

    /// Adds the call chain to an error raised inside a block. (Only errors
    /// in statements come here: `in.c` with no shape is then a follow-on.)
    fn error(&mut self, mut d: Diagnostic) {
        if crate::value::is_missing_input_shape(&d) && !self.diags.is_empty() {
            return;
        }
        d.notes
            .extend(shorten(crate::ir::call_notes(self.source, &self.chain)));
        self.diags.push(d);
    }

    /// Reports parameters declared twice in one list.
    fn check_params(&mut self, params: &[ast::Param]) {
        for (i, p) in params.iter().enumerate() {
            if let Some(first) = params[..i].iter().find(|q| q.name.name == p.name.name) {
                self.diags.push(
                    Diagnostic::new(
                        format!("parameter `{}` is declared twice", p.name.name),
                        p.name.span,
                    )
                    .label("second declaration")
                    .help("give each parameter a different name")
                    .note(format!(
                        "the first declaration is at {}",
                        self.source.location(first.name.span.start)
                    )),
                );
            }
        }
    }

    /// A note showing a block's parameters and where it is defined:
    /// "`define b(width, stride = 1)` is at net.net:8:1".
    fn signature(&self, def: &Define) -> String {
        let text = &self.source.text;
        let params: Vec<&str> = def
            .params
            .iter()
            .map(|p| {
                let end = p.default.as_ref().map_or(p.name.span.end, |d| d.span.end);
                text.get(p.name.span.start..end).unwrap_or(&p.name.name)
            })
            .collect();
        format!(
            "`define {}({})` is at {}",
            def.name.name,
            params.join(", "),
            self.source.location(def.span.start)
        )
    }

    fn shape_error(&mut self, e: ShapeError, span: Span) {
        let mut d = Diagnostic::new(e.message, span).label(e.label);
        if let Some(h) = e.help {
            d = d.help(h);
        }
        self.error(d);
    }

    fn claim_name(&mut self, name: &Name, span: Span) -> bool {
        // One lookup: a million-op network claims a million names.
        let first = match self.names.entry(name.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(span);
                return true;
            }
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
        };
        let d = if first == span {
            // The same statement twice: a labelled statement in `repeat`.
            let label = self.source.text.get(span.start..span.end).unwrap_or("x");
            Diagnostic::new(format!("duplicate name `{name}`"), span)
                    .label("every copy made by `repeat` gets this same name")
                    .help(format!(
                        "give each copy its own name with a template such as `{label}{{i}}:` (and `repeat N as i`), or remove the label"
                    ))
        } else {
            Diagnostic::new(format!("duplicate name `{name}`"), span)
                .label("this name is already taken")
                .help("labels must be unique in their scope: rename one of them")
                .note(format!(
                    "`{name}` was first used at {}",
                    self.source.location(first.start)
                ))
        };
        self.error(d);
        false
    }

    fn add_node(&mut self, op: Op, name: Name, span: Span, inputs: &[NodeIndex]) -> Flow {
        if self.graph.node_count() >= MAX_OPS {
            if !self.too_large {
                self.too_large = true;
                self.error(
                    Diagnostic::new(format!("the network has more than {MAX_OPS} ops"), span)
                        .label("limit reached here")
                        .help("check the counts of `repeat`"),
                );
            }
            return None;
        }
        let shapes: Vec<Shape> = inputs.iter().map(|&i| self.graph[i].shape).collect();
        let shape = match infer(&op, &shapes) {
            Ok(s) => s,
            Err(e) => {
                self.shape_error(e, span);
                return None;
            }
        };
        let node = self.graph.add_node(Node {
            op,
            name,
            span,
            shape,
            role: self.role,
            statement: *self.stmt_stack.last().unwrap_or(&0),
            calls: self.chain.clone(),
        });
        for (i, &input) in inputs.iter().enumerate() {
            self.graph.add_edge(input, node, i as u32);
        }
        Some(node)
    }

    fn label(&mut self, stmt: &Stmt) -> Option<String> {
        let label = stmt.label.as_ref()?;
        let mut text = String::new();
        for part in &label.parts {
            match part {
                LabelPart::Text(t) => text.push_str(t),
                LabelPart::Expr(e) => match eval(e, self) {
                    Ok(Value::Int(i)) => text.push_str(&i.to_string()),
                    Ok(v) => {
                        self.error(
                            Diagnostic::new("a label template must give a whole number", e.span)
                                .label(format!("this is {} ({v})", v.type_name())),
                        );
                        text.push('?');
                    }
                    Err(d) => {
                        self.error(d);
                        text.push('?');
                    }
                },
            }
        }
        Some(text)
    }

    fn push_statement(&mut self, name: Name, span: Span) {
        let id = self.statements.len() as u32;
        self.statements.push(Statement {
            name,
            parent: self.stmt_stack.last().copied(),
            level: self.stmt_stack.len() as u32 + 1,
            span,
        });
        self.stmt_stack.push(id);
    }

    // ---- statements ----

    fn body(&mut self, stmts: &[Stmt], seq: &mut Seq, mut x: Flow) -> Flow {
        for s in stmts {
            x = self.stmt(s, seq, x);
        }
        x
    }

    fn stmt(&mut self, s: &Stmt, seq: &mut Seq, x: Flow) -> Flow {
        // Past a size limit nothing more is worth checking.
        if self.too_large {
            return None;
        }
        self.work += 1;
        if self.work > MAX_STATEMENTS {
            self.too_large = true;
            self.error(
                Diagnostic::new(
                    format!("the network has more than {MAX_STATEMENTS} statements"),
                    s.span,
                )
                .label("limit reached here")
                .help("check the counts of `repeat` and the block calls"),
            );
            return None;
        }
        if self.depth >= MAX_DEPTH {
            // Once: every statement down there is as deep.
            self.too_large = true;
            self.error(
                Diagnostic::new(
                    format!("statements nested deeper than {MAX_DEPTH} levels"),
                    s.span,
                )
                .label("too deep, counting through block calls")
                .help("flatten the nesting of groups and block calls"),
            );
            return None;
        }
        self.depth += 1;
        let y = self.stmt_inner(s, seq, x);
        self.depth -= 1;
        y
    }

    fn stmt_inner(&mut self, s: &Stmt, seq: &mut Seq, x: Flow) -> Flow {
        self.in_shape = self.shape(x);
        let label = self.label(s);
        match &s.kind {
            StmtKind::Repeat { count, var, body } => self.repeat(count, var.as_ref(), body, seq, x),
            StmtKind::Chain(ops) => {
                let first = match &label {
                    Some(l) => seq.labelled(l),
                    None => seq.next(),
                };
                self.push_statement(first.clone(), s.span);
                let first_span = s.label.as_ref().map(|l| l.span);
                let y = self.chain(ops, first, first_span, seq, x);
                self.stmt_stack.pop();
                y
            }
            StmtKind::Call { name, args } => {
                let scope = match &label {
                    Some(l) => seq.labelled(l),
                    None => seq.next(),
                };
                self.claim_name(&scope, name_span(s));
                self.push_statement(scope.clone(), s.span);
                let y = self.call(name, args, s.span, scope, x);
                self.stmt_stack.pop();
                y
            }
            StmtKind::Group(body) | StmtKind::Head { body, .. } => {
                let scope = match &label {
                    Some(l) => seq.labelled(l),
                    None => seq.next(),
                };
                self.claim_name(&scope, name_span(s));
                self.push_statement(scope.clone(), s.span);
                let saved_role = self.role;
                if let StmtKind::Head { train, .. } = &s.kind {
                    self.role = Role::Head {
                        train: *train || matches!(saved_role, Role::Head { train: true }),
                    };
                }
                let y = self.body(body, &mut Seq::scope(&scope), x);
                self.role = saved_role;
                self.stmt_stack.pop();
                if let StmtKind::Head { .. } = &s.kind {
                    if let Some(h) = y {
                        self.heads.push(h);
                    }
                    return x;
                }
                y
            }
            StmtKind::Parallel { kind, branches } => {
                let mut own;
                let seq = match &label {
                    Some(l) => {
                        let scope = seq.labelled(l);
                        self.claim_name(&scope, name_span(s));
                        own = Seq::scope(&scope);
                        &mut own
                    }
                    None => seq,
                };
                let keyword = match kind {
                    Merge::Concat => "concat",
                    Merge::Add => "add",
                };
                self.push_statement(
                    label
                        .clone()
                        .unwrap_or_else(|| format!("{}{keyword}", seq.prefix))
                        .into(),
                    s.span,
                );
                let y = self.parallel(*kind, branches, s.span, seq, x);
                self.stmt_stack.pop();
                y
            }
            StmtKind::Residual { body, project } => {
                let mut own;
                let seq = match &label {
                    Some(l) => {
                        let scope = seq.labelled(l);
                        self.claim_name(&scope, name_span(s));
                        own = Seq::scope(&scope);
                        &mut own
                    }
                    None => seq,
                };
                self.push_statement(
                    label
                        .clone()
                        .unwrap_or_else(|| format!("{}residual", seq.prefix))
                        .into(),
                    s.span,
                );
                let y = self.residual(body, project.as_ref(), s, seq, x);
                self.stmt_stack.pop();
                y
            }
        }
    }

    fn repeat(
        &mut self,
        count: &ast::Expr,
        var: Option<&ast::Ident>,
        body: &[Stmt],
        seq: &mut Seq,
        mut x: Flow,
    ) -> Flow {
        let n = match eval(count, self) {
            Ok(Value::Int(n)) if n >= 0 => n as usize,
            Ok(v) => {
                self.error(
                    Diagnostic::new(
                        format!("`repeat` needs a whole number >= 0, found {v}"),
                        count.span,
                    )
                    .label(format!("this is {} ({v})", v.type_name()))
                    .help("the count of copies must be 0, 1, 2, ..."),
                );
                return None;
            }
            Err(d) => {
                self.error(d);
                return None;
            }
        };
        // Refuse a runaway count before expanding anything: expanding it
        // would only stop at the op limit, seconds and gigabytes later.
        if n > 0 && !self.too_large {
            let env: Vec<(String, Value)> = self
                .locals
                .iter()
                .filter(|(n, _)| var.is_none_or(|v| *n != v.name))
                .cloned()
                .collect();
            let hides_global = var.is_some_and(|v| self.globals.iter().any(|(n, _)| *n == v.name));
            let env = (!hides_global).then_some(env);
            let per = self.min_ops(body, env.as_deref(), self.depth);
            let room = MAX_OPS.saturating_sub(self.graph.node_count()) as u64;
            let mut at_least = per.saturating_mul(n as u64);
            // A body whose size depends on the loop variable
            // (`repeat n as i { repeat i { ... } }`): sum the copies, each
            // with its own `i`, until the sum passes the limit.
            if let (Some(v), Some(env)) = (var, &env) {
                if at_least <= room && n <= 100_000 && sizes_may_vary(body) {
                    let mut with_i = env.clone();
                    with_i.push((v.name.clone(), Value::Int(0)));
                    let mut sum: u64 = 0;
                    for i in 0..n {
                        if let Some(last) = with_i.last_mut() {
                            last.1 = Value::Int(i as i64);
                        }
                        sum = sum.saturating_add(self.min_ops(body, Some(&with_i), self.depth));
                        if sum > room {
                            break;
                        }
                    }
                    at_least = at_least.max(sum);
                }
            }
            if n > MAX_OPS || at_least > room {
                // Nothing was expanded: the statements after it are still
                // checked for their own errors.
                let label = if per > 0 {
                    format!(
                        "{n} copies of at least {per} op{} each",
                        if per == 1 { "" } else { "s" }
                    )
                } else if at_least > 0 {
                    format!("{n} copies, making at least {at_least} ops")
                } else {
                    format!("{n} copies")
                };
                self.error(
                    Diagnostic::new(
                        format!("this `repeat` would make the network larger than {MAX_OPS} ops"),
                        count.span,
                    )
                    .label(label)
                    .help(format!(
                        "the limit is {MAX_OPS} ops in all; check the count"
                    )),
                );
                return None;
            }
            // Room for the copies up front: growing the graph and the name
            // map one doubling at a time costs a large network a fifth of
            // its time (the bound is a lower one, so never too much).
            if at_least > 4096 {
                let extra = at_least as usize;
                self.graph.reserve_nodes(extra);
                self.graph.reserve_edges(extra);
                self.names.reserve(extra);
            }
        }
        for i in 0..n {
            if let Some(v) = var {
                self.locals.push((v.name.clone(), Value::Int(i as i64)));
            }
            let errors_before = self.diags.len();
            x = self.body(body, seq, x);
            if var.is_some() {
                self.locals.pop();
            }
            // An error in the body would repeat N times: report it once.
            // With the flow lost, two passes have checked the body already
            // (the second finds labels that every copy repeats).
            if self.diags.len() > errors_before || self.too_large || (x.is_none() && i >= 1) {
                return None;
            }
        }
        x
    }

    /// A lower bound of the ops `stmts` make, to refuse a runaway `repeat`
    /// or block before expanding it (calls that double at each level would
    /// otherwise run into the op limit only after seconds and gigabytes).
    /// `env` holds the values of the block's variables when they are known;
    /// a `repeat` count that cannot be evaluated from it alone (it reads
    /// `in.c`, or a loop variable) counts as 0. The bound also gives up (0)
    /// on recursion and beyond `MAX_DEPTH`, so it never overestimates.
    fn min_ops(&mut self, stmts: &[Stmt], env: Option<&[(String, Value)]>, depth: usize) -> u64 {
        let key = (
            stmts.as_ptr() as usize,
            stmts.len(),
            env.map(|e| format!("{e:?}")),
        );
        if let Some(&n) = self.min_ops_memo.get(&key) {
            return n;
        }
        if depth >= MAX_DEPTH {
            return 0;
        }
        let globals = self.globals.clone();
        let mut total: u64 = 0;
        for s in stmts {
            let n = match &s.kind {
                StmtKind::Chain(ops) => ops.len() as u64,
                StmtKind::Call { name, args } => {
                    match self.defines.get(name.name.as_str()).copied() {
                        Some(def) => {
                            let id = def as *const Define as usize;
                            if self.min_ops_active.contains(&id) {
                                0
                            } else {
                                let callee = env.and_then(|e| bind_known(def, args, e, &globals));
                                self.min_ops_active.push(id);
                                let n = self.min_ops(&def.body, callee.as_deref(), depth + 1);
                                self.min_ops_active.pop();
                                n
                            }
                        }
                        None => 0,
                    }
                }
                StmtKind::Group(body) | StmtKind::Head { body, .. } => {
                    self.min_ops(body, env, depth + 1)
                }
                StmtKind::Repeat { count, var, body } => {
                    let scope = Known {
                        env,
                        globals: &globals,
                    };
                    match eval(count, &scope) {
                        Ok(Value::Int(c)) if c > 0 => {
                            // The loop variable is not known ahead.
                            let inner: Option<Vec<(String, Value)>> = match var {
                                Some(v) => env.map(|e| {
                                    e.iter().filter(|(n, _)| *n != v.name).cloned().collect()
                                }),
                                None => env.map(<[_]>::to_vec),
                            };
                            let per = match var {
                                Some(v) if globals.iter().any(|(n, _)| *n == v.name) => {
                                    // The variable hides a network parameter.
                                    self.min_ops(body, None, depth + 1)
                                }
                                _ => self.min_ops(body, inner.as_deref(), depth + 1),
                            };
                            (c as u64).saturating_mul(per)
                        }
                        _ => 0,
                    }
                }
                // The merge: one `concat` or `add` op.
                StmtKind::Parallel { branches, .. } => {
                    self.min_ops(branches, env, depth + 1).saturating_add(1)
                }
                // The body, then its `add`; a projection may not be used.
                StmtKind::Residual { body, .. } => {
                    self.min_ops(body, env, depth + 1).saturating_add(1)
                }
            };
            total = total.saturating_add(n);
        }
        self.min_ops_memo.insert(key, total);
        total
    }

    /// A chain; `label` is the span of its label, if it has one.
    fn chain(
        &mut self,
        ops: &[OpCall],
        first: Name,
        label: Option<Span>,
        seq: &mut Seq,
        mut x: Flow,
    ) -> Flow {
        let labelled = label.is_some();
        for (i, call) in ops.iter().enumerate() {
            let name = if i == 0 {
                first.clone()
            } else if labelled {
                // `conv1: conv ... | relu` names the relu `conv1.relu`.
                let base = format!("{first}.{}", call.name.name);
                let mut name = base.clone();
                let mut k = 2;
                while self.names.contains_key(name.as_str()) {
                    name = format!("{base}{k}");
                    k += 1;
                }
                seq.counter += 1;
                name.into()
            } else {
                seq.next()
            };
            let name_span = match label {
                Some(l) if i == 0 => l,
                _ => call.span,
            };
            x = self.op(call, name, name_span, x);
        }
        x
    }

    fn op(&mut self, call: &OpCall, name: Name, name_span: Span, x: Flow) -> Flow {
        self.in_shape = self.shape(x);
        if !crate::ops::is_op(&call.name.name) {
            let mut d = Diagnostic::new(format!("unknown op `{}`", call.name.name), call.name.span)
                .label("not an op of the language");
            if self.defines.contains_key(call.name.name.as_str()) {
                d = d.help(format!(
                    "`{0}` is a block: call it as `{0}(...)` on its own line",
                    call.name.name
                ));
            } else if let Some(s) = crate::ops::suggest_op(&call.name.name) {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help("see the table of ops in docs/language.md");
            }
            self.error(d);
            return None;
        }
        let op = match crate::ops::build(call, self) {
            Ok(op) => op,
            Err(ds) => {
                for d in ds {
                    self.error(d);
                }
                return None;
            }
        };
        // A duplicate name is reported; the op still runs, so that what
        // follows is checked too.
        self.claim_name(&name, name_span);
        let x = x?;
        self.add_node(op, name, call.span, &[x])
    }

    /// The values of a call's arguments, evaluated in the caller's scope,
    /// by parameter name; `false` when an argument was wrong (reported).
    fn bind_args(
        &mut self,
        def: &Define,
        name: &ast::Ident,
        args: &[Arg],
    ) -> (Vec<(String, Value)>, bool) {
        let mut bound: Vec<(String, Value)> = Vec::new();
        let mut ok = true;
        let extra: Vec<Span> = args
            .iter()
            .filter_map(|a| match a {
                Arg::Positional(e) => Some(e.span),
                Arg::Named(..) => None,
            })
            .skip(def.params.len())
            .collect();
        if let (Some(&first), Some(&last)) = (extra.first(), extra.last()) {
            let n = def.params.len();
            let given = n + extra.len();
            self.error(
                Diagnostic::new(
                    format!(
                        "block `{}` takes {n} argument{}, {given} given",
                        name.name,
                        if n == 1 { "" } else { "s" },
                    ),
                    first.to(last),
                )
                .label(if extra.len() == 1 {
                    "extra argument".to_string()
                } else {
                    format!("{} extra arguments", extra.len())
                })
                .help("remove the extra arguments, or add parameters to the block")
                .note(self.signature(def)),
            );
            ok = false;
        }
        let mut positional = 0usize;
        for a in args {
            let (pname, expr) = match a {
                Arg::Positional(e) => {
                    positional += 1;
                    match def.params.get(positional - 1) {
                        Some(p) => (p.name.name.clone(), e),
                        // Reported above.
                        None => continue,
                    }
                }
                Arg::Named(k, e) => {
                    if !def.params.iter().any(|p| p.name.name == k.name) {
                        let mut d = Diagnostic::new(
                            format!("block `{}` has no parameter `{}`", name.name, k.name),
                            k.span,
                        )
                        .label("unknown parameter");
                        if let Some(s) =
                            crate::suggest(&k.name, def.params.iter().map(|p| p.name.name.as_str()))
                        {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        self.error(d.note(self.signature(def)));
                        ok = false;
                        continue;
                    }
                    (k.name.clone(), e)
                }
            };
            if bound.iter().any(|(n, _)| *n == pname) {
                self.error(
                    Diagnostic::new(format!("argument `{pname}` given twice"), a.span())
                        .label("second value"),
                );
                ok = false;
                continue;
            }
            match eval(expr, self) {
                Ok(v) => bound.push((pname, v)),
                Err(d) => {
                    self.error(d);
                    ok = false;
                }
            }
        }
        (bound, ok)
    }

    /// Gives the parameters no argument set their defaults, evaluated in the
    /// block's scope (`self.locals`, holding the arguments); `false` when
    /// one has no value (reported).
    fn bind_defaults(&mut self, def: &Define, name: &ast::Ident) -> bool {
        let mut ok = true;
        for p in &def.params {
            if self.locals.iter().any(|(n, _)| *n == p.name.name) {
                continue;
            }
            match &p.default {
                Some(d) => match eval(d, self) {
                    Ok(v) => self.locals.push((p.name.name.clone(), v)),
                    Err(d) => {
                        self.error(d);
                        ok = false;
                    }
                },
                None => {
                    self.error(
                        Diagnostic::new(
                            format!(
                                "missing argument `{}` of block `{}`",
                                p.name.name, name.name
                            ),
                            name.span,
                        )
                        .label(format!("`{}` has no value here", p.name.name))
                        .help(format!(
                            "pass it, e.g. `{}({} = ...)`, or give the parameter a default",
                            name.name, p.name.name
                        ))
                        .note(self.signature(def)),
                    );
                    ok = false;
                }
            }
        }
        ok
    }

    fn call(&mut self, name: &ast::Ident, args: &[Arg], span: Span, scope: Name, x: Flow) -> Flow {
        let Some(&def) = self.defines.get(name.name.as_str()) else {
            let mut d = Diagnostic::new(format!("undefined block `{}`", name.name), name.span)
                .label("no `define` of this name");
            if crate::ops::is_op(&name.name) {
                d = d.help(format!(
                    "`{}` is an op: write its arguments without parentheses",
                    name.name
                ));
            } else if let Some(s) = crate::suggest(&name.name, self.defines.keys().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help(format!(
                    "add `define {}(...) {{ ... }}` at the top level",
                    name.name
                ));
            }
            self.error(d);
            return None;
        };
        if self.chain.iter().any(|c| c.block == name.name) {
            let mut chain: Vec<&str> = self.chain.iter().map(|c| c.block.as_str()).collect();
            chain.reverse();
            chain.push(name.name.as_str());
            self.error(
                Diagnostic::new(
                    format!("recursive call of block `{}`", name.name),
                    name.span,
                )
                .label(format!("calls itself: {}", chain.join(" -> ")))
                .help("blocks cannot call themselves; use `repeat` for repetition"),
            );
            return None;
        }
        let (bound, args_ok) = self.bind_args(def, name, args);
        // Defaults, evaluated in the block's scope.
        let saved_locals = std::mem::replace(&mut self.locals, bound);
        let mut ok = self.bind_defaults(def, name) && args_ok;
        // A block that is sure to pass the op limit (calls that double at each
        // level) is refused before it is expanded.
        if ok && !self.too_large {
            let env = std::mem::take(&mut self.locals);
            let per = self.min_ops(&def.body, Some(&env), self.depth);
            self.locals = env;
            if per > MAX_OPS.saturating_sub(self.graph.node_count()) as u64 {
                self.error(
                    Diagnostic::new(
                        format!(
                            "block `{}` would make the network larger than {MAX_OPS} ops",
                            name.name
                        ),
                        name.span,
                    )
                    .label(format!("this call makes at least {per} ops"))
                    .help(format!("the limit is {MAX_OPS} ops in all")),
                );
                ok = false;
            }
        }
        // With the flow lost, a block is checked once per distinct set of
        // arguments: checking it again finds the same errors, and blocks that
        // call each other twice would take exponential time.
        if ok && x.is_none() {
            let key = format!("{}{:?}", name.name, self.locals);
            if !self.checked_without_flow.insert(key) {
                ok = false;
            }
        }
        let y = if ok {
            let site = CallSite {
                block: name.name.clone(),
                span,
                scope: scope.clone(),
            };
            self.chain = self.chain.push(site);
            let y = self.body(&def.body, &mut Seq::scope(&scope), x);
            self.chain = self.chain.outer();
            y
        } else {
            None
        };
        self.locals = saved_locals;
        y
    }

    fn parallel(
        &mut self,
        kind: Merge,
        branches: &[Stmt],
        span: Span,
        seq: &mut Seq,
        x: Flow,
    ) -> Flow {
        let keyword = match kind {
            Merge::Concat => "concat",
            Merge::Add => "add",
        };
        if branches.is_empty() {
            self.error(
                Diagnostic::new(format!("`{keyword}` has no branches"), span)
                    .label("empty")
                    .help("each statement inside the braces is a branch; `{}` is the identity"),
            );
            return None;
        }
        let mut outs = Vec::new();
        let mut poisoned = false;
        for b in branches {
            // A branch is one statement; `{}` passes the input through.
            let y = self.stmt(b, seq, x);
            match y {
                Some(n) => outs.push(n),
                None => poisoned = true,
            }
        }
        let name = seq.next();
        if poisoned || x.is_none() {
            return None;
        }
        let op = match kind {
            Merge::Concat => Op::Concat,
            Merge::Add => Op::Add,
        };
        self.add_node(op, name, span, &outs)
    }

    fn residual(
        &mut self,
        body: &[Stmt],
        project: Option<&Project>,
        s: &Stmt,
        seq: &mut Seq,
        x: Flow,
    ) -> Flow {
        let y = self.body(body, seq, x);
        let (x, y) = (x?, y?);
        let (xs, ys) = (self.graph[x].shape, self.graph[y].shape);
        let keyword = s.span;
        let shortcut = if xs == ys {
            x
        } else {
            match project {
                None => {
                    let what = match (xs, ys) {
                        (Shape::Image { c, .. }, Shape::Image { c: c2, .. }) if c != c2 => {
                            "channel mismatch in residual"
                        }
                        _ => "shape mismatch in residual",
                    };
                    // The usual projection: a 1x1 conv with the body's stride.
                    let example = match (xs, ys) {
                        (Shape::Image { h, w, .. }, Shape::Image { c, h: h2, w: w2 })
                            if h2 > 0 && h.div_ceil(h2) == w.div_ceil(w2.max(1)) =>
                        {
                            match h.div_ceil(h2) {
                                1 => format!(" (e.g. `project {{ conv {c} k=1 }}`)"),
                                s => format!(" (e.g. `project {{ conv {c} k=1 s={s} }}`)"),
                            }
                        }
                        _ => String::new(),
                    };
                    self.error(
                        Diagnostic::new(what, keyword)
                            .label(format!("body gives {ys}, input is {xs}"))
                            .help(format!(
                                "add a `project` clause{example}, or make the body keep {}",
                                match xs {
                                    Shape::Image { c, h, w } => format!("{c} channels at {h}x{w}"),
                                    Shape::Flat(n) => format!("{n} features"),
                                }
                            )),
                    );
                    // Go on with the body's output, as if the shortcut
                    // matched it, so that later errors are found too.
                    return Some(y);
                }
                Some(Project::ZeroPad { span }) => {
                    let (Shape::Image { h, .. }, Shape::Image { c: out, h: h2, .. }) = (xs, ys)
                    else {
                        self.error(
                            Diagnostic::new("`project zeropad` needs image shapes", *span)
                                .label(format!("body gives {ys}, input is {xs}")),
                        );
                        return None;
                    };
                    let stride = h.div_ceil(h2).max(1);
                    let name = seq.next();
                    let saved = self.role;
                    self.role = Role::Shortcut;
                    let z = self.add_node(Op::ZeroPad { out, stride }, name, *span, &[x]);
                    self.role = saved;
                    let z = z?;
                    if self.graph[z].shape != ys {
                        self.error(
                            Diagnostic::new("`project zeropad` cannot match the body's shape", *span)
                                .label(format!("zero-padding {xs} with stride {stride} gives {}, the body gives {ys}", self.graph[z].shape))
                                .help("use `project { conv ... }` for this shape change"),
                        );
                        return None;
                    }
                    z
                }
                Some(Project::Body { name, body, span }) => {
                    let mut own;
                    let pseq = match name {
                        Some(n) => {
                            let scope = seq.labelled(&n.name);
                            self.claim_name(&scope, n.span);
                            own = Seq::scope(&scope);
                            &mut own
                        }
                        None => &mut *seq,
                    };
                    let saved = self.role;
                    if self.role == Role::Main {
                        self.role = Role::Shortcut;
                    }
                    let z = self.body(body, pseq, Some(x));
                    self.role = saved;
                    let z = z?;
                    let zs = self.graph[z].shape;
                    if zs != ys {
                        self.error(
                            Diagnostic::new("the projection does not match the body", *span)
                                .label(format!("projection gives {zs}, body gives {ys}"))
                                .help("make the shortcut's last op give the body's shape (stride and channels)"),
                        );
                        return None;
                    }
                    z
                }
            }
        };
        let name = seq.next();
        self.add_node(Op::Add, name, s.span, &[y, shortcut])
    }
}
