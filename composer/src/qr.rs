//! The signed seal as a QR matrix, built with a fixed mask.
//!
//! `qrcode::QrCode::new` tries all eight masks and scores each (about 20 ms for a
//! version-13 symbol); the score only nudges scanning robustness, and any mask is a
//! valid, decodable QR code. A fixed mask costs about 0.3 ms. The seal text
//! ("KC1:" + Base45) lies entirely in the QR alphanumeric set, so it is encoded in
//! alphanumeric mode (5.5 bits per character instead of 8) at EC level Q (25 %
//! recovery: survives a fold, a stain or a staple hole).

use crate::ComposeError;
use qrcode::bits::Bits;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::types::{Color, EcLevel, Version};

/// Mask 000, `(x + y) mod 2 == 0`. Chosen once; see the module comment.
const FIXED_MASK: MaskPattern = MaskPattern::Checkerboard;
const EC_LEVEL: EcLevel = EcLevel::Q;
/// Largest QR version (177 × 177 modules).
const MAX_VERSION: i16 = 40;

/// A square QR symbol without its quiet zone: `dark[y * width + x]`, y = 0 at the top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    pub width_modules: usize,
    pub dark: Vec<bool>,
}

impl QrMatrix {
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width_modules + x]
    }
}

fn is_qr_alphanumeric(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase() || b" $%*+-./:".contains(&b)
}

/// Length-field width of alphanumeric mode per version group (ISO/IEC 18004 table 3).
fn alphanumeric_count_bits(version: i16) -> usize {
    match version {
        1..=9 => 9,
        10..=26 => 11,
        _ => 13,
    }
}

/// Encodes `text` (QR alphanumeric characters only) in the smallest version that holds
/// it at EC level Q, masked with [`FIXED_MASK`].
pub fn encode_fixed_mask(text: &str) -> Result<QrMatrix, ComposeError> {
    let data = text.as_bytes();
    if data.is_empty() || !data.iter().copied().all(is_qr_alphanumeric) {
        return Err(ComposeError::InvalidInput(
            "seal text must be non-empty QR alphanumeric text (0-9 A-Z space $%*+-./:)".into(),
        ));
    }
    let data_bits = 11 * (data.len() / 2) + 6 * (data.len() % 2);
    let mut chosen = None;
    for v in 1..=MAX_VERSION {
        let version = Version::Normal(v);
        let capacity_bits = Bits::new(version)
            .max_len(EC_LEVEL)
            .map_err(|e| ComposeError::Pdf(format!("QR capacity of version {v}: {e:?}")))?;
        // Mode indicator (4 bits) + character count + data.
        if 4 + alphanumeric_count_bits(v) + data_bits <= capacity_bits {
            chosen = Some(version);
            break;
        }
    }
    let version = chosen.ok_or_else(|| {
        ComposeError::InvalidInput(format!(
            "seal text of {} characters does not fit a QR code at EC level Q",
            data.len()
        ))
    })?;
    let qr_err = |e: qrcode::types::QrError| ComposeError::Pdf(format!("QR encoding: {e:?}"));
    let mut bits = Bits::new(version);
    bits.push_alphanumeric_data(data).map_err(qr_err)?;
    bits.push_terminator(EC_LEVEL).map_err(qr_err)?;
    let (codewords, ec_codewords) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC_LEVEL).map_err(qr_err)?;
    let mut canvas = Canvas::new(version, EC_LEVEL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&codewords, &ec_codewords);
    canvas.apply_mask(FIXED_MASK);
    // Version::width() is 21..=177 for normal QR codes, so the conversion cannot fail.
    let width_modules = usize::try_from(version.width())
        .map_err(|_| ComposeError::Pdf("QR width out of range".into()))?;
    let dark: Vec<bool> = canvas
        .into_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    debug_assert_eq!(dark.len(), width_modules * width_modules);
    Ok(QrMatrix {
        width_modules,
        dark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_alphanumeric() {
        assert!(encode_fixed_mask("kc1:lower").is_err());
        assert!(encode_fixed_mask("").is_err());
    }

    #[test]
    fn picks_the_same_version_as_the_searching_encoder() {
        // Version 1 at EC level Q holds 16 alphanumeric characters.
        assert_eq!(encode_fixed_mask("HELLO WORLD").unwrap().width_modules, 21);
        for len in [17, 100, 394, 395, 400, 1000] {
            let text = "KC1:".to_owned() + &"A1 ".repeat(len).chars().take(len).collect::<String>();
            let ours = encode_fixed_mask(&text).unwrap();
            let reference = qrcode::QrCode::with_error_correction_level(&text, EC_LEVEL).unwrap();
            assert_eq!(ours.width_modules, reference.width(), "length {len}");
        }
    }
}
