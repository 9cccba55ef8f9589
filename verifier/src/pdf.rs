//! Seals, page order and front data read from the certificate's PDF.
//!
//! The composer prints, for each copy, each sheet's front page followed by its back
//! page; every back page carries one seal drawn as filled rectangles (one per run of
//! dark modules). The seal is read from what is *drawn*: the dark rectangles of each
//! page's content stream are painted onto a small bitmap and handed to the same QR
//! reader as a scan, so a PDF whose drawing was altered is judged by its drawing. Then:
//!
//! - every back page has exactly one readable seal, no front page has one (`no_seal`,
//!   `page_mismatch`);
//! - all seals name one document, and sheet k of each copy carries page k of n
//!   (`page_mismatch`: a page from another certificate, pages reordered or missing);
//! - every page's `/KofuRequestId` is that document's serial (`page_mismatch`);
//! - the catalog's `/KofuFrontData` hashes to the signed front digest
//!   (`front_digest_mismatch`);
//! - the first front page of every copy shows the signed name (`front_text_mismatch`).
//!
//! Hostile input is bounded: the file size, the page count, every stream's inflated
//! size (checked before lopdf inflates anything itself), the operators per page and
//! the bitmap's size. lopdf has panicked on malformed input before, so parsing runs
//! under `catch_unwind`.

use std::io::Read as _;

use lopdf::content::Content;
use lopdf::{Document, Object, ObjectId};
use schemas::{
    sha256, PublicKey, RequestId, SealPayload, SignedTrustList, PDF_FRONT_DATA_KEY,
    PDF_PAGE_REQUEST_ID_KEY,
};

use crate::document::{
    check_one_document, pdf_answer, pdf_failed, DocumentVerification, SealCheck,
};
use crate::{verify_seal, Reason, Verdict};

/// Pages we read (the composer refuses documents beyond a few hundred pages).
pub const MAX_PDF_PAGES: usize = 1_000;
/// Inflated size of one stream, and of all streams together (zip-bomb guard).
const MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;
const MAX_TOTAL_INFLATED_BYTES: usize = 256 * 1024 * 1024;
/// Operators interpreted per page, and rectangles painted.
pub(crate) const MAX_OPERATIONS_PER_PAGE: usize = 500_000;
pub(crate) const MAX_RECTS_PER_PAGE: usize = 100_000;
/// Bitmap resolution for the drawn QR: the composer's modules are 2–3 pt wide, so
/// 4 px per pt gives the reader 8–12 px per module.
const RASTER_PX_PER_PT: f32 = 4.0;
/// White margin around the dark area (QR quiet zone).
const RASTER_MARGIN_PT: f32 = 16.0;
const MAX_RASTER_EDGE_PX: usize = 4_000;
/// Fill grey below which a rectangle counts as dark ink.
pub(crate) const DARK_GRAY: f32 = 0.5;

pub(crate) fn verify_pdf(
    bytes: &[u8],
    list: &SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> DocumentVerification {
    let document = match parse(bytes) {
        Ok(document) => document,
        Err(detail) => return pdf_failed(Reason::Unreadable, detail),
    };
    let pages: Vec<(u32, ObjectId)> = document.get_pages().into_iter().collect();
    if pages.is_empty() || pages.len() > MAX_PDF_PAGES {
        return pdf_failed(
            Reason::Unreadable,
            format!(
                "a certificate PDF has 2 to {MAX_PDF_PAGES} pages, this one {}",
                pages.len()
            ),
        );
    }
    let page_count = u32::try_from(pages.len()).unwrap_or(u32::MAX);

    // Read every page's drawn seals (front pages should have none).
    let mut seals_by_page: Vec<Vec<String>> = Vec::with_capacity(pages.len());
    for &(number, id) in &pages {
        match drawn_qr_texts(&document, id) {
            Ok(texts) => seals_by_page.push(texts),
            Err(detail) => {
                return pdf_failed(Reason::Unreadable, format!("page {number}: {detail}"))
            }
        }
    }
    let seals: Vec<SealCheck> = pages
        .iter()
        .zip(&seals_by_page)
        .flat_map(|(&(number, _), texts)| texts.iter().map(move |text| (number, text)))
        .map(|(number, text)| SealCheck {
            pdf_page: Some(number),
            verification: verify_seal(text.trim(), list, center_key, now_unix_s),
        })
        .collect();
    let sheets = pages.len() / 2;
    let mut answer = pdf_answer(seals, page_count, None);
    // Layout: front, back, front, back, …; one seal on each back page only.
    if pages.len() % 2 != 0 {
        answer.downgrade(
            Reason::PageMismatch,
            format!(
                "{} pages: a certificate has a front and a back for every sheet",
                pages.len()
            ),
        );
    }
    for (index, texts) in seals_by_page.iter().enumerate() {
        let number = index + 1;
        let is_back = index % 2 == 1;
        match (is_back, texts.len()) {
            (true, 0) => answer.downgrade(
                Reason::NoSeal,
                format!("page {number} (a back side) carries no readable seal"),
            ),
            (true, 1) | (false, 0) => {}
            (true, _) => answer.downgrade(
                Reason::PageMismatch,
                format!("page {number} carries {} seals", texts.len()),
            ),
            (false, _) => answer.downgrade(
                Reason::PageMismatch,
                format!("page {number} is a front side but carries a seal"),
            ),
        }
    }
    check_one_document(&mut answer);

    // From here on the seals that verified tell what the document must be.
    let Some(first) = check_binding(&document, &pages, sheets, &mut answer) else {
        return answer;
    };
    let n = usize::from(first.page_count);

    // The name the seal signed must be printed on the first front page of each copy.
    let wanted = without_whitespace(&first.name);
    for copy_start in (0..sheets).step_by(n.max(1)) {
        let Some(&(number, _)) = pages.get(2 * copy_start) else {
            break;
        };
        let text = pages
            .get(2 * copy_start)
            .map(|&(_, id)| {
                page_content(&document, id)
                    .and_then(|content| {
                        crate::pdf_text::page_text(&document, id, &content, inflated)
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        if !without_whitespace(&text).contains(&wanted) {
            answer.downgrade(
                Reason::FrontTextMismatch,
                format!("page {number} does not show the signed name"),
            );
            break;
        }
    }
    answer
}

fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Parses the PDF and checks that no stream inflates beyond the bounds, so that lopdf's
/// own inflating later (content, text extraction) is bounded too.
fn parse(bytes: &[u8]) -> Result<Document, String> {
    let document = match std::panic::catch_unwind(|| Document::load_mem(bytes)) {
        Ok(Ok(document)) => document,
        Ok(Err(error)) => return Err(format!("not a readable PDF: {error}")),
        Err(_) => return Err("the PDF parser gave up on this input".into()),
    };
    let mut total = 0usize;
    for object in document.objects.values() {
        if let Object::Stream(stream) = object {
            total = total.saturating_add(inflated(stream)?.len());
            if total > MAX_TOTAL_INFLATED_BYTES {
                return Err("the PDF is too large once decompressed".into());
            }
        }
    }
    Ok(document)
}

/// A stream's content, inflated when it is FlateDecode (the only filter the composer
/// writes), never beyond [`MAX_STREAM_BYTES`].
pub(crate) fn inflated(stream: &lopdf::Stream) -> Result<Vec<u8>, String> {
    let filters = stream.filters().unwrap_or_default();
    match filters.as_slice() {
        [] => {
            if stream.content.len() > MAX_STREAM_BYTES {
                return Err("a stream is too large".into());
            }
            Ok(stream.content.clone())
        }
        [b"FlateDecode"] => {
            let mut out = Vec::new();
            let limit = u64::try_from(MAX_STREAM_BYTES).unwrap_or(u64::MAX) + 1;
            flate2::read::ZlibDecoder::new(stream.content.as_slice())
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("a stream does not inflate: {e}"))?;
            if out.len() > MAX_STREAM_BYTES {
                return Err("a stream is too large once decompressed".into());
            }
            Ok(out)
        }
        // Images and fonts may use other filters in a PDF that is not ours; they are
        // not read here, and their size is bounded by the file's.
        _ => Ok(Vec::new()),
    }
}

pub(crate) fn front_data(document: &Document) -> Result<Vec<u8>, String> {
    let missing = || {
        format!("the PDF carries no /{PDF_FRONT_DATA_KEY}: its front cannot be checked against the seal")
    };
    let catalog = document.catalog().map_err(|_| missing())?;
    let value = catalog
        .get(PDF_FRONT_DATA_KEY.as_bytes())
        .map_err(|_| missing())?;
    let (_, value) = document.dereference(value).map_err(|_| missing())?;
    match value {
        Object::Stream(stream) => inflated(stream),
        _ => Err(missing()),
    }
}

pub(crate) fn page_request_id(document: &Document, page: ObjectId) -> Option<RequestId> {
    let dictionary = document.get_dictionary(page).ok()?;
    let value = dictionary.get(PDF_PAGE_REQUEST_ID_KEY.as_bytes()).ok()?;
    let (_, value) = document.dereference(value).ok()?;
    if !matches!(value, Object::String(..)) {
        return None;
    }
    lopdf::decode_text_string(value).ok()?.parse().ok()
}

/// The page's content streams, concatenated and inflated within bounds.
pub(crate) fn page_content(document: &Document, page: ObjectId) -> Result<Vec<u8>, String> {
    let dictionary = document
        .get_dictionary(page)
        .map_err(|e| format!("unreadable page: {e}"))?;
    let Ok(contents) = dictionary.get(b"Contents") else {
        return Ok(Vec::new());
    };
    let (_, contents) = document
        .dereference(contents)
        .map_err(|e| format!("unreadable contents: {e}"))?;
    let references: Vec<&Object> = match contents {
        Object::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for reference in references.into_iter().take(64) {
        let (_, object) = document
            .dereference(reference)
            .map_err(|e| format!("unreadable contents: {e}"))?;
        if let Object::Stream(stream) = object {
            out.extend(inflated(stream)?);
            out.push(b'\n');
            if out.len() > MAX_STREAM_BYTES {
                return Err("page content too large".into());
            }
        }
    }
    Ok(out)
}

/// An axis-aligned rectangle in page space (points), with its fill grey.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rect {
    pub(crate) x0: f32,
    pub(crate) y0: f32,
    pub(crate) x1: f32,
    pub(crate) y1: f32,
    pub(crate) gray: f32,
}

#[derive(Clone, Copy)]
struct GraphicsState {
    /// `None` while the fill is a pattern or a colour we do not model.
    fill_gray: Option<f32>,
    ctm: [f32; 6],
}

pub(crate) fn multiply(m: [f32; 6], n: [f32; 6]) -> [f32; 6] {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

fn numbers<const N: usize>(operands: &[Object]) -> Option<[f32; N]> {
    if operands.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (slot, operand) in out.iter_mut().zip(operands) {
        *slot = operand.as_float().ok()?;
    }
    out.iter().all(|v| v.is_finite()).then_some(out)
}

/// The filled rectangles of a page, in drawing order (what a QR is drawn with).
pub(crate) fn filled_rects(content: &[u8]) -> Result<Vec<Rect>, String> {
    let content = Content::decode(content).map_err(|e| format!("unreadable content: {e}"))?;
    if content.operations.len() > MAX_OPERATIONS_PER_PAGE {
        return Err("too many drawing operations".into());
    }
    let mut state = GraphicsState {
        fill_gray: Some(0.0),
        ctm: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
    let mut stack = Vec::new();
    let mut path: Vec<Rect> = Vec::new();
    let mut rects = Vec::new();
    for operation in &content.operations {
        let operands = operation.operands.as_slice();
        match operation.operator.as_str() {
            "q" if stack.len() < 64 => stack.push(state),
            "Q" => state = stack.pop().unwrap_or(state),
            "cm" => {
                if let Some(m) = numbers::<6>(operands) {
                    state.ctm = multiply(m, state.ctm);
                }
            }
            "g" => state.fill_gray = numbers::<1>(operands).map(|[g]| g),
            "rg" => {
                state.fill_gray =
                    numbers::<3>(operands).map(|[r, g, b]| 0.299 * r + 0.587 * g + 0.114 * b)
            }
            "k" => {
                state.fill_gray =
                    numbers::<4>(operands).map(|[c, m, y, k]| 1.0 - (c.max(m).max(y) + k).min(1.0))
            }
            "cs" | "sc" | "scn" => state.fill_gray = None,
            "re" => {
                if let Some([x, y, w, h]) = numbers::<4>(operands) {
                    let m = state.ctm;
                    let corners = [(x, y), (x + w, y + h)].map(|(px, py)| {
                        (m[0] * px + m[2] * py + m[4], m[1] * px + m[3] * py + m[5])
                    });
                    path.push(Rect {
                        x0: corners[0].0.min(corners[1].0),
                        y0: corners[0].1.min(corners[1].1),
                        x1: corners[0].0.max(corners[1].0),
                        y1: corners[0].1.max(corners[1].1),
                        gray: 0.0,
                    });
                }
            }
            "f" | "F" | "f*" | "B" | "B*" | "b" | "b*" => {
                if let Some(gray) = state.fill_gray {
                    rects.extend(path.drain(..).map(|r| Rect { gray, ..r }));
                    if rects.len() > MAX_RECTS_PER_PAGE {
                        return Err("too many filled rectangles".into());
                    }
                }
                path.clear();
            }
            "n" | "S" | "s" => path.clear(),
            _ => {}
        }
    }
    Ok(rects)
}

/// Paints the page's filled rectangles around its dark ones onto a bitmap and reads
/// every QR code in it.
fn drawn_qr_texts(document: &Document, page: ObjectId) -> Result<Vec<String>, String> {
    let rects = filled_rects(&page_content(document, page)?)?;
    let dark: Vec<&Rect> = rects.iter().filter(|r| r.gray < DARK_GRAY).collect();
    if dark.is_empty() {
        return Ok(Vec::new());
    }
    let left = dark.iter().map(|r| r.x0).fold(f32::MAX, f32::min) - RASTER_MARGIN_PT;
    let bottom = dark.iter().map(|r| r.y0).fold(f32::MAX, f32::min) - RASTER_MARGIN_PT;
    let right = dark.iter().map(|r| r.x1).fold(f32::MIN, f32::max) + RASTER_MARGIN_PT;
    let top = dark.iter().map(|r| r.y1).fold(f32::MIN, f32::max) + RASTER_MARGIN_PT;
    let to_px = |pt: f32| (pt * RASTER_PX_PER_PT).round().max(0.0) as usize;
    let (width, height) = (to_px(right - left), to_px(top - bottom));
    if width == 0 || height == 0 || width > MAX_RASTER_EDGE_PX || height > MAX_RASTER_EDGE_PX {
        // Dark areas this large are not a seal (a filled page, a border).
        return Ok(Vec::new());
    }
    let mut pixels = vec![255u8; width * height];
    for rect in &rects {
        let x0 = to_px(rect.x0 - left).min(width);
        let x1 = to_px(rect.x1 - left).min(width);
        // Bitmap rows run top-down; page y runs bottom-up.
        let y0 = to_px(top - rect.y1).min(height);
        let y1 = to_px(top - rect.y0).min(height);
        let value = (rect.gray.clamp(0.0, 1.0) * 255.0) as u8;
        for row in pixels[y0 * width..y1 * width].chunks_exact_mut(width) {
            row[x0..x1].fill(value);
        }
    }
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    Ok(prepared
        .detect_grids()
        .into_iter()
        .take(4)
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect())
}

/// The binding checks once the seals are read (the full and the fast check share them):
/// a whole number of copies, seal k on sheet k's back page with page k of n, every
/// page's request id the seals' serial, and the carried front data what they signed.
/// Returns the fields the seals agree on, or `None` (answer downgraded) when none
/// verified.
pub(crate) fn check_binding(
    document: &Document,
    pages: &[(u32, ObjectId)],
    sheets: usize,
    answer: &mut DocumentVerification,
) -> Option<SealPayload> {
    let Some(first) = answer.fields().cloned() else {
        if answer.verdict == Verdict::Valid {
            answer.downgrade(Reason::NoSeal, "no seal in the document verified");
        }
        return None;
    };
    let n = usize::from(first.page_count);
    if n == 0 || sheets == 0 || sheets % n != 0 {
        answer.downgrade(
            Reason::PageMismatch,
            format!("{sheets} sheets is not a whole number of copies of a {n}-page document"),
        );
    } else {
        answer.copies = u32::try_from(sheets / n).ok();
    }
    // Seal k is sheet k's (every back page has one unless already downgraded).
    for (sheet, check) in answer.seals.clone().iter().enumerate() {
        let Some(fields) = &check.verification.fields else {
            continue;
        };
        let expected_page = sheet % n.max(1) + 1;
        if usize::from(fields.page) != expected_page
            || check.pdf_page != u32::try_from(2 * sheet + 2).ok()
        {
            answer.downgrade(
                Reason::PageMismatch,
                format!(
                    "PDF page {} carries page {}/{} of the document where page {expected_page}/{n} belongs",
                    check.pdf_page.unwrap_or(0),
                    fields.page,
                    fields.page_count
                ),
            );
            break;
        }
    }
    for &(number, id) in pages {
        match page_request_id(document, id) {
            Some(found) if found == first.serial => {}
            found => {
                answer.downgrade(
                    Reason::PageMismatch,
                    format!(
                        "page {number} belongs to request {}, the seal to {}",
                        found.map_or_else(|| "(none)".to_string(), |id| id.to_string()),
                        first.serial
                    ),
                );
                break;
            }
        }
    }
    match front_data(document) {
        Ok(data) if sha256(&data) == first.front_digest => {}
        Ok(_) => answer.downgrade(
            Reason::FrontDigestMismatch,
            "the front data in the PDF is not what the seal signed",
        ),
        Err(detail) => answer.downgrade(Reason::FrontDigestMismatch, detail),
    }
    Some(first)
}
