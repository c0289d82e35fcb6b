//! Recursive-descent parser over the lexer's tokens.
//!
//! Why not nom all the way: nom is good at recognising characters (the lexer
//! uses it), but a hand-written parser over tokens gives the messages we want
//! ("expected `}` to close the group opened at 4:10, found end of file") and
//! recovers after an error at the next statement, so one run reports every
//! independent syntax error.

use crate::ast::*;
use crate::diagnostic::{Diagnostic, Span};
use crate::lexer::{lex, Tok, Token};

/// Nesting deeper than this (braces, parentheses, expressions) is an error
/// rather than a stack overflow. It ends the parse: what follows cannot be
/// read reliably, and going on could report thousands of follow-on errors.
pub const MAX_NESTING: usize = 64;

type PResult<T> = Result<T, Diagnostic>;

pub fn parse(text: &str) -> (File, Vec<Diagnostic>) {
    let (tokens, mut errors) = lex(text);
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        errors: Vec::new(),
        aborted: false,
    };
    let file = p.file();
    errors.append(&mut p.errors);
    errors.sort_by_key(|d| d.span.start);
    (file, errors)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    errors: Vec<Diagnostic>,
    /// Set when nesting went past `MAX_NESTING`: parsing stops there.
    aborted: bool,
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "network" | "input" | "define" | "repeat" | "expect" | "residual" | "head" | "project"
    )
}

impl Parser {
    // ---- token access ----

    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].tok
    }
    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }
    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }
    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }
    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }
    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == word)
    }
    /// Whether the next token is followed by a `(` with no space between.
    fn paren_touches(&self) -> bool {
        let next = (self.pos + 1).min(self.tokens.len() - 1);
        self.tokens[next].tok == Tok::LParen
            && self.tokens[next].span.start == self.tokens[self.pos].span.end
    }
    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Tok::Newline | Tok::Semi) {
            self.bump();
        }
    }
    fn skip_line_breaks(&mut self) {
        while matches!(self.peek(), Tok::Newline) {
            self.bump();
        }
    }

    fn unexpected(&self, expected: &str) -> Diagnostic {
        let found = self.peek().describe();
        // A missing token at the end of a line is pointed at right after the
        // line's text, not at the line break (which would draw two lines).
        let span = match self.peek() {
            Tok::Newline => Span::new(self.span().start, self.span().start),
            _ => self.span(),
        };
        Diagnostic::new(format!("expected {expected}, found {found}"), span)
            .label(format!("expected {expected}"))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> PResult<Span> {
        if self.peek() == &tok {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<Ident> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// One level deeper; every `enter` that succeeds is paired with a
    /// `leave`. `what` names the kind of nesting for the message.
    fn enter(&mut self, what: &str) -> PResult<()> {
        if self.depth >= MAX_NESTING {
            self.aborted = true;
            let help = if what == "expression" {
                "simplify the expression, or compute parts of it in block parameters"
            } else {
                "split the network into `define`d blocks"
            };
            return Err(Diagnostic::new(
                format!("{what} nested deeper than {MAX_NESTING} levels"),
                self.span(),
            )
            .label("the parser stops here")
            .help(help));
        }
        self.depth += 1;
        Ok(())
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// After an error: skip to the end of the current statement (a newline or
    /// `;` at the same brace depth), or to the `}` that closes the block.
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Tok::Eof => return,
                Tok::Newline | Tok::Semi if depth == 0 => return,
                Tok::RBrace if depth == 0 => return,
                Tok::LBrace | Tok::LParen => depth += 1,
                Tok::RBrace | Tok::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    /// A statement must end here: a newline, `;`, `}` or the end of the file.
    fn end_of_statement(&mut self) -> PResult<()> {
        match self.peek() {
            Tok::Newline | Tok::Semi => {
                self.bump();
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            _ => Err(self.unexpected("end of statement (a newline or `;`)")),
        }
    }

    // ---- file ----

    fn file(&mut self) -> File {
        let mut file = File::default();
        loop {
            self.skip_newlines();
            match self.peek() {
                Tok::Eof => break,
                Tok::RBrace => {
                    // A stray `}` (or several) at top level: one error.
                    let start = self.span();
                    let mut end = start;
                    while matches!(self.peek(), Tok::RBrace) {
                        end = self.bump().span;
                    }
                    self.errors.push(
                        Diagnostic::new("unmatched `}`", start.to(end))
                            .label("no `{` is open here")
                            .help("remove it, or add the `{` it should close"),
                    );
                    continue;
                }
                _ => {}
            }
            if let Err(d) = self.top_item(&mut file) {
                self.errors.push(d);
                if self.aborted {
                    break;
                }
                self.recover();
            }
        }
        file
    }

    fn top_item(&mut self, file: &mut File) -> PResult<()> {
        let start = self.span();
        match self.peek().clone() {
            Tok::Ident(w) if w == "network" && !matches!(self.peek_at(1), Tok::Colon) => {
                self.bump();
                let name = self.ident("the network's name")?;
                let params = if self.peek() == &Tok::LParen {
                    self.params()?
                } else {
                    Vec::new()
                };
                let header = Header {
                    name,
                    params,
                    span: start.to(self.prev_span()),
                };
                if file.header.is_some() {
                    return Err(Diagnostic::new("a second `network` header", start)
                        .label("the file already has one"));
                }
                file.header = Some(header);
                self.end_of_statement()
            }
            Tok::Ident(w) if w == "input" && matches!(self.peek_at(1), Tok::Dims(_)) => {
                self.bump();
                let Tok::Dims(dims) = self.bump().tok else {
                    unreachable!("checked by the match guard")
                };
                if dims.len() != 3 {
                    return Err(Diagnostic::new(
                        "the input shape must be CxHxW",
                        start.to(self.prev_span()),
                    )
                    .label(format!("{} dimensions", dims.len()))
                    .help(
                        "write e.g. `input 3x224x224` (the batch is never part of the network)",
                    ));
                }
                if file.input.is_some() {
                    return Err(Diagnostic::new("a second `input` line", start)
                        .label("the network has one image input"));
                }
                file.input = Some(InputDecl {
                    dims,
                    span: start.to(self.prev_span()),
                });
                self.end_of_statement()
            }
            Tok::Ident(w) if w == "input" && !matches!(self.peek_at(1), Tok::Colon) => {
                self.bump();
                Err(self.unexpected("the input shape CxHxW, e.g. `3x224x224`"))
            }
            Tok::Ident(w) if w == "define" => {
                self.bump();
                let name = self.ident("the block's name")?;
                if self.peek() != &Tok::LParen {
                    return Err(self
                        .unexpected("`(` and the block's parameters")
                        .help(format!(
                            "a block without parameters is written `define {}() {{ ... }}`",
                            name.name
                        )));
                }
                let params = self.params()?;
                self.skip_line_breaks();
                let body = self.block("the block's body")?;
                file.defines.push(Define {
                    name,
                    params,
                    body,
                    span: start.to(self.prev_span()),
                });
                self.end_of_statement()
            }
            Tok::Ident(w) if w == "expect" => {
                let e = self.expect_line()?;
                file.expects.push(e);
                self.end_of_statement()
            }
            Tok::Ident(w) if w == "meta" && matches!(self.peek_at(1), Tok::Ident(_)) => {
                let m = self.meta_line()?;
                file.metas.push(m);
                self.end_of_statement()
            }
            _ => {
                let stmt = self.stmt()?;
                file.body.push(stmt);
                self.end_of_statement()
            }
        }
    }

    /// `(a, b = 1, ...)` in a header or define.
    fn params(&mut self) -> PResult<Vec<Param>> {
        self.expect(Tok::LParen, "`(`")?;
        let mut params = Vec::new();
        loop {
            self.skip_line_breaks();
            if self.eat(&Tok::RParen) {
                return Ok(params);
            }
            let name = self.ident("a parameter name")?;
            self.skip_line_breaks();
            let default = if self.eat(&Tok::Assign) {
                Some(self.expr()?)
            } else {
                None
            };
            // A parameter declared twice is the elaborator's to report.
            params.push(Param { name, default });
            self.skip_line_breaks();
            if !self.eat(&Tok::Comma) {
                self.skip_line_breaks();
                if self.eat(&Tok::RParen) {
                    return Ok(params);
                }
                return Err(self.unexpected("`,` or `)` to close the list"));
            }
        }
    }

    /// `{ statements }`
    fn block(&mut self, what: &str) -> PResult<Vec<Stmt>> {
        if self.peek() != &Tok::LBrace {
            return Err(self.unexpected(&format!("`{{` to open {what}")));
        }
        let open = self.span();
        self.enter("braces")?;
        self.bump();
        let mut body = Vec::new();
        loop {
            self.skip_newlines();
            match self.peek() {
                Tok::RBrace => {
                    self.bump();
                    self.leave();
                    return Ok(body);
                }
                Tok::Eof => {
                    self.leave();
                    return Err(Diagnostic::new("unclosed `{`", open)
                        .label("this `{` is never closed")
                        .help("add the matching `}`"));
                }
                _ => {}
            }
            match self.stmt().and_then(|s| {
                self.end_of_statement()?;
                Ok(s)
            }) {
                Ok(s) => body.push(s),
                Err(d) => {
                    if self.aborted {
                        self.leave();
                        return Err(d);
                    }
                    self.errors.push(d);
                    self.recover();
                }
            }
        }
    }

    // ---- statements ----

    fn stmt(&mut self) -> PResult<Stmt> {
        let label = self.label()?;
        let start = self.span();
        let kind = match self.peek().clone() {
            Tok::LBrace => StmtKind::Group(self.block("the group")?),
            Tok::Ident(w) if w == "repeat" => {
                if let Some(l) = &label {
                    return Err(Diagnostic::new("`repeat` cannot be labelled", l.span)
                        .label("label here")
                        .help("label the statements inside the repeat, e.g. with a template `block{i}:`"));
                }
                self.bump();
                let count = self.expr()?;
                let var = if self.is_ident("as") {
                    self.bump();
                    Some(self.ident("the loop variable's name")?)
                } else {
                    None
                };
                self.skip_line_breaks();
                let body = self.block("the repeated body")?;
                StmtKind::Repeat { count, var, body }
            }
            Tok::Ident(w)
                if (w == "concat" || w == "add") && matches!(self.peek_at(1), Tok::LBrace) =>
            {
                self.bump();
                let kind = if w == "concat" {
                    Merge::Concat
                } else {
                    Merge::Add
                };
                let branches = self.block(&format!("the branches of `{w}`"))?;
                StmtKind::Parallel { kind, branches }
            }
            Tok::Ident(w) if w == "residual" => {
                self.bump();
                self.skip_line_breaks();
                let body = self.block("the residual body")?;
                let project = if self.is_ident("project") {
                    let pspan = self.bump().span;
                    if self.is_ident("zeropad") {
                        let span = pspan.to(self.bump().span);
                        Some(Project::ZeroPad { span })
                    } else {
                        let name = match self.peek() {
                            Tok::Ident(_) => Some(self.ident("a name")?),
                            _ => None,
                        };
                        self.skip_line_breaks();
                        let body = self.block("the projection shortcut")?;
                        Some(Project::Body {
                            name,
                            body,
                            span: pspan,
                        })
                    }
                } else {
                    None
                };
                StmtKind::Residual { body, project }
            }
            Tok::Ident(w) if w == "head" => {
                self.bump();
                let train = if self.is_ident("train") {
                    self.bump();
                    true
                } else {
                    false
                };
                self.skip_line_breaks();
                let body = self.block("the head's body")?;
                StmtKind::Head { train, body }
            }
            // `name(args)` is a block call; an op followed by a spaced
            // parenthesis is an op with a parenthesised argument:
            // `conv (c * 2) k=3`.
            Tok::Ident(w)
                if matches!(self.peek_at(1), Tok::LParen)
                    && (!crate::ops::is_op(&w) || self.paren_touches()) =>
            {
                let name = self.ident(&format!("a block name, not `{w}`"))?;
                let args = self.call_args()?;
                StmtKind::Call { name, args }
            }
            Tok::Ident(w)
                if is_keyword(&w)
                    || (w == "meta"
                        && matches!(self.peek_at(1), Tok::Ident(_))
                        && self.peek_at(2) == &Tok::Assign) =>
            {
                return Err(Diagnostic::new(format!("`{w}` is not allowed here"), start)
                    .label("not a statement inside a body")
                    .help(match w.as_str() {
                        "network" | "input" | "define" | "expect" | "meta" => {
                            "this line belongs at the top level of the file"
                        }
                        "project" => "`project` follows the closing `}` of a `residual` body",
                        _ => "see docs/language.md for the statements",
                    }));
            }
            Tok::Ident(_) => StmtKind::Chain(self.chain()?),
            _ => {
                return Err(self.unexpected("a statement (an op, a block call, `{`, `repeat`, ...)"))
            }
        };
        let span = match &label {
            Some(l) => l.span.to(start),
            None => start,
        };
        Ok(Stmt { label, kind, span })
    }

    /// A label followed by `:`, if there is one. Parts must touch each other:
    /// `denselayer{i+1}:`. Leaves the position unchanged when there is none.
    fn label(&mut self) -> PResult<Option<Label>> {
        let save = self.pos;
        let first = self.span();
        let mut parts = Vec::new();
        let mut last_end: Option<usize> = None;
        loop {
            let span = self.span();
            if last_end.is_some_and(|e| e != span.start) {
                break;
            }
            match self.peek().clone() {
                Tok::Ident(s) => {
                    self.bump();
                    parts.push(LabelPart::Text(s));
                }
                Tok::Number {
                    int: Some(_), text, ..
                } if !text.contains(['.', 'e', 'E']) => {
                    self.bump();
                    parts.push(LabelPart::Text(text.replace('_', "")));
                }
                Tok::LBrace if !parts.is_empty() => {
                    // A template part; only a label if it parses and closes.
                    self.bump();
                    let e = match self.expr() {
                        Ok(e) => e,
                        Err(d) if self.aborted => return Err(d),
                        Err(_) => {
                            self.pos = save;
                            return Ok(None);
                        }
                    };
                    if !self.eat(&Tok::RBrace) {
                        self.pos = save;
                        return Ok(None);
                    }
                    parts.push(LabelPart::Expr(e));
                }
                _ => break,
            }
            last_end = Some(self.prev_span().end);
        }
        if !parts.is_empty() && self.peek() == &Tok::Colon {
            let span = first.to(self.prev_span());
            self.bump();
            self.skip_line_breaks();
            return Ok(Some(Label { parts, span }));
        }
        self.pos = save;
        Ok(None)
    }

    /// `op args | op args ...`; a newline may follow `|`.
    fn chain(&mut self) -> PResult<Vec<OpCall>> {
        let mut ops = vec![self.op_call()?];
        while self.eat(&Tok::Pipe) {
            self.skip_line_breaks();
            ops.push(self.op_call()?);
        }
        Ok(ops)
    }

    fn op_call(&mut self) -> PResult<OpCall> {
        let touches = self.paren_touches();
        let name = self.ident("an op name")?;
        if self.peek() == &Tok::LParen && touches {
            return Err(Diagnostic::new(
                format!("`{}(` in a chain", name.name),
                name.span,
            )
            .label("a block call cannot be part of a chain")
            .help("put the block call on its own line; ops take their arguments without parentheses"));
        }
        let mut args = Vec::new();
        loop {
            match self.peek() {
                Tok::Newline | Tok::Semi | Tok::Pipe | Tok::RBrace | Tok::Eof => break,
                Tok::Ident(_) if self.peek_at(1) == &Tok::Assign => {
                    let key = self.ident("an argument name")?;
                    self.bump();
                    let value = self.expr()?;
                    args.push(Arg::Named(key, value));
                }
                Tok::Number { .. }
                | Tok::Dims(_)
                | Tok::Ident(_)
                | Tok::LParen
                | Tok::Minus
                | Tok::Bang => args.push(Arg::Positional(self.expr()?)),
                _ => {
                    return Err(self.unexpected(&format!(
                        "an argument of `{}`, `|` or the end of the statement",
                        name.name
                    )))
                }
            }
        }
        let span = name.span.to(self.prev_span());
        Ok(OpCall { name, args, span })
    }

    /// `(expr, name = expr, ...)`
    fn call_args(&mut self) -> PResult<Vec<Arg>> {
        self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        loop {
            self.skip_line_breaks();
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            if matches!(self.peek(), Tok::Ident(_)) && self.peek_at(1) == &Tok::Assign {
                let key = self.ident("an argument name")?;
                self.bump();
                args.push(Arg::Named(key, self.expr()?));
            } else {
                args.push(Arg::Positional(self.expr()?));
            }
            self.skip_line_breaks();
            if !self.eat(&Tok::Comma) {
                self.skip_line_breaks();
                self.expect(Tok::RParen, "`,` or `)`")?;
                return Ok(args);
            }
        }
    }

    /// `meta KEY = "text"` or `meta KEY = NUMBER`.
    fn meta_line(&mut self) -> PResult<Meta> {
        let start = self.bump().span;
        let key = self.ident("a key")?;
        self.expect(Tok::Assign, "`=`")?;
        let negative = self.eat(&Tok::Minus);
        let value = match self.peek().clone() {
            Tok::Str(s) if !negative => MetaValue::Text(s),
            Tok::Number { value, text, .. } => MetaValue::Number {
                value: if negative { -value } else { value },
                text: if negative { format!("-{text}") } else { text },
            },
            _ => return Err(self.unexpected("a string such as `\"imagenet\"` or a number")),
        };
        self.bump();
        Ok(Meta {
            key,
            value,
            span: start.to(self.prev_span()),
        })
    }

    fn expect_line(&mut self) -> PResult<Expect> {
        let start = self.bump().span;
        let train = if self.is_ident("train") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.bump();
            true
        } else {
            false
        };
        let quantity =
            self.ident("a quantity (params, macs, flops, depth, activations, output, memory)")?;
        let cmp = match self.peek() {
            Tok::Assign | Tok::EqEq => Cmp::Eq,
            Tok::Lt => Cmp::Lt,
            Tok::Le => Cmp::Le,
            Tok::Gt => Cmp::Gt,
            Tok::Ge => Cmp::Ge,
            Tok::Tilde => Cmp::Approx,
            _ => {
                return Err(self.unexpected("a comparison (`=`, `<`, `<=`, `>`, `>=` or `~`)"));
            }
        };
        self.bump();
        let value = self.expr()?;
        let tolerance = if self.peek() == &Tok::PlusMinus {
            self.bump();
            let value = match self.peek() {
                Tok::Number { value, .. } => *value,
                _ => return Err(self.unexpected("a tolerance such as `0.5%` or `1M`")),
            };
            self.bump();
            let percent = self.eat(&Tok::Percent);
            Some(Tolerance { value, percent })
        } else {
            None
        };
        Ok(Expect {
            train,
            quantity,
            cmp,
            value,
            tolerance,
            span: start.to(self.prev_span()),
        })
    }

    // ---- expressions: ternary < || < && < comparison < + - < * / % < unary ----

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter("expression")?;
        let r = self.ternary();
        self.leave();
        r
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(0)?;
        if self.eat(&Tok::Question) {
            let a = self.expr()?;
            self.expect(Tok::Colon, "`:` of `cond ? a : b`")?;
            let b = self.expr()?;
            let span = cond.span.to(b.span);
            return Ok(Expr {
                kind: ExprKind::Cond(Box::new(cond), Box::new(a), Box::new(b)),
                span,
            });
        }
        Ok(cond)
    }

    fn binary(&mut self, level: usize) -> PResult<Expr> {
        const LEVELS: [&[(Tok, BinOp)]; 5] = [
            &[(Tok::OrOr, BinOp::Or)],
            &[(Tok::AndAnd, BinOp::And)],
            &[
                (Tok::EqEq, BinOp::Eq),
                (Tok::NotEq, BinOp::Ne),
                (Tok::Lt, BinOp::Lt),
                (Tok::Le, BinOp::Le),
                (Tok::Gt, BinOp::Gt),
                (Tok::Ge, BinOp::Ge),
            ],
            &[(Tok::Plus, BinOp::Add), (Tok::Minus, BinOp::Sub)],
            &[
                (Tok::Star, BinOp::Mul),
                (Tok::Slash, BinOp::Div),
                (Tok::Percent, BinOp::Rem),
            ],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        // `a + b + c + ...` nests to the left: each operator is one level of
        // the tree (evaluated and dropped recursively), so it counts as one.
        let mut levels = 0;
        let result = 'outer: loop {
            for (tok, op) in LEVELS[level] {
                if self.peek() == tok {
                    if let Err(d) = self.enter("expression") {
                        break 'outer Err(d);
                    }
                    levels += 1;
                    self.bump();
                    let rhs = match self.binary(level + 1) {
                        Ok(rhs) => rhs,
                        Err(d) => break 'outer Err(d),
                    };
                    let span = lhs.span.to(rhs.span);
                    lhs = Expr {
                        kind: ExprKind::Binary(*op, Box::new(lhs), Box::new(rhs)),
                        span,
                    };
                    continue 'outer;
                }
            }
            break Ok(lhs);
        };
        self.depth -= levels;
        result
    }

    fn unary(&mut self) -> PResult<Expr> {
        let start = self.span();
        if self.eat(&Tok::Minus) {
            self.enter("expression")?;
            let e = self.unary();
            self.leave();
            let e = e?;
            let span = start.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(e)),
                span,
            });
        }
        if self.eat(&Tok::Bang) {
            self.enter("expression")?;
            let e = self.unary();
            self.leave();
            let e = e?;
            let span = start.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(e)),
                span,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<Expr> {
        let start = self.span();
        let kind = match self.peek().clone() {
            Tok::Number { value, int, text } => {
                self.bump();
                ExprKind::Number { value, int, text }
            }
            Tok::Dims(d) => {
                self.bump();
                ExprKind::Dims(d)
            }
            Tok::Ident(s) if s == "true" || s == "false" => {
                self.bump();
                ExprKind::Bool(s == "true")
            }
            Tok::Ident(s) if s == "in" && self.peek_at(1) == &Tok::Dot => {
                self.bump();
                self.bump();
                let field = self.ident("`c`, `h` or `w`")?;
                let c = match field.name.as_str() {
                    "c" => 'c',
                    "h" => 'h',
                    "w" => 'w',
                    other => {
                        return Err(Diagnostic::new(
                            format!("unknown field `in.{other}`"),
                            field.span,
                        )
                        .label("expected `c`, `h` or `w`")
                        .help("`in.c`, `in.h` and `in.w` are the statement's input channels, height and width"))
                    }
                };
                ExprKind::InField(c)
            }
            Tok::Ident(s) => {
                self.bump();
                ExprKind::Var(s)
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "`)` to close the parenthesis")?;
                return Ok(Expr {
                    kind: e.kind,
                    span: start.to(self.prev_span()),
                });
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Expr {
            kind,
            span: start.to(self.prev_span()),
        })
    }
}
