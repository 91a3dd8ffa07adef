//! What a Gmail id may hold, checked where ids enter: an id is data, and a
//! broken or hostile endpoint must not be able to turn one into syntax (a
//! path segment that climbs to another method, a header line of an export,
//! a log line of its own).
//!
//! Gmail's message, thread and draft ids are lowercase hex and its label ids
//! are `INBOX`, `CATEGORY_SOCIAL` or `Label_12`: all of them fit
//! `[A-Za-z0-9_-]`, which is what [`is_gmail_id`] accepts for message and
//! thread ids. Label ids are checked more loosely ([`is_label_id`]): no
//! control character, no more than a label name could be, because Google has
//! never promised their alphabet and refusing a real label would stop mail.

use std::borrow::Cow;

/// The longest id accepted; Gmail's are 16 hex digits.
const MAX_ID_LEN: usize = 128;
/// The longest label id accepted (Gmail caps a label *name* at 225 characters).
const MAX_LABEL_ID_LEN: usize = 1024;

/// A message or thread id as Gmail makes them: 1 to 128 of `[A-Za-z0-9_-]`.
pub fn is_gmail_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A label id that is safe to hold: not empty, no control character (no CR or
/// LF to start a header line of its own), at most 1024 bytes.
pub fn is_label_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LABEL_ID_LEN && !id.chars().any(char::is_control)
}

/// An untrusted id as it may be printed in a log line or an error: as it is
/// when it holds no control character and is short, else quoted with its
/// control characters escaped, cut at 64 characters.
pub fn printable(id: &str) -> Cow<'_, str> {
    if id.chars().count() <= 64 && !id.chars().any(char::is_control) {
        return Cow::Borrowed(id);
    }
    let mut cut: String = id.chars().take(64).collect();
    if cut.len() < id.len() {
        cut.push('…');
    }
    Cow::Owned(format!("{cut:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_ids_are_word_characters() {
        assert!(is_gmail_id("18c2f0a9b1d3e4f5"));
        assert!(is_gmail_id("Label_12"));
        for bad in [
            "",
            "a/b",
            "../labels",
            "a\r\nb",
            "a b",
            "é",
            "a%2F",
            &"a".repeat(129),
        ] {
            assert!(!is_gmail_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn label_ids_hold_no_control_character() {
        assert!(is_label_id("INBOX"));
        assert!(is_label_id("Label_3"));
        assert!(is_label_id("Work/Projects é"));
        for bad in [
            "",
            "Label_1\r\nFrom x",
            "a\tb",
            "a\u{7f}",
            &"a".repeat(1025),
        ] {
            assert!(!is_label_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("18c2f0a9b1d3e4f5"), "18c2f0a9b1d3e4f5");
        assert_eq!(printable("a/b"), "a/b");
        assert_eq!(printable("a\r\nb"), r#""a\r\nb""#);
        assert_eq!(
            printable(&"x".repeat(70)),
            format!("\"{}…\"", "x".repeat(64))
        );
    }
}
