//! The kiosk's last line of defence (binding guard, kiosk half): before printing, prove
//! that the document is the one the center composed for *this* request.
//!
//! In 2023–24 one page of a three-page 戸籍 came from another request and was printed.
//! So the kiosk checks, in order: the bytes are the ones the center announced (SHA-256),
//! they parse as a PDF with exactly the announced number of pages, and *every* page's
//! own dictionary carries `/KofuRequestId` equal to this request's id. A key inherited
//! from the page tree does not count: it would vouch for pages it never saw.

use lopdf::{Document, Object};
use schemas::{Digest32, RequestId, PDF_PAGE_REQUEST_ID_KEY};

/// Longest found value quoted in an error, so a hostile value cannot flood the log.
const MAX_QUOTED_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentCheckError {
    #[error("document SHA-256 is {actual}, the center announced {expected}")]
    DigestMismatch {
        expected: Digest32,
        actual: Digest32,
    },
    #[error("document is not a readable PDF: {0}")]
    Unreadable(String),
    #[error("document has no pages")]
    NoPages,
    #[error("document has {actual} pages, the center announced {expected}")]
    PageCountMismatch { expected: u32, actual: usize },
    #[error("page {page} cannot be read: {reason}")]
    UnreadablePage { page: u32, reason: String },
    #[error("page {page} carries no /{PDF_PAGE_REQUEST_ID_KEY}")]
    MissingRequestId { page: u32 },
    #[error("page {page}'s /{PDF_PAGE_REQUEST_ID_KEY} is not a text string")]
    RequestIdNotText { page: u32 },
    /// The page says it belongs to another request (or to none we can parse).
    #[error("page {page} belongs to request {found:?}, not {expected}")]
    ForeignPage {
        page: u32,
        expected: RequestId,
        found: String,
    },
}

/// Checks `pdf` against what the center announced for request `expected`. Pure: no I/O.
pub fn check_document(
    pdf: &[u8],
    expected: &RequestId,
    expected_sha256: &Digest32,
    expected_pages: u32,
) -> Result<(), DocumentCheckError> {
    // Digest first: it is cheap and catches corruption before a parser sees the bytes.
    let actual = Digest32::of(pdf);
    if actual != *expected_sha256 {
        return Err(DocumentCheckError::DigestMismatch {
            expected: *expected_sha256,
            actual,
        });
    }
    let document = parse(pdf)?;
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err(DocumentCheckError::NoPages);
    }
    if usize::try_from(expected_pages).ok() != Some(pages.len()) {
        return Err(DocumentCheckError::PageCountMismatch {
            expected: expected_pages,
            actual: pages.len(),
        });
    }
    for (&page, &object_id) in &pages {
        check_page(&document, page, object_id, expected)?;
    }
    Ok(())
}

/// lopdf has panicked on malformed input in the past; a kiosk must report a bad
/// document, not crash in the middle of a resident's session.
fn parse(pdf: &[u8]) -> Result<Document, DocumentCheckError> {
    match std::panic::catch_unwind(|| Document::load_mem(pdf)) {
        Ok(Ok(document)) => Ok(document),
        Ok(Err(e)) => Err(DocumentCheckError::Unreadable(e.to_string())),
        Err(_) => Err(DocumentCheckError::Unreadable(
            "the PDF parser gave up on this input".into(),
        )),
    }
}

fn check_page(
    document: &Document,
    page: u32,
    object_id: lopdf::ObjectId,
    expected: &RequestId,
) -> Result<(), DocumentCheckError> {
    let dictionary =
        document
            .get_dictionary(object_id)
            .map_err(|e| DocumentCheckError::UnreadablePage {
                page,
                reason: e.to_string(),
            })?;
    let value = dictionary
        .get(PDF_PAGE_REQUEST_ID_KEY.as_bytes())
        .map_err(|_| DocumentCheckError::MissingRequestId { page })?;
    // An indirect string is still the page's own value; follow the reference.
    let (_, value) =
        document
            .dereference(value)
            .map_err(|e| DocumentCheckError::UnreadablePage {
                page,
                reason: e.to_string(),
            })?;
    if !matches!(value, Object::String(..)) {
        return Err(DocumentCheckError::RequestIdNotText { page });
    }
    // Text strings may be PDFDocEncoding or UTF-16BE; both spell the same id.
    let text = lopdf::decode_text_string(value)
        .map_err(|_| DocumentCheckError::RequestIdNotText { page })?;
    // Compared as UUIDs, not as spellings: the identity of the request is what counts.
    match uuid::Uuid::try_parse(&text) {
        Ok(found) if found == expected.0 => Ok(()),
        _ => Err(DocumentCheckError::ForeignPage {
            page,
            expected: *expected,
            found: text.chars().take(MAX_QUOTED_CHARS).collect(),
        }),
    }
}
