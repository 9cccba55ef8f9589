//! The certificate font: IPAex Mincho, embedded in the binary so a fresh clone and a
//! fresh container need no system font, parsed once per [`crate::Composer`].
//!
//! Everything that decides whether a character can be printed lives here, so the
//! check before composing and the glyph lookup while composing can never disagree.

use crate::ComposeError;
use ttf_parser::{Face, GlyphId, OutlineBuilder};

/// IPAex Mincho 00401 (IPA Font License v1.0, see assets/fonts/). Vendored unmodified;
/// only a subset of it ever goes into a PDF.
pub(crate) static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/ipaexm.ttf");

/// PDF glyph space: widths and font metrics are given per 1000 units of text space.
const PDF_GLYPH_UNITS: f32 = 1000.0;

/// The parsed face plus the few metrics the PDF font descriptor needs.
pub(crate) struct EmbeddedFont {
    face: Face<'static>,
    /// Raw glyf/loca, for an O(1) "does this glyph have ink" check (see [`Self::has_ink`]).
    glyf: Option<GlyfIndex>,
    units_per_em: f32,
    postscript_name: String,
    /// Font-wide metrics in PDF glyph units (1/1000 em).
    pub(crate) ascent_1000: f32,
    pub(crate) descent_1000: f32,
    pub(crate) cap_height_1000: f32,
    pub(crate) bbox_1000: [f32; 4],
}

/// Code points refused even if a font were to map them: they change how a neighbour
/// looks (variation selectors pick an IVS glyph we cannot reproduce), carry no visible
/// form (controls, zero-width and bidi marks), mean nothing standard (private use:
/// a municipality's 外字 would print as whatever the font happens to hold there), or
/// signal corrupted data (U+FFFD and the other specials).
fn is_refused_code_point(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0xFE00..=0xFE0F            // variation selectors 1-16
            | 0xE0100..=0xE01EF        // variation selectors 17-256 (IVS)
            | 0x180B..=0x180F          // Mongolian free variation selectors
            | 0x200B..=0x200F          // zero-width space/joiners, LRM/RLM
            | 0x2028..=0x202E          // separators, bidi embeddings
            | 0x2060..=0x206F          // word joiner, invisible operators, bidi isolates
            | 0xFEFF                   // BOM / zero-width no-break space
            | 0xFFF0..=0xFFFF          // specials incl. U+FFFD
            | 0xE000..=0xF8FF          // private use area
            | 0xF0000..=0x10FFFF       // supplementary private use areas
            | 0xE0000..=0xE007F        // tags
        )
}

impl EmbeddedFont {
    pub(crate) fn load() -> Result<Self, ComposeError> {
        let face = Face::parse(FONT_BYTES, 0)
            .map_err(|e| ComposeError::Font(format!("embedded font does not parse: {e}")))?;
        let units_per_em = f32::from(face.units_per_em());
        if units_per_em <= 0.0 {
            return Err(ComposeError::Font(
                "embedded font has no units per em".into(),
            ));
        }
        let postscript_name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            // PDF names may not contain spaces or delimiters; keep only safe characters.
            .map(|n| {
                n.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "IPAexMincho".to_owned());
        let scale = PDF_GLYPH_UNITS / units_per_em;
        let bbox = face.global_bounding_box();
        let ascent_1000 = f32::from(face.ascender()) * scale;
        let glyf = GlyfIndex::new(&face);
        Ok(Self {
            glyf,
            units_per_em,
            postscript_name,
            ascent_1000,
            descent_1000: f32::from(face.descender()) * scale,
            cap_height_1000: face
                .capital_height()
                .map_or(ascent_1000, |h| f32::from(h) * scale),
            bbox_1000: [
                f32::from(bbox.x_min) * scale,
                f32::from(bbox.y_min) * scale,
                f32::from(bbox.x_max) * scale,
                f32::from(bbox.y_max) * scale,
            ],
            face,
        })
    }

    pub(crate) fn postscript_name(&self) -> &str {
        &self.postscript_name
    }

    /// The glyph that prints `c`, or why it cannot be printed.
    ///
    /// A character is printable only when it is not a refused code point, the cmap maps
    /// it to a real glyph (not .notdef), and that glyph has ink unless the character is
    /// whitespace: an empty non-space glyph would print as a blank where a character of
    /// a name should be.
    pub(crate) fn printable_glyph(&self, c: char) -> Result<GlyphId, ComposeError> {
        let unprintable = || ComposeError::UnprintableCharacter {
            character: c,
            codepoint: u32::from(c),
        };
        if is_refused_code_point(c) {
            return Err(unprintable());
        }
        let glyph = self.face.glyph_index(c).ok_or_else(unprintable)?;
        if glyph.0 == 0 {
            return Err(unprintable());
        }
        if !c.is_whitespace() && !self.has_ink(glyph) {
            return Err(unprintable());
        }
        Ok(glyph)
    }

    /// Whether the glyph draws anything. Reads the glyph's loca entry and contour count
    /// instead of outlining it: this runs for every character of every document, and
    /// outlining was a sixth of composition time.
    fn has_ink(&self, glyph: GlyphId) -> bool {
        match &self.glyf {
            Some(index) => index.has_ink(glyph),
            None => self.face.glyph_bounding_box(glyph).is_some(),
        }
    }

    pub(crate) fn check_printable(&self, text: &str) -> Result<(), ComposeError> {
        text.chars()
            .try_for_each(|c| self.printable_glyph(c).map(drop))
    }

    /// Horizontal advance of `glyph` in PDF glyph units (1/1000 em).
    pub(crate) fn advance_1000(&self, glyph: GlyphId) -> f32 {
        // Every glyph of a well-formed hmtx has an advance; a full-width em is the
        // conservative guess for one that does not (it can only make text measure wider).
        self.face
            .glyph_hor_advance(glyph)
            .map_or(PDF_GLYPH_UNITS, |a| {
                f32::from(a) * PDF_GLYPH_UNITS / self.units_per_em
            })
    }

    /// Width of `text` set at `size_pt` with `char_spacing_pt` after every glyph (as
    /// the PDF `Tc` operator does), or the first character that cannot be printed.
    pub(crate) fn text_width_pt(
        &self,
        text: &str,
        size_pt: f32,
        char_spacing_pt: f32,
    ) -> Result<f32, ComposeError> {
        let mut width_1000 = 0.0;
        let mut glyph_count = 0u32;
        for c in text.chars() {
            width_1000 += self.advance_1000(self.printable_glyph(c)?);
            glyph_count += 1;
        }
        Ok(width_1000 * size_pt / PDF_GLYPH_UNITS + char_spacing_pt * glyph_count as f32)
    }

    /// Appends the outline of `c` as PDF path operators (filled by the caller), with
    /// the glyph origin at (`x_pt`, `y_pt`). Used for the ground pattern, where the
    /// word 複写 is artwork, not text: drawing it as text would make every PDF text
    /// extraction start with hundreds of 複写.
    pub(crate) fn append_glyph_path(
        &self,
        c: char,
        size_pt: f32,
        x_pt: f32,
        y_pt: f32,
        content: &mut pdf_writer::Content,
    ) -> Result<(), ComposeError> {
        let glyph = self.printable_glyph(c)?;
        let mut sink = PathSink {
            content,
            scale: size_pt / self.units_per_em,
            x_pt,
            y_pt,
            current: (0.0, 0.0),
        };
        self.face.outline_glyph(glyph, &mut sink);
        Ok(())
    }
}

/// The raw `loca` and `glyf` tables of a TrueType-outline font.
struct GlyfIndex {
    loca: &'static [u8],
    glyf: &'static [u8],
    long_offsets: bool,
}

impl GlyfIndex {
    fn new(face: &Face<'static>) -> Option<Self> {
        let raw = face.raw_face();
        Some(Self {
            loca: raw.table(ttf_parser::Tag::from_bytes(b"loca"))?,
            glyf: raw.table(ttf_parser::Tag::from_bytes(b"glyf"))?,
            long_offsets: face.tables().head.index_to_location_format
                == ttf_parser::head::IndexToLocationFormat::Long,
        })
    }

    fn offset(&self, index: usize) -> Option<usize> {
        if self.long_offsets {
            let b = self.loca.get(index * 4..index * 4 + 4)?;
            usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
        } else {
            // Short offsets are stored halved.
            let b = self.loca.get(index * 2..index * 2 + 2)?;
            Some(usize::from(u16::from_be_bytes([b[0], b[1]])) * 2)
        }
    }

    /// An empty glyf entry or zero contours is a blank glyph; a malformed entry counts
    /// as blank too (refusing is the safe side). Composite glyphs (negative count) have
    /// ink through their components.
    fn has_ink(&self, glyph: GlyphId) -> bool {
        let index = usize::from(glyph.0);
        let (Some(start), Some(end)) = (self.offset(index), self.offset(index + 1)) else {
            return false;
        };
        if end <= start + 2 || end > self.glyf.len() {
            return false;
        }
        i16::from_be_bytes([self.glyf[start], self.glyf[start + 1]]) != 0
    }
}

/// Converts font-unit outlines into PDF path operators. PDF has no quadratic curves,
/// so TrueType quadratics become the exactly equivalent cubics.
struct PathSink<'a> {
    content: &'a mut pdf_writer::Content,
    scale: f32,
    x_pt: f32,
    y_pt: f32,
    /// Current point in font units (needed to elevate quadratics).
    current: (f32, f32),
}

impl PathSink<'_> {
    fn map(&self, x: f32, y: f32) -> (f32, f32) {
        (self.x_pt + x * self.scale, self.y_pt + y * self.scale)
    }
}

impl OutlineBuilder for PathSink<'_> {
    fn move_to(&mut self, x: f32, y: f32) {
        let (px, py) = self.map(x, y);
        self.content.move_to(px, py);
        self.current = (x, y);
    }

    fn line_to(&mut self, x: f32, y: f32) {
        let (px, py) = self.map(x, y);
        self.content.line_to(px, py);
        self.current = (x, y);
    }

    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (x0, y0) = self.current;
        let c1 = (x0 + 2.0 / 3.0 * (x1 - x0), y0 + 2.0 / 3.0 * (y1 - y0));
        let c2 = (x + 2.0 / 3.0 * (x1 - x), y + 2.0 / 3.0 * (y1 - y));
        let (a, b) = self.map(c1.0, c1.1);
        let (c, d) = self.map(c2.0, c2.1);
        let (e, f) = self.map(x, y);
        self.content.cubic_to(a, b, c, d, e, f);
        self.current = (x, y);
    }

    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let (a, b) = self.map(x1, y1);
        let (c, d) = self.map(x2, y2);
        let (e, f) = self.map(x, y);
        self.content.cubic_to(a, b, c, d, e, f);
        self.current = (x, y);
    }

    fn close(&mut self) {
        self.content.close_path();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The O(1) loca check must agree with outlining for every mapped character.
    #[test]
    fn loca_ink_check_agrees_with_outlines() {
        let font = EmbeddedFont::load().unwrap();
        let mut checked = 0;
        for subtable in font.face.tables().cmap.unwrap().subtables {
            if !subtable.is_unicode() {
                continue;
            }
            subtable.codepoints(|cp| {
                let Some(glyph) = subtable.glyph_index(cp) else {
                    return;
                };
                assert_eq!(
                    font.has_ink(glyph),
                    font.face.glyph_bounding_box(glyph).is_some(),
                    "U+{cp:04X}"
                );
                checked += 1;
            });
        }
        assert!(checked > 10_000, "only {checked} code points checked");
    }

    #[test]
    fn blank_and_missing_glyphs_are_unprintable() {
        let font = EmbeddedFont::load().unwrap();
        assert!(font.printable_glyph(' ').is_ok());
        assert!(font.printable_glyph('\u{3000}').is_ok());
        assert!(font.printable_glyph('𠮷').is_err());
        assert!(font.printable_glyph('\u{E0100}').is_err());
    }
}
