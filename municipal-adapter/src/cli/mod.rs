//! The adapter's administrative subcommands (besides `serve`), one module each.
