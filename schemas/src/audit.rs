//! 監査ログ (the center's tamper-evident audit log): Merkle batches of audit events
//! under chained, signed batch headers; inclusion proofs a third party checks offline;
//! the municipality export (交付記録の提供) of issuance records.
//!
//! **Leaves.** Each audit event row is one leaf:
//! `leaf = SHA-256(0x00 || JCS(AuditEvent))` (RFC 8785 canonical JSON of the whole row).
//!
//! **Tree.** RFC 6962 / RFC 9162 §2.1 Merkle Tree Hash over the leaves in leaf-index
//! order: `node = SHA-256(0x01 || left || right)`, the left subtree holding the largest
//! power of two smaller than the count.
//!
//! **Headers.** A [`BatchHeader`] names the batch number, leaf count, root and the
//! previous header's digest ([`header_sha256`]: SHA-256 of the header's signed bytes,
//! `"konbini-kofu/v1/audit-batch-header\0" JCS(header)`); batch 1 chains 32 zero bytes.
//! It is signed with the center's key ([`SignedBatchHeader`]). The log's *head* is the
//! batch count and the last header's digest: publishing it makes truncation detectable.

use crate::crypto::{sha256, SignedMessage};
use crate::Signed;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `format` of an inclusion-proof file.
pub const PROOF_FORMAT: &str = "konbini-kofu/audit-proof/1";
/// `format` of a municipality export header.
pub const EXPORT_FORMAT: &str = "konbini-kofu/audit-export/1";
/// Domain prefix of an export's detached signature: the signed bytes are
/// `"konbini-kofu/v1/audit-export\0"` followed by the file's bytes.
pub const EXPORT_SIGNATURE_DOMAIN: &str = "audit-export";
/// `prev_header_sha256` of batch 1.
pub const GENESIS_PREV_SHA256: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One row of `audit_events`, exactly as stored: the leaf's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    pub event_id: String,
    pub request_id: String,
    pub at_unix_ms: i64,
    pub event: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    /// `SHA-256(0x00 || JCS(self))`.
    pub fn leaf_hash(&self) -> Result<[u8; 32], crate::SigningError> {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&crate::canonical_bytes(self)?);
        Ok(sha256(&bytes))
    }
}

/// The signed summary of one batch; chains the previous header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    /// 1, 2, 3, … without gaps.
    pub batch_no: u64,
    pub leaf_count: u64,
    /// Merkle Tree Hash of the batch's leaves, lower-case hex.
    pub merkle_root: String,
    /// [`header_sha256`] of batch `batch_no - 1`; [`GENESIS_PREV_SHA256`] for batch 1.
    pub prev_header_sha256: String,
    pub sealed_at_unix_ms: i64,
}

impl SignedMessage for BatchHeader {
    const DOMAIN: &'static str = "audit-batch-header";
}

pub type SignedBatchHeader = Signed<BatchHeader>;

/// The digest the next header chains: SHA-256 of the header's signed bytes, hex.
pub fn header_sha256(header: &BatchHeader) -> Result<String, crate::SigningError> {
    Ok(hex::encode(sha256(&header.signed_bytes()?)))
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut bytes = [0u8; 65];
    bytes[0] = 1;
    bytes[1..33].copy_from_slice(left);
    bytes[33..].copy_from_slice(right);
    sha256(&bytes)
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 Merkle Tree Hash of `leaves` (already leaf hashes); SHA-256("") when empty.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// RFC 6962 audit path of leaf `index` (bottom-up), or `None` when out of range.
pub fn audit_path(leaves: &[[u8; 32]], index: usize) -> Option<Vec<[u8; 32]>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    fn walk(leaves: &[[u8; 32]], index: usize, path: &mut Vec<[u8; 32]>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if index < k {
            walk(&leaves[..k], index, path);
            path.push(merkle_root(&leaves[k..]));
        } else {
            walk(&leaves[k..], index - k, path);
            path.push(merkle_root(&leaves[..k]));
        }
    }
    walk(leaves, index, &mut path);
    Some(path)
}

/// The root an audit path leads to (RFC 9162 §2.1.3.2), or `None` when the path does
/// not fit a tree of `leaf_count` leaves.
pub fn root_from_path(
    leaf: &[u8; 32],
    index: u64,
    leaf_count: u64,
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= leaf_count {
        return None;
    }
    let (mut fn_, mut sn) = (index, leaf_count - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// Proof that one event is leaf `leaf_index` of a signed batch.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInclusion {
    pub event: AuditEvent,
    pub leaf_index: u64,
    /// Sibling hashes from the leaf up, lower-case hex.
    pub audit_path: Vec<String>,
    pub header: SignedBatchHeader,
}

/// `center audit prove`: inclusion of every audit event of one request.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditProof {
    /// Always [`PROOF_FORMAT`].
    pub format: String,
    pub request_id: String,
    pub events: Vec<EventInclusion>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("format is {0:?}, expected {PROOF_FORMAT:?}")]
    Format(String),
    #[error("the proof holds no event")]
    Empty,
    #[error("event {event_id} belongs to request {actual}, not {expected}")]
    OtherRequest {
        event_id: String,
        expected: String,
        actual: String,
    },
    #[error("event {event_id}: batch {batch_no} header signature: {reason}")]
    Signature {
        event_id: String,
        batch_no: u64,
        reason: String,
    },
    #[error("event {event_id}: {reason}")]
    Malformed { event_id: String, reason: String },
    #[error("event {event_id}: audit path does not lead to the root of batch {batch_no}")]
    RootMismatch { event_id: String, batch_no: u64 },
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

impl EventInclusion {
    /// Checks the header signature and that the event's leaf leads to its root.
    pub fn verify(&self, center_key: &crate::PublicKey) -> Result<(), ProofError> {
        let event_id = self.event.event_id.clone();
        let header = self
            .header
            .verify(center_key)
            .map_err(|e| ProofError::Signature {
                event_id: event_id.clone(),
                batch_no: self.header.payload.batch_no,
                reason: e.to_string(),
            })?;
        let malformed = |reason: &str| ProofError::Malformed {
            event_id: event_id.clone(),
            reason: reason.to_owned(),
        };
        let root =
            hex32(&header.merkle_root).ok_or_else(|| malformed("root is not 32-byte hex"))?;
        let path = self
            .audit_path
            .iter()
            .map(|h| hex32(h))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("audit path entry is not 32-byte hex"))?;
        let leaf = self
            .event
            .leaf_hash()
            .map_err(|e| malformed(&e.to_string()))?;
        match root_from_path(&leaf, self.leaf_index, header.leaf_count, &path) {
            Some(computed) if computed == root => Ok(()),
            _ => Err(ProofError::RootMismatch {
                event_id,
                batch_no: header.batch_no,
            }),
        }
    }
}

impl AuditProof {
    pub fn verify(&self, center_key: &crate::PublicKey) -> Result<(), ProofError> {
        if self.format != PROOF_FORMAT {
            return Err(ProofError::Format(self.format.clone()));
        }
        if self.events.is_empty() {
            return Err(ProofError::Empty);
        }
        for inclusion in &self.events {
            if inclusion.event.request_id != self.request_id {
                return Err(ProofError::OtherRequest {
                    event_id: inclusion.event.event_id.clone(),
                    expected: self.request_id.clone(),
                    actual: inclusion.event.request_id.clone(),
                });
            }
            inclusion.verify(center_key)?;
        }
        Ok(())
    }
}

/// One line of a municipality export (JSON Lines): header, records, trailer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "section", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportLine {
    Header(ExportHeader),
    Record(IssuanceRecord),
    Trailer(ExportTrailer),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    pub municipality_code: String,
    /// Inclusive JST dates of `created_at`, `YYYY-MM-DD`, when restricted.
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub generated_at_unix_ms: i64,
    pub center_kid: crate::Kid,
}

/// What the center keeps about one issuance: ids, digests, amounts, states, times. No
/// personal data (DESIGN.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuanceRecord {
    pub request_id: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub certificate_type: String,
    pub copies: i64,
    pub state: String,
    pub refusal_reason: Option<String>,
    pub error_code: Option<String>,
    pub fee_yen_per_copy: Option<i64>,
    pub total_fee_yen: Option<i64>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    /// schemas::card_binding_digest(request_id, card serial), hex.
    pub card_digest: String,
    pub document_sha256: Option<String>,
    pub page_count: Option<i64>,
    /// The request's audit events, in time order.
    pub audit_event_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportTrailer {
    pub record_count: u64,
    /// SHA-256 of every byte before the trailer line (header and record lines with
    /// their `\n`), lower-case hex.
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n).map(|i| sha256(&[0, i as u8])).collect()
    }

    #[test]
    fn every_audit_path_leads_to_the_root() {
        for n in 1..=17 {
            let l = leaves(n);
            let root = merkle_root(&l);
            for i in 0..n {
                let path = audit_path(&l, i).unwrap();
                assert_eq!(
                    root_from_path(&l[i], i as u64, n as u64, &path),
                    Some(root),
                    "n={n} i={i}"
                );
                // Any other index or count does not verify to this root.
                if n > 1 {
                    let other = (i + 1) % n;
                    assert_ne!(
                        root_from_path(&l[i], other as u64, n as u64, &path),
                        Some(root)
                    );
                }
            }
        }
    }

    #[test]
    fn root_matches_rfc6962_shape() {
        let l = leaves(3);
        assert_eq!(merkle_root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(merkle_root(&[]), sha256(&[]));
    }
}
