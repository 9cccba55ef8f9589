//! The text a PDF page shows, read through its fonts' ToUnicode maps: enough to tell
//! whether the signed name is printed on the front. Two-byte codes (Identity-H, what the
//! composer writes) and one-byte codes are looked up in the font's ToUnicode CMap;
//! a code without an entry reads as U+FFFD, so it can never complete a name.

use std::collections::HashMap;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

/// Entries read from one ToUnicode CMap, and fonts per page.
const MAX_CMAP_ENTRIES: usize = 70_000;
const MAX_FONTS_PER_PAGE: usize = 32;
/// Characters of text collected per page.
const MAX_PAGE_TEXT_CHARS: usize = 200_000;

struct FontMap {
    two_byte: bool,
    to_unicode: HashMap<u32, String>,
}

/// The page's text runs joined by newlines, or an error for an unreadable page.
pub(crate) fn page_text(
    document: &Document,
    page: ObjectId,
    content: &[u8],
    inflate: impl Fn(&lopdf::Stream) -> Result<Vec<u8>, String>,
) -> Result<String, String> {
    let fonts = page_fonts(document, page, &inflate);
    let content = Content::decode(content).map_err(|e| format!("unreadable content: {e}"))?;
    let mut text = String::new();
    let mut font: Option<&FontMap> = None;
    for operation in &content.operations {
        match operation.operator.as_str() {
            "Tf" => {
                font = operation
                    .operands
                    .first()
                    .and_then(|name| name.as_name().ok())
                    .and_then(|name| fonts.get(name));
            }
            "Tj" | "'" | "\"" => {
                if let Some(Object::String(bytes, _)) = operation.operands.last() {
                    decode(font, bytes, &mut text);
                }
                text.push('\n');
            }
            "TJ" => {
                if let Some(Object::Array(items)) = operation.operands.first() {
                    for item in items {
                        if let Object::String(bytes, _) = item {
                            decode(font, bytes, &mut text);
                        }
                    }
                }
                text.push('\n');
            }
            _ => {}
        }
        if text.len() > MAX_PAGE_TEXT_CHARS * 4 {
            break;
        }
    }
    Ok(text)
}

fn decode(font: Option<&FontMap>, bytes: &[u8], out: &mut String) {
    let Some(font) = font else {
        out.push('\u{FFFD}');
        return;
    };
    let codes: Vec<u32> = if font.two_byte {
        bytes
            .chunks(2)
            .map(|pair| pair.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)))
            .collect()
    } else {
        bytes.iter().map(|b| u32::from(*b)).collect()
    };
    for code in codes {
        match font.to_unicode.get(&code) {
            Some(text) => out.push_str(text),
            None => out.push('\u{FFFD}'),
        }
    }
}

fn resolve<'a>(document: &'a Document, object: &'a Object) -> Option<&'a Object> {
    document.dereference(object).ok().map(|(_, o)| o)
}

fn dictionary<'a>(document: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    match resolve(document, object)? {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

fn page_fonts(
    document: &Document,
    page: ObjectId,
    inflate: &impl Fn(&lopdf::Stream) -> Result<Vec<u8>, String>,
) -> HashMap<Vec<u8>, FontMap> {
    let mut fonts = HashMap::new();
    let Ok(page) = document.get_dictionary(page) else {
        return fonts;
    };
    let Some(resources) = page
        .get(b"Resources")
        .ok()
        .and_then(|r| dictionary(document, r))
    else {
        return fonts;
    };
    let Some(font_dict) = resources
        .get(b"Font")
        .ok()
        .and_then(|f| dictionary(document, f))
    else {
        return fonts;
    };
    for (name, font) in font_dict.iter().take(MAX_FONTS_PER_PAGE) {
        let Some(font) = dictionary(document, font) else {
            continue;
        };
        let two_byte = font
            .get(b"Subtype")
            .ok()
            .and_then(|s| s.as_name().ok())
            .is_some_and(|s| s == b"Type0");
        let to_unicode = font
            .get(b"ToUnicode")
            .ok()
            .and_then(|t| resolve(document, t))
            .and_then(|t| match t {
                Object::Stream(stream) => inflate(stream).ok(),
                _ => None,
            })
            .map(|cmap| parse_cmap(&cmap))
            .unwrap_or_default();
        fonts.insert(
            name.clone(),
            FontMap {
                two_byte,
                to_unicode,
            },
        );
    }
    fonts
}

/// `bfchar` and `bfrange` entries of a ToUnicode CMap (ranges with an array
/// destination are skipped: the composer never writes them).
fn parse_cmap(cmap: &[u8]) -> HashMap<u32, String> {
    let text = String::from_utf8_lossy(cmap);
    let mut map = HashMap::new();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if line.ends_with("beginbfchar") {
            section = "char";
            continue;
        }
        if line.ends_with("beginbfrange") {
            section = "range";
            continue;
        }
        if line.starts_with("endbf") {
            section = "";
            continue;
        }
        let hexes: Vec<&str> = line
            .split(['<', '>'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match (section, hexes.as_slice()) {
            ("char", [code, destination]) => {
                if let (Some(code), Some(destination)) = (hex_code(code), utf16_hex(destination)) {
                    map.insert(code, destination);
                }
            }
            ("range", [low, high, destination]) => {
                if let (Some(low), Some(high), Some(first)) =
                    (hex_code(low), hex_code(high), utf16_hex(destination))
                {
                    let mut chars: Vec<char> = first.chars().collect();
                    for code in low..=high.min(low.saturating_add(256)) {
                        map.insert(code, chars.iter().collect());
                        if let Some(last) = chars.last_mut() {
                            *last = char::from_u32(u32::from(*last) + 1).unwrap_or('\u{FFFD}');
                        }
                    }
                }
            }
            _ => {}
        }
        if map.len() > MAX_CMAP_ENTRIES {
            break;
        }
    }
    map
}

fn hex_code(hex: &str) -> Option<u32> {
    (hex.len() <= 8).then(|| u32::from_str_radix(hex, 16).ok())?
}

fn utf16_hex(hex: &str) -> Option<String> {
    if hex.len() % 4 != 0 || hex.len() > 64 {
        return None;
    }
    let units: Option<Vec<u16>> = (0..hex.len())
        .step_by(4)
        .map(|i| u16::from_str_radix(hex.get(i..i + 4)?, 16).ok())
        .collect();
    String::from_utf16(&units?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmap_entries_decode_to_text() {
        let cmap = b"2 beginbfchar\n<0001> <9AD9>\n<0002> <D842DFB7>\nendbfchar\n1 beginbfrange\n<0010> <0012> <0041>\nendbfrange\n";
        let map = parse_cmap(cmap);
        assert_eq!(map[&1], "\u{9AD9}");
        assert_eq!(map[&2], "\u{20BB7}");
        assert_eq!(map[&0x11], "B");
        assert_eq!(map.len(), 5);
    }
}
