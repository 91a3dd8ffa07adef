//! `Secret`: a string that never prints. Debug and Display say `[redacted]`; the only way to
//! the value is `expose()`, used where the Authorization header is built.

/// A bearer token or similar credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value. Call sites are the header builder and `scrub`; nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Remove every occurrence of this secret from `text` (error bodies echoed by a server).
    pub fn scrub(&self, text: &str) -> String {
        // Short values would shred ordinary text and are not real tokens anyway.
        if self.0.len() < 8 {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_scrubs() {
        let s = Secret::new("ya29.very-secret-value");
        assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
        assert_eq!(
            s.scrub("bad token ya29.very-secret-value!"),
            "bad token [redacted]!"
        );
        assert_eq!(s.expose(), "ya29.very-secret-value");
    }
}
