//! 証明書交付センター (the issuance center): authenticates resident cards, routes each
//! request over the closed link to the resident's municipality, enforces the binding
//! guard on the answer, and composes the two-sided PDF for the kiosk.
//!
//! Shape: `configuration` → `startup` (builds `AppState`, binds mTLS) → `routes/`
//! (thin HTTP adapters) → `issuance` (the flow) over `card_auth` (with `challenge`, the
//! stateless single-use nonces), `card_session` (the
//! card authenticates once per visit, then is returned), `directory`,
//! `catalogue` (signed catalogues, cache, menu), `service_hours` and `order_checks`
//! (the service rules), `adapter_client`, `binding_guard` and `db`; `domicile` is the
//! 本籍地 利用登録 flow; `lifecycle` takes an issuance on from `prepared` (payment and
//! print reports, the sweep); `notices` delivers the outcome notices of printed
//! certificates to municipalities (transactional outbox); `settlement` keeps the
//! business-day windows, reports, reconciliations and finalisation (arithmetic and
//! file formats in the `settlement` crate).

pub mod adapter_client;
pub mod alerts;
pub mod audit;
pub mod binding_guard;
pub mod card_auth;
pub mod card_session;
pub mod catalogue;
pub mod challenge;
pub mod clock;
pub mod configuration;
pub mod db;
pub mod directory;
pub mod domicile;
pub mod error;
pub mod issuance;
pub mod lifecycle;
pub mod metrics;
pub mod notices;
pub mod order_checks;
pub mod routes;
pub mod service_hours;
pub mod settlement;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod trust_list;
