//! Tokens of the `.net` language, recognised with nom.
//!
//! The lexer is the only place that looks at characters; the parser works on
//! the token list. Each token keeps its byte span, so every later error can
//! point back at the text.

use crate::diagnostic::{Diagnostic, Span};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::multi::many1;
use nom::sequence::pair;
use nom::{IResult, Parser};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A number literal. `value` has any `K`/`M`/`G` suffix applied; `text`
    /// is the literal as written (it fixes the rounding of `~` in `expect`).
    Number {
        value: f64,
        int: Option<i64>,
        text: String,
    },
    /// `3x224x224` or `1x7`.
    Dims(Vec<u64>),
    /// `"text"` (in `meta` lines); no escapes, on one line.
    Str(String),
    Newline,
    Semi,
    Colon,
    Comma,
    Pipe,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Assign,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Question,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    NotEq,
    AndAnd,
    OrOr,
    Bang,
    PlusMinus,
    Tilde,
    Eof,
}

impl Tok {
    /// How the token is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Number { text, .. } => format!("number `{text}`"),
            Tok::Dims(d) => format!(
                "shape `{}`",
                d.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            ),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
            Tok::Str(s) => format!("string \"{s}\""),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::Comma => ",",
            Tok::Pipe => "|",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Assign => "=",
            Tok::Dot => ".",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Question => "?",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::PlusMinus => "±",
            Tok::Tilde => "~",
            _ => "?",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

type Res<'a, T> = IResult<&'a str, T>;

fn ident(i: &str) -> Res<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// Digits with `_` separators: `61_100_840`.
fn digits(i: &str) -> Res<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_digit()),
        take_while(|c: char| c.is_ascii_digit() || c == '_'),
    ))
    .parse(i)
}

/// `3x224x224`: at least two whole numbers joined by `x`.
fn dims(i: &str) -> Res<'_, &str> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_digit()),
        many1(pair(char('x'), take_while1(|c: char| c.is_ascii_digit()))),
    ))
    .parse(i)
}

/// `12`, `0.5`, `1e-4`, `2.5e3`, each optionally followed by `K`, `M` or `G`.
fn number(i: &str) -> Res<'_, (&str, Option<char>)> {
    let mantissa = recognize((
        digits,
        opt(pair(char('.'), digits)),
        opt((one_of("eE"), opt(one_of("+-")), digits)),
    ));
    pair(mantissa, opt(one_of("KMG"))).parse(i)
}

fn punct(i: &str) -> Res<'_, Tok> {
    alt((
        alt((
            tag("<=").map(|_| Tok::Le),
            tag(">=").map(|_| Tok::Ge),
            tag("==").map(|_| Tok::EqEq),
            tag("!=").map(|_| Tok::NotEq),
            tag("&&").map(|_| Tok::AndAnd),
            tag("||").map(|_| Tok::OrOr),
            tag("±").map(|_| Tok::PlusMinus),
        )),
        alt((
            char(';').map(|_| Tok::Semi),
            char(':').map(|_| Tok::Colon),
            char(',').map(|_| Tok::Comma),
            char('|').map(|_| Tok::Pipe),
            char('{').map(|_| Tok::LBrace),
            char('}').map(|_| Tok::RBrace),
            char('(').map(|_| Tok::LParen),
            char(')').map(|_| Tok::RParen),
            char('=').map(|_| Tok::Assign),
            char('.').map(|_| Tok::Dot),
            char('+').map(|_| Tok::Plus),
            char('-').map(|_| Tok::Minus),
            char('*').map(|_| Tok::Star),
            char('/').map(|_| Tok::Slash),
            char('%').map(|_| Tok::Percent),
            char('?').map(|_| Tok::Question),
            char('<').map(|_| Tok::Lt),
            char('>').map(|_| Tok::Gt),
            char('!').map(|_| Tok::Bang),
            char('~').map(|_| Tok::Tilde),
        )),
    ))
    .parse(i)
}

/// Whether a character may continue an identifier or number: a literal
/// followed by one of these (`12abc`, `3x`) is malformed.
fn continues_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A lexical error: the headline, the text beside the caret, the length of
/// the bad text, and the token to put in its place (a number too large to
/// hold still reads as a number, so the parser does not trip over the gap).
struct LexError {
    message: String,
    label: &'static str,
    help: Option<&'static str>,
    len: usize,
    stand_in: Option<Tok>,
}

/// Splits a source text into tokens. Lexical errors are collected (the bad
/// text is skipped, or replaced by a stand-in token) so that one run reports
/// them all.
pub fn lex(text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    let mut rest = text;
    loop {
        // Blanks and comments; newlines are tokens.
        let trimmed = rest.trim_start_matches([' ', '\t', '\r']);
        rest = if trimmed.starts_with('#') {
            trimmed.find('\n').map_or("", |n| &trimmed[n..])
        } else {
            trimmed
        };
        let start = text.len() - rest.len();
        if rest.is_empty() {
            tokens.push(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
            return (tokens, errors);
        }
        let (next, tok) = match lex_one(rest) {
            Ok(ok) => ok,
            Err(e) => {
                let span = Span::new(start, start + e.len);
                let mut d = Diagnostic::new(e.message, span).label(e.label);
                if let Some(h) = e.help {
                    d = d.help(h);
                }
                errors.push(d);
                if let Some(tok) = e.stand_in {
                    tokens.push(Token { tok, span });
                }
                rest = &rest[e.len..];
                continue;
            }
        };
        let end = text.len() - next.len();
        tokens.push(Token {
            tok,
            span: Span::new(start, end),
        });
        rest = next;
    }
}

/// One token, or what is wrong with the text at the start of `rest`.
fn lex_one(rest: &str) -> Result<(&str, Tok), LexError> {
    if let Some(r) = rest.strip_prefix('\n') {
        return Ok((r, Tok::Newline));
    }
    if let Some(r) = rest.strip_prefix("+-") {
        return Ok((r, Tok::PlusMinus));
    }
    // Punctuation that never starts a two-character token, without nom
    // (much faster in debug builds, on inputs of 100,000 parentheses).
    let single = match rest.as_bytes().first().copied().unwrap_or(0) {
        b';' => Some(Tok::Semi),
        b':' => Some(Tok::Colon),
        b',' => Some(Tok::Comma),
        b'{' => Some(Tok::LBrace),
        b'}' => Some(Tok::RBrace),
        b'(' => Some(Tok::LParen),
        b')' => Some(Tok::RParen),
        b'.' => Some(Tok::Dot),
        b'+' => Some(Tok::Plus),
        b'-' => Some(Tok::Minus),
        b'*' => Some(Tok::Star),
        b'/' => Some(Tok::Slash),
        b'%' => Some(Tok::Percent),
        b'?' => Some(Tok::Question),
        b'~' => Some(Tok::Tilde),
        _ => None,
    };
    if let Some(tok) = single {
        return Ok((&rest[1..], tok));
    }
    if let Ok((r, s)) = ident(rest) {
        return Ok((r, Tok::Ident(s.to_string())));
    }
    if let Some(body) = rest.strip_prefix('"') {
        let line = &body[..body.find('\n').unwrap_or(body.len())];
        return match line.find('"') {
            Some(end) => Ok((&body[end + 1..], Tok::Str(line[..end].to_string()))),
            None => Err(LexError {
                message: "unterminated string".into(),
                label: "this string has no closing `\"` on its line",
                help: Some("close the string with `\"` before the end of the line"),
                len: 1 + line.len(),
                stand_in: Some(Tok::Str(line.to_string())),
            }),
        };
    }
    if let Ok((r, s)) = dims(rest) {
        if r.starts_with(continues_word) {
            return Err(malformed(rest, r));
        }
        let parts: Vec<Option<u64>> = s.split('x').map(|p| p.parse::<u64>().ok()).collect();
        if parts.iter().any(Option::is_none) {
            return Err(LexError {
                message: format!("shape `{s}` has a dimension too large"),
                label: "a dimension must be at most 2^64 - 1",
                help: None,
                len: s.len(),
                stand_in: Some(Tok::Dims(
                    parts.iter().map(|p| p.unwrap_or(u64::MAX)).collect(),
                )),
            });
        }
        return Ok((r, Tok::Dims(parts.into_iter().flatten().collect())));
    }
    if let Ok((r, (mantissa, suffix))) = number(rest) {
        if r.starts_with(continues_word) {
            return Err(malformed(rest, r));
        }
        let text = &rest[..rest.len() - r.len()];
        let clean: String = mantissa.chars().filter(|&c| c != '_').collect();
        let scale: i64 = match suffix {
            Some('K') => 1_000,
            Some('M') => 1_000_000,
            Some('G') => 1_000_000_000,
            _ => 1,
        };
        let is_float = clean.contains(['.', 'e', 'E']);
        let value = clean.parse::<f64>().unwrap_or(f64::INFINITY) * scale as f64;
        let number = |int| Tok::Number {
            value,
            int,
            text: text.to_string(),
        };
        if !value.is_finite() {
            return Err(LexError {
                message: format!("number `{text}` is too large"),
                label: "beyond the range of a 64-bit float",
                help: None,
                len: text.len(),
                stand_in: Some(number(None)),
            });
        }
        let int = if is_float {
            // `1.5M` is a whole number too.
            (value.fract() == 0.0 && value.abs() < 9.0e15 && suffix.is_some())
                .then_some(value as i64)
        } else {
            match clean.parse::<i64>().ok().and_then(|v| v.checked_mul(scale)) {
                Some(v) => Some(v),
                None => {
                    return Err(LexError {
                        message: format!("number `{text}` is too large"),
                        label: "a whole number must be at most 9223372036854775807 (2^63 - 1)",
                        help: None,
                        len: text.len(),
                        stand_in: Some(number(Some(i64::MAX))),
                    })
                }
            }
        };
        return Ok((r, number(int)));
    }
    if let Ok((r, tok)) = punct(rest) {
        return Ok((r, tok));
    }
    // A run of characters the language does not use is one error.
    let len = rest
        .char_indices()
        .find(|&(i, c)| {
            i > 0
                && (c.is_ascii_alphanumeric()
                    || c == '_'
                    || c.is_ascii_whitespace()
                    || c == '#'
                    || punct(&rest[i..]).is_ok())
        })
        .map_or(rest.len(), |(i, _)| i);
    let bad = &rest[..len];
    let message = match bad.chars().count() {
        1 => format!("unexpected character `{}`", bad.escape_debug()),
        n if n <= 20 => format!("unexpected characters `{}`", bad.escape_debug()),
        _ => {
            let head: String = bad.chars().take(20).collect();
            format!("unexpected characters `{}`...", head.escape_debug())
        }
    };
    Err(LexError {
        message,
        label: "not part of the language",
        help: None,
        len,
        stand_in: None,
    })
}

fn malformed(rest: &str, after: &str) -> LexError {
    let word_end = after
        .find(|c: char| !continues_word(c))
        .unwrap_or(after.len());
    let len = rest.len() - after.len() + word_end;
    LexError {
        message: format!("malformed number `{}`", &rest[..len]),
        label: "a number cannot run into letters",
        help: Some("separate the number from the word after it with a space"),
        len,
        stand_in: Some(Tok::Number {
            value: 0.0,
            int: Some(0),
            text: rest[..len].to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let (t, e) = lex(s);
        assert!(e.is_empty(), "{e:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_dims_and_suffixes() {
        let t = toks("61_100_840 0.5 1e-4 3x224x224 1x7 1.5M 4K");
        assert!(matches!(
            &t[0],
            Tok::Number {
                int: Some(61100840),
                ..
            }
        ));
        assert!(matches!(&t[1], Tok::Number { int: None, value, .. } if *value == 0.5));
        assert!(matches!(&t[2], Tok::Number { int: None, value, .. } if *value == 1e-4));
        assert_eq!(t[3], Tok::Dims(vec![3, 224, 224]));
        assert_eq!(t[4], Tok::Dims(vec![1, 7]));
        assert!(matches!(
            &t[5],
            Tok::Number {
                int: Some(1_500_000),
                ..
            }
        ));
        assert!(matches!(
            &t[6],
            Tok::Number {
                int: Some(4000),
                ..
            }
        ));
    }

    #[test]
    fn comments_and_newlines() {
        let t = toks("conv 64 # a comment\nrelu");
        assert_eq!(t.len(), 5);
        assert_eq!(t[2], Tok::Newline);
    }

    #[test]
    fn bad_characters_are_all_reported() {
        let (_, e) = lex("conv $ 64 @");
        assert_eq!(e.len(), 2);
        let (_, e) = lex("conv 12abc");
        assert_eq!(e[0].message, "malformed number `12abc`");
    }
}
