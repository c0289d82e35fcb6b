//! From an op as written (`conv 64 k=3 p=1`) to an `Op`: the table of ops,
//! their arguments, defaults and flags. Unknown ops, arguments and flags are
//! errors, never ignored.

use crate::ast::{Arg, ExprKind, OpCall};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::{Activation, Init, Op, Padding, Pair, PoolKind};
use crate::value::{eval, Scope, Value};

/// What an op keyword builds: one kind per variant of `Op`, with the pooling
/// and activation kinds apart, as the language writes them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Input,
    Conv,
    Linear,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    AdaptiveAvgPool,
    BatchNorm,
    Lrn,
    Dropout,
    Relu,
    LeakyRelu,
    Prelu,
    Elu,
    Selu,
    Gelu,
    Sigmoid,
    Tanh,
    Softmax,
    Flatten,
    Identity,
    Concat,
    Add,
    ZeroPad,
}

/// Where a keyword is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// An op of a chain: `conv 64 k=3 | relu`.
    Chain,
    /// Only in a residual's `project zeropad`.
    Project,
    /// Made by a statement, never written as an op: the `input` line,
    /// `concat { }` and `add { }`.
    Statement,
}

/// Every op keyword, aliases included: the one table that the parser's and
/// the elaborator's keyword checks, `read`'s dispatch, `Op::kind` (the first
/// row of a kind is its name) and the "did you mean" suggestions read.
/// The order of the chain keywords is the order suggestions break ties in.
pub const OPS: [(&str, OpKind, Syntax); 25] = [
    ("conv", OpKind::Conv, Syntax::Chain),
    ("linear", OpKind::Linear, Syntax::Chain),
    ("fc", OpKind::Linear, Syntax::Chain),
    ("maxpool", OpKind::MaxPool, Syntax::Chain),
    ("avgpool", OpKind::AvgPool, Syntax::Chain),
    ("gap", OpKind::GlobalAvgPool, Syntax::Chain),
    ("adaptive_avgpool", OpKind::AdaptiveAvgPool, Syntax::Chain),
    ("bn", OpKind::BatchNorm, Syntax::Chain),
    ("lrn", OpKind::Lrn, Syntax::Chain),
    ("dropout", OpKind::Dropout, Syntax::Chain),
    ("relu", OpKind::Relu, Syntax::Chain),
    ("leaky_relu", OpKind::LeakyRelu, Syntax::Chain),
    ("prelu", OpKind::Prelu, Syntax::Chain),
    ("elu", OpKind::Elu, Syntax::Chain),
    ("selu", OpKind::Selu, Syntax::Chain),
    ("gelu", OpKind::Gelu, Syntax::Chain),
    ("sigmoid", OpKind::Sigmoid, Syntax::Chain),
    ("tanh", OpKind::Tanh, Syntax::Chain),
    ("softmax", OpKind::Softmax, Syntax::Chain),
    ("flatten", OpKind::Flatten, Syntax::Chain),
    ("identity", OpKind::Identity, Syntax::Chain),
    ("zeropad", OpKind::ZeroPad, Syntax::Project),
    ("input", OpKind::Input, Syntax::Statement),
    ("concat", OpKind::Concat, Syntax::Statement),
    ("add", OpKind::Add, Syntax::Statement),
];

/// The keywords written as ops (in a chain or after `project`), in table order.
pub fn op_keywords() -> impl Iterator<Item = &'static str> {
    OPS.iter()
        .filter(|(_, _, syntax)| *syntax != Syntax::Statement)
        .map(|(name, _, _)| *name)
}

/// The keywords of chain ops, in table order: what a misspelt op is
/// matched against.
fn chain_keywords() -> impl Iterator<Item = &'static str> {
    OPS.iter()
        .filter(|(_, _, syntax)| *syntax == Syntax::Chain)
        .map(|(name, _, _)| *name)
}

/// The kind a chain keyword builds.
fn chain_kind(name: &str) -> Option<OpKind> {
    OPS.iter()
        .find(|(n, _, syntax)| *n == name && *syntax == Syntax::Chain)
        .map(|(_, kind, _)| *kind)
}

/// The name of a kind: its first row in `OPS`.
pub(crate) fn keyword(kind: OpKind) -> &'static str {
    OPS.iter()
        .find(|(_, k, _)| *k == kind)
        .map_or("?", |(name, _, _)| *name)
}

/// The chain keyword closest to `name`, to suggest for a misspelt op.
pub(crate) fn suggest_op(name: &str) -> Option<&'static str> {
    crate::suggest(name, chain_keywords())
}

/// Reads an op's arguments; every argument must be claimed by the op.
struct Args<'a> {
    call: &'a OpCall,
    scope: &'a dyn Scope,
    used: Vec<bool>,
    errors: Vec<Diagnostic>,
    named: Vec<&'static str>,
    flags: Vec<&'static str>,
    positional: usize,
}

impl<'a> Args<'a> {
    fn new(call: &'a OpCall, scope: &'a dyn Scope) -> Args<'a> {
        Args {
            call,
            scope,
            used: vec![false; call.args.len()],
            errors: Vec::new(),
            named: Vec::new(),
            flags: Vec::new(),
            positional: 0,
        }
    }

    fn op(&self) -> &str {
        &self.call.name.name
    }

    /// Index of the n-th positional argument that is not a flag.
    fn find_positional(&self, n: usize) -> Option<usize> {
        self.call
            .args
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Arg::Positional(_)) && !self.is_flag(a))
            .nth(n)
            .map(|(i, _)| i)
    }

    fn is_flag(&self, a: &Arg) -> bool {
        matches!(a, Arg::Positional(e) if matches!(&e.kind, ExprKind::Var(v) if self.flags.contains(&v.as_str())))
    }

    fn eval_at(&mut self, i: usize) -> Option<(Value, Span)> {
        self.used[i] = true;
        let e = match &self.call.args[i] {
            Arg::Positional(e) | Arg::Named(_, e) => e,
        };
        match eval(e, self.scope) {
            Ok(v) => Some((v, e.span)),
            Err(d) => {
                self.errors.push(d);
                None
            }
        }
    }

    fn positional(&mut self, what: &str, example: &str) -> Option<(Value, Span)> {
        let n = self.positional;
        self.positional += 1;
        match self.find_positional(n) {
            Some(i) => self.eval_at(i),
            None => {
                self.missing(what, example);
                None
            }
        }
    }

    fn optional_positional(&mut self) -> Option<(Value, Span)> {
        let n = self.positional;
        self.positional += 1;
        let i = self.find_positional(n)?;
        self.eval_at(i)
    }

    fn missing(&mut self, what: &str, example: &str) {
        let op = self.op().to_string();
        self.errors.push(
            Diagnostic::new(format!("missing {what} of `{op}`"), self.call.name.span)
                .label(format!("`{op}` needs {what}"))
                .help(format!("write e.g. `{example}`")),
        );
    }

    fn find_named(&mut self, key: &'static str) -> Option<usize> {
        self.named.push(key);
        self.call
            .args
            .iter()
            .position(|a| matches!(a, Arg::Named(k, _) if k.name == key))
    }

    fn named(&mut self, key: &'static str) -> Option<(Value, Span)> {
        let i = self.find_named(key)?;
        self.eval_at(i)
    }

    fn flag(&mut self, key: &'static str) -> bool {
        self.flags.push(key);
        let found = self.call.args.iter().position(
            |a| matches!(a, Arg::Positional(e) if matches!(&e.kind, ExprKind::Var(v) if v == key)),
        );
        if let Some(i) = found {
            self.used[i] = true;
        }
        found.is_some()
    }

    /// A named argument whose value is a bare word (`p=same`, `init=zeros`).
    fn word(&mut self, key: &'static str, words: &[&str]) -> Option<(String, Span)> {
        let i = self.find_named(key)?;
        let Arg::Named(_, e) = &self.call.args[i] else {
            return None;
        };
        match &e.kind {
            ExprKind::Var(v) if words.contains(&v.as_str()) => {
                self.used[i] = true;
                Some((v.clone(), e.span))
            }
            _ => None,
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    /// Reports `key=word` where the word is neither a value this reader
    /// accepts nor a name in scope (`p=valid`), rather than the less useful
    /// "undefined name". Returns whether it did.
    fn unknown_word(&mut self, key: &'static str, what: &str) -> bool {
        let Some(i) = self
            .call
            .args
            .iter()
            .position(|a| matches!(a, Arg::Named(k, _) if k.name == key))
        else {
            return false;
        };
        let Arg::Named(_, e) = &self.call.args[i] else {
            return false;
        };
        let ExprKind::Var(v) = &e.kind else {
            return false;
        };
        if self.scope.lookup(v).is_some() {
            return false;
        }
        self.used[i] = true;
        let op = self.op().to_string();
        let mut d = Diagnostic::new(
            format!("unknown value `{v}` for `{key}=` of `{op}`"),
            e.span,
        )
        .label(format!("expected {what}"))
        .help(format!(
            "`{v}` is not a value of `{key}=` nor a name in scope"
        ));
        if key == "p" && v == "valid" {
            d = d.help("PyTorch's padding='valid' is `p=0`, the default");
        }
        self.errors.push(d);
        true
    }

    fn bad_value(&mut self, span: Span, what: &str, found: &Value) {
        let op = self.op().to_string();
        self.error(
            Diagnostic::new(format!("`{op}` expects {what}, found {found}"), span)
                .label(format!("expected {what}")),
        );
    }

    fn count(&mut self, v: Option<(Value, Span)>, what: &str, min: i64) -> Option<u64> {
        let (v, span) = v?;
        match v {
            Value::Int(i) if i >= min => Some(i as u64),
            other => {
                self.bad_value(span, &format!("{what} (a whole number >= {min})"), &other);
                None
            }
        }
    }

    fn pair(&mut self, v: Option<(Value, Span)>, what: &str, min: i64) -> Option<Pair> {
        let (v, span) = v?;
        match &v {
            Value::Int(i) if *i >= min => Some(Pair::square(*i as u64)),
            Value::Dims(d)
                if d.len() == 2 && d.iter().all(|&x| x as i64 >= min && x <= i64::MAX as u64) =>
            {
                Some(Pair { h: d[0], w: d[1] })
            }
            other => {
                self.bad_value(
                    span,
                    &format!("{what} (a whole number >= {min}, or HxW such as 1x7)"),
                    other,
                );
                None
            }
        }
    }

    fn float(
        &mut self,
        v: Option<(Value, Span)>,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        let (v, span) = v?;
        match v.as_f64() {
            Some(f) if ok(f) => Some(f),
            _ => {
                self.bad_value(span, what, &v);
                None
            }
        }
    }

    fn boolean(&mut self, v: Option<(Value, Span)>, what: &str) -> Option<bool> {
        let (v, span) = v?;
        match v {
            Value::Bool(b) => Some(b),
            other => {
                self.bad_value(span, what, &other);
                None
            }
        }
    }

    /// `key=` read by `read`, or `default` when the op does not give it.
    fn named_or<T>(
        &mut self,
        key: &'static str,
        default: T,
        read: impl FnOnce(&mut Self, Option<(Value, Span)>) -> Option<T>,
    ) -> Option<T> {
        let v = self.named(key);
        if v.is_some() {
            read(self, v)
        } else {
            Some(default)
        }
    }

    /// A float `key=` that `ok` accepts, or `default`.
    fn float_or(
        &mut self,
        key: &'static str,
        default: f64,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        self.named_or(key, default, |a, v| a.float(v, what, ok))
    }

    /// `bias=true|false`, true when not given.
    fn bias(&mut self) -> Option<bool> {
        self.named_or("bias", true, |a, v| a.boolean(v, "`true` or `false`"))
    }

    /// A pair `key=` the op cannot do without (`k=` of conv and pooling).
    fn required_pair(
        &mut self,
        key: &'static str,
        what: &str,
        example: &str,
        expected: &str,
    ) -> Option<Pair> {
        match self.named(key) {
            None => {
                self.missing(what, example);
                None
            }
            v => self.pair(v, expected, 1),
        }
    }

    /// Reports every argument no reader claimed.
    fn finish(mut self) -> Vec<Diagnostic> {
        // The common case, every argument claimed, costs nothing more: this
        // runs once per op of a network, a million times for a large one.
        if self.used.iter().all(|&u| u) {
            return self.errors;
        }
        let op = self.op().to_string();
        self.named.dedup();
        let mut takes: Vec<String> = self.named.iter().map(|k| format!("{k}=")).collect();
        takes.extend(self.flags.iter().map(|f| f.to_string()));
        let takes = if takes.is_empty() {
            format!("`{op}` takes no named arguments or flags")
        } else {
            format!("`{op}` takes {}", takes.join(", "))
        };
        for (i, a) in self.call.args.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let d = match a {
                Arg::Named(k, _) if self.named.contains(&k.name.as_str()) => {
                    let first = self.call.args[..i]
                        .iter()
                        .any(|b| matches!(b, Arg::Named(k2, _) if k2.name == k.name));
                    if !first {
                        // Claimed by `word` with a value it does not accept;
                        // the reader reported that itself.
                        continue;
                    }
                    Diagnostic::new(format!("argument `{}` given twice", k.name), k.span)
                        .label("second value")
                        .help("give each argument once")
                }
                Arg::Named(k, _) => {
                    let mut d =
                        Diagnostic::new(format!("unknown argument `{}` of `{op}`", k.name), k.span)
                            .label("not an argument of this op")
                            .help(takes.clone());
                    if let Some(s) = crate::suggest(&k.name, self.named.iter().copied()) {
                        d = d.help(format!("did you mean `{s}=`?"));
                    } else if let Some(short) = spelling(&k.name).filter(|s| self.named.contains(s))
                    {
                        d = d.help(format!("`{}` is written `{short}=` here", k.name));
                    }
                    d
                }
                Arg::Positional(e) => match &e.kind {
                    ExprKind::Var(v) if self.scope.lookup(v).is_none() => {
                        let mut d =
                            Diagnostic::new(format!("unknown flag `{v}` of `{op}`"), e.span)
                                .label("not a flag of this op, nor a name in scope")
                                .help(takes.clone());
                        if let Some(s) = crate::suggest(v, self.flags.iter().copied()) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        d
                    }
                    _ => {
                        Diagnostic::new(format!("too many positional arguments for `{op}`"), e.span)
                            .label("unexpected argument")
                            .help(match self.positional {
                                0 => format!("`{op}` takes no positional arguments"),
                                1 => format!("`{op}` takes 1 positional argument"),
                                n => format!("`{op}` takes {n} positional arguments"),
                            })
                    }
                },
            };
            self.errors.push(d);
        }
        self.errors
    }
}

/// The language's short name for an argument as PyTorch spells it.
fn spelling(name: &str) -> Option<&'static str> {
    Some(match name {
        "kernel" | "kernel_size" | "ksize" => "k",
        "stride" | "strides" => "s",
        "pad" | "padding" => "p",
        "dilation" => "d",
        "groups" | "group" => "g",
        "window" => "k",
        _ => return None,
    })
}

/// Builds the op of `call`, or every error its arguments have.
pub fn build(call: &OpCall, scope: &dyn Scope) -> Result<Op, Vec<Diagnostic>> {
    let mut a = Args::new(call, scope);
    let op = read(&mut a);
    let errors = a.finish();
    match op {
        Some(op) if errors.is_empty() => Ok(op),
        _ if errors.is_empty() => Err(vec![Diagnostic::new("invalid op", call.span)]),
        _ => Err(errors),
    }
}

/// The op of a chain keyword: one reader per kind.
#[deny(clippy::wildcard_enum_match_arm)]
fn read(a: &mut Args) -> Option<Op> {
    let kind = chain_kind(a.op())?;
    match kind {
        OpKind::Conv => read_conv(a),
        OpKind::Linear => read_linear(a),
        OpKind::MaxPool => read_pool(a, PoolKind::Max),
        OpKind::AvgPool => read_pool(a, PoolKind::Avg),
        OpKind::GlobalAvgPool => Some(Op::GlobalAvgPool),
        OpKind::AdaptiveAvgPool => {
            let v = a.positional("the output size", "adaptive_avgpool 7x7");
            Some(Op::AdaptiveAvgPool {
                out: a.pair(v, "an output size", 1)?,
            })
        }
        OpKind::BatchNorm => {
            let eps = a.float_or("eps", 1e-5, "a positive eps", |f| f > 0.0);
            let momentum = a.float_or("momentum", 0.1, "a momentum in [0, 1]", |f| {
                (0.0..=1.0).contains(&f)
            });
            let gamma = a.float_or("gamma", 1.0, "a number", f64::is_finite);
            Some(Op::BatchNorm {
                eps: eps?,
                momentum: momentum?,
                gamma: gamma?,
            })
        }
        OpKind::Lrn => {
            let size = a.named_or("size", 5, |a, v| a.count(v, "a window size", 1));
            let alpha = a.float_or("alpha", 1e-4, "a number", f64::is_finite);
            let beta = a.float_or("beta", 0.75, "a number", f64::is_finite);
            let k = a.float_or("k", 2.0, "a number", f64::is_finite);
            Some(Op::Lrn {
                size: size?,
                alpha: alpha?,
                beta: beta?,
                k: k?,
            })
        }
        OpKind::Dropout => {
            let p = a.optional_positional();
            let p = if p.is_some() {
                a.float(p, "a drop probability in [0, 1)", |f| {
                    (0.0..1.0).contains(&f)
                })
            } else {
                Some(0.5)
            };
            Some(Op::Dropout { p: p? })
        }
        OpKind::Relu => Some(Op::Act(Activation::Relu)),
        OpKind::LeakyRelu => {
            let slope = a.float_or("a", 0.01, "a number", f64::is_finite);
            Some(Op::Act(Activation::LeakyRelu { slope: slope? }))
        }
        OpKind::Elu => {
            let alpha = a.float_or("a", 1.0, "a number", f64::is_finite);
            Some(Op::Act(Activation::Elu { alpha: alpha? }))
        }
        OpKind::Prelu => Some(Op::Prelu),
        OpKind::Selu => Some(Op::Act(Activation::Selu)),
        OpKind::Gelu => Some(Op::Act(Activation::Gelu)),
        OpKind::Sigmoid => Some(Op::Act(Activation::Sigmoid)),
        OpKind::Tanh => Some(Op::Act(Activation::Tanh)),
        OpKind::Softmax => Some(Op::Act(Activation::Softmax)),
        OpKind::Flatten => Some(Op::Flatten),
        OpKind::Identity => Some(Op::Identity),
        // Made by statements, not read from a chain.
        OpKind::Input | OpKind::Concat | OpKind::Add | OpKind::ZeroPad => None,
    }
}

fn read_conv(a: &mut Args) -> Option<Op> {
    let out = a.positional("the number of output channels", "conv 64 k=3");
    let out = a.count(out, "output channels", 1);
    let kernel = a.required_pair("k", "the kernel size `k`", "conv 64 k=3", "a kernel size");
    let stride = a.named_or("s", Pair::square(1), |a, v| a.pair(v, "a stride", 1));
    // `Some(None)` is `p=same`, resolved below once the kernel and the
    // dilation are known.
    let padding = match a.word("p", &["same"]) {
        Some(_) => Some(None),
        None if a.unknown_word("p", "a padding: a number, HxW such as 0x3, or `same`") => None,
        None => a
            .named_or("p", Pair::square(0), |a, v| {
                a.pair(v, "a padding (or `same`)", 0)
            })
            .map(Some),
    };
    let dilation = a.named_or("d", Pair::square(1), |a, v| a.pair(v, "a dilation", 1));
    let groups = a.named_or("g", 1, |a, v| a.count(v, "groups", 1));
    let bias = a.bias();
    let init = read_init(a)?;
    let (kernel, dilation) = (kernel?, dilation?);
    Some(Op::Conv {
        out: out?,
        kernel,
        stride: stride?,
        padding: match padding? {
            Some(p) => Padding::explicit(p),
            None => Padding::same(kernel, dilation),
        },
        dilation,
        groups: groups?,
        bias: bias?,
        init,
    })
}

fn read_linear(a: &mut Args) -> Option<Op> {
    let out = a.positional("the number of outputs", "linear 4096");
    let out = a.count(out, "outputs", 1);
    let bias = a.bias();
    let init = read_init(a)?;
    Some(Op::Linear {
        out: out?,
        bias: bias?,
        init,
    })
}

fn read_pool(a: &mut Args, kind: PoolKind) -> Option<Op> {
    let example = format!("{} k=2", a.op());
    let kernel = a.required_pair("k", "the window size `k`", &example, "a window size");
    // The stride defaults to the window.
    let s = a.named("s");
    let stride = if s.is_some() {
        a.pair(s, "a stride", 1)
    } else {
        kernel
    };
    let padding = a.named_or("p", Pair::square(0), |a, v| a.pair(v, "a padding", 0));
    let ceil = a.flag("ceil");
    let exclude_pad = kind == PoolKind::Avg && a.flag("exclude_pad");
    Some(Op::Pool {
        kind,
        kernel: kernel?,
        stride: stride?,
        padding: padding?,
        ceil,
        exclude_pad,
    })
}

fn read_init(a: &mut Args) -> Option<Init> {
    let words: Vec<&str> = Init::NAMES.iter().map(|(n, _)| *n).collect();
    match a.word("init", &words) {
        Some((w, _)) => Init::NAMES.iter().find(|(n, _)| *n == w).map(|(_, i)| *i),
        None => {
            if let Some(i) = a
                .call
                .args
                .iter()
                .position(|x| matches!(x, Arg::Named(k, _) if k.name == "init"))
            {
                a.used[i] = true;
                let Arg::Named(_, e) = &a.call.args[i] else {
                    return None;
                };
                let (found, word) = match &e.kind {
                    ExprKind::Var(v) => (format!("`{v}`"), v.as_str()),
                    ExprKind::Number { text, .. } => (format!("`{text}`"), ""),
                    _ => ("value".to_string(), ""),
                };
                let mut d = Diagnostic::new(format!("unknown initialisation {found}"), e.span)
                    .label("not an `init=` value")
                    .help(format!("one of: {}", words.join(", ")));
                if let Some(s) = crate::suggest(word, words.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                a.error(d);
                return None;
            }
            Some(Init::Kaiming)
        }
    }
}

/// Whether `name` is the keyword of a chain op (and not a block).
pub(crate) fn is_op(name: &str) -> bool {
    chain_kind(name).is_some()
}
