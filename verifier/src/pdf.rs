//! Seals, page order and front data read from the certificate's PDF.

use schemas::{PublicKey, SignedTrustList};

use crate::document::{pdf_failed, DocumentVerification};
use crate::Reason;

pub(crate) fn verify_pdf(
    _bytes: &[u8],
    _list: &SignedTrustList,
    _center_key: &PublicKey,
    _now_unix_s: i64,
) -> DocumentVerification {
    pdf_failed(Reason::Unreadable, "PDF reading is not implemented yet")
}
