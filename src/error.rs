//! One error enum whose variants are categories; each message is one line
//! that names the file, field or flag and what was expected.
//!
//! Context never changes the category: [`Context::context`] wraps one of our
//! errors in [`Error::Context`] (as DataFusion's `DataFusionError::Context`
//! does), which keeps the inner error's exit code and prints
//! `{context}: {inner}` on one line. A foreign error (any `Display` that is
//! not our [`Error`]) becomes [`Error::Other`], or the category chosen at the
//! call site with [`Context::context_as`].

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
    /// One of our errors with a line of context in front; keeps the inner
    /// error's category and exit code.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Wraps this error in one line of context, keeping its category.
    pub fn with_context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error under any layers of context: the one that sets the category.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// Process exit code: 2 for user input (config, data, model), 75
    /// (EX_TEMPFAIL: retry later) for busy work, 1 otherwise. Context keeps
    /// the wrapped error's code.
    pub fn exit_code(&self) -> i32 {
        match self.root() {
            Error::Config(_) | Error::Data(_) | Error::Model(_) => 2,
            Error::Busy(_) => 75,
            Error::Io { .. } | Error::Other(_) | Error::Context { .. } => 1,
        }
    }
}

/// One line of a (possibly multi-line) foreign message: lines joined by
/// `"; "`, blank ones dropped.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Adds a one-line context to an error. Our errors keep their category (and
/// exit code); foreign errors become [`Error::Other`] (`context`) or the
/// category the caller names (`context_as`, e.g. `Error::Data`).
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
    fn context_as(self, category: fn(String) -> Error, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.context_as(Error::Other, what)
    }

    fn context_as(self, category: fn(String) -> Error, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let any: Box<dyn std::any::Any> = Box::new(e);
            match any.downcast::<Error>() {
                Ok(ours) => ours.with_context(what()),
                Err(any) => {
                    let e = any.downcast::<E>().expect("the boxed error is an E");
                    category(format!("{}: {}", what(), one_line(&e.to_string())))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Result<()> {
        Err(Error::Data(
            "examples/part-00000.parquet: row 3: bad".into(),
        ))
    }

    #[test]
    fn context_keeps_the_category_and_exit_code() {
        let e = data()
            .context(|| "training iteration 2".into())
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(matches!(e.root(), Error::Data(_)), "{e:?}");
        let msg = e.to_string();
        assert_eq!(
            msg,
            "training iteration 2: data: examples/part-00000.parquet: row 3: bad"
        );
        assert_eq!(msg.lines().count(), 1);

        let io: Result<()> = Err(Error::io(
            "/x/y",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        ));
        let e = io.context(|| "saving".into()).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(matches!(e.root(), Error::Io { .. }));
        assert_eq!(e.to_string(), "saving: io: /x/y: denied");

        // Layers of context keep the innermost category.
        let e = data()
            .context(|| "inner".into())
            .context_as(Error::Other, || "outer".into())
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("outer: inner: data: "), "{e}");
        for c in [
            Error::Config("c".into()),
            Error::Model("m".into()),
            Error::Other("o".into()),
        ] {
            let code = c.exit_code();
            assert_eq!(c.with_context("ctx").exit_code(), code);
        }
    }

    #[test]
    fn foreign_errors_take_the_call_sites_category() {
        let parse = "x".parse::<u32>();
        let e = parse.clone().context(|| "reading n".into()).unwrap_err();
        assert!(matches!(e, Error::Other(_)));
        assert_eq!(e.exit_code(), 1);
        let e = parse
            .context_as(Error::Data, || "row 1: n".into())
            .unwrap_err();
        assert!(matches!(e, Error::Data(_)));
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "data: row 1: n: invalid digit found in string"
        );

        let multi: std::result::Result<(), String> = Err("first\n\n  second\n".into());
        let e = multi.context(|| "lib".into()).unwrap_err();
        assert_eq!(e.to_string(), "lib: first; second");
    }
}
