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
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        grey.as_raw()[y * width + x]
    });
    let texts: Vec<String> = prepared
        .detect_grids()
        .into_iter()
        .take(MAX_SYMBOLS)
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect();
    if texts.is_empty() {
        return Err(ScanError::NoSymbol);
    }
    Ok(texts)
}
