//! The runtime's one error type. Each variant keeps what went wrong as
//! data (a path, the candle error) and prints the message the command line
//! shows, so callers can match on the kind and users read the same text.

use std::fmt;
use std::path::PathBuf;

/// Why a runtime operation failed.
#[derive(Debug)]
pub enum Error {
    /// The network cannot be lowered to tensor ops.
    Lower(String),
    /// A weights file cannot be read or written, or its contents do not fit
    /// the run (`path: message`).
    Checkpoint { path: PathBuf, message: String },
    /// A tensor of a weights file does not fit the network, or an
    /// optimiser's state is incomplete (the caller names the file).
    Weights(String),
    /// The dataset does not suit the run.
    Data(String),
    /// Tensor arithmetic failed while doing `context`.
    Tensor {
        context: &'static str,
        source: candle_core::Error,
    },
    /// Training settings that make no sense (`; `-joined problems), or a
    /// settings file that does not parse.
    Config(String),
    /// Transfer learning's settings do not fit the network.
    Transfer(String),
    /// The training loss stopped being a number.
    Diverged(String),
    /// The run directory holds another run, or another process writes to it.
    RunDir(String),
    /// Reading or writing a file: `path: what: source`.
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

impl Error {
    /// The `candle_core::Error` of `context`, for `map_err`.
    pub fn tensor(context: &'static str) -> impl Fn(candle_core::Error) -> Error {
        move |source| Error::Tensor { context, source }
    }

    /// A failure to `what` (`cannot write`) the file at `path`, for `map_err`.
    pub(crate) fn io(
        path: &std::path::Path,
        what: &'static str,
    ) -> impl Fn(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            path: path.clone(),
            what,
            source,
        }
    }

    /// A problem with the weights file at `path`.
    pub(crate) fn checkpoint(path: &std::path::Path, message: impl fmt::Display) -> Error {
        Error::Checkpoint {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lower(m)
            | Error::Weights(m)
            | Error::Data(m)
            | Error::Config(m)
            | Error::Transfer(m)
            | Error::Diverged(m)
            | Error::RunDir(m) => f.write_str(m),
            Error::Checkpoint { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Tensor { context, source } => write!(f, "{context}: {source}"),
            Error::Io { path, what, source } => write!(f, "{}: {what}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The runtime's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
