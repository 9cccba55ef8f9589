//! The adapter's administrative subcommands (besides `serve`), one module each.
pub mod card;
pub mod domicile;
pub mod import;
pub mod records;
