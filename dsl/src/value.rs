//! Values of the language's expressions and their evaluation.

use crate::ast::{BinOp, Expr, ExprKind};
use crate::diagnostic::Diagnostic;
use crate::ir::Shape;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `3x224x224`, `1x7`
    Dims(Vec<u64>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Dims(_) => "a shape",
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Dims(d) => write!(
                f,
                "{}",
                d.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            ),
        }
    }
}

/// Parses a `--set name=value` value: an integer, a number or a boolean.
pub fn parse_literal(text: &str) -> Option<Value> {
    let t = text.trim().replace('_', "");
    match t.as_str() {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => t.parse::<i64>().map(Value::Int).ok().or_else(|| {
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float)
        }),
    }
}

/// What an expression can see: the variables in scope and the statement's
/// input shape (`in.c`, `in.h`, `in.w`).
pub trait Scope {
    fn lookup(&self, name: &str) -> Option<Value>;
    fn in_shape(&self) -> Option<Shape>;
    /// Names in scope, for "did you mean" hints.
    fn names(&self) -> Vec<String>;
}

pub fn eval(e: &Expr, scope: &dyn Scope) -> Result<Value, Diagnostic> {
    match &e.kind {
        ExprKind::Number { value, int, .. } => Ok(match int {
            Some(i) => Value::Int(*i),
            None => Value::Float(*value),
        }),
        ExprKind::Bool(b) => Ok(Value::Bool(*b)),
        ExprKind::Dims(d) => Ok(Value::Dims(d.clone())),
        ExprKind::Var(name) => scope.lookup(name).ok_or_else(|| {
            let mut d = Diagnostic::new(format!("undefined name `{name}`"), e.span)
                .label("not a parameter or loop variable in scope");
            if let Some(best) = crate::suggest(name, scope.names().iter().map(String::as_str)) {
                d = d.help(format!("did you mean `{best}`?"));
            }
            d
        }),
        ExprKind::InField(field) => {
            let shape = scope.in_shape().ok_or_else(|| {
                Diagnostic::new(format!("`in.{field}` {NO_INPUT_SHAPE}"), e.span)
                    .label("no input shape is known at this point")
                    .help(
                        "`in.c`/`in.h`/`in.w` can be used in the arguments of ops and block calls",
                    )
            })?;
            let v = match (shape, field) {
                (Shape::Image { c, .. }, 'c') => c,
                (Shape::Image { h, .. }, 'h') => h,
                (Shape::Image { w, .. }, _) => w,
                (Shape::Flat(n), 'c') => n,
                (Shape::Flat(_), _) => 1,
            };
            Ok(Value::Int(to_i64(v, e)?))
        }
        ExprKind::Neg(x) => match eval(x, scope)? {
            Value::Int(i) => i
                .checked_neg()
                .map(Value::Int)
                .ok_or_else(|| overflow(e, format!("-({i})"))),
            Value::Float(f) => Ok(Value::Float(-f)),
            v => Err(type_error(x, "a number", &v)),
        },
        ExprKind::Not(x) => match eval(x, scope)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            v => Err(type_error(x, "a boolean", &v)),
        },
        ExprKind::Cond(c, a, b) => match eval(c, scope)? {
            Value::Bool(true) => eval(a, scope),
            Value::Bool(false) => eval(b, scope),
            v => Err(type_error(c, "a boolean condition", &v)),
        },
        ExprKind::Binary(op, a, b) => {
            let (va, vb) = (eval(a, scope)?, eval(b, scope)?);
            binary(*op, va, vb, e, a, b)
        }
    }
}

/// The end of the message of `in.c` read where no input shape is known.
const NO_INPUT_SHAPE: &str = "has no value here";

/// Whether `d` says that `in.c` (`in.h`, `in.w`) has no value: inside the
/// statements of a network that only happens after an earlier error lost
/// the shape, so the elaborator leaves it out as a follow-on error.
pub fn is_missing_input_shape(d: &Diagnostic) -> bool {
    d.message.starts_with("`in.") && d.message.ends_with(NO_INPUT_SHAPE)
}

fn to_i64(v: u64, e: &Expr) -> Result<i64, Diagnostic> {
    i64::try_from(v).map_err(|_| overflow(e, v.to_string()))
}

/// `what` is the computation that overflowed, e.g. `4611686018427387904 * 2`.
fn overflow(e: &Expr, what: String) -> Diagnostic {
    Diagnostic::new("arithmetic overflow", e.span)
        .label(format!(
            "{what} does not fit in a 64-bit integer (at most 9223372036854775807)"
        ))
        .help("integers in expressions are 64-bit; check the values")
}

fn type_error(e: &Expr, expected: &str, found: &Value) -> Diagnostic {
    Diagnostic::new(
        format!("expected {expected}, found {}", found.type_name()),
        e.span,
    )
    .label(format!("this is {} ({found})", found.type_name()))
}

fn binary(
    op: BinOp,
    va: Value,
    vb: Value,
    e: &Expr,
    a: &Expr,
    b: &Expr,
) -> Result<Value, Diagnostic> {
    use Value::*;
    match op {
        BinOp::And | BinOp::Or => match (va, vb) {
            (Bool(x), Bool(y)) => Ok(Bool(if op == BinOp::And { x && y } else { x || y })),
            (Bool(_), v) => Err(type_error(b, "a boolean", &v)),
            (v, _) => Err(type_error(a, "a boolean", &v)),
        },
        BinOp::Eq | BinOp::Ne if matches!((&va, &vb), (Bool(_), Bool(_))) => {
            Ok(Bool((va == vb) == (op == BinOp::Eq)))
        }
        _ => {
            let num = |v: &Value, x: &Expr| match v {
                Int(_) | Float(_) => Ok(()),
                other => Err(type_error(x, "a number", other)),
            };
            num(&va, a)?;
            num(&vb, b)?;
            if let (Int(x), Int(y)) = (&va, &vb) {
                let (x, y) = (*x, *y);
                let div_zero = || Diagnostic::new("division by zero", b.span).label("this is 0");
                let r = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    BinOp::Div => {
                        if y == 0 {
                            return Err(div_zero());
                        }
                        // Floor division, as documented.
                        x.checked_div(y).map(|q| {
                            if x % y != 0 && ((x < 0) != (y < 0)) {
                                q - 1
                            } else {
                                q
                            }
                        })
                    }
                    BinOp::Rem => {
                        if y == 0 {
                            return Err(div_zero());
                        }
                        // The remainder of floor division, so that
                        // (a/b)*b + a%b == a: it takes the divisor's sign.
                        x.checked_rem(y).map(|r| {
                            if r != 0 && ((r < 0) != (y < 0)) {
                                r + y
                            } else {
                                r
                            }
                        })
                    }
                    _ => return Ok(Bool(compare(op, x as f64, y as f64))),
                };
                return r
                    .map(Int)
                    .ok_or_else(|| overflow(e, format!("{x} {} {y}", op.symbol())));
            }
            let (x, y) = (va.as_f64().unwrap_or(0.0), vb.as_f64().unwrap_or(0.0));
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Rem => x % y,
                _ => return Ok(Bool(compare(op, x, y))),
            };
            if r.is_finite() {
                Ok(Float(r))
            } else {
                Err(Diagnostic::new("the result is not a finite number", e.span)
                    .label(format!("{x} {} {y}", op.symbol())))
            }
        }
    }
}

fn compare(op: BinOp, x: f64, y: f64) -> bool {
    match op {
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        BinOp::Ge => x >= y,
        BinOp::Eq => x == y,
        _ => x != y,
    }
}
