//! `MimeError`: the only ways `parse` refuses input. Kept deliberately small:
//! mail-parser is lenient and so are we, so only input that has no message in it
//! at all is an error. Everything else parses, however damaged.

/// Why raw bytes could not be treated as an RFC 5322 message at all.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MimeError {
    /// Zero bytes, or only whitespace.
    #[error("empty message: no bytes to parse")]
    Empty,
    /// Not a single header field could be found.
    #[error("not a message: no header block found in {len} bytes")]
    NoHeaders {
        /// Size of the rejected input, for the skip record.
        len: usize,
    },
    /// mail-parser hit an internal assertion. It promises never to panic, but its
    /// debug assertions can fire on pathological input; we contain that here so a
    /// single hostile message is skipped instead of taking the worker down.
    #[error("MIME parser failed internally on {len} bytes")]
    ParserFailure {
        /// Size of the rejected input.
        len: usize,
    },
}
