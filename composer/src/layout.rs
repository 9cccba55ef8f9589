//! Where everything goes on the page: a backend-agnostic description of the document.
//!
//! This module decides geometry, measures every string with the font's advances, and
//! refuses what does not fit. It knows nothing about PDF objects; [`crate::pdf`] turns
//! a [`Document`] into bytes. The split is the module boundary the issue asked for: the
//! benchmark drives a second backend (printpdf) over the very same [`Document`], so the
//! two PDF writers are compared on identical pages.
//!
//! Coordinates are PDF points (1/72 in), origin at the bottom-left of an A4 portrait
//! page, y growing upwards; a text position is its left end on the baseline.

use crate::font::EmbeddedFont;
use crate::qr::{self, QrMatrix};
use crate::{ComposeError, DocumentInput, SealImage};
use schemas::{Attestation, CertificateType, FrontSide, ResidentRecordFront, ResidentRow};
use std::ops::Range;

mod fronts;

/// A4 portrait, 210 × 297 mm.
pub const PAGE_WIDTH_PT: f32 = 595.28;
pub const PAGE_HEIGHT_PT: f32 = 841.89;

/// Front pages (sheets) one copy may have: 60 household members, 20 persons of a 戸籍,
/// 80 addresses of a 附票. Bounds print time and paper per request; a larger document
/// is refused (`TooManyPages`) rather than guessed at.
pub const MAX_SHEETS_PER_COPY: usize = schemas::MAX_FRONT_PAGES;
/// Pages in one PDF over all copies; bounds memory and print time per request.
pub const MAX_TOTAL_PAGES: usize = 200;

/// The whole document. Every copy prints the same sheets, so they are described once.
#[derive(Clone, Debug)]
pub struct Document {
    pub request_id: String,
    pub title: String,
    pub copies: u8,
    /// One sheet per front page: printed duplex, front then back.
    pub sheets: Vec<Sheet>,
    /// 印影: the registered seal impression of 印鑑登録証明書, drawn where
    /// [`Item::SealImpression`] says.
    pub seal_impression: Option<SealImage>,
}

impl Document {
    /// Pages in the PDF: copies × sheets × 2 (front and back).
    pub fn page_count(&self) -> u32 {
        u32::from(self.copies) * self.sheets.len() as u32 * 2
    }
}

#[derive(Clone, Debug)]
pub struct Sheet {
    pub front: Page,
    pub back: Page,
}

/// Items are painted in order.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RectPt {
    pub x_pt: f32,
    pub y_pt: f32,
    pub width_pt: f32,
    pub height_pt: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentPt {
    pub x1_pt: f32,
    pub y1_pt: f32,
    pub x2_pt: f32,
    pub y2_pt: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TextRun {
    pub x_pt: f32,
    pub baseline_y_pt: f32,
    pub size_pt: f32,
    /// Extra space after every glyph (PDF `Tc`).
    pub char_spacing_pt: f32,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// The 複写 ground pattern tiled over `area` (see [`GroundPatternCell`]).
    GroundPattern { area: RectPt },
    /// Rectangles filled with one gray level in one path (white panels, QR modules).
    FilledRects { gray: f32, rects: Vec<RectPt> },
    /// Black straight lines of one width, stroked as one path.
    Lines {
        width_pt: f32,
        segments: Vec<SegmentPt>,
    },
    /// Black text in the certificate font.
    Text(TextRun),
    /// The municipality's official seal image, drawn so that black underneath stays
    /// visible (multiply), as stamped ink does.
    OfficialSeal { area: RectPt },
    /// The registered seal impression (印影, [`Document::seal_impression`]), fitted
    /// in its framed box.
    SealImpression { area: RectPt },
}

/// One cell of the back-side ground pattern, tiled by the backend: fine diagonal
/// hatching with the word 複写 drawn as glyph outlines (artwork, not text).
#[derive(Clone, Debug)]
pub struct GroundPatternCell {
    pub width_pt: f32,
    pub height_pt: f32,
    /// PDF content-stream operators painting one cell (uncompressed).
    pub content: Vec<u8>,
}

const PATTERN_CELL_WIDTH_PT: f32 = 84.0;
const PATTERN_CELL_HEIGHT_PT: f32 = 42.0;
/// Light enough that black text over it stays legible.
const PATTERN_HATCH_GRAY: f32 = 0.86;
const PATTERN_WORD_GRAY: f32 = 0.80;
const PATTERN_WORD: &str = "複写";

pub(crate) fn build_ground_pattern(font: &EmbeddedFont) -> Result<GroundPatternCell, ComposeError> {
    let (w, h) = (PATTERN_CELL_WIDTH_PT, PATTERN_CELL_HEIGHT_PT);
    let mut content = pdf_writer::Content::new();
    // Hatching every 3.5 pt at 45°; lines overrun the cell and are clipped by its box.
    content
        .set_stroke_gray(PATTERN_HATCH_GRAY)
        .set_line_width(0.35);
    let step_pt = 3.5;
    let mut x = -h;
    while x < w {
        content.move_to(x, 0.0).line_to(x + h, h);
        x += step_pt;
    }
    content.stroke();
    // The word twice per cell, offset by half a cell, so rows interleave like brickwork.
    content.set_fill_gray(PATTERN_WORD_GRAY);
    let size_pt = 15.0;
    for (wx, wy) in [(6.0, 5.0), (6.0 + w / 2.0, 5.0 + h / 2.0)] {
        let mut pen_x = wx;
        for c in PATTERN_WORD.chars() {
            font.append_glyph_path(c, size_pt, pen_x, wy, &mut content)?;
            pen_x += font.text_width_pt(&c.to_string(), size_pt, 0.0)?;
        }
    }
    content.fill_nonzero();
    Ok(GroundPatternCell {
        width_pt: w,
        height_pt: h,
        content: content.finish().to_vec(),
    })
}

// ---------------------------------------------------------------------------------
// Geometry of the front pages (shared by every layout; the member blocks are 住民票の写し's).

const MARGIN_X_PT: f32 = 42.0;
const TABLE_LEFT_PT: f32 = MARGIN_X_PT;
const TABLE_RIGHT_PT: f32 = PAGE_WIDTH_PT - MARGIN_X_PT;
const HEADER_BASELINE_PT: f32 = 812.0;
const HEADER_SIZE_PT: f32 = 8.0;
const TITLE_BASELINE_PT: f32 = 770.0;
const TITLE_SIZE_PT: f32 = 20.0;
const TITLE_SPACING_PT: f32 = 8.0;
const MUNICIPALITY_BASELINE_PT: f32 = 746.0;
const TABLE_TOP_PT: f32 = 734.0;
const TOP_ROW_HEIGHT_PT: f32 = 24.0;
const TOP_LABEL_WIDTH_PT: f32 = 64.0;
/// Member number column at the left of each block.
const NUMBER_COLUMN_WIDTH_PT: f32 = 18.0;
const BLOCK_ROW_HEIGHTS_PT: [f32; 4] = [28.0, 18.0, 18.0, 20.0];
const LABEL_SIZE_PT: f32 = 7.5;
const VALUE_SIZE_PT: f32 = 9.0;
const VALUE_MIN_SIZE_PT: f32 = 6.0;
const NAME_SIZE_PT: f32 = 12.0;
const NAME_MIN_SIZE_PT: f32 = 8.0;
const KANA_SIZE_PT: f32 = 7.0;
const KANA_MIN_SIZE_PT: f32 = 5.0;
const REMARK_SIZES_PT: [f32; 3] = [8.0, 7.0, 6.0];
const REMARK_MAX_LINES: usize = 2;
const CELL_PAD_PT: f32 = 3.0;
/// Value size of the label | value rows at the top of a table (住所, 氏名...).
const TOP_VALUE_SIZE_PT: f32 = 10.5;
/// A body may reach down to here on the last front page (the attestation is below),
/// and to [`BODY_FLOOR_PT`] on the others.
const BODY_FLOOR_LAST_PAGE_PT: f32 = 176.0;
const BODY_FLOOR_PT: f32 = 56.0;
const CERTIFICATION_BASELINE_PT: f32 = 158.0;
const ISSUE_DATE_BASELINE_PT: f32 = 134.0;
const MAYOR_BASELINE_PT: f32 = 98.0;
const MAYOR_SIZE_PT: f32 = 13.0;
const MAYOR_MIN_SIZE_PT: f32 = 9.0;
const MAYOR_BOX_LEFT_PT: f32 = 200.0;
/// The name ends here, leaving room for the seal to its right.
const MAYOR_NAME_END_PT: f32 = 478.0;
const SEAL_SIZE_PT: f32 = 62.0;
const OUTER_LINE_WIDTH_PT: f32 = 1.0;
const INNER_LINE_WIDTH_PT: f32 = 0.4;

/// Width of each column in a member block row: (label, value) pairs, the last value
/// taking what is left.
const ROW1_COLUMNS_PT: [f32; 7] = [34.0, 176.0, 46.0, 110.0, 28.0, 24.0, 28.0];
const ROW2_COLUMNS_PT: [f32; 3] = [76.0, 100.0, 40.0];
const ROW3_COLUMNS_PT: [f32; 3] = [34.0, 250.0, 40.0];
const ROW4_COLUMNS_PT: [f32; 1] = [34.0];

// Static wording printed by the composer itself (checked against the font when the
// composer is built, so a missing glyph here fails at start-up, not at a kiosk).
const LABEL_ADDRESS: &str = "住　所";
const LABEL_HOUSEHOLD_HEAD: &str = "世帯主";
const LABEL_NAME: &str = "氏名";
const LABEL_BIRTH: &str = "生年月日";
const LABEL_SEX: &str = "性別";
const LABEL_RELATIONSHIP: &str = "続柄";
const LABEL_BECAME_RESIDENT: &str = "住民となった年月日";
const LABEL_PREVIOUS_ADDRESS: &str = "前住所";
const LABEL_DOMICILE: &str = "本籍";
const LABEL_DOMICILE_HEAD: &str = "筆頭者";
const LABEL_REMARKS: &str = "備考";
const REQUEST_ID_LABEL: &str = "請求番号";
const BACK_HEADING: &str = "うら面　この証明書の確かめ方";
const BACK_SEAL_LABEL: &str = "署名付きシール";
const BACK_SIDE_MARK: &str = "（うら面）";
const BACK_INSTRUCTIONS_BEFORE_URL: [&str; 2] = [
    "この面の二次元コードには、この証明書を発行した市区町村の電子署名が記録されています。",
    "提出を受けた方は、次の検証ページで二次元コードを読み取ってください。",
];
const BACK_INSTRUCTIONS_AFTER_URL: [&str; 6] = [
    "または、読み取った文字列をコマンド「center verify」に与えて検証してください。",
    "「有効（VALID）」と表示されたときは、表示された氏名・生年月日・住所と",
    "請求番号が、おもて面の記載と一致することを確かめてください。",
    "「無効（INVALID）」「不明（UNKNOWN）」と表示されたとき、または一致しないときは、",
    "この証明書を真正なものとして取り扱わないでください。",
    "地紋の「複写」の文字は偽造防止のためのものです。",
];

/// Every string the composer prints on its own account.
pub(crate) fn static_texts() -> impl Iterator<Item = &'static str> {
    [
        LABEL_ADDRESS,
        LABEL_HOUSEHOLD_HEAD,
        LABEL_NAME,
        LABEL_BIRTH,
        LABEL_SEX,
        LABEL_RELATIONSHIP,
        LABEL_BECAME_RESIDENT,
        LABEL_PREVIOUS_ADDRESS,
        LABEL_DOMICILE,
        LABEL_DOMICILE_HEAD,
        LABEL_REMARKS,
        REQUEST_ID_LABEL,
        BACK_HEADING,
        BACK_SEAL_LABEL,
        BACK_SIDE_MARK,
        PATTERN_WORD,
        "0123456789/-abcdef",
    ]
    .into_iter()
    .chain(BACK_INSTRUCTIONS_BEFORE_URL)
    .chain(BACK_INSTRUCTIONS_AFTER_URL)
    .chain(fronts::STATIC_TEXTS)
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

/// Collects one page's items, keeping rules and text apart so rules are stroked in a
/// couple of paths and painted under the text.
struct PageBuilder<'f> {
    font: &'f EmbeddedFont,
    background: Vec<Item>,
    outer_lines: Vec<SegmentPt>,
    inner_lines: Vec<SegmentPt>,
    texts: Vec<Item>,
    overlay: Vec<Item>,
}

impl<'f> PageBuilder<'f> {
    fn new(font: &'f EmbeddedFont) -> Self {
        Self {
            font,
            background: Vec::new(),
            outer_lines: Vec::new(),
            inner_lines: Vec::new(),
            texts: Vec::new(),
            overlay: Vec::new(),
        }
    }

    fn finish(self) -> Page {
        let mut items = self.background;
        if !self.inner_lines.is_empty() {
            items.push(Item::Lines {
                width_pt: INNER_LINE_WIDTH_PT,
                segments: self.inner_lines,
            });
        }
        if !self.outer_lines.is_empty() {
            items.push(Item::Lines {
                width_pt: OUTER_LINE_WIDTH_PT,
                segments: self.outer_lines,
            });
        }
        items.extend(self.texts);
        items.extend(self.overlay);
        Page { items }
    }

    fn push_text(
        &mut self,
        x_pt: f32,
        baseline_y_pt: f32,
        size_pt: f32,
        spacing_pt: f32,
        text: &str,
    ) {
        if text.is_empty() {
            return;
        }
        self.texts.push(Item::Text(TextRun {
            x_pt,
            baseline_y_pt,
            size_pt,
            char_spacing_pt: spacing_pt,
            text: text.to_owned(),
        }));
    }

    /// Largest size in `min_pt..=nominal_pt` at which `text` fits `box_width_pt`;
    /// shrinking (as a 縮小印字 does) is fine, truncating never is.
    fn fit_size(
        &self,
        field: &str,
        text: &str,
        box_width_pt: f32,
        nominal_pt: f32,
        min_pt: f32,
    ) -> Result<f32, ComposeError> {
        debug_assert!(min_pt > 0.0 && min_pt <= nominal_pt && box_width_pt > 0.0);
        let width_at_nominal = self.font.text_width_pt(text, nominal_pt, 0.0)?;
        if width_at_nominal <= box_width_pt {
            return Ok(nominal_pt);
        }
        // Width is linear in size; shave a hair so rounding never lets ink cross a rule.
        let size = nominal_pt * box_width_pt / width_at_nominal * 0.999;
        if size >= min_pt {
            Ok(size)
        } else {
            Err(ComposeError::FieldTooLong {
                field: field.to_owned(),
                width_pt: width_at_nominal * min_pt / nominal_pt,
                max_width_pt: box_width_pt,
            })
        }
    }

    /// Places `text` in the cell [x, x + width] at `baseline`, fitted and aligned.
    #[allow(clippy::too_many_arguments)]
    fn cell_text(
        &mut self,
        field: &str,
        text: &str,
        x_pt: f32,
        width_pt: f32,
        baseline_pt: f32,
        nominal_pt: f32,
        min_pt: f32,
        align: Align,
    ) -> Result<(), ComposeError> {
        if text.is_empty() {
            return Ok(());
        }
        let inner_width = width_pt - 2.0 * CELL_PAD_PT;
        let size = self.fit_size(field, text, inner_width, nominal_pt, min_pt)?;
        let text_width = self.font.text_width_pt(text, size, 0.0)?;
        let x = match align {
            Align::Left => x_pt + CELL_PAD_PT,
            Align::Center => x_pt + (width_pt - text_width) / 2.0,
            Align::Right => x_pt + width_pt - CELL_PAD_PT - text_width,
        };
        self.push_text(x, baseline_pt, size, 0.0, text);
        Ok(())
    }

    fn label(
        &mut self,
        text: &'static str,
        x_pt: f32,
        width_pt: f32,
        row_bottom_pt: f32,
        row_height_pt: f32,
    ) -> Result<(), ComposeError> {
        self.cell_text(
            text,
            text,
            x_pt,
            width_pt,
            centered_baseline(row_bottom_pt, row_height_pt, LABEL_SIZE_PT),
            LABEL_SIZE_PT,
            LABEL_SIZE_PT * 0.8,
            Align::Center,
        )
    }

    fn header(
        &mut self,
        request_id: &str,
        sheet: usize,
        sheets: usize,
        back: bool,
    ) -> Result<(), ComposeError> {
        let left = format!("{REQUEST_ID_LABEL} {request_id}");
        self.push_text(MARGIN_X_PT, HEADER_BASELINE_PT, HEADER_SIZE_PT, 0.0, &left);
        let right = if back {
            format!("{}/{}{BACK_SIDE_MARK}", sheet + 1, sheets)
        } else {
            format!("{}/{}", sheet + 1, sheets)
        };
        let width = self.font.text_width_pt(&right, HEADER_SIZE_PT + 1.0, 0.0)?;
        self.push_text(
            PAGE_WIDTH_PT - MARGIN_X_PT - width,
            HEADER_BASELINE_PT,
            HEADER_SIZE_PT + 1.0,
            0.0,
            &right,
        );
        Ok(())
    }

    fn hline(&mut self, outer: bool, x1: f32, x2: f32, y: f32) {
        let seg = SegmentPt {
            x1_pt: x1,
            y1_pt: y,
            x2_pt: x2,
            y2_pt: y,
        };
        if outer {
            self.outer_lines.push(seg)
        } else {
            self.inner_lines.push(seg)
        }
    }

    fn vline(&mut self, outer: bool, x: f32, y1: f32, y2: f32) {
        let seg = SegmentPt {
            x1_pt: x,
            y1_pt: y1,
            x2_pt: x,
            y2_pt: y2,
        };
        if outer {
            self.outer_lines.push(seg)
        } else {
            self.inner_lines.push(seg)
        }
    }
}

/// Baseline that centres a line of CJK text of `size_pt` vertically in a row.
/// IPAex Mincho's ideographic box spans roughly −0.12 em to +0.88 em.
fn centered_baseline(row_bottom_pt: f32, row_height_pt: f32, size_pt: f32) -> f32 {
    row_bottom_pt + row_height_pt / 2.0 - size_pt * 0.36
}

/// Lays out, and validates, the whole document. Every check that can refuse a document
/// happens here, before a single PDF byte is written.
pub(crate) fn lay_out(
    font: &EmbeddedFont,
    input: &DocumentInput<'_>,
) -> Result<Document, ComposeError> {
    let front = input.front;
    if input.copies == 0 {
        return Err(ComposeError::InvalidInput(
            "copies must be at least 1".into(),
        ));
    }
    // A register longer than a copy may be is a page-count refusal, not malformed data.
    if front.page_count() > MAX_SHEETS_PER_COPY {
        return Err(ComposeError::TooManyPages);
    }
    // The shape bounds every layout below relies on (rows per page, event lines...).
    front.validate().map_err(ComposeError::InvalidInput)?;
    // Nothing is printed wrong: every character is checked before any layout work.
    for text in front.printed_texts() {
        font.check_printable(text)?;
    }
    font.check_printable(input.verify_url)?;

    // The one pagination rule shared with the municipality, which signs one seal per
    // front page on the same rule.
    let ranges = front.page_ranges();
    let sheet_count = ranges.len();
    if sheet_count > MAX_SHEETS_PER_COPY
        || usize::from(input.copies) * sheet_count * 2 > MAX_TOTAL_PAGES
    {
        return Err(ComposeError::TooManyPages);
    }
    if input.seal_qr_texts.len() != sheet_count {
        return Err(ComposeError::SealCountMismatch {
            expected: sheet_count,
            got: input.seal_qr_texts.len(),
        });
    }
    let request_id = input.request_id.to_string();
    check_seal_binding(input, sheet_count)?;

    // 印影: decoded (and bounded) once per document; a bad PNG refuses the document.
    let seal_impression = match front {
        FrontSide::SealRegistration(f) => {
            Some(SealImage::from_png(f.seal_impression_png.as_slice())?)
        }
        _ => None,
    };
    let impression_px = seal_impression
        .as_ref()
        .map(|s| (s.width_px(), s.height_px()));
    let official_seal_px = input.official_seal.map(|s| (s.width_px(), s.height_px()));

    let mut sheets = Vec::with_capacity(sheet_count);
    for (sheet, rows) in ranges.into_iter().enumerate() {
        let page = FrontPage {
            request_id: &request_id,
            sheet,
            sheet_count,
            rows,
        };
        let front_page = lay_out_front(font, front, &page, official_seal_px, impression_px)?;
        let qr = qr::encode_fixed_mask(&input.seal_qr_texts[sheet])?;
        let back_page = lay_out_back(font, &qr, sheet, sheet_count, &request_id, input.verify_url)?;
        sheets.push(Sheet {
            front: front_page,
            back: back_page,
        });
    }
    Ok(Document {
        request_id,
        title: front.title().to_owned(),
        copies: input.copies,
        sheets,
        seal_impression,
    })
}

/// Binding guard, again at the last step: each seal must name this request, its own
/// page, and a certificate type this front is a layout for. A seal from another request
/// (or a swapped page) would otherwise be printed on the back of this resident's
/// certificate. The signature itself is the center's and the verifier's business; here
/// only its structure and binding are read.
fn check_seal_binding(input: &DocumentInput<'_>, sheet_count: usize) -> Result<(), ComposeError> {
    for (index, text) in input.seal_qr_texts.iter().enumerate() {
        let page = index + 1;
        let mismatch = |reason: String| ComposeError::SealMismatch {
            page: page as u32,
            reason,
        };
        let payload = schemas::SignedSeal::from_qr_text(text)
            .and_then(|seal| seal.unverified_payload())
            .map_err(|e| mismatch(format!("not a well-formed seal: {e}")))?;
        if payload.serial != input.request_id {
            return Err(mismatch(format!(
                "seal is for request {}, not {}",
                payload.serial, input.request_id
            )));
        }
        if usize::from(payload.page) != page || usize::from(payload.page_count) != sheet_count {
            return Err(mismatch(format!(
                "seal says page {}/{}, the document has page {page}/{sheet_count}",
                payload.page, payload.page_count
            )));
        }
        let fits = CertificateType::from_seal_doc_type(payload.doc_type)
            .is_some_and(|certificate| input.front.fits(certificate));
        if !fits {
            return Err(mismatch(format!(
                "seal is for document type {}, not for a {}",
                payload.doc_type,
                input.front.title()
            )));
        }
    }
    Ok(())
}

/// Which front page is being laid out.
struct FrontPage<'a> {
    request_id: &'a str,
    /// 0-based.
    sheet: usize,
    sheet_count: usize,
    /// The paginating rows (members, persons, addresses) on this page.
    rows: Range<usize>,
}

impl FrontPage<'_> {
    /// The attestation and the official seal go on the last front page of each copy.
    fn is_last(&self) -> bool {
        self.sheet + 1 == self.sheet_count
    }

    /// Lowest y the body may reach: above the attestation on the last page, near the
    /// bottom margin elsewhere.
    fn body_floor_pt(&self) -> f32 {
        if self.is_last() {
            BODY_FLOOR_LAST_PAGE_PT
        } else {
            BODY_FLOOR_PT
        }
    }
}

/// Every front page: header, title and municipality, the type's body, and on the last
/// page the attestation with the official seal.
fn lay_out_front(
    font: &EmbeddedFont,
    front: &FrontSide,
    page: &FrontPage<'_>,
    official_seal_px: Option<(u32, u32)>,
    impression_px: Option<(u32, u32)>,
) -> Result<Page, ComposeError> {
    let mut p = PageBuilder::new(font);
    // The 「複写」 ground pattern on the front too: a photocopy of either side shows it.
    p.background.push(ground_pattern_area());
    p.header(page.request_id, page.sheet, page.sheet_count, false)?;
    let attestation = front.attestation();

    // Title, centred, letter-spaced as printed certificates are.
    let title = front.title();
    let title_width =
        font.text_width_pt(title, TITLE_SIZE_PT, TITLE_SPACING_PT)? - TITLE_SPACING_PT;
    if title_width > TABLE_RIGHT_PT - TABLE_LEFT_PT {
        return Err(ComposeError::FieldTooLong {
            field: "title".into(),
            width_pt: title_width,
            max_width_pt: TABLE_RIGHT_PT - TABLE_LEFT_PT,
        });
    }
    p.push_text(
        (PAGE_WIDTH_PT - title_width) / 2.0,
        TITLE_BASELINE_PT,
        TITLE_SIZE_PT,
        TITLE_SPACING_PT,
        title,
    );
    p.cell_text(
        "municipality_name",
        &attestation.municipality_name,
        TABLE_LEFT_PT - CELL_PAD_PT,
        240.0,
        MUNICIPALITY_BASELINE_PT,
        10.5,
        8.0,
        Align::Left,
    )?;

    let bottom_pt = match front {
        FrontSide::ResidentRecord(f) => lay_out_resident_record(&mut p, f, page)?,
        FrontSide::ResidentRecordItems(f) => fronts::resident_items(&mut p, f, page)?,
        FrontSide::SealRegistration(f) => fronts::seal_registration(&mut p, f, impression_px)?,
        FrontSide::IncomeTax(f) => fronts::income_tax(&mut p, f)?,
        FrontSide::TaxPayment(f) => fronts::tax_payment(&mut p, f)?,
        FrontSide::FamilyRegister(f) => fronts::family_register(&mut p, f, page)?,
        FrontSide::FamilyRegisterAttachment(f) => fronts::attachment(&mut p, f, page)?,
    };
    // The fixed geometry keeps every body above its floor; a layout change that broke
    // this would print over the attestation, so it is refused rather than printed.
    if bottom_pt < page.body_floor_pt() - 0.01 {
        return Err(ComposeError::FieldTooLong {
            field: format!("page {} body", page.sheet + 1),
            width_pt: TABLE_TOP_PT - bottom_pt,
            max_width_pt: TABLE_TOP_PT - page.body_floor_pt(),
        });
    }

    if page.is_last() {
        lay_out_attestation(&mut p, attestation, official_seal_px)?;
    }
    Ok(p.finish())
}

/// 認証文, 交付日, and the mayor with the official seal.
fn lay_out_attestation(
    p: &mut PageBuilder<'_>,
    attestation: &Attestation,
    official_seal_px: Option<(u32, u32)>,
) -> Result<(), ComposeError> {
    p.cell_text(
        "certification",
        &attestation.certification,
        TABLE_LEFT_PT + 18.0,
        TABLE_RIGHT_PT - TABLE_LEFT_PT - 18.0,
        CERTIFICATION_BASELINE_PT,
        10.5,
        7.5,
        Align::Left,
    )?;
    p.cell_text(
        "issue_date_wareki",
        &attestation.issue_date_wareki,
        TABLE_LEFT_PT + 36.0,
        200.0,
        ISSUE_DATE_BASELINE_PT,
        10.5,
        8.0,
        Align::Left,
    )?;
    lay_out_mayor(p, attestation, official_seal_px)
}

/// Label | value rows across the table (住所, 世帯主, 氏名...), each with an outer rule
/// below; returns the bottom edge. `top_pt` is expected to carry a rule already.
fn lay_out_label_rows(
    p: &mut PageBuilder<'_>,
    rows: &[(&'static str, &str, &str)],
    top_pt: f32,
    label_width_pt: f32,
    row_height_pt: f32,
) -> Result<f32, ComposeError> {
    let mut y = top_pt;
    for &(label, field, value) in rows {
        let bottom = y - row_height_pt;
        p.label(label, TABLE_LEFT_PT, label_width_pt, bottom, row_height_pt)?;
        p.cell_text(
            field,
            value,
            TABLE_LEFT_PT + label_width_pt,
            TABLE_RIGHT_PT - TABLE_LEFT_PT - label_width_pt,
            centered_baseline(bottom, row_height_pt, TOP_VALUE_SIZE_PT),
            TOP_VALUE_SIZE_PT,
            7.0,
            Align::Left,
        )?;
        p.vline(false, TABLE_LEFT_PT + label_width_pt, bottom, y);
        p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, bottom);
        y = bottom;
    }
    Ok(y)
}

/// The outer left and right rules of the table between `bottom_pt` and `top_pt`.
fn frame_sides(p: &mut PageBuilder<'_>, bottom_pt: f32, top_pt: f32) {
    p.vline(true, TABLE_LEFT_PT, bottom_pt, top_pt);
    p.vline(true, TABLE_RIGHT_PT, bottom_pt, top_pt);
}

/// 住所 and (when asked for) 世帯主, shared by both resident-record layouts.
fn lay_out_household_rows(
    p: &mut PageBuilder<'_>,
    address: &str,
    household_head: Option<&str>,
) -> Result<f32, ComposeError> {
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT);
    let mut rows: Vec<(&'static str, &str, &str)> = vec![(LABEL_ADDRESS, "address", address)];
    if let Some(head) = household_head {
        rows.push((LABEL_HOUSEHOLD_HEAD, "household_head", head));
    }
    lay_out_label_rows(
        p,
        &rows,
        TABLE_TOP_PT,
        TOP_LABEL_WIDTH_PT,
        TOP_ROW_HEIGHT_PT,
    )
}

/// 住民票の写し: 住所, 世帯主, then one four-row block per member on this page.
fn lay_out_resident_record(
    p: &mut PageBuilder<'_>,
    front: &ResidentRecordFront,
    page: &FrontPage<'_>,
) -> Result<f32, ComposeError> {
    let members = front
        .members
        .get(page.rows.clone())
        .ok_or_else(|| ComposeError::InvalidInput("page rows outside the member list".into()))?;
    let mut y = lay_out_household_rows(p, &front.address, front.household_head.as_deref())?;
    for (offset, row) in members.iter().enumerate() {
        y = lay_out_member(p, row, page.rows.start + offset, y)?;
    }
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

/// A block row of two (label, value) cells: label, value, label, value up to the
/// table's right edge, with the inner rules and the bottom rule. Returns the row's
/// bottom edge.
fn lay_out_pair_row(
    p: &mut PageBuilder<'_>,
    x0: f32,
    top_pt: f32,
    height_pt: f32,
    widths_pt: &[f32; 3],
    cells: [(&'static str, &str, &str); 2],
) -> Result<f32, ComposeError> {
    let bottom_pt = top_pt - height_pt;
    let mut cols = column_edges(x0, widths_pt);
    cols.push(TABLE_RIGHT_PT);
    let baseline_pt = centered_baseline(bottom_pt, height_pt, VALUE_SIZE_PT);
    for (i, (label, field, value)) in cells.into_iter().enumerate() {
        let (label_x, value_x, end_x) = (cols[2 * i], cols[2 * i + 1], cols[2 * i + 2]);
        p.label(label, label_x, value_x - label_x, bottom_pt, height_pt)?;
        p.cell_text(
            field,
            value,
            value_x,
            end_x - value_x,
            baseline_pt,
            VALUE_SIZE_PT,
            VALUE_MIN_SIZE_PT,
            Align::Left,
        )?;
    }
    for &x in &cols[1..cols.len() - 1] {
        p.vline(false, x, bottom_pt, top_pt);
    }
    p.hline(false, x0, TABLE_RIGHT_PT, bottom_pt);
    Ok(bottom_pt)
}

/// The texts of a member's first row (氏名 with ふりがな, 生年月日, 性別, 続柄), shared by
/// 住民票の写し and 住民票記載事項証明書.
pub(super) struct NameRow<'a> {
    pub(super) name: &'a str,
    pub(super) name_kana: &'a str,
    pub(super) birth_date_wareki: &'a str,
    pub(super) sex: &'a str,
    pub(super) relationship: Option<&'a str>,
}

/// The member number column over a block of `block_height_pt`, and its rule.
fn lay_out_member_number(
    p: &mut PageBuilder<'_>,
    index: usize,
    top_pt: f32,
    block_height_pt: f32,
) -> Result<(), ComposeError> {
    let block_bottom = top_pt - block_height_pt;
    let number = (index + 1).to_string();
    p.cell_text(
        "member number",
        &number,
        TABLE_LEFT_PT,
        NUMBER_COLUMN_WIDTH_PT,
        centered_baseline(block_bottom, block_height_pt, VALUE_SIZE_PT),
        VALUE_SIZE_PT,
        6.0,
        Align::Center,
    )?;
    p.vline(
        false,
        TABLE_LEFT_PT + NUMBER_COLUMN_WIDTH_PT,
        block_bottom,
        top_pt,
    );
    Ok(())
}

/// Row 1 of a member block: 氏名 (ふりがな above) | 生年月日 | 性別 | 続柄, with an inner
/// rule below; returns the row's bottom edge.
fn lay_out_name_row(
    p: &mut PageBuilder<'_>,
    row: &NameRow<'_>,
    index: usize,
    top_pt: f32,
) -> Result<f32, ComposeError> {
    let field = |name: &str| format!("members[{index}].{name}");
    let x0 = TABLE_LEFT_PT + NUMBER_COLUMN_WIDTH_PT;
    let h1 = BLOCK_ROW_HEIGHTS_PT[0];
    let b1 = top_pt - h1;
    let cols = column_edges(x0, &ROW1_COLUMNS_PT);
    p.label(LABEL_NAME, cols[0], cols[1] - cols[0], b1, h1)?;
    p.cell_text(
        &field("name_kana"),
        row.name_kana,
        cols[1],
        cols[2] - cols[1],
        top_pt - 8.5,
        KANA_SIZE_PT,
        KANA_MIN_SIZE_PT,
        Align::Left,
    )?;
    p.cell_text(
        &field("name"),
        row.name,
        cols[1],
        cols[2] - cols[1],
        b1 + 5.5,
        NAME_SIZE_PT,
        NAME_MIN_SIZE_PT,
        Align::Left,
    )?;
    p.label(LABEL_BIRTH, cols[2], cols[3] - cols[2], b1, h1)?;
    let vb = centered_baseline(b1, h1, VALUE_SIZE_PT);
    p.cell_text(
        &field("birth_date_wareki"),
        row.birth_date_wareki,
        cols[3],
        cols[4] - cols[3],
        vb,
        VALUE_SIZE_PT,
        VALUE_MIN_SIZE_PT,
        Align::Left,
    )?;
    p.label(LABEL_SEX, cols[4], cols[5] - cols[4], b1, h1)?;
    p.cell_text(
        &field("sex"),
        row.sex,
        cols[5],
        cols[6] - cols[5],
        vb,
        VALUE_SIZE_PT,
        VALUE_MIN_SIZE_PT,
        Align::Center,
    )?;
    p.label(LABEL_RELATIONSHIP, cols[6], cols[7] - cols[6], b1, h1)?;
    p.cell_text(
        &field("relationship"),
        row.relationship.unwrap_or(""),
        cols[7],
        TABLE_RIGHT_PT - cols[7],
        vb,
        VALUE_SIZE_PT,
        VALUE_MIN_SIZE_PT,
        Align::Left,
    )?;
    for &x in &cols[1..] {
        p.vline(false, x, b1, top_pt);
    }
    p.hline(false, x0, TABLE_RIGHT_PT, b1);
    Ok(b1)
}

/// One member block (four rows); returns the block's bottom edge.
fn lay_out_member(
    p: &mut PageBuilder<'_>,
    row: &ResidentRow,
    index: usize,
    top_pt: f32,
) -> Result<f32, ComposeError> {
    let field = |name: &str| format!("members[{index}].{name}");
    let x0 = TABLE_LEFT_PT + NUMBER_COLUMN_WIDTH_PT;
    let block_height: f32 = BLOCK_ROW_HEIGHTS_PT.iter().sum();
    let block_bottom = top_pt - block_height;
    lay_out_member_number(p, index, top_pt, block_height)?;
    let b1 = lay_out_name_row(
        p,
        &NameRow {
            name: &row.name,
            name_kana: &row.name_kana,
            birth_date_wareki: &row.birth_date_wareki,
            sex: &row.sex,
            relationship: row.relationship.as_deref(),
        },
        index,
        top_pt,
    )?;

    // Row 2: 住民となった年月日 | 前住所.
    let b2 = lay_out_pair_row(
        p,
        x0,
        b1,
        BLOCK_ROW_HEIGHTS_PT[1],
        &ROW2_COLUMNS_PT,
        [
            (
                LABEL_BECAME_RESIDENT,
                &field("became_resident_on_wareki"),
                &row.became_resident_on_wareki,
            ),
            (
                LABEL_PREVIOUS_ADDRESS,
                &field("previous_address"),
                row.previous_address.as_deref().unwrap_or(""),
            ),
        ],
    )?;

    // Row 3: 本籍 | 筆頭者 (blank when not asked for).
    let b3 = lay_out_pair_row(
        p,
        x0,
        b2,
        BLOCK_ROW_HEIGHTS_PT[2],
        &ROW3_COLUMNS_PT,
        [
            (
                LABEL_DOMICILE,
                &field("domicile"),
                row.domicile.as_deref().unwrap_or(""),
            ),
            (
                LABEL_DOMICILE_HEAD,
                &field("domicile_head"),
                row.domicile_head.as_deref().unwrap_or(""),
            ),
        ],
    )?;

    // Row 4: 備考, up to two lines.
    let h4 = BLOCK_ROW_HEIGHTS_PT[3];
    let b4 = b3 - h4;
    let cols = column_edges(x0, &ROW4_COLUMNS_PT);
    p.label(LABEL_REMARKS, cols[0], cols[1] - cols[0], b4, h4)?;
    p.vline(false, cols[1], b4, b3);
    lay_out_remarks(
        p,
        &field("remarks"),
        &row.remarks,
        cols[1],
        TABLE_RIGHT_PT - cols[1],
        b4,
        h4,
    )?;
    // Block separator: a full-width outer rule.
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, b4);
    debug_assert!((b4 - block_bottom).abs() < 0.01);
    Ok(b4)
}

/// Left edges of consecutive columns starting at `x0`, plus the edge after the last.
fn column_edges<const N: usize>(x0: f32, widths: &[f32; N]) -> Vec<f32> {
    let mut edges = Vec::with_capacity(N + 1);
    let mut x = x0;
    edges.push(x);
    for w in widths {
        x += w;
        edges.push(x);
    }
    edges
}

/// 備考: each remark starts a new line and wraps at character boundaries; the first
/// size in [`REMARK_SIZES_PT`] at which everything fits in [`REMARK_MAX_LINES`] lines
/// wins, otherwise the field is too long (never cut).
fn lay_out_remarks(
    p: &mut PageBuilder<'_>,
    field: &str,
    remarks: &[String],
    x_pt: f32,
    width_pt: f32,
    bottom_pt: f32,
    height_pt: f32,
) -> Result<(), ComposeError> {
    let remarks: Vec<&str> = remarks
        .iter()
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    if remarks.is_empty() {
        return Ok(());
    }
    let inner_width = width_pt - 2.0 * CELL_PAD_PT;
    for size in REMARK_SIZES_PT {
        let mut lines: Vec<String> = Vec::new();
        for remark in &remarks {
            let mut line = String::new();
            let mut line_width = 0.0;
            for c in remark.chars() {
                let w = p
                    .font
                    .text_width_pt(c.encode_utf8(&mut [0; 4]), size, 0.0)?;
                if line_width + w > inner_width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(c);
                line_width += w;
            }
            lines.push(line);
        }
        if lines.len() <= REMARK_MAX_LINES {
            let leading = size * 1.15;
            let block = leading * (lines.len() as f32 - 1.0);
            let first_baseline = centered_baseline(bottom_pt, height_pt, size) + block / 2.0;
            for (i, line) in lines.iter().enumerate() {
                p.push_text(
                    x_pt + CELL_PAD_PT,
                    first_baseline - leading * i as f32,
                    size,
                    0.0,
                    line,
                );
            }
            return Ok(());
        }
    }
    let smallest = REMARK_SIZES_PT[REMARK_SIZES_PT.len() - 1];
    let mut total = 0.0;
    for r in &remarks {
        total += p.font.text_width_pt(r, smallest, 0.0)?;
    }
    Err(ComposeError::FieldTooLong {
        field: field.to_owned(),
        width_pt: total,
        max_width_pt: inner_width * REMARK_MAX_LINES as f32,
    })
}

/// "<mayor_title>  <mayor_name>" with the seal overlapping the end of the name, as a
/// 職印 is stamped on real certificates.
fn lay_out_mayor(
    p: &mut PageBuilder<'_>,
    front: &Attestation,
    seal_px: Option<(u32, u32)>,
) -> Result<(), ComposeError> {
    let gap_em = 1.0;
    let box_width = MAYOR_NAME_END_PT - MAYOR_BOX_LEFT_PT;
    let natural = p
        .font
        .text_width_pt(&front.mayor_title, MAYOR_SIZE_PT, 0.0)?
        + gap_em * MAYOR_SIZE_PT
        + p.font
            .text_width_pt(&front.mayor_name, MAYOR_SIZE_PT, 0.0)?;
    let size = if natural <= box_width {
        MAYOR_SIZE_PT
    } else {
        let s = MAYOR_SIZE_PT * box_width / natural * 0.999;
        if s < MAYOR_MIN_SIZE_PT {
            return Err(ComposeError::FieldTooLong {
                field: "mayor_title + mayor_name".into(),
                width_pt: natural * MAYOR_MIN_SIZE_PT / MAYOR_SIZE_PT,
                max_width_pt: box_width,
            });
        }
        s
    };
    let name_width = p.font.text_width_pt(&front.mayor_name, size, 0.0)?;
    let title_width = p.font.text_width_pt(&front.mayor_title, size, 0.0)?;
    let name_x = MAYOR_NAME_END_PT - name_width;
    let title_x = name_x - gap_em * size - title_width;
    p.push_text(title_x, MAYOR_BASELINE_PT, size, 0.0, &front.mayor_title);
    p.push_text(name_x, MAYOR_BASELINE_PT, size, 0.0, &front.mayor_name);

    if let Some((w_px, h_px)) = seal_px {
        // Fit the image in a SEAL_SIZE_PT square keeping its aspect ratio.
        let (w_px, h_px) = (w_px.max(1) as f32, h_px.max(1) as f32);
        let scale = SEAL_SIZE_PT / w_px.max(h_px);
        let (w, h) = (w_px * scale, h_px * scale);
        // The seal's left edge sits 1.3 em left of the name's end, so it covers the last
        // character as a stamped 職印 does; vertically it is centred on the glyphs.
        let cx = MAYOR_NAME_END_PT + w / 2.0 - size * 1.3;
        let cy = MAYOR_BASELINE_PT + size * 0.38;
        p.overlay.push(Item::OfficialSeal {
            area: RectPt {
                x_pt: cx - w / 2.0,
                y_pt: cy - h / 2.0,
                width_pt: w,
                height_pt: h,
            },
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The back page (うら面).

const BACK_HEADING_BASELINE_PT: f32 = 770.0;
const QR_TOP_PT: f32 = 740.0;
const QR_TARGET_SIZE_PT: f32 = 180.0;
const QR_MAX_MODULE_PT: f32 = 3.0;
const QR_QUIET_MODULES: f32 = 4.0;
const BACK_TEXT_LEFT_PT: f32 = 64.0;
const BACK_TEXT_SIZE_PT: f32 = 10.0;
const BACK_LEADING_PT: f32 = 17.0;
const GROUND_INSET_PT: f32 = 18.0;

/// The ground pattern over the printable area of a page side (both sides carry it).
fn ground_pattern_area() -> Item {
    Item::GroundPattern {
        area: RectPt {
            x_pt: GROUND_INSET_PT,
            y_pt: GROUND_INSET_PT,
            width_pt: PAGE_WIDTH_PT - 2.0 * GROUND_INSET_PT,
            height_pt: PAGE_HEIGHT_PT - 2.0 * GROUND_INSET_PT,
        },
    }
}

fn lay_out_back(
    font: &EmbeddedFont,
    qr: &QrMatrix,
    sheet: usize,
    sheet_count: usize,
    request_id: &str,
    verify_url: &str,
) -> Result<Page, ComposeError> {
    let mut p = PageBuilder::new(font);
    p.background.push(ground_pattern_area());
    p.header(request_id, sheet, sheet_count, true)?;

    let content_width = PAGE_WIDTH_PT - 2.0 * BACK_TEXT_LEFT_PT;
    p.cell_text(
        "back heading",
        BACK_HEADING,
        BACK_TEXT_LEFT_PT,
        content_width,
        BACK_HEADING_BASELINE_PT,
        15.0,
        12.0,
        Align::Center,
    )?;

    // QR: modules as filled rectangles, each horizontal run of dark modules one
    // rectangle, all in one path; on a white panel that doubles as the quiet zone.
    let modules = qr.width_modules as f32;
    let module_pt = (QR_TARGET_SIZE_PT / modules).min(QR_MAX_MODULE_PT);
    let qr_size = modules * module_pt;
    let qr_left = (PAGE_WIDTH_PT - qr_size) / 2.0;
    let qr_bottom = QR_TOP_PT - qr_size;
    let quiet = QR_QUIET_MODULES * module_pt;
    let mut runs = Vec::new();
    for y in 0..qr.width_modules {
        let row_bottom = QR_TOP_PT - (y as f32 + 1.0) * module_pt;
        let mut x = 0;
        while x < qr.width_modules {
            if qr.is_dark(x, y) {
                let start = x;
                while x < qr.width_modules && qr.is_dark(x, y) {
                    x += 1;
                }
                runs.push(RectPt {
                    x_pt: qr_left + start as f32 * module_pt,
                    y_pt: row_bottom,
                    width_pt: (x - start) as f32 * module_pt,
                    height_pt: module_pt,
                });
            } else {
                x += 1;
            }
        }
    }

    // Text below the QR.
    let mut baseline = qr_bottom - quiet - 16.0;
    let seal_label = format!("{BACK_SEAL_LABEL}（{}/{}）", sheet + 1, sheet_count);
    p.cell_text(
        "seal label",
        &seal_label,
        BACK_TEXT_LEFT_PT,
        content_width,
        baseline,
        9.0,
        9.0,
        Align::Center,
    )?;
    baseline -= BACK_LEADING_PT;
    let id_line = format!("{REQUEST_ID_LABEL} {request_id}");
    p.cell_text(
        "request id",
        &id_line,
        BACK_TEXT_LEFT_PT,
        content_width,
        baseline,
        11.0,
        9.0,
        Align::Center,
    )?;
    baseline -= BACK_LEADING_PT * 2.0;
    for line in BACK_INSTRUCTIONS_BEFORE_URL {
        p.cell_text(
            "instructions",
            line,
            BACK_TEXT_LEFT_PT,
            content_width,
            baseline,
            BACK_TEXT_SIZE_PT,
            8.0,
            Align::Left,
        )?;
        baseline -= BACK_LEADING_PT;
    }
    p.cell_text(
        "verify_url",
        verify_url,
        BACK_TEXT_LEFT_PT + 2.0 * BACK_TEXT_SIZE_PT,
        content_width - 2.0 * BACK_TEXT_SIZE_PT,
        baseline,
        11.0,
        7.0,
        Align::Left,
    )?;
    baseline -= BACK_LEADING_PT;
    for line in BACK_INSTRUCTIONS_AFTER_URL {
        p.cell_text(
            "instructions",
            line,
            BACK_TEXT_LEFT_PT,
            content_width,
            baseline,
            BACK_TEXT_SIZE_PT,
            8.0,
            Align::Left,
        )?;
        baseline -= BACK_LEADING_PT;
    }
    let instructions_bottom = baseline + BACK_LEADING_PT - 8.0;

    // White panels: the QR's quiet zone, and below it one panel behind all the text
    // (the pattern stays everywhere else, as on the real うら面).
    let text_panel_top = qr_bottom - quiet;
    p.background.push(Item::FilledRects {
        gray: 1.0,
        rects: vec![
            RectPt {
                x_pt: qr_left - quiet,
                y_pt: qr_bottom - quiet,
                width_pt: qr_size + 2.0 * quiet,
                height_pt: qr_size + 2.0 * quiet,
            },
            RectPt {
                x_pt: BACK_TEXT_LEFT_PT - 10.0,
                y_pt: instructions_bottom,
                width_pt: content_width + 20.0,
                height_pt: text_panel_top - instructions_bottom,
            },
        ],
    });
    p.overlay.push(Item::FilledRects {
        gray: 0.0,
        rects: runs,
    });
    Ok(p.finish())
}
