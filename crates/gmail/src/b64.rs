//! Tolerant base64url: Gmail's `raw` and attachment `data` fields arrive padded or unpadded
//! (google-gmail1 7 only takes padded and fails the whole call otherwise). We also accept the
//! standard alphabet and embedded line breaks, which some proxies and emulators produce.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const TOLERANT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decode base64url, padded or not (standard-alphabet `+` `/` and whitespace tolerated).
pub fn decode_base64url(input: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let needs_cleanup = input
        .bytes()
        .any(|b| matches!(b, b'+' | b'/' | b'\r' | b'\n' | b' ' | b'\t'));
    if !needs_cleanup {
        return TOLERANT.decode(input);
    }
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    TOLERANT.decode(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    #[test]
    fn padded_unpadded_and_standard_alphabet_agree() {
        for len in 0..40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8 ^ 0xfb).collect();
            for enc in [
                URL_SAFE.encode(&data),
                URL_SAFE_NO_PAD.encode(&data),
                STANDARD.encode(&data),
            ] {
                assert_eq!(decode_base64url(&enc).expect(&enc), data, "{enc}");
            }
        }
        assert_eq!(decode_base64url("aGVs\r\nbG8").expect("wrapped"), b"hello");
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_base64url("not*base64").is_err());
        assert!(decode_base64url("a").is_err());
    }
}
