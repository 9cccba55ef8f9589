//! The mayor's official seal (公印): decoding the image a municipality registers, and
//! generating a plausible one for the sandbox.

use crate::font::EmbeddedFont;
use crate::ComposeError;
use ab_glyph::{Font, FontRef, PxScale};
use std::io::Write;

/// Largest accepted seal image edge. A seal is printed about 22 mm wide; 1,024 px is
/// over 1,100 dpi, so anything larger is a mistake (or a decompression bomb).
pub const MAX_SEAL_EDGE_PX: u32 = 1024;
/// Largest accepted PNG file.
pub const MAX_SEAL_PNG_BYTES: usize = 4 * 1024 * 1024;
/// Bounds for [`render_official_seal_png`].
pub const MIN_RENDERED_SEAL_PX: u32 = 32;
/// At most this many characters are laid in a seal's grid.
pub const MAX_SEAL_TEXT_CHARS: usize = 16;

/// Vermilion seal ink (朱肉), sRGB.
const SEAL_INK_RGB: [u8; 3] = [206, 32, 41];

/// A seal image decoded once (when the municipality registers it) and kept ready to
/// embed: 8-bit RGB and alpha planes, both already deflated for the PDF, so composing a
/// document only copies bytes.
#[derive(Clone)]
pub struct SealImage {
    width_px: u32,
    height_px: u32,
    rgb: Vec<u8>,
    /// `None` when the image is fully opaque.
    alpha: Option<Vec<u8>>,
    pub(crate) rgb_deflated: Vec<u8>,
    pub(crate) alpha_deflated: Option<Vec<u8>>,
}

impl std::fmt::Debug for SealImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealImage")
            .field("width_px", &self.width_px)
            .field("height_px", &self.height_px)
            .field("has_alpha", &self.alpha.is_some())
            .finish()
    }
}

/// Page contents, the front data and images. Level 2 rather than the default 6: in the
/// composition benchmark (zlib-rs, one run) 1361 documents/s at a mean 97 KB against
/// 1102/s at 94 KB; the content streams are most of the bytes deflated per document.
const CONTENT_DEFLATE_LEVEL: flate2::Compression = flate2::Compression::new(2);

pub(crate) fn deflate(data: &[u8]) -> Result<Vec<u8>, ComposeError> {
    deflate_at(data, CONTENT_DEFLATE_LEVEL)
}

/// zlib stream (what PDF's FlateDecode expects) at an explicit level.
pub(crate) fn deflate_at(data: &[u8], level: flate2::Compression) -> Result<Vec<u8>, ComposeError> {
    let mut encoder =
        flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| ComposeError::Pdf(format!("deflate: {e}")))
}

impl SealImage {
    /// Decodes a PNG (any bit depth and colour type; palette and 16-bit are reduced to
    /// 8-bit RGB(A)). Refuses images larger than [`MAX_SEAL_EDGE_PX`] before decoding.
    pub fn from_png(bytes: &[u8]) -> Result<Self, ComposeError> {
        if bytes.len() > MAX_SEAL_PNG_BYTES {
            return Err(ComposeError::InvalidImage(format!(
                "PNG is {} bytes; at most {MAX_SEAL_PNG_BYTES} accepted",
                bytes.len()
            )));
        }
        let mut decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(bytes),
            png::Limits {
                bytes: (MAX_SEAL_EDGE_PX as usize).pow(2) * 8,
            },
        );
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder
            .read_info()
            .map_err(|e| ComposeError::InvalidImage(format!("PNG header: {e}")))?;
        let (width_px, height_px) = {
            let info = reader.info();
            (info.width, info.height)
        };
        if width_px == 0
            || height_px == 0
            || width_px > MAX_SEAL_EDGE_PX
            || height_px > MAX_SEAL_EDGE_PX
        {
            return Err(ComposeError::InvalidImage(format!(
                "seal image is {width_px}×{height_px} px; each edge must be 1..={MAX_SEAL_EDGE_PX}"
            )));
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| ComposeError::InvalidImage(format!("PNG data: {e}")))?;
        if frame.bit_depth != png::BitDepth::Eight {
            return Err(ComposeError::InvalidImage(format!(
                "unexpected bit depth {:?} after expansion",
                frame.bit_depth
            )));
        }
        let pixels = &buf[..frame.buffer_size()];
        let pixel_count = width_px as usize * height_px as usize;
        let (rgb, alpha): (Vec<u8>, Option<Vec<u8>>) = match frame.color_type {
            png::ColorType::Rgb => (pixels.to_vec(), None),
            png::ColorType::Rgba => {
                let rgb = pixels
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect();
                let alpha = pixels.chunks_exact(4).map(|p| p[3]).collect();
                (rgb, Some(alpha))
            }
            png::ColorType::Grayscale => (pixels.iter().flat_map(|&g| [g, g, g]).collect(), None),
            png::ColorType::GrayscaleAlpha => {
                let rgb = pixels
                    .chunks_exact(2)
                    .flat_map(|p| [p[0], p[0], p[0]])
                    .collect();
                let alpha = pixels.chunks_exact(2).map(|p| p[1]).collect();
                (rgb, Some(alpha))
            }
            png::ColorType::Indexed => {
                return Err(ComposeError::InvalidImage(
                    "palette image was not expanded".into(),
                ))
            }
        };
        if rgb.len() != pixel_count * 3 || alpha.as_ref().is_some_and(|a| a.len() != pixel_count) {
            return Err(ComposeError::InvalidImage("PNG data is truncated".into()));
        }
        // An alpha plane that is everywhere opaque adds bytes and nothing else.
        let alpha = alpha.filter(|a| a.iter().any(|&v| v != u8::MAX));
        Self::from_planes(width_px, height_px, rgb, alpha)
    }

    fn from_planes(
        width_px: u32,
        height_px: u32,
        rgb: Vec<u8>,
        alpha: Option<Vec<u8>>,
    ) -> Result<Self, ComposeError> {
        let rgb_deflated = deflate(&rgb)?;
        let alpha_deflated = alpha.as_deref().map(deflate).transpose()?;
        Ok(Self {
            width_px,
            height_px,
            rgb,
            alpha,
            rgb_deflated,
            alpha_deflated,
        })
    }

    pub fn width_px(&self) -> u32 {
        self.width_px
    }

    pub fn height_px(&self) -> u32 {
        self.height_px
    }

    /// The pixels as 8-bit RGBA rows, top row first (for other renderers and tests).
    pub fn rgba_pixels(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rgb.len() / 3 * 4);
        for (i, p) in self.rgb.chunks_exact(3).enumerate() {
            let a = self.alpha.as_ref().map_or(u8::MAX, |a| a[i]);
            out.extend_from_slice(&[p[0], p[1], p[2], a]);
        }
        out
    }
}

/// Renders a square seal: a thick vermilion border and the characters of `text` in a
/// grid read the traditional way (columns top to bottom, right column first), each
/// column's characters stretched to fill its height, as on a real 職印. Transparent
/// outside the ink so it can overlap the mayor's name.
pub fn render_official_seal_png(text: &str, size_px: u32) -> Result<Vec<u8>, ComposeError> {
    if !(MIN_RENDERED_SEAL_PX..=MAX_SEAL_EDGE_PX).contains(&size_px) {
        return Err(ComposeError::InvalidInput(format!(
            "seal size must be {MIN_RENDERED_SEAL_PX}..={MAX_SEAL_EDGE_PX} px, got {size_px}"
        )));
    }
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.is_empty() || chars.len() > MAX_SEAL_TEXT_CHARS {
        return Err(ComposeError::InvalidInput(format!(
            "seal text must have 1..={MAX_SEAL_TEXT_CHARS} characters, got {}",
            chars.len()
        )));
    }
    // Same printability rule as for certificate text: no blank boxes in a seal either.
    let embedded = EmbeddedFont::load()?;
    for &c in &chars {
        embedded.printable_glyph(c)?;
    }
    let font = FontRef::try_from_slice(crate::font::FONT_BYTES)
        .map_err(|e| ComposeError::Font(format!("embedded font: {e}")))?;

    let size = size_px as usize;
    let size_f = size_px as f32;
    let mut coverage = vec![0f32; size * size];

    // Border: about 7 % of the edge, as on a stamped seal.
    let border_px = (size_f * 0.07).max(2.0);
    for y in 0..size {
        for x in 0..size {
            let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
            let inside_outer = xf >= 0.5 && yf >= 0.5 && xf <= size_f - 0.5 && yf <= size_f - 0.5;
            let inside_inner = xf > border_px
                && yf > border_px
                && xf < size_f - border_px
                && yf < size_f - border_px;
            if inside_outer && !inside_inner {
                coverage[y * size + x] = 1.0;
            }
        }
    }

    // Grid: ceil(sqrt(n)) columns; the right-hand columns take the extra characters.
    let n = chars.len();
    let columns = (1..=n).find(|c| c * c >= n).unwrap_or(n);
    let base = n / columns;
    let extra = n % columns;
    let inner_origin = border_px + size_f * 0.05;
    let inner_size = size_f - 2.0 * inner_origin;
    let column_width = inner_size / columns as f32;
    let mut next = 0;
    for col in 0..columns {
        let count = base + usize::from(col < extra);
        if count == 0 {
            continue;
        }
        let cell_height = inner_size / count as f32;
        // Column 0 is the rightmost.
        let x0 = inner_origin + inner_size - column_width * (col as f32 + 1.0);
        for row in 0..count {
            let c = chars[next];
            next += 1;
            let y0 = inner_origin + cell_height * row as f32;
            draw_glyph_into(
                &font,
                c,
                x0,
                y0,
                column_width,
                cell_height,
                size,
                &mut coverage,
            );
        }
    }

    // Thicken the thin Mincho strokes a little, as ink spreads on a stamp.
    let radius = (size / 160).max(1);
    let coverage = dilate(&coverage, size, radius);

    let mut rgba = Vec::with_capacity(size * size * 4);
    for a in coverage {
        let alpha = (a.clamp(0.0, 1.0) * 255.0).round() as u8;
        rgba.extend_from_slice(&[SEAL_INK_RGB[0], SEAL_INK_RGB[1], SEAL_INK_RGB[2], alpha]);
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, size_px, size_px);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ComposeError::InvalidImage(format!("PNG encode: {e}")))?;
        writer
            .write_image_data(&rgba)
            .map_err(|e| ComposeError::InvalidImage(format!("PNG encode: {e}")))?;
    }
    Ok(png_bytes)
}

/// Rasterises `c` to fill the cell (x0, y0, w, h) in pixel space (y down), stretched
/// anisotropically to the cell's shape the way seal engravers do.
#[allow(clippy::too_many_arguments)]
fn draw_glyph_into(
    font: &FontRef<'_>,
    c: char,
    x0: f32,
    y0: f32,
    w: f32,
    h: f32,
    size: usize,
    coverage: &mut [f32],
) {
    // Outline at a nominal scale first, to learn the ink box, then scale to the cell.
    let probe = font
        .glyph_id(c)
        .with_scale_and_position(PxScale::from(100.0), ab_glyph::point(0.0, 0.0));
    let Some(outlined) = font.outline_glyph(probe) else {
        return;
    };
    let ink = outlined.px_bounds();
    let (ink_w, ink_h) = (ink.width().max(1.0), ink.height().max(1.0));
    let margin = 0.06;
    let sx = w * (1.0 - 2.0 * margin) / ink_w * 100.0;
    let sy = h * (1.0 - 2.0 * margin) / ink_h * 100.0;
    let scale = PxScale { x: sx, y: sy };
    // Position so the ink box lands in the cell: ink.min scales with the glyph.
    let ox = x0 + w * margin - ink.min.x * sx / 100.0;
    let oy = y0 + h * margin - ink.min.y * sy / 100.0;
    let glyph = font
        .glyph_id(c)
        .with_scale_and_position(scale, ab_glyph::point(ox, oy));
    let Some(outlined) = font.outline_glyph(glyph) else {
        return;
    };
    let bounds = outlined.px_bounds();
    outlined.draw(|gx, gy, v| {
        let x = bounds.min.x as i64 + i64::from(gx);
        let y = bounds.min.y as i64 + i64::from(gy);
        if x >= 0 && y >= 0 && (x as usize) < size && (y as usize) < size {
            let cell = &mut coverage[y as usize * size + x as usize];
            *cell = (*cell + v).min(1.0);
        }
    });
}

/// Max filter over a (2r+1)² square, separably.
fn dilate(src: &[f32], size: usize, radius: usize) -> Vec<f32> {
    let mut horizontal = vec![0f32; src.len()];
    for y in 0..size {
        for x in 0..size {
            let lo = x.saturating_sub(radius);
            let hi = (x + radius).min(size - 1);
            horizontal[y * size + x] = src[y * size + lo..=y * size + hi]
                .iter()
                .copied()
                .fold(0.0, f32::max);
        }
    }
    let mut out = vec![0f32; src.len()];
    for y in 0..size {
        let lo = y.saturating_sub(radius);
        let hi = (y + radius).min(size - 1);
        for x in 0..size {
            out[y * size + x] = (lo..=hi)
                .map(|yy| horizontal[yy * size + x])
                .fold(0.0, f32::max);
        }
    }
    out
}
