//! Seal QR texts from a scan or photo of a page (PNG or JPEG bytes): decode the image
//! within bounds, then find and decode every QR symbol in it.

/// Upper bounds on an image we decode (a 600 dpi A4 scan is about 5,000 × 7,000).
pub const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_IMAGE_EDGE_PX: u32 = 12_000;
const MAX_DECODE_ALLOC_BYTES: u64 = 512 * 1024 * 1024;
/// QR symbols read from one image (a page has one).
const MAX_SYMBOLS: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    #[error("image is larger than {MAX_IMAGE_BYTES} bytes")]
    TooLarge,
    #[error("not a readable PNG or JPEG image: {0}")]
    Image(String),
    #[error("no QR code found in the image")]
    NoSymbol,
}

/// Every QR text readable in the image, in detection order (at most a few).
pub fn seal_texts_in_image(bytes: &[u8]) -> Result<Vec<String>, ScanError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ScanError::TooLarge);
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ScanError::Image(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_EDGE_PX);
    limits.max_image_height = Some(MAX_IMAGE_EDGE_PX);
    limits.max_alloc = Some(MAX_DECODE_ALLOC_BYTES);
    reader.limits(limits);
    let grey = reader
        .decode()
        .map_err(|e| ScanError::Image(e.to_string()))?
        .into_luma8();
    let (width, height) = (grey.width() as usize, grey.height() as usize);
    let pixels = grey.as_raw();
    // rqrr thresholds adaptively, which now and then misses a symbol on an
    // anti-aliased render (about 1 in 100 pages at 150 dpi). Then: the same pixels
    // binarised at one global (Otsu) threshold, then that at twice the size.
    let mut texts = read_symbols(width, height, |x, y| pixels[y * width + x]);
    if texts.is_empty() {
        let threshold = otsu_threshold(pixels);
        let binary: Vec<u8> = pixels
            .iter()
            .map(|&p| if p > threshold { 255 } else { 0 })
            .collect();
        texts = read_symbols(width, height, |x, y| binary[y * width + x]);
        if texts.is_empty() && width.max(height) * 2 <= MAX_UPSCALED_EDGE_PX as usize {
            texts = read_symbols(width * 2, height * 2, |x, y| {
                binary[(y / 2) * width + x / 2]
            });
        }
    }
    if texts.is_empty() {
        return Err(ScanError::NoSymbol);
    }
    Ok(texts)
}

/// Largest edge an image is upscaled to for the last reading attempt.
const MAX_UPSCALED_EDGE_PX: u32 = 8_000;

fn read_symbols(width: usize, height: usize, pixel: impl FnMut(usize, usize) -> u8) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, pixel);
    prepared
        .detect_grids()
        .into_iter()
        .take(MAX_SYMBOLS)
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// The grey level that best separates ink from paper (Otsu's method).
fn otsu_threshold(pixels: &[u8]) -> u8 {
    let mut histogram = [0u64; 256];
    for &p in pixels {
        histogram[usize::from(p)] += 1;
    }
    let total = pixels.len() as f64;
    let sum_all: f64 = histogram
        .iter()
        .enumerate()
        .map(|(level, &count)| level as f64 * count as f64)
        .sum();
    let (mut weight_below, mut sum_below) = (0.0f64, 0.0f64);
    let (mut best, mut best_variance) = (127u8, -1.0f64);
    for (level, &count) in histogram.iter().enumerate() {
        weight_below += count as f64;
        if weight_below == 0.0 {
            continue;
        }
        let weight_above = total - weight_below;
        if weight_above == 0.0 {
            break;
        }
        sum_below += level as f64 * count as f64;
        let mean_below = sum_below / weight_below;
        let mean_above = (sum_all - sum_below) / weight_above;
        let variance = weight_below * weight_above * (mean_below - mean_above).powi(2);
        if variance > best_variance {
            best_variance = variance;
            best = u8::try_from(level).unwrap_or(u8::MAX);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_levels() {
        let mut pixels = vec![20u8; 500];
        pixels.extend(vec![230u8; 1500]);
        let t = otsu_threshold(&pixels);
        assert!((20..230).contains(&t), "{t}");
    }
}
