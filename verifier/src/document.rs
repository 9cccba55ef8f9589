//! Verification of a whole input as a relying party hands it over: the QR text, a scan or
//! photo of a page, or the certificate's PDF. Every seal found is judged by
//! [`crate::verify_seal`]; the seals of one input must then agree with each other (one
//! document serial, pages in order), and for a PDF with the front data it carries.
//!
//! The verdict of the whole is the worst of its parts (INVALID over UNKNOWN over
//! VALID); its reason is the first reason that decided it.

use schemas::{PublicKey, SealPayload, SignedTrustList};
use serde::Serialize;

use crate::{verify_seal, Reason, Verdict, Verification};

/// Upper bound on any input (a PDF of a few hundred pages, a 600 dpi scan).
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// What the relying party gave.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The QR text read from the back side (`KC1:…`), as scanned.
    QrText(&'a str),
    /// A PNG or JPEG scan or photo of a page.
    Image(&'a [u8]),
    /// The certificate's PDF as the kiosk printed it.
    Pdf(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    QrText,
    Image,
    Pdf,
}

impl<'a> Input<'a> {
    /// Tells a PDF from a PNG or JPEG by its first bytes (file names and content types
    /// are not trusted). `None`: none of the three.
    pub fn sniff(bytes: &'a [u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        const JPEG: &[u8] = b"\xff\xd8\xff";
        if bytes.starts_with(b"%PDF-") {
            Some(Self::Pdf(bytes))
        } else if bytes.starts_with(PNG) || bytes.starts_with(JPEG) {
            Some(Self::Image(bytes))
        } else {
            None
        }
    }

    pub fn kind(&self) -> InputKind {
        match self {
            Self::QrText(_) => InputKind::QrText,
            Self::Image(_) => InputKind::Image,
            Self::Pdf(_) => InputKind::Pdf,
        }
    }
}

/// One seal found in the input, with its verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SealCheck {
    /// 1-based page of the PDF it was printed on (PDF input only).
    pub pdf_page: Option<u32>,
    #[serde(flatten)]
    pub verification: Verification,
}

/// The answer for a whole input (also the `--json` output of `center verify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentVerification {
    pub verdict: Verdict,
    pub reason: Reason,
    pub input: InputKind,
    /// Why the reason was given, in English, for people (not matched on by scripts).
    pub detail: Option<String>,
    /// The signed fields to show: the first seal's that verified (all seals of a VALID
    /// input name the same document and resident).
    #[serde(serialize_with = "crate::serialize_fields")]
    pub fields: Option<SealPayload>,
    /// Every seal found, in page (or detection) order.
    pub seals: Vec<SealCheck>,
    /// PDF input: its page count and the number of copies it holds.
    pub pdf_pages: Option<u32>,
    pub copies: Option<u32>,
    pub trust_list_version: Option<u64>,
    pub trust_list_age_s: Option<i64>,
}

impl DocumentVerification {
    /// The signed fields to show: the first seal's that verified (all seals of a VALID
    /// input name the same document and resident).
    pub fn fields(&self) -> Option<&SealPayload> {
        self.fields.as_ref()
    }

    fn from_seals(input: InputKind, seals: Vec<SealCheck>) -> Self {
        let mut answer = Self {
            verdict: Verdict::Valid,
            reason: Reason::Ok,
            input,
            detail: None,
            fields: seals
                .iter()
                .find_map(|seal| seal.verification.fields.clone()),
            trust_list_version: seals.iter().find_map(|s| s.verification.trust_list_version),
            trust_list_age_s: seals.iter().find_map(|s| s.verification.trust_list_age_s),
            seals,
            pdf_pages: None,
            copies: None,
        };
        let first_worst =
            answer
                .seals
                .iter()
                .map(|s| s.verification.reason)
                .fold(Reason::Ok, |worst, reason| {
                    if rank(reason.verdict()) > rank(worst.verdict()) {
                        reason
                    } else {
                        worst
                    }
                });
        answer.reason = first_worst;
        answer.verdict = first_worst.verdict();
        answer
    }

    /// Lowers the verdict to `reason`'s unless it already is as bad (the first reason
    /// that decided stays).
    pub(crate) fn downgrade(&mut self, reason: Reason, detail: impl Into<String>) {
        if rank(reason.verdict()) > rank(self.verdict) {
            self.verdict = reason.verdict();
            self.reason = reason;
            self.detail = Some(detail.into());
        }
    }

    fn failed(input: InputKind, reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            verdict: reason.verdict(),
            reason,
            input,
            detail: Some(detail.into()),
            fields: None,
            seals: Vec::new(),
            pdf_pages: None,
            copies: None,
            trust_list_version: None,
            trust_list_age_s: None,
        }
    }
}

/// INVALID outranks UNKNOWN outranks VALID.
fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Valid => 0,
        Verdict::Unknown => 1,
        Verdict::Invalid => 2,
    }
}

/// Verifies everything in `input` (see the module documentation).
pub fn verify_input(
    input: Input<'_>,
    list: &SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> DocumentVerification {
    let kind = input.kind();
    match input {
        Input::QrText(text) => {
            // Scanners add line ends; the seal alphabet has no whitespace at either end.
            let verification = verify_seal(text.trim(), list, center_key, now_unix_s);
            DocumentVerification::from_seals(
                kind,
                vec![SealCheck {
                    pdf_page: None,
                    verification,
                }],
            )
        }
        Input::Image(bytes) => {
            if bytes.len() > MAX_INPUT_BYTES {
                return DocumentVerification::failed(kind, Reason::Unreadable, "input too large");
            }
            let texts = match crate::scan::seal_texts_in_image(bytes) {
                Ok(texts) => texts,
                Err(error) => {
                    return DocumentVerification::failed(
                        kind,
                        Reason::Unreadable,
                        error.to_string(),
                    )
                }
            };
            let seals = texts
                .iter()
                .map(|text| SealCheck {
                    pdf_page: None,
                    verification: verify_seal(text.trim(), list, center_key, now_unix_s),
                })
                .collect();
            let mut answer = DocumentVerification::from_seals(kind, seals);
            check_one_document(&mut answer);
            answer
        }
        Input::Pdf(bytes) => {
            if bytes.len() > MAX_INPUT_BYTES {
                return DocumentVerification::failed(kind, Reason::Unreadable, "input too large");
            }
            crate::pdf::verify_pdf(bytes, list, center_key, now_unix_s)
        }
    }
}

/// Seals read together (one image, one PDF) must belong to one document: one serial,
/// one issuer, one resident.
pub(crate) fn check_one_document(answer: &mut DocumentVerification) {
    let payloads: Vec<&SealPayload> = answer
        .seals
        .iter()
        .filter_map(|s| s.verification.fields.as_ref())
        .collect();
    if let Some(first) = payloads.first() {
        if let Some(other) = payloads.iter().find(|p| {
            p.serial != first.serial
                || p.issuer != first.issuer
                || p.doc_type != first.doc_type
                || p.name != first.name
                || p.birth_date != first.birth_date
                || p.page_count != first.page_count
                || p.front_digest != first.front_digest
        }) {
            answer.downgrade(
                Reason::PageMismatch,
                format!(
                    "seals of two documents in one input: {} and {}",
                    first.serial, other.serial
                ),
            );
        }
    }
}

pub(crate) fn pdf_answer(
    seals: Vec<SealCheck>,
    pdf_pages: u32,
    copies: Option<u32>,
) -> DocumentVerification {
    let mut answer = DocumentVerification::from_seals(InputKind::Pdf, seals);
    answer.pdf_pages = Some(pdf_pages);
    answer.copies = copies;
    answer
}

pub(crate) fn pdf_failed(reason: Reason, detail: impl Into<String>) -> DocumentVerification {
    DocumentVerification::failed(InputKind::Pdf, reason, detail)
}
