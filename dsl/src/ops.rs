//! From an op as written (`conv 64 k=3 p=1`) to an `Op`: the table of ops,
//! their arguments, defaults and flags. Unknown ops, arguments and flags are
//! errors, never ignored.

use crate::ast::{Arg, ExprKind, OpCall};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::{Activation, Init, Op, Padding, Pair, PoolKind};
use crate::value::{eval, Scope, Value};

/// Every op keyword of the language.
pub const OP_NAMES: [&str; 22] = [
    "conv",
    "linear",
    "fc",
    "maxpool",
    "avgpool",
    "gap",
    "adaptive_avgpool",
    "bn",
    "lrn",
    "dropout",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "flatten",
    "identity",
    "zeropad",
];

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

fn read(a: &mut Args) -> Option<Op> {
    let name = a.op().to_string();
    let op = match name.as_str() {
        "conv" => {
            let out = a.positional("the number of output channels", "conv 64 k=3");
            let out = a.count(out, "output channels", 1);
            let k = match a.named("k") {
                None => {
                    a.missing("the kernel size `k`", "conv 64 k=3");
                    None
                }
                v => a.pair(v, "a kernel size", 1),
            };
            let s = a.named("s");
            let stride = if s.is_some() {
                a.pair(s, "a stride", 1)
            } else {
                Some(Pair::square(1))
            };
            let padding = match a.word("p", &["same"]) {
                Some(_) => Some(Padding::Same),
                None if a.unknown_word("p", "a padding: a number, HxW such as 0x3, or `same`") => {
                    None
                }
                None => {
                    let p = a.named("p");
                    if p.is_some() {
                        a.pair(p, "a padding (or `same`)", 0).map(Padding::Explicit)
                    } else {
                        Some(Padding::Explicit(Pair::square(0)))
                    }
                }
            };
            let d = a.named("d");
            let dilation = if d.is_some() {
                a.pair(d, "a dilation", 1)
            } else {
                Some(Pair::square(1))
            };
            let g = a.named("g");
            let groups = if g.is_some() {
                a.count(g, "groups", 1)
            } else {
                Some(1)
            };
            let b = a.named("bias");
            let bias = if b.is_some() {
                a.boolean(b, "`true` or `false`")
            } else {
                Some(true)
            };
            let init = read_init(a)?;
            Op::Conv {
                out: out?,
                kernel: k?,
                stride: stride?,
                padding: padding?,
                dilation: dilation?,
                groups: groups?,
                bias: bias?,
                init,
            }
        }
        "linear" | "fc" => {
            let out = a.positional("the number of outputs", "linear 4096");
            let out = a.count(out, "outputs", 1);
            let b = a.named("bias");
            let bias = if b.is_some() {
                a.boolean(b, "`true` or `false`")
            } else {
                Some(true)
            };
            let init = read_init(a)?;
            Op::Linear {
                out: out?,
                bias: bias?,
                init,
            }
        }
        "maxpool" | "avgpool" => {
            let kind = if name == "maxpool" {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let example = format!("{name} k=2");
            let k = match a.named("k") {
                None => {
                    a.missing("the window size `k`", &example);
                    None
                }
                v => a.pair(v, "a window size", 1),
            };
            let s = a.named("s");
            let stride = if s.is_some() {
                a.pair(s, "a stride", 1)
            } else {
                k
            };
            let p = a.named("p");
            let padding = if p.is_some() {
                a.pair(p, "a padding", 0)
            } else {
                Some(Pair::square(0))
            };
            let ceil = a.flag("ceil");
            let exclude_pad = kind == PoolKind::Avg && a.flag("exclude_pad");
            Op::Pool {
                kind,
                kernel: k?,
                stride: stride?,
                padding: padding?,
                ceil,
                exclude_pad,
            }
        }
        "gap" => Op::GlobalAvgPool,
        "adaptive_avgpool" => {
            let v = a.positional("the output size", "adaptive_avgpool 7x7");
            Op::AdaptiveAvgPool {
                out: a.pair(v, "an output size", 1)?,
            }
        }
        "bn" => {
            let eps = a.named("eps");
            let eps = if eps.is_some() {
                a.float(eps, "a positive eps", |f| f > 0.0)
            } else {
                Some(1e-5)
            };
            let m = a.named("momentum");
            let momentum = if m.is_some() {
                a.float(m, "a momentum in [0, 1]", |f| (0.0..=1.0).contains(&f))
            } else {
                Some(0.1)
            };
            let g = a.named("gamma");
            let gamma = if g.is_some() {
                a.float(g, "a number", f64::is_finite)
            } else {
                Some(1.0)
            };
            Op::BatchNorm {
                eps: eps?,
                momentum: momentum?,
                gamma: gamma?,
            }
        }
        "lrn" => {
            let size = a.named("size");
            let size = if size.is_some() {
                a.count(size, "a window size", 1)
            } else {
                Some(5)
            };
            let alpha = a.named("alpha");
            let alpha = if alpha.is_some() {
                a.float(alpha, "a number", f64::is_finite)
            } else {
                Some(1e-4)
            };
            let beta = a.named("beta");
            let beta = if beta.is_some() {
                a.float(beta, "a number", f64::is_finite)
            } else {
                Some(0.75)
            };
            let k = a.named("k");
            let k = if k.is_some() {
                a.float(k, "a number", f64::is_finite)
            } else {
                Some(2.0)
            };
            Op::Lrn {
                size: size?,
                alpha: alpha?,
                beta: beta?,
                k: k?,
            }
        }
        "dropout" => {
            let p = a.optional_positional();
            let p = if p.is_some() {
                a.float(p, "a drop probability in [0, 1)", |f| {
                    (0.0..1.0).contains(&f)
                })
            } else {
                Some(0.5)
            };
            Op::Dropout { p: p? }
        }
        "relu" => Op::Act(Activation::Relu),
        "leaky_relu" => {
            let s = a.named("a");
            let slope = if s.is_some() {
                a.float(s, "a number", f64::is_finite)
            } else {
                Some(0.01)
            };
            Op::Act(Activation::LeakyRelu { slope: slope? })
        }
        "elu" => {
            let s = a.named("a");
            let alpha = if s.is_some() {
                a.float(s, "a number", f64::is_finite)
            } else {
                Some(1.0)
            };
            Op::Act(Activation::Elu { alpha: alpha? })
        }
        "prelu" => Op::Prelu,
        "selu" => Op::Act(Activation::Selu),
        "gelu" => Op::Act(Activation::Gelu),
        "sigmoid" => Op::Act(Activation::Sigmoid),
        "tanh" => Op::Act(Activation::Tanh),
        "softmax" => Op::Act(Activation::Softmax),
        "flatten" => Op::Flatten,
        "identity" => Op::Identity,
        _ => return None,
    };
    Some(op)
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

/// Whether `name` is an op keyword (and not a block).
pub fn is_op(name: &str) -> bool {
    OP_NAMES.contains(&name) && name != "zeropad"
}
