//! Content-Transfer-Encoding decoding of a part's raw body bytes.
//!
//! Why not mail-parser's decoded bytes: it converts text/* parts to UTF-8 (an
//! attachment must keep its original bytes, as Gmail's attachments.get returns
//! them), and on the first character outside the base64 alphabet it gives up and
//! hands back the still-encoded text. Mail clients, Gmail included, skip such
//! junk, so we decode leniently here: nothing in this file can fail.

/// Which transfer encoding a part declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    Base64,
    QuotedPrintable,
    /// 7bit, 8bit, binary, absent, or unknown: the bytes are the content.
    Identity,
}

impl TransferEncoding {
    /// Maps a Content-Transfer-Encoding value; unknown tokens are identity
    /// (RFC 2045 §6.4 says treat the part as application/octet-stream, i.e. keep
    /// the bytes).
    pub(crate) fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("base64") => TransferEncoding::Base64,
            Some(v) if v.eq_ignore_ascii_case("quoted-printable") => {
                TransferEncoding::QuotedPrintable
            }
            _ => TransferEncoding::Identity,
        }
    }
}

/// A base64 alphabet character (`A-Z`, `a-z`, `0-9`, `+`, `/`). Range tests
/// rather than a table lookup, so the loops below compile to vector code.
#[inline(always)]
fn is_alphabet(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

#[inline(always)]
fn is_line_break(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Whether `raw` is base64 in its plainest form: only alphabet characters and
/// line breaks, then at most two `=` of padding and line breaks, a whole number
/// of quanta. Every decoder reads such input the same way; anything else (junk,
/// `=` mid-stream, a dangling character) is where decoders differ. This runs
/// over every attachment, so it counts in blocks of bytes the compiler turns
/// into vector code.
pub(crate) fn is_canonical_base64(raw: &[u8]) -> bool {
    let body_end = raw
        .iter()
        .rposition(|&b| !is_line_break(b) && b != b'=')
        .map_or(0, |i| i + 1);
    let (body, tail) = raw.split_at(body_end);
    let mut symbols = 0usize;
    // At most 255 bytes a block: the per-block count fits a u8.
    for block in body.chunks(255) {
        let (mut in_block, mut other) = (0u8, 0u8);
        for &b in block {
            let alphabet = is_alphabet(b);
            in_block += u8::from(alphabet);
            other |= u8::from(!alphabet && !is_line_break(b));
        }
        if other != 0 {
            return false;
        }
        symbols += usize::from(in_block);
    }
    let padding = tail.iter().filter(|&&b| b == b'=').count();
    // Padding is one run: no line break between two `=`.
    let run_ok = tail
        .iter()
        .skip_while(|&&b| b != b'=')
        .take(padding)
        .all(|&b| b == b'=');
    run_ok
        && padding <= 2
        && (symbols + padding).is_multiple_of(4)
        && (padding == 0 || !symbols.is_multiple_of(4))
}

/// Decodes `raw` according to `encoding`.
pub(crate) fn decode(encoding: TransferEncoding, raw: &[u8]) -> Vec<u8> {
    match encoding {
        TransferEncoding::Base64 => decode_base64(raw),
        TransferEncoding::QuotedPrintable => decode_quoted_printable(raw),
        TransferEncoding::Identity => raw.to_vec(),
    }
}

fn base64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Lenient base64: characters outside the alphabet are skipped; `=` ends the
/// current quantum (flushing the whole bytes it holds) and decoding resumes after
/// it, which also handles several base64 blobs concatenated in one part.
///
/// Almost every part is clean base64 in lines, so that case goes through the
/// `base64` crate's table decoder (several times faster than the byte loop, and
/// the largest single cost of a backfill before); anything it refuses is decoded
/// by the lenient loop, which gives the same bytes for every input both accept.
pub(crate) fn decode_base64(raw: &[u8]) -> Vec<u8> {
    decode_base64_clean(raw).unwrap_or_else(|| decode_base64_lenient(raw))
}

/// Standard alphabet, padding optional, non-zero trailing bits ignored: the
/// lenient loop's reading of a clean input.
const CLEAN_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Line breaks (CRLF or LF) removed, then a strict decode; `None` for anything else.
fn decode_base64_clean(raw: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let mut compact = Vec::with_capacity(raw.len());
    for line in raw.split(|&b| b == b'\n') {
        compact.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    }
    CLEAN_BASE64.decode(&compact).ok()
}

fn decode_base64_lenient(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n: u8 = 0;
    for &b in raw {
        if let Some(v) = base64_value(b) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                n = 0;
            }
        } else if b == b'=' {
            flush_partial(&mut out, acc, n);
            acc = 0;
            n = 0;
        }
    }
    // Unpadded tail (common from sloppy encoders).
    flush_partial(&mut out, acc, n);
    out
}

fn flush_partial(out: &mut Vec<u8>, acc: u32, n: u8) {
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        // 0: nothing pending; 1: six bits cannot make a byte, drop them.
        _ => {}
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Lenient quoted-printable (RFC 2045 §6.7): `=XX` decodes, `=` at end of line
/// (optionally followed by whitespace) is a soft break, trailing whitespace on a
/// line is dropped, and any other `=` is kept literally (rule 1's "robust
/// implementation" advice). Line breaks are kept as they are in the source.
pub(crate) fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // Line ends and `=` found with memchr, the text between copied whole: this
    // runs over every quoted-printable body.
    let mut rest = raw;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let (content, ending) = split_line_ending(line);
        let trimmed = trim_trailing_ws(content);
        let soft_break = trimmed.last() == Some(&b'=');
        let mut body = if soft_break {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        while let Some(at) = memchr::memchr(b'=', body) {
            out.extend_from_slice(&body[..at]);
            let hi = body.get(at + 1).copied().and_then(hex_value);
            let lo = body.get(at + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                body = &body[at + 3..];
            } else {
                out.push(b'=');
                body = &body[at + 1..];
            }
        }
        out.extend_from_slice(body);
        if !soft_break {
            out.extend_from_slice(ending);
        }
    }
    out
}

fn split_line_ending(line: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = line.strip_suffix(b"\r\n") {
        (rest, &line[rest.len()..])
    } else if let Some(rest) = line.strip_suffix(b"\n") {
        (rest, &line[rest.len()..])
    } else {
        (line, &[])
    }
}

fn trim_trailing_ws(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_clean_and_wrapped() {
        assert_eq!(decode_base64(b"aGVsbG8gd29y\r\nbGQ=\r\n"), b"hello world");
    }

    #[test]
    fn base64_skips_garbage_and_handles_missing_padding() {
        assert_eq!(decode_base64(b"aGV*sb!G8"), b"hello");
        assert_eq!(decode_base64(b"aGk"), b"hi");
    }

    #[test]
    fn base64_concatenated_blobs() {
        assert_eq!(decode_base64(b"aGk=aGk="), b"hihi");
    }

    /// The fast path must never change a result: whatever it accepts, the
    /// lenient loop decodes to the same bytes (clean, wrapped, unpadded, with
    /// non-zero trailing bits, and mutated into junk).
    #[test]
    fn base64_fast_path_agrees_with_lenient_loop() {
        use base64::Engine as _;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fast_hits = 0;
        for round in 0..3_000 {
            let len = (next() % 300) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut text = base64::engine::general_purpose::STANDARD.encode(&data);
            match round % 5 {
                0 => text = text.trim_end_matches('=').to_owned(),
                1 => {
                    // wrap at 76 with CRLF, or LF
                    let eol = if next() % 2 == 0 { "\r\n" } else { "\n" };
                    let chunks: Vec<String> = text
                        .as_bytes()
                        .chunks(76)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    text = chunks.join(eol) + eol;
                }
                2 if !text.is_empty() => {
                    // mutate one byte anywhere, often into junk
                    let mut b = text.into_bytes();
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                    text = String::from_utf8_lossy(&b).into_owned();
                }
                3 if text.ends_with('=') => {
                    // flip trailing bits of the last quantum
                    let mut b = text.into_bytes();
                    let i = b.iter().rposition(|&c| c != b'=').unwrap();
                    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                    text = String::from_utf8_lossy(&b).into_owned();
                }
                _ => {}
            }
            let raw = text.as_bytes();
            let lenient = decode_base64_lenient(raw);
            if let Some(fast) = decode_base64_clean(raw) {
                fast_hits += 1;
                assert_eq!(fast, lenient, "input {text:?}");
            }
            assert_eq!(decode_base64(raw), lenient, "input {text:?}");
        }
        assert!(fast_hits > 2_000, "fast path taken only {fast_hits} times");
    }

    #[test]
    fn qp_soft_breaks_hex_and_literal_equals() {
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\n1+1=2 =ZZ"),
            "café au lait\r\n1+1=2 =ZZ".as_bytes()
        );
    }

    #[test]
    fn canonical_base64_is_recognised() {
        for ok in [
            &b""[..],
            b"aGVsbG8=\r\n",
            b"aGVs\r\nbG8gd29y\r\nbGQ=",
            b"QUJD",
            b"QQ==\n",
        ] {
            assert!(is_canonical_base64(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"aGVsbG8"[..],
            b"Q=",
            b"QQ=\r\nQQ==",
            b"QUJD=",
            b"aGV sbG8=",
            b"aG-V",
            b"QQ===",
        ] {
            assert!(
                !is_canonical_base64(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn canonical_base64_check_agrees_with_the_byte_table_on_any_input() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
        };
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const OTHER: &[&[u8]] = &[
            b"\r\n", b"\n", b"\r", b"=", b"==", b"===", b" ", b"-", b"\x00", b"\xff", b"@", b"[",
            b"`", b"{", b":", b"\x80",
        ];
        let (mut canonical, mut not) = (0, 0);
        for case in 0..50_000 {
            let mut input = Vec::new();
            for _ in 0..1 + next(8) {
                if next(4) == 0 {
                    input.extend_from_slice(OTHER[next(OTHER.len())]);
                } else {
                    let len = [next(6), 76, next(600)][next(3)];
                    input.extend((0..len).map(|_| ALPHABET[next(ALPHABET.len())]));
                }
            }
            let expected = is_canonical_base64_by_table(&input);
            assert_eq!(
                is_canonical_base64(&input),
                expected,
                "case {case}: {:?}",
                String::from_utf8_lossy(&input)
            );
            if expected { canonical += 1 } else { not += 1 }
        }
        assert!(
            canonical > 1_000 && not > 1_000,
            "{canonical} canonical, {not} not"
        );
    }

    /// Byte classes for [`is_canonical_base64`]: 0 alphabet, 1 line break, 2 `=`, 3 other.
    static BASE64_CLASS: [u8; 256] = {
        let mut table = [3u8; 256];
        let mut b = 0usize;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
                table[b] = 0;
            }
            b += 1;
        }
        table[b'\r' as usize] = 1;
        table[b'\n' as usize] = 1;
        table[b'=' as usize] = 2;
        table
    };

    /// The table-driven check this file used before (one lookup per byte),
    /// kept as the reference the vector-friendly one must agree with.
    /// Whether `raw` is base64 in its plainest form: only alphabet characters and
    /// line breaks, then at most two `=` of padding and line breaks, a whole number
    /// of quanta. Every decoder reads such input the same way; anything else (junk,
    /// `=` mid-stream, a dangling character) is where decoders differ. One table
    /// lookup per byte: this runs over every attachment.
    fn is_canonical_base64_by_table(raw: &[u8]) -> bool {
        let body_end = raw
            .iter()
            .rposition(|&b| BASE64_CLASS[usize::from(b)] != 1 && b != b'=')
            .map_or(0, |i| i + 1);
        let (body, tail) = raw.split_at(body_end);
        let mut symbols = 0usize;
        let mut worst = 0u8;
        for &b in body {
            let class = BASE64_CLASS[usize::from(b)];
            // `=` (2) and other bytes (3) have this bit; alphabet and line breaks do not.
            worst |= class & 2;
            symbols += usize::from(class == 0);
        }
        if worst != 0 {
            return false;
        }
        let padding = tail.iter().filter(|&&b| b == b'=').count();
        // Padding is one run: no line break between two `=`.
        let run_ok = tail
            .iter()
            .skip_while(|&&b| b != b'=')
            .take(padding)
            .all(|&b| b == b'=');
        run_ok
            && padding <= 2
            && (symbols + padding).is_multiple_of(4)
            && (padding == 0 || !symbols.is_multiple_of(4))
    }

    #[test]
    fn quoted_printable_decoding_agrees_with_the_byte_loop_on_any_input() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x9e37_79b9_7f4a_7c15) % n as u64) as usize
        };
        const PIECES: &[&[u8]] = &[
            b"=",
            b"=\r\n",
            b"=\n",
            b"\r\n",
            b"\n",
            b"\r",
            b"=3D",
            b"=C3=A9",
            b"=c3",
            b"=ZZ",
            b"=4",
            b" ",
            b"\t",
            b"  \r\n",
            b"= \r\n",
            b"caf",
            b"\xff",
            b"\x00",
            b"plain text ",
            b"==41",
        ];
        for case in 0..50_000 {
            let input: Vec<u8> = (0..next(40))
                .flat_map(|_| PIECES[next(PIECES.len())].iter().copied())
                .collect();
            assert_eq!(
                decode_quoted_printable(&input),
                decode_quoted_printable_by_byte(&input),
                "case {case}: {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    /// The byte-at-a-time decoder this file used before, kept as the
    /// reference the memchr one must agree with.
    fn decode_quoted_printable_by_byte(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len());
        for line in split_lines_keep_ends(raw) {
            let (content, ending) = split_line_ending(line);
            let trimmed = trim_trailing_ws(content);
            let soft_break = trimmed.last() == Some(&b'=');
            let body = if soft_break {
                &trimmed[..trimmed.len() - 1]
            } else {
                trimmed
            };
            let mut j = 0;
            while j < body.len() {
                let b = body[j];
                if b == b'=' {
                    let hi = body.get(j + 1).copied().and_then(hex_value);
                    let lo = body.get(j + 2).copied().and_then(hex_value);
                    if let (Some(hi), Some(lo)) = (hi, lo) {
                        out.push((hi << 4) | lo);
                        j += 3;
                        continue;
                    }
                }
                out.push(b);
                j += 1;
            }
            if !soft_break {
                out.extend_from_slice(ending);
            }
        }
        out
    }

    /// Splits into lines, each keeping its `\n` / `\r\n` ending (the last may have none).
    fn split_lines_keep_ends(raw: &[u8]) -> Vec<&[u8]> {
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' {
                lines.push(&raw[start..=i]);
                start = i + 1;
            }
        }
        if start < raw.len() {
            lines.push(&raw[start..]);
        }
        lines
    }

    #[test]
    fn identity_keeps_bytes() {
        assert_eq!(decode(TransferEncoding::Identity, b"\x00\xff"), b"\x00\xff");
        assert_eq!(
            TransferEncoding::from_header(Some(" BASE64 ")),
            TransferEncoding::Base64
        );
        assert_eq!(
            TransferEncoding::from_header(Some("x-uuencode")),
            TransferEncoding::Identity
        );
    }
}
