//! The production PDF backend: pdf-writer for the objects, subsetter for the font.
//!
//! Chosen over printpdf on measured figures (see BENCHMARKS.md, "PDF composition"):
//! this writer emits exactly the objects below and nothing else, subsets the 7.8 MB
//! font to the glyphs actually used, and shares every object that repeats.
//!
//! Document structure:
//! - one Type0 / CIDFontType2 font, Identity-H, glyph ids of the subset as CIDs
//!   (CIDToGIDMap /Identity), with a ToUnicode CMap so text extracts;
//! - one shared resource dictionary (font, seal image, ground pattern, multiply state);
//! - one content stream per sheet side, shared by all copies (copies are identical);
//! - one page dictionary per printed page, each carrying /KofuRequestId;
//! - the canonical front data as a stream under the catalog's /KofuFrontData.

use crate::font::{EmbeddedFont, FONT_BYTES};
use crate::layout::{Document, GroundPatternCell, Item, Page, PAGE_HEIGHT_PT, PAGE_WIDTH_PT};
use crate::seal_image::{deflate, deflate_at, SealImage};
use crate::ComposeError;
use pdf_writer::types::{
    BlendMode, CidFontType, ColorSpaceOperand, FontFlags, PaintType, SystemInfo, TilingType,
    UnicodeCmap,
};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use schemas::{PDF_FRONT_DATA_KEY, PDF_PAGE_REQUEST_ID_KEY};
use std::collections::HashMap;
use subsetter::GlyphRemapper;

const FONT_RESOURCE: Name<'static> = Name(b"F1");
const SEAL_RESOURCE: Name<'static> = Name(b"Seal");
const IMPRESSION_RESOURCE: Name<'static> = Name(b"Impression");
const PATTERN_RESOURCE: Name<'static> = Name(b"Ground");
const MULTIPLY_RESOURCE: Name<'static> = Name(b"Mul");

/// Deflating the font subset (≈86 KB of glyph outlines for a six-member household) was
/// most of composition time at the default level 6. Outlines compress poorly at any
/// level: measured on that document with miniz_oxide, level 1 gave 97.2 KB / p50 3.0 ms, level 6
/// 91.0 KB / p50 6.0 ms, level 9 90.9 KB. Level 1 halves the time for 6 KB.
const FONT_DEFLATE_LEVEL: flate2::Compression = flate2::Compression::fast();

/// The ground pattern cell, deflated once per composer.
pub(crate) struct PreparedPattern {
    pub(crate) cell: GroundPatternCell,
    pub(crate) deflated: Vec<u8>,
}

impl PreparedPattern {
    pub(crate) fn new(cell: GroundPatternCell) -> Result<Self, ComposeError> {
        let deflated = deflate(&cell.content)?;
        Ok(Self { cell, deflated })
    }
}

/// Sequential object ids.
struct Refs(i32);

impl Refs {
    fn next(&mut self) -> Ref {
        self.0 += 1;
        Ref::new(self.0)
    }
}

/// Glyphs used so far: original glyph id → subset glyph id (= CID), with the character
/// each CID stands for (for ToUnicode) and its advance (for /W).
struct GlyphSet<'f> {
    font: &'f EmbeddedFont,
    remapper: GlyphRemapper,
    /// By subset glyph id.
    unicode: Vec<Option<char>>,
    widths_1000: Vec<f32>,
    by_char: HashMap<char, u16>,
}

impl<'f> GlyphSet<'f> {
    fn new(font: &'f EmbeddedFont) -> Self {
        // GlyphRemapper::new() already maps .notdef 0 → 0.
        Self {
            font,
            remapper: GlyphRemapper::new(),
            unicode: vec![None],
            widths_1000: vec![0.0],
            by_char: HashMap::new(),
        }
    }

    /// Appends the 2-byte CIDs of `text` to `out`.
    fn encode(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), ComposeError> {
        out.reserve(text.len());
        for c in text.chars() {
            let cid = match self.by_char.get(&c) {
                Some(&cid) => cid,
                None => {
                    // Layout already checked every character; this re-check keeps the
                    // "never an empty glyph box" guarantee local to the writer too.
                    let glyph = self.font.printable_glyph(c)?;
                    let cid = self.remapper.remap(glyph.0);
                    let slot = usize::from(cid);
                    if slot >= self.unicode.len() {
                        self.unicode.resize(slot + 1, None);
                        self.widths_1000.resize(slot + 1, 0.0);
                    }
                    // Two characters may share a glyph (rare in this font); ToUnicode
                    // keeps the first, which is the form the data used first.
                    if self.unicode[slot].is_none() {
                        self.unicode[slot] = Some(c);
                        self.widths_1000[slot] = self.font.advance_1000(glyph);
                    }
                    self.by_char.insert(c, cid);
                    cid
                }
            };
            out.extend_from_slice(&cid.to_be_bytes());
        }
        Ok(())
    }
}

/// Writes one page side's content stream (uncompressed).
fn page_content(page: &Page, glyphs: &mut GlyphSet<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut content = Content::new();
    let mut in_text = false;
    let mut current_font_size = None;
    let mut current_spacing = 0.0f32;
    let mut codes = Vec::new();
    for item in &page.items {
        if in_text && !matches!(item, Item::Text(_)) {
            content.end_text();
            in_text = false;
        }
        match item {
            Item::GroundPattern { area } => {
                content.save_state();
                content.set_fill_color_space(ColorSpaceOperand::Pattern);
                content.set_fill_pattern(None, PATTERN_RESOURCE);
                content.rect(area.x_pt, area.y_pt, area.width_pt, area.height_pt);
                content.fill_nonzero();
                content.restore_state();
            }
            Item::FilledRects { gray, rects } => {
                content.set_fill_gray(*gray);
                for r in rects {
                    content.rect(r.x_pt, r.y_pt, r.width_pt, r.height_pt);
                }
                content.fill_nonzero();
            }
            Item::Lines { width_pt, segments } => {
                content.set_stroke_gray(0.0).set_line_width(*width_pt);
                for s in segments {
                    content.move_to(s.x1_pt, s.y1_pt).line_to(s.x2_pt, s.y2_pt);
                }
                content.stroke();
            }
            Item::Text(run) => {
                if !in_text {
                    content.begin_text();
                    content.set_fill_gray(0.0);
                    in_text = true;
                    // Text state (Tf, Tc) persists across BT/ET, but starting afresh
                    // after a graphics block keeps this writer obviously correct.
                    current_font_size = None;
                    current_spacing = 0.0;
                    content.set_char_spacing(0.0);
                }
                if current_font_size != Some(run.size_pt) {
                    content.set_font(FONT_RESOURCE, run.size_pt);
                    current_font_size = Some(run.size_pt);
                }
                if current_spacing != run.char_spacing_pt {
                    content.set_char_spacing(run.char_spacing_pt);
                    current_spacing = run.char_spacing_pt;
                }
                content.set_text_matrix([1.0, 0.0, 0.0, 1.0, run.x_pt, run.baseline_y_pt]);
                codes.clear();
                glyphs.encode(&run.text, &mut codes)?;
                if run.char_spacing_pt != 0.0 {
                    // Extractors turn letter-spacing into spaces ("住 民 票"); the
                    // ActualText span tells them the word is unspaced.
                    content
                        .begin_marked_content_with_properties(Name(b"Span"))
                        .properties()
                        .actual_text(TextStr(&run.text));
                    content.show(Str(&codes));
                    content.end_marked_content();
                } else {
                    content.show(Str(&codes));
                }
            }
            Item::OfficialSeal { area } => {
                content.save_state();
                content.set_parameters(MULTIPLY_RESOURCE);
                content.transform([
                    area.width_pt,
                    0.0,
                    0.0,
                    area.height_pt,
                    area.x_pt,
                    area.y_pt,
                ]);
                content.x_object(SEAL_RESOURCE);
                content.restore_state();
            }
            Item::SealImpression { area } => {
                // Alone in its framed box: drawn as is (its soft mask keeps the
                // paper showing around the ink).
                content.save_state();
                content.transform([
                    area.width_pt,
                    0.0,
                    0.0,
                    area.height_pt,
                    area.x_pt,
                    area.y_pt,
                ]);
                content.x_object(IMPRESSION_RESOURCE);
                content.restore_state();
            }
        }
    }
    if in_text {
        content.end_text();
    }
    Ok(content.finish().to_vec())
}

/// A subset tag ("ABCDEF+") derived from the glyph set, so different subsets get
/// different names (PDF 32000 §9.9.2) and the same document always the same bytes.
fn subset_tag(cids: &[Option<char>]) -> String {
    // FNV-1a over the characters: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for c in cids.iter().flatten() {
        for b in u32::from(*c).to_le_bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((hash >> (i * 8)) % 26) as u8))
        .collect()
}

pub(crate) fn write_pdf(
    font: &EmbeddedFont,
    pattern: &PreparedPattern,
    doc: &Document,
    seal: Option<&SealImage>,
    front_data: &[u8],
) -> Result<Vec<u8>, ComposeError> {
    let mut glyphs = GlyphSet::new(font);
    // Content of each sheet side, written once and shared by every copy.
    let mut sides = Vec::with_capacity(doc.sheets.len() * 2);
    for sheet in &doc.sheets {
        sides.push(deflate(&page_content(&sheet.front, &mut glyphs)?)?);
        sides.push(deflate(&page_content(&sheet.back, &mut glyphs)?)?);
    }

    let subset = subsetter::subset(FONT_BYTES, 0, &glyphs.remapper)
        .map_err(|e| ComposeError::Pdf(format!("font subsetting failed: {e}")))?;
    let subset_deflated = deflate_at(&subset, FONT_DEFLATE_LEVEL)?;

    let mut refs = Refs(0);
    let catalog_id = refs.next();
    let page_tree_id = refs.next();
    let info_id = refs.next();
    let resources_id = refs.next();
    let type0_id = refs.next();
    let cid_font_id = refs.next();
    let descriptor_id = refs.next();
    let font_file_id = refs.next();
    let to_unicode_id = refs.next();
    let pattern_id = refs.next();
    let multiply_id = refs.next();
    let seal_ids = seal.map(|s| (refs.next(), s.alpha_deflated.as_ref().map(|_| refs.next())));
    let impression = doc.seal_impression.as_ref();
    let impression_ids =
        impression.map(|s| (refs.next(), s.alpha_deflated.as_ref().map(|_| refs.next())));
    let content_ids: Vec<Ref> = sides.iter().map(|_| refs.next()).collect();
    let page_count = doc.page_count() as usize;
    let page_ids: Vec<Ref> = (0..page_count).map(|_| refs.next()).collect();
    let front_data_id = refs.next();

    let mut pdf = Pdf::new();
    let request_id = doc.request_id.as_bytes();
    // Deterministic file identifier: the request id (twice: original and this version).
    pdf.set_file_id((request_id.to_vec(), request_id.to_vec()));
    pdf.catalog(catalog_id)
        .pages(page_tree_id)
        .pair(Name(PDF_FRONT_DATA_KEY.as_bytes()), front_data_id);
    pdf.stream(front_data_id, &deflate(front_data)?)
        .filter(Filter::FlateDecode);
    pdf.pages(page_tree_id)
        .kids(page_ids.iter().copied())
        .count(page_count as i32);
    pdf.document_info(info_id)
        .title(TextStr(&doc.title))
        .producer(TextStr("konbini-kofu composer"));

    // Shared resources.
    {
        let mut resources = pdf
            .indirect(resources_id)
            .start::<pdf_writer::writers::Resources>();
        resources.fonts().pair(FONT_RESOURCE, type0_id);
        resources.patterns().pair(PATTERN_RESOURCE, pattern_id);
        resources
            .ext_g_states()
            .pair(MULTIPLY_RESOURCE, multiply_id);
        if seal_ids.is_some() || impression_ids.is_some() {
            let mut x_objects = resources.x_objects();
            if let Some((image_id, _)) = seal_ids {
                x_objects.pair(SEAL_RESOURCE, image_id);
            }
            if let Some((image_id, _)) = impression_ids {
                x_objects.pair(IMPRESSION_RESOURCE, image_id);
            }
        }
    }

    // Font.
    let base_font = format!("{}+{}", subset_tag(&glyphs.unicode), font.postscript_name());
    let base_font = Name(base_font.as_bytes());
    pdf.type0_font(type0_id)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font_id)
        .to_unicode(to_unicode_id);
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    {
        let mut cid = pdf.cid_font(cid_font_id);
        cid.subtype(CidFontType::Type2)
            .base_font(base_font)
            .system_info(system_info)
            .font_descriptor(descriptor_id)
            .default_width(1000.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid.widths()
            .consecutive(0, glyphs.widths_1000.iter().copied());
    }
    let [x0, y0, x1, y1] = font.bbox_1000;
    pdf.font_descriptor(descriptor_id)
        .name(base_font)
        .flags(FontFlags::SERIF | FontFlags::SYMBOLIC)
        .bbox(Rect::new(x0, y0, x1, y1))
        .italic_angle(0.0)
        .ascent(font.ascent_1000)
        .descent(font.descent_1000)
        .cap_height(font.cap_height_1000)
        .stem_v(80.0)
        .font_file2(font_file_id);
    pdf.stream(font_file_id, &subset_deflated)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);
    let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
    for (cid, c) in glyphs.unicode.iter().enumerate() {
        if let Some(c) = c {
            // Bounded by the u16 remapper.
            cmap.pair(cid as u16, *c);
        }
    }
    let cmap = cmap.finish();
    pdf.cmap(to_unicode_id, &cmap);

    // Ground pattern: one small cell, tiled by the viewer/printer.
    {
        let cell = &pattern.cell;
        let mut tiling = pdf.tiling_pattern(pattern_id, &pattern.deflated);
        tiling.filter(Filter::FlateDecode);
        tiling
            .paint_type(PaintType::Colored)
            .tiling_type(TilingType::ConstantSpacing)
            .bbox(Rect::new(0.0, 0.0, cell.width_pt, cell.height_pt))
            .x_step(cell.width_pt)
            .y_step(cell.height_pt);
        // Required entry; the cell uses no named resources.
        tiling.resources();
    }
    pdf.ext_graphics(multiply_id)
        .blend_mode(BlendMode::Multiply);

    // Seal images (+ soft masks for their transparent ground).
    if let (Some(seal), Some(ids)) = (seal, seal_ids) {
        write_image(&mut pdf, seal, ids);
    }
    if let (Some(impression), Some(ids)) = (impression, impression_ids) {
        write_image(&mut pdf, impression, ids);
    }

    for (id, data) in content_ids.iter().zip(&sides) {
        pdf.stream(*id, data).filter(Filter::FlateDecode);
    }

    // Pages: for each copy, each sheet's front then back (duplex order).
    let sides_per_copy = sides.len();
    for (index, page_id) in page_ids.iter().enumerate() {
        let side = index % sides_per_copy;
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH_PT, PAGE_HEIGHT_PT))
            .parent(page_tree_id)
            .contents(content_ids[side]);
        page.pair(Name(b"Resources"), resources_id);
        page.pair(Name(PDF_PAGE_REQUEST_ID_KEY.as_bytes()), Str(request_id));
    }

    Ok(pdf.finish())
}

/// An RGB image XObject and, when the image has transparency, its soft mask.
fn write_image(pdf: &mut Pdf, image: &SealImage, (image_id, mask_id): (Ref, Option<Ref>)) {
    let mut xobject = pdf.image_xobject(image_id, &image.rgb_deflated);
    xobject.filter(Filter::FlateDecode);
    xobject
        .width(image.width_px() as i32)
        .height(image.height_px() as i32)
        .bits_per_component(8)
        .interpolate(true);
    xobject.color_space().device_rgb();
    if let Some(mask_id) = mask_id {
        xobject.s_mask(mask_id);
    }
    xobject.finish();
    if let (Some(mask_id), Some(alpha)) = (mask_id, image.alpha_deflated.as_ref()) {
        let mut mask = pdf.image_xobject(mask_id, alpha);
        mask.filter(Filter::FlateDecode);
        mask.width(image.width_px() as i32)
            .height(image.height_px() as i32)
            .bits_per_component(8)
            .interpolate(true);
        mask.color_space().device_gray();
    }
}
