//! Diagnostics: every error of cnncost names `file:line:col`, shows the line
//! with a caret, says what was expected, and (inside a block) the call chain.
//! Rendering is codespan-reporting's, so the carets are never drawn by hand.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::NoColor};
use std::fmt;

/// A byte range in the one source file of a network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// One `.net` source file: its name as the user gave it, and its text.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// `file:line:col` of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let (line, col) = self.line_col(offset);
        Location {
            file: self.name.clone(),
            line,
            col,
        }
    }
}

/// A place in a source file, as printed in messages and JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One error (or warning) about a source file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The headline: what is wrong.
    pub message: String,
    /// Where; the caret goes under this span.
    pub span: Span,
    /// Text beside the caret: what was found, against what was expected.
    pub label: String,
    /// `= help:` lines: what to do.
    pub help: Vec<String>,
    /// `= note:` lines: the call chain and other context.
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            label: String::new(),
            help: Vec::new(),
            notes: Vec::new(),
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// The message as a terminal shows it, without colour.
    pub fn render(&self, source: &Source) -> String {
        render_all(std::slice::from_ref(self), source)
    }
}

/// Renders diagnostics one after another, rustc style.
pub fn render_all(diagnostics: &[Diagnostic], source: &Source) -> String {
    let file = SimpleFile::new(source.name.as_str(), source.text.as_str());
    let config = term::Config::default();
    let mut out = NoColor::new(Vec::<u8>::new());
    for d in diagnostics {
        let span = clamp_span(d.span, &source.text);
        let mut notes: Vec<String> = d.help.iter().map(|h| format!("help: {h}")).collect();
        notes.extend(d.notes.iter().map(|n| format!("note: {n}")));
        let line_start = source.text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source.text[span.start..]
            .find('\n')
            .map_or(source.text.len(), |i| span.start + i);
        if line_end - line_start > MAX_SHOWN_LINE {
            out.get_mut()
                .extend_from_slice(render_long_line(d, source, span, &notes).as_bytes());
            continue;
        }
        let cs = CsDiagnostic::error()
            .with_message(&d.message)
            .with_labels(vec![
                Label::primary((), span.start..span.end).with_message(&d.label)
            ])
            .with_notes(notes);
        // Writing into a Vec cannot fail, and the span was clamped to the text.
        let _ = term::emit(&mut out, &config, &file, &cs);
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

/// Source lines longer than this are shown as a window around the error: a
/// generated file can hold megabytes on one line.
const MAX_SHOWN_LINE: usize = 200;

/// One diagnostic on a long line, in the same layout as codespan's, the line
/// cut to `MAX_SHOWN_LINE / 2` characters either side of the span's start.
fn render_long_line(d: &Diagnostic, source: &Source, span: Span, notes: &[String]) -> String {
    let text = &source.text;
    let loc = source.location(span.start);
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[span.start..]
        .find('\n')
        .map_or(text.len(), |i| span.start + i);
    let half = MAX_SHOWN_LINE / 2;
    let mut from = span.start.saturating_sub(half).max(line_start);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (span.start + half).min(line_end);
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let (pre, post) = (
        if from > line_start { "…" } else { "" },
        if to < line_end { "…" } else { "" },
    );
    let gutter = " ".repeat(loc.line.to_string().len());
    let caret_at = pre.chars().count() + text[from..span.start].chars().count();
    let carets = text[span.start..span.end.min(to)].chars().count().max(1);
    let mut s = format!(
        "error: {}\n{gutter} ┌─ {loc}\n{gutter} │\n{} │ {pre}{}{post}\n{gutter} │ {}{} {}\n",
        d.message,
        loc.line,
        &text[from..to],
        " ".repeat(caret_at),
        "^".repeat(carets),
        d.label
    );
    if !notes.is_empty() {
        s.push_str(&format!("{gutter} │\n"));
        for n in notes {
            s.push_str(&format!("{gutter} = {n}\n"));
        }
    }
    s.push('\n');
    s
}

/// Keeps a span inside the text and on character boundaries, so rendering
/// never fails whatever a buggy caller passes.
fn clamp_span(span: Span, text: &str) -> Span {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Span::new(start, end)
}

/// At most this many errors are shown: past it, the rest are most likely
/// follow-on errors, and a file of garbage would print for minutes.
pub const MAX_ERRORS: usize = 100;

/// A failed compile: the diagnostics, and the source they point into.
#[derive(Clone, Debug)]
pub struct Errors {
    pub source: Source,
    /// The first `MAX_ERRORS` errors, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many more there were.
    pub omitted: usize,
}

impl Errors {
    /// Keeps the first `MAX_ERRORS` of `diagnostics`.
    pub fn new(source: Source, mut diagnostics: Vec<Diagnostic>) -> Errors {
        let omitted = diagnostics.len().saturating_sub(MAX_ERRORS);
        diagnostics.truncate(MAX_ERRORS);
        Errors {
            source,
            diagnostics,
            omitted,
        }
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_all(&self.diagnostics, &self.source))?;
        let n = self.diagnostics.len() + self.omitted;
        write!(
            f,
            "error: could not compile `{}` ({} error{}",
            self.source.name,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        if self.omitted > 0 {
            write!(f, "; the first {} shown", self.diagnostics.len())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Errors {}
