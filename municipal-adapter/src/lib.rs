//! The municipality's certificate server (証明発行サーバ) behind the center.
//!
//! It sits on the LGWAN-like closed link, accepts only the center's mutually
//! authenticated and signed [`schemas::CertificateFetch`], maps the card serial to a
//! resident in its own register, and answers with a signed
//! [`schemas::CertificateAnswer`]: the front side (おもて面) of the certificate and one
//! signed seal per front page for the back side (うら面).
//!
//! Layout (Zero To Production style):
//! - [`configuration`]: [`Settings`] from a TOML file;
//! - [`startup`]: [`Application`] binds the listener and runs the HTTP server;
//! - [`telemetry`]: tracing subscriber and the per-request span;
//! - [`routes`]: the HTTP endpoints and their error bodies;
//! - [`issuance`]: processing of one fetch (signature, idempotency, deadline, answer);
//! - [`register`]: the register (all its ledgers), its CSV import and its database tables;
//! - [`cards`]: resident card issue, renewal and revocation;
//! - [`answers`]: the idempotency store of signed answers;
//! - [`issuance_records`]: the issuance record (交付記録) from the center's print notices;
//! - [`front`], [`wareki`], [`seal`]: the certificate content, its rules and its seals;
//! - [`catalogue`]: the signed catalogue (types, options, fees, hours) and its checks;
//! - [`domicile`]: 本籍地 利用登録 (registrations, approval, rejection);
//! - [`fault`]: test-only fault injection for the center's binding-guard tests;
//! - [`samples`]: the sample registers shipped with the crate.

pub mod answers;
pub mod cards;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod db;
pub mod domicile;
pub mod fault;
pub mod front;
pub mod issuance;
pub mod issuance_records;
pub mod register;
pub mod routes;
pub mod samples;
pub mod seal;
pub mod startup;
pub mod telemetry;
pub mod wareki;

pub use configuration::{MunicipalitySettings, Settings, SettingsError};
pub use fault::{FaultMode, FaultSettings};
pub use samples::{sample_register_dir, SAMPLE_CODES};
pub use startup::{Application, StartupError};

/// The `software` name reported by `GET /v1/info`.
pub const SOFTWARE: &str = "municipal-adapter";
