//! The `.net` network language: lexer and parser (`lexer`, `parser`, `ast`),
//! elaboration into the IR (`elaborate`, `ops`, `shape`, `ir`), and the
//! diagnostics every error goes through.
//!
//! Entry point: [`compile`].

#![forbid(unsafe_code)]

pub mod ast;
pub mod diagnostic;
pub mod elaborate;
// Matches over `Op` (and the enums inside it) name every variant, so a new
// op does not compile until each concern answers for it.
#[deny(clippy::wildcard_enum_match_arm)]
pub mod ir;
pub mod lexer;
pub mod ops;
pub mod parser;
pub mod plan;
#[deny(clippy::wildcard_enum_match_arm)]
pub mod shape;
pub mod value;

pub use diagnostic::{Diagnostic, Errors, Location, Source, Span, MAX_ERRORS};
pub use elaborate::Overrides;
pub use ir::{Network, Node, Op, Shape};

/// The largest `.net` text compiled (docs/language.md, "Limits"): the zoo's
/// largest file is under 10 KB. Parsing holds up to a token (64 bytes) per
/// byte and a syntax tree per statement, so this bounds a parse near 600 MB
/// (tests/ir_memory.rs); larger networks are written with `repeat` and
/// blocks. The binary refuses a larger file before reading it.
pub const MAX_SOURCE_BYTES: u64 = 4 << 20;

/// Parses and elaborates one `.net` file. On failure, every independent
/// error is returned, ready to render with `Errors`' `Display` (which shows
/// the first `MAX_ERRORS`).
pub fn compile(name: &str, text: &str, overrides: &Overrides) -> Result<Network, Errors> {
    // A byte-order mark (Notepad writes one) is not part of the text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() as u64 > MAX_SOURCE_BYTES {
        // Only the first line is kept, to point at.
        let source = Source::new(name, text.lines().next().unwrap_or(""));
        let d = Diagnostic::new(
            format!(
                "the text is larger than {} MiB, the limit for a .net file",
                MAX_SOURCE_BYTES >> 20
            ),
            Span::new(0, 0),
        )
        .help("write large networks with `repeat` and blocks (docs/language.md, \"Limits\")");
        return Err(Errors::new(source, vec![d]));
    }
    let source = Source::new(name, text);
    let (file, syntax_errors) = parser::parse(text);
    if !syntax_errors.is_empty() {
        return Err(Errors::new(source, syntax_errors));
    }
    elaborate::elaborate(&file, &source, overrides)
        .map_err(|diagnostics| Errors::new(source.clone(), diagnostics))
}

/// The closest of `candidates` to `name`, if close enough to suggest.
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3) && d < c.len().max(name.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
