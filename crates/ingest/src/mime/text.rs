//! Text clean-up shared by headers and bodies: charset conversion to UTF-8 and
//! NUL removal (Postgres `text` cannot hold U+0000, and one stray NUL would make
//! the whole message's insert fail).

use mail_parser::decoders::charsets::map::charset_decoder;

/// Removes every U+0000.
pub(crate) fn strip_nul(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_owned()
    }
}

/// Cleans an optional header-derived string: NULs removed, surrounding
/// whitespace trimmed, empty mapped to `None`.
pub(crate) fn clean_opt(s: Option<&str>) -> Option<String> {
    let cleaned = strip_nul(s?);
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Decodes body bytes to UTF-8 using the declared charset, with the fallbacks
/// real mail needs because labels lie:
/// - no label, or a US-ASCII label: UTF-8 if the bytes are valid UTF-8 (8-bit
///   mail sent without a label is almost always UTF-8 today), else Windows-1252
///   (what browsers and mail clients assume for unlabelled 8-bit text);
/// - a UTF-8 label: UTF-8, invalid sequences become U+FFFD;
/// - a label mail-parser knows: that decoder;
/// - an unknown label: UTF-8 if valid, else Windows-1252.
///
/// The result never contains NUL.
pub(crate) fn decode_text(bytes: &[u8], charset: Option<&str>) -> String {
    let label = charset.map(|c| c.trim().trim_matches('"').to_ascii_lowercase());
    let text = match label.as_deref() {
        None | Some("" | "us-ascii" | "ascii" | "us_ascii" | "ansi_x3.4-1968") => {
            utf8_or_cp1252(bytes)
        }
        Some("utf-8" | "utf8") => String::from_utf8_lossy(bytes).into_owned(),
        Some(other) => match charset_decoder(other.as_bytes()) {
            Some(decoder) => decoder(bytes),
            None => utf8_or_cp1252(bytes),
        },
    };
    strip_nul(&text)
}

fn utf8_or_cp1252(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => match charset_decoder(b"windows-1252") {
            Some(decoder) => decoder(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_removed() {
        assert_eq!(decode_text(b"a\0b", None), "ab");
        assert_eq!(clean_opt(Some("  \0 ")), None);
    }

    #[test]
    fn labels_and_fallbacks() {
        assert_eq!(decode_text(b"caf\xe9", Some("ISO-8859-1")), "café");
        // Mislabelled: declared us-ascii, actually UTF-8.
        assert_eq!(decode_text("café".as_bytes(), Some("us-ascii")), "café");
        // Unknown label, Latin-1 bytes.
        assert_eq!(decode_text(b"caf\xe9", Some("x-bogus")), "café");
        // Declared UTF-8 but Latin-1: replacement character, never a failure.
        assert_eq!(decode_text(b"caf\xe9", Some("utf-8")), "caf\u{fffd}");
    }
}
