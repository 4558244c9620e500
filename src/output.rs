//! What the binary writes. A command's [`Outcome`] goes to stdout, as its
//! human text or as one JSON object; everything else (stage summaries,
//! heartbeats, notes, warnings, the error) is a `tracing` event on stderr,
//! rendered as the same text lines as ever (`--log-format text`) or as one
//! JSON object per line with the figures as fields (`--log-format json`).

use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt::{self, Display, Write as _};
use std::io::{IsTerminal, Write};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How stderr events and the stdout outcome are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text lines: summaries as `play iteration 1 shard 0: ...`, the
    /// outcome as the command's text.
    #[default]
    Text,
    /// One JSON object per stderr line; the outcome as one JSON object.
    Json,
}

/// Target of a stage's one-line summary (metrics.rs).
pub const SUMMARY: &str = "selfplay::summary";
/// Target of a long stage's heartbeat (metrics.rs).
pub const HEARTBEAT: &str = "selfplay::heartbeat";
/// Target of everything else the binary says on stderr: notes, warnings,
/// the per-iteration line of `run`, the error.
pub const NOTE: &str = "selfplay::note";

/// The targets whose events are the binary's own lines: shown at info
/// whatever `RUST_LOG` says of the rest, and in text mode printed as their
/// message alone.
const OURS: [&str; 3] = [SUMMARY, HEARTBEAT, NOTE];

/// What a command hands back: its human text (`Display`, printed as it
/// is, so it ends its own lines) and its JSON shape (`Serialize`).
pub trait Outcome: Display + Serialize {}

impl<T: Display + Serialize> Outcome for T {}

/// The outcome as `format` writes it to stdout: the text, or one line of JSON.
pub fn render(outcome: &impl Outcome, format: LogFormat) -> Result<String> {
    match format {
        LogFormat::Text => Ok(outcome.to_string()),
        LogFormat::Json => serde_json::to_string(outcome)
            .map(|json| json + "\n")
            .map_err(|e| Error::Other(format!("writing the outcome as JSON: {e}"))),
    }
}

/// Prints the outcome on stdout; a closed pipe (`| head`) is no error.
pub fn print(outcome: &impl Outcome, format: LogFormat) -> Result<()> {
    let text = render(outcome, format)?;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Reports the error that ends the command: `error: ...` in text, an
/// event with its exit code in JSON.
pub fn error(e: &Error) {
    tracing::error!(target: NOTE, exit_code = e.exit_code(), "{e}");
}

/// Installs the stderr subscriber for `format`. `RUST_LOG` filters other
/// events (default: warnings); the binary's own are always shown. Colour
/// only when stderr is a terminal.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let filter = OURS
        .iter()
        .fold(filter, |f, target| match format!("{target}=info").parse() {
            Ok(directive) => f.add_directive(directive),
            Err(_) => f,
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .event_format(Text::default())
            .init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Text mode: the binary's own events as their message (warnings and the
/// error with their `warning: ` / `error: ` prefix); any other event (a
/// library's warning) in tracing's usual format.
#[derive(Default)]
struct Text {
    other: Format,
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if !OURS.contains(&meta.target()) {
            return self.other.format_event(ctx, writer, event);
        }
        writeln!(writer, "{}", text_line(*meta.level(), event))
    }
}

/// The text line of one of the binary's own events.
fn text_line(level: Level, event: &Event<'_>) -> String {
    let mut message = Message(String::new());
    event.record(&mut message);
    let prefix = match level {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        _ => "",
    };
    format!("{prefix}{}", message.0)
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Done {
        model: String,
        rows: u64,
    }

    impl Display for Done {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            writeln!(f, "{}: {} rows", self.model, self.rows)
        }
    }

    #[test]
    fn an_outcome_renders_as_its_text_or_one_json_line() {
        let done = Done {
            model: "iteration=000001".into(),
            rows: 3,
        };
        assert_eq!(
            render(&done, LogFormat::Text).unwrap(),
            "iteration=000001: 3 rows\n"
        );
        let json = render(&done, LogFormat::Json).unwrap();
        assert!(json.ends_with('\n') && json.lines().count() == 1, "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"model": "iteration=000001", "rows": 3})
        );
    }
}
