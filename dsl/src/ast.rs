//! The syntax tree of a `.net` file, as written (nothing evaluated yet).
//! Every node carries the span of its text.

use crate::diagnostic::Span;
// What `expect` and `meta` lines hold as written is what the IR keeps:
// the types are the IR's, so the analyzer reads them without the syntax tree.
pub use crate::ir::{Cmp, MetaValue, Tolerance};

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub header: Option<Header>,
    pub input: Option<InputDecl>,
    pub defines: Vec<Define>,
    pub body: Vec<Stmt>,
    pub expects: Vec<Expect>,
    pub metas: Vec<Meta>,
}

/// `meta KEY = "text"` or `meta KEY = 76.13`: facts about the network (its
/// paper, published accuracy) that tools show; they change nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub key: Ident,
    pub value: MetaValue,
    pub span: Span,
}

/// `network NAME(param = default, ...)`
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub name: Ident,
    pub params: Vec<Param>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub default: Option<Expr>,
}

/// `input CxHxW`
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    pub dims: Vec<u64>,
    pub span: Span,
}

/// `define NAME(params) { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct Define {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub label: Option<Label>,
    pub kind: StmtKind,
    /// The statement's keyword or first op: where errors about it point.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `op args | op args | ...`
    Chain(Vec<OpCall>),
    /// `name(args)`
    Call { name: Ident, args: Vec<Arg> },
    /// `{ statements }`; `{}` is the identity.
    Group(Vec<Stmt>),
    /// `repeat N [as i] { body }`
    Repeat {
        count: Expr,
        var: Option<Ident>,
        body: Vec<Stmt>,
    },
    /// `concat { branches }` / `add { branches }`
    Parallel { kind: Merge, branches: Vec<Stmt> },
    /// `residual { body } [project [NAME] { body } | project zeropad]`
    Residual {
        body: Vec<Stmt>,
        project: Option<Project>,
    },
    /// `head [train] { body }`
    Head { train: bool, body: Vec<Stmt> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    Concat,
    Add,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Project {
    Body {
        name: Option<Ident>,
        body: Vec<Stmt>,
        span: Span,
    },
    ZeroPad {
        span: Span,
    },
}

/// A statement label: `conv1`, `0`, or a template such as `denselayer{i+1}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub parts: Vec<LabelPart>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LabelPart {
    Text(String),
    Expr(Expr),
}

/// One op of a chain: `conv 64 k=3 p=1`.
#[derive(Clone, Debug, PartialEq)]
pub struct OpCall {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Positional(Expr),
    Named(Ident, Expr),
}

impl Arg {
    pub fn span(&self) -> Span {
        match self {
            Arg::Positional(e) => e.span,
            Arg::Named(n, e) => n.span.to(e.span),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number literal; `text` as written.
    Number {
        value: f64,
        int: Option<i64>,
        text: String,
    },
    Bool(bool),
    Dims(Vec<u64>),
    Var(String),
    /// `in.c`, `in.h`, `in.w`
    InField(char),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// `expect [train] QUANTITY OP VALUE [± TOL]`
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub train: bool,
    pub quantity: Ident,
    pub cmp: Cmp,
    pub value: Expr,
    pub tolerance: Option<Tolerance>,
    pub span: Span,
}
