//! The trust list (DESIGN.md §5): which key may sign seals for which municipality, and
//! until when, signed by the center and published for every relying party.
//!
//! ```text
//! GET /v1/trust-list        -> Signed<TrustList>   (center, HTTPS; also exported as a file)
//! ```
//!
//! A verifier holds the center's public key (configured once, out of band), checks the
//! list's signature, and refuses to decide on a stale list: after `next_update_unix_s`
//! every verdict is UNKNOWN (`trust_list_stale`). With a fresh list a seal is:
//!
//! - INVALID `issued_in_future` when its issue time is more than 300 s (clock skew)
//!   after now: no genuine seal can be, and a key stolen and used with a forward date
//!   would otherwise sidestep a later compromise time;
//! - INVALID `unknown_kid` when its kid is not listed;
//! - INVALID `wrong_municipality` when the listed key belongs to another municipality
//!   than the seal's issuer;
//! - INVALID `bad_signature` when the signature does not verify;
//! - INVALID `key_not_valid_at_issue` when the seal's issue time is before the key's
//!   `not_before` or after its `usage_end` (a key signs only inside its period; old
//!   documents keep verifying after `usage_end` until `verify_until`: key rotation with
//!   overlap);
//! - INVALID `expired` when now is after the seal's own verify-until or the key's
//!   `verify_until`;
//! - INVALID `key_revoked` when the key is revoked with a compromise time at or before
//!   the seal's issue time; a seal issued before the compromise stays VALID (the
//!   compromise time is recorded conservatively, as RFC 5280's invalidity date);
//! - INVALID `document_revoked` when SHA-256 of its 16-byte serial is listed;
//! - otherwise VALID.
//!
//! A list whose `issued_at_unix_s` is after now (beyond the same skew) is UNKNOWN
//! `trust_list_invalid`: its age cannot be told.
//!
//! Read from a PDF, the seals of a document must also agree: one serial, every page's
//! `/KofuRequestId` its seal's serial, pages 1..n in order for each copy (INVALID
//! `page_mismatch`), a readable seal on every back page (INVALID `no_seal`), the front
//! data the PDF carries hashing to the signed digest (INVALID `front_digest_mismatch`),
//! and the front page showing the signed name (INVALID `front_text_mismatch`). Input that
//! cannot be read at all is UNKNOWN `unreadable`.
//!
//! Versions increase by one with every published list; a verifier never replaces a list
//! by one with a lower version.

use crate::crypto::{Kid, PublicKey, Signed, SignedMessage};
use crate::ids::MunicipalityCode;
use crate::kiosk_api::Digest32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `format` of a trust list.
pub const TRUST_LIST_FORMAT: &str = "konbini-kofu/trust-list/1";
/// Upper bounds a verifier enforces before looking inside a list.
pub const MAX_TRUSTED_KEYS: usize = 10_000;
pub const MAX_REVOKED_DOCUMENTS: usize = 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustList {
    pub format: String,
    /// Monotonic: every published list has a higher version than the last.
    pub version: u64,
    pub issued_at_unix_s: i64,
    /// After this instant the list is stale and verifiers answer UNKNOWN.
    pub next_update_unix_s: i64,
    pub keys: Vec<TrustedKey>,
    pub revoked_documents: Vec<RevokedDocument>,
}

impl SignedMessage for TrustList {
    const DOMAIN: &'static str = "trust-list";
}

pub type SignedTrustList = Signed<TrustList>;

/// One municipality seal key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// First 8 bytes of SHA-256 of the public key ([`Kid::of`]).
    pub kid: Kid,
    pub public_key: PublicKey,
    /// The only municipality this key may sign for.
    pub municipality_code: MunicipalityCode,
    /// The key signs seals issued in `[not_before, usage_end]`.
    pub not_before_unix_s: i64,
    pub usage_end_unix_s: i64,
    /// Seals signed with this key verify until then (at the latest).
    pub verify_until_unix_s: i64,
    pub status: KeyStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyStatus {
    Active,
    /// Compromised (or withdrawn) at `compromised_at_unix_s`: seals issued from then
    /// on are INVALID.
    Revoked {
        compromised_at_unix_s: i64,
    },
}

/// A revoked document, by the SHA-256 of its 16-byte serial (the list does not reveal
/// request ids).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokedDocument {
    pub serial_sha256: Digest32,
    pub revoked_at_unix_s: i64,
}
