//! Turns structured certificate data into the two-sided A4 PDF a kiosk prints.
//!
//! - Front (おもて面): one layout per [`schemas::FrontSide`] variant (住民票の写し,
//!   記載事項証明書, 印鑑登録証明書 with its 印影, 所得・課税証明書, 納税証明書, 戸籍
//!   全部/個人事項証明書, 戸籍の附票の写し), paginated only by
//!   [`schemas::FrontSide::page_ranges`]; the title and municipality on every page,
//!   the attestation with the mayor's seal image on the last.
//! - Both sides: a light ground pattern carrying 「複写」 (drawn once as a tiling cell).
//! - Back (うら面): the municipality's signed
//!   seal as a QR code, the request id and how a relying party verifies it.
//! - Every page shows 請求番号 and i/n, and its page dictionary carries
//!   `/KofuRequestId` ([`schemas::PDF_PAGE_REQUEST_ID_KEY`]) for the kiosk's check.
//! - The document catalog carries the canonical front data
//!   ([`schemas::PDF_FRONT_DATA_KEY`]) whose digest the seals sign, so `center verify`
//!   can check the front against the seal by machine.
//!
//! Nothing is printed wrong: every character is checked against the font first
//! ([`Composer::check_printable`]), every field is measured against its box, and the
//! document is refused ([`ComposeError`]) rather than printed with a blank glyph box, a
//! truncated name or another request's seal.
//!
//! Module boundary: [`layout`] decides what goes where (backend-agnostic); `pdf` is the
//! one place that knows pdf-writer and subsetter. The choice of that backend over
//! printpdf is recorded, with figures, in BENCHMARKS.md ("PDF composition").

mod font;
pub mod layout;
mod pdf;
mod qr;
mod seal_image;

pub use qr::{encode_fixed_mask as encode_seal_qr, QrMatrix};
pub use seal_image::{render_official_seal_png, SealImage, MAX_SEAL_EDGE_PX, MAX_SEAL_PNG_BYTES};

use font::EmbeddedFont;

/// Why a document was not composed. Every variant is a refusal: the kiosk prints nothing.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "character {character:?} (U+{codepoint:04X}) cannot be printed with the certificate font"
    )]
    UnprintableCharacter { character: char, codepoint: u32 },
    #[error("field {field} needs {width_pt:.1} pt at the smallest allowed size but its box holds {max_width_pt:.1} pt")]
    FieldTooLong {
        field: String,
        width_pt: f32,
        max_width_pt: f32,
    },
    #[error("the document would exceed {max_sheets} sheets per copy or {max_pages} pages in all", max_sheets = layout::MAX_SHEETS_PER_COPY, max_pages = layout::MAX_TOTAL_PAGES)]
    TooManyPages,
    #[error("{got} seals given for {expected} front pages")]
    SealCountMismatch { expected: usize, got: usize },
    #[error("seal for page {page} does not belong here: {reason}")]
    SealMismatch { page: u32, reason: String },
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("font: {0}")]
    Font(String),
    #[error("PDF writing failed: {0}")]
    Pdf(String),
}

/// What to compose. Borrowed: the center holds the data only in memory.
#[derive(Clone, Copy, Debug)]
pub struct DocumentInput<'a> {
    pub request_id: schemas::RequestId,
    /// Any certificate type; paginated by `FrontSide::page_ranges`.
    pub front: &'a schemas::FrontSide,
    /// One signed seal ("KC1:..." QR text) per front page, in page order.
    pub seal_qr_texts: &'a [String],
    /// The mayor's seal image (公印) registered by the municipality.
    pub official_seal: Option<&'a SealImage>,
    /// 1..; the whole set of pages repeats per copy.
    pub copies: u8,
    /// Printed on the back: where a relying party verifies the seal.
    pub verify_url: &'a str,
}

#[derive(Clone, Debug)]
pub struct ComposedPdf {
    pub bytes: Vec<u8>,
    pub page_count: u32,
}

/// The font (parsed once) and the prepared ground pattern. Build one at start-up and
/// share it (`Arc<Composer>`): it is `Send + Sync` and composing takes `&self`.
pub struct Composer {
    font: EmbeddedFont,
    pattern: pdf::PreparedPattern,
}

impl std::fmt::Debug for Composer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composer")
            .field("font", &self.font.postscript_name())
            .finish_non_exhaustive()
    }
}

impl Composer {
    /// Parses the embedded IPAex Mincho and prepares the ground pattern. Also checks
    /// that every label the composer prints itself is printable, so a font problem
    /// fails at start-up rather than on a resident's request.
    pub fn with_embedded_font() -> Result<Self, ComposeError> {
        let font = EmbeddedFont::load()?;
        for text in layout::static_texts() {
            font.check_printable(text)?;
        }
        let pattern = pdf::PreparedPattern::new(layout::build_ground_pattern(&font)?)?;
        Ok(Self { font, pattern })
    }

    /// Checks every character of every text against the font. Refuses (with the first
    /// offending character) anything the font lacks, control characters, variation
    /// selectors (U+FE00–FE0F, U+E0100–E01EF: the IVS glyph could not be reproduced),
    /// zero-width and bidi marks, private-use code points and U+FFFD.
    pub fn check_printable<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ComposeError> {
        texts
            .into_iter()
            .try_for_each(|text| self.font.check_printable(text))
    }

    /// Composes the PDF: for each copy, each front page followed by its back page.
    pub fn compose(&self, input: &DocumentInput<'_>) -> Result<ComposedPdf, ComposeError> {
        let document = self.lay_out(input)?;
        // The exact bytes the seals' front digest covers, carried for verifiers.
        let front_data = schemas::canonical_bytes(input.front)
            .map_err(|e| ComposeError::InvalidInput(format!("front data: {e}")))?;
        let bytes = pdf::write_pdf(
            &self.font,
            &self.pattern,
            &document,
            input.official_seal,
            &front_data,
        )?;
        Ok(ComposedPdf {
            bytes,
            page_count: document.page_count(),
        })
    }

    /// Validates and lays out without writing PDF: the backend-agnostic description
    /// that [`Composer::compose`] writes. Public for the backend comparison benchmark.
    pub fn lay_out(&self, input: &DocumentInput<'_>) -> Result<layout::Document, ComposeError> {
        layout::lay_out(&self.font, input)
    }

    /// The back-side ground pattern cell (for other backends; see [`Composer::lay_out`]).
    pub fn ground_pattern(&self) -> &layout::GroundPatternCell {
        &self.pattern.cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Composer>();
        assert_send_sync::<SealImage>();
    }
}
