//! Logging: `tracing` with an env filter (`RUST_LOG`), text or JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests, in-process sandboxes)
/// are no-ops.
pub fn init(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
