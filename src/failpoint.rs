//! Crash injection for the kill tests: with `SELFPLAY_FAILPOINT=KIND:TEXT`
//! the process aborts (no destructors, like SIGKILL) at the first point
//! named `KIND:...` whose rest contains TEXT, e.g.
//! `before-commit:episodes/iteration=1` or `after-commit:metrics/stage=play`.
//! Unset (always, outside tests), a point costs one cached lookup.

use std::sync::OnceLock;

fn pattern() -> Option<&'static (String, String)> {
    static P: OnceLock<Option<(String, String)>> = OnceLock::new();
    P.get_or_init(|| {
        let v = std::env::var("SELFPLAY_FAILPOINT").ok()?;
        let (kind, text) = v.split_once(':')?;
        Some((kind.to_string(), text.to_string()))
    })
    .as_ref()
}

/// Aborts the process when `point` matches `SELFPLAY_FAILPOINT`.
pub fn hit(point: &str) {
    let Some((kind, text)) = pattern() else {
        return;
    };
    let Some((k, rest)) = point.split_once(':') else {
        return;
    };
    if k == kind && rest.contains(text.as_str()) {
        tracing::info!(target: crate::output::NOTE, point, "failpoint {point}: aborting");
        std::process::abort();
    }
}
