//! The wire contract of the コンビニ交付 (convenience-store certificate issuance) switch.
//!
//! Everything that crosses a link between kiosk-sim, center and municipal-adapter is
//! defined here and only here: the message types (serde + JSON Schema), the one
//! canonical byte encoding used for anything that is signed, the signing helpers, the
//! compact seal printed on the back side, and the stable error and refusal codes.
//!
//! Domain newtypes parse at the boundary: a value of type [`MunicipalityCode`] has a
//! valid check digit, a [`CardSerial`] has the card authority's format, and so on, so
//! code behind the boundary never re-validates.

pub mod audit;
pub mod b64;
pub mod card;
pub mod catalogue;
pub mod certificate;
pub mod conformance;
pub mod crypto;
pub mod domicile;
pub mod error;
pub mod front;
pub mod ids;
pub mod kiosk_api;
pub mod kiosk_control;
pub mod municipal_api;
pub mod notice;
pub mod outcome;
pub mod schema_files;
pub mod seal;
pub mod settlement;
pub mod trust_list;

pub use card::{
    CardAuthMessage, CardCertificate, CardCertificateBody, CardFile, RevocationList,
    RevocationListBody, MAX_PIN_ATTEMPTS,
};
pub use catalogue::*;
pub use certificate::*;
pub use crypto::{
    canonical_bytes, card_binding_digest, sha256, KeyPair, Kid, PublicKey, SignatureBytes, Signed,
    SignedMessage, SigningError,
};
pub use domicile::*;
pub use error::{ErrorBody, ErrorCode, RefusalReason};
pub use front::*;
pub use ids::{
    CardSerial, CardSessionId, IdError, IdempotencyKey, KioskId, MunicipalityCode, OperatorId,
    RequestId,
};
pub use kiosk_api::*;
pub use municipal_api::*;
pub use notice::*;
pub use outcome::*;
pub use seal::{SealError, SealPayload, SignedSeal};
pub use trust_list::*;

/// Version of this wire contract; bumped on any incompatible change.
pub const WIRE_VERSION: &str = "1";
