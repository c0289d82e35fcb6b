//! Elaboration: from the syntax tree to the IR graph. Evaluates expressions,
//! expands block calls and `repeat`, names every op (the rules of
//! docs/language.md, "Names"), infers shapes and reports every independent
//! error in one pass.

use crate::ast::{self, Arg, Define, LabelPart, Merge, OpCall, Project, Stmt, StmtKind};
use crate::diagnostic::{Diagnostic, Source, Span};
use crate::ir::{
    CallSite, ExpectValue, Expectation, Network, Node, Op, Quantity, Role, Shape, Statement,
};
use crate::shape::{infer, ShapeError};
use crate::value::{eval, Scope, Value};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;
use std::rc::Rc;

/// A network larger than this is refused (it would take gigabytes): the
/// limit turns a runaway `repeat` into an error instead of an OOM.
pub const MAX_OPS: usize = 5_000_000;

/// What the command line may change: `--set name=value` and `--input CxHxW`.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub set: Vec<(String, Value)>,
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
    fn next(&mut self) -> String {
        let n = format!("{}{}", self.prefix, self.counter);
        self.counter += 1;
        n
    }
    /// A labelled item: takes its position too, named by its label.
    fn labelled(&mut self, label: &str) -> String {
        self.counter += 1;
        format!("{}{}", self.prefix, label)
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
    calls: Vec<CallSite>,
    calls_rc: Rc<[CallSite]>,
    names: HashMap<String, Span>,
    statements: Vec<Statement>,
    stmt_stack: Vec<u32>,
    role: Role,
    heads: Vec<NodeIndex>,
    too_large: bool,
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
        calls: Vec::new(),
        calls_rc: Rc::from(Vec::new()),
        names: HashMap::new(),
        statements: Vec::new(),
        stmt_stack: Vec::new(),
        role: Role::Main,
        heads: Vec::new(),
        too_large: false,
    };
    for d in &file.defines {
        if let Some(first) = e.defines.get(d.name.name.as_str()) {
            let (line, _) = source.line_col(first.span.start);
            e.diags.push(
                Diagnostic::new(
                    format!("block `{}` is defined twice", d.name.name),
                    d.name.span,
                )
                .label("second definition")
                .note(format!("the first is on line {line}")),
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
            calls: e.calls_rc.clone(),
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
    if output.is_none() && e.diags.is_empty() {
        e.diags.push(Diagnostic::new(
            "the network has no output",
            Span::default(),
        ));
    }
    if !e.diags.is_empty() {
        e.diags.sort_by_key(|d| d.span.start);
        e.diags.dedup();
        return Err(e.diags);
    }
    let output = output.expect("no errors means an output");
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
    })
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
            let given = overrides.set.iter().rev().find(|(n, _)| *n == p.name.name);
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
        if d.contains(&0) {
            self.diags.push(
                Diagnostic::new("the input shape has a zero dimension", decl.span)
                    .label(format!("{}x{}x{}", d[0], d[1], d[2])),
            );
            return None;
        }
        Some(Shape::Image {
            c: d[0],
            h: d[1],
            w: d[2],
        })
    }

    fn expectations(&mut self, file: &ast::File) -> Vec<Expectation> {
        let mut out = Vec::new();
        for x in &file.expects {
            let Some(&(_, quantity)) = Quantity::ALL.iter().find(|(n, _)| *n == x.quantity.name)
            else {
                let names: Vec<&str> = Quantity::ALL.iter().map(|(n, _)| *n).collect();
                let mut d = Diagnostic::new(
                    format!("unknown quantity `{}`", x.quantity.name),
                    x.quantity.span,
                )
                .label("not something `expect` can check")
                .help(format!("one of: {}", names.join(", ")));
                if let Some(s) = crate::suggest(&x.quantity.name, names.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
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

    /// Adds the call chain to an error raised inside a block.
    fn error(&mut self, mut d: Diagnostic) {
        d.notes
            .extend(crate::ir::call_notes(self.source, &self.calls));
        self.diags.push(d);
    }

    fn shape_error(&mut self, e: ShapeError, span: Span) {
        let mut d = Diagnostic::new(e.message, span).label(e.label);
        if let Some(h) = e.help {
            d = d.help(h);
        }
        self.error(d);
    }

    fn claim_name(&mut self, name: &str, span: Span) -> bool {
        if let Some(first) = self.names.get(name) {
            let (line, col) = self.source.line_col(first.start);
            let d = Diagnostic::new(format!("duplicate name `{name}`"), span)
                .label("this name is already taken")
                .note(format!("first used at {}:{line}:{col}", self.source.name))
                .help("labels must be unique in their scope; inside `repeat`, use a template such as `block{i}:`");
            self.error(d);
            return false;
        }
        self.names.insert(name.to_string(), span);
        true
    }

    fn add_node(&mut self, op: Op, name: String, span: Span, inputs: &[NodeIndex]) -> Flow {
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
            calls: self.calls_rc.clone(),
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

    fn push_statement(&mut self, name: String, span: Span) {
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
                let y = self.chain(ops, first, label.is_some(), seq, x);
                self.stmt_stack.pop();
                y
            }
            StmtKind::Call { name, args } => {
                let scope = match &label {
                    Some(l) => seq.labelled(l),
                    None => seq.next(),
                };
                self.claim_name(&scope, s.span);
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
                self.claim_name(&scope, s.span);
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
                        self.claim_name(&scope, s.span);
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
                        .unwrap_or_else(|| format!("{}{keyword}", seq.prefix)),
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
                        self.claim_name(&scope, s.span);
                        own = Seq::scope(&scope);
                        &mut own
                    }
                    None => seq,
                };
                self.push_statement(
                    label
                        .clone()
                        .unwrap_or_else(|| format!("{}residual", seq.prefix)),
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
                    Diagnostic::new("`repeat` needs a whole number >= 0", count.span)
                        .label(format!("this is {v}")),
                );
                return None;
            }
            Err(d) => {
                self.error(d);
                return None;
            }
        };
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
            if self.diags.len() > errors_before || self.too_large {
                return None;
            }
        }
        x
    }

    fn chain(
        &mut self,
        ops: &[OpCall],
        first: String,
        labelled: bool,
        seq: &mut Seq,
        mut x: Flow,
    ) -> Flow {
        for (i, call) in ops.iter().enumerate() {
            let name = if i == 0 {
                first.clone()
            } else if labelled {
                // `conv1: conv ... | relu` names the relu `conv1.relu`.
                let base = format!("{first}.{}", call.name.name);
                let mut name = base.clone();
                let mut k = 2;
                while self.names.contains_key(&name) {
                    name = format!("{base}{k}");
                    k += 1;
                }
                seq.counter += 1;
                name
            } else {
                seq.next()
            };
            x = self.op(call, name, x);
        }
        x
    }

    fn op(&mut self, call: &OpCall, name: String, x: Flow) -> Flow {
        self.in_shape = self.shape(x);
        if !crate::ops::is_op(&call.name.name) {
            let mut d = Diagnostic::new(format!("unknown op `{}`", call.name.name), call.name.span)
                .label("not an op of the language");
            if self.defines.contains_key(call.name.name.as_str()) {
                d = d.help(format!(
                    "`{0}` is a block: call it as `{0}(...)` on its own line",
                    call.name.name
                ));
            } else if let Some(s) = crate::suggest(
                &call.name.name,
                crate::ops::OP_NAMES
                    .iter()
                    .copied()
                    .filter(|n| crate::ops::is_op(n)),
            ) {
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
        if !self.claim_name(&name, call.span) {
            return None;
        }
        let x = x?;
        self.add_node(op, name, call.span, &[x])
    }

    fn call(
        &mut self,
        name: &ast::Ident,
        args: &[Arg],
        span: Span,
        scope: String,
        x: Flow,
    ) -> Flow {
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
        if self.calls.iter().any(|c| c.block == name.name) {
            let chain: Vec<&str> = self
                .calls
                .iter()
                .map(|c| c.block.as_str())
                .chain([name.name.as_str()])
                .collect();
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
        // Bind the arguments, evaluated in the caller's scope.
        let mut bound: Vec<(String, Value)> = Vec::new();
        let mut ok = true;
        let mut positional = 0usize;
        for a in args {
            let (pname, expr) = match a {
                Arg::Positional(e) => {
                    positional += 1;
                    match def.params.get(positional - 1) {
                        Some(p) => (p.name.name.clone(), e),
                        None => {
                            self.error(
                                Diagnostic::new(
                                    format!(
                                        "block `{}` takes {} argument{}, {} given",
                                        name.name,
                                        def.params.len(),
                                        if def.params.len() == 1 { "" } else { "s" },
                                        args.len()
                                    ),
                                    e.span,
                                )
                                .label("extra argument")
                                .note(format!(
                                    "`define {}({})`",
                                    name.name,
                                    def.params
                                        .iter()
                                        .map(|p| p.name.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            );
                            ok = false;
                            continue;
                        }
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
                        self.error(d);
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
        // Defaults, evaluated in the block's scope.
        let saved_locals = std::mem::take(&mut self.locals);
        self.locals = bound;
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
                    let (line, _) = self.source.line_col(def.span.start);
                    self.error(
                        Diagnostic::new(
                            format!(
                                "missing argument `{}` of block `{}`",
                                p.name.name, name.name
                            ),
                            name.span,
                        )
                        .label(format!("`{}` needs `{}`", name.name, p.name.name))
                        .note(format!(
                            "`define {}({})` is on line {line}",
                            name.name,
                            def.params
                                .iter()
                                .map(|p| p.name.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                    ok = false;
                }
            }
        }
        let y = if ok {
            self.calls.push(CallSite {
                block: name.name.clone(),
                span,
                scope: scope.clone(),
            });
            self.calls_rc = Rc::from(self.calls.clone());
            let y = self.body(&def.body, &mut Seq::scope(&scope), x);
            self.calls.pop();
            self.calls_rc = Rc::from(self.calls.clone());
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
                    self.error(
                        Diagnostic::new(what, keyword)
                            .label(format!("body gives {ys}, input is {xs}"))
                            .help(format!(
                                "add a `project` clause, or make the body keep {}",
                                match xs {
                                    Shape::Image { c, h, w } => format!("{c} channels at {h}x{w}"),
                                    Shape::Flat(n) => format!("{n} features"),
                                }
                            )),
                    );
                    return None;
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
