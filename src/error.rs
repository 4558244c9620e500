//! One error enum whose variants are categories; each message is one line
//! that names the file, field or flag and what was expected.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration: unknown key, bad value, bad flag.
    #[error("config: {0}")]
    Config(String),
    /// Bad data in a store: corrupt file, schema mismatch, bad task spec.
    #[error("data: {0}")]
    Data(String),
    /// A model that does not fit, or failed to load or run.
    #[error("model: {0}")]
    Model(String),
    /// Another process holds the work (a shard's lock): retry later.
    #[error("busy: {0}")]
    Busy(String),
    /// Filesystem trouble, with the path.
    #[error("io: {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Anything else from a library, with context.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Process exit code: 2 for user input (config, data, model), 75
    /// (EX_TEMPFAIL: retry later) for busy work, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Data(_) | Error::Model(_) => 2,
            Error::Busy(_) => 75,
            Error::Io { .. } | Error::Other(_) => 1,
        }
    }
}

/// Adds a one-line context to any error, turning it into [`Error::Other`]
/// unless it is already one of ours.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Other(format!("{}: {e}", what())))
    }
}
