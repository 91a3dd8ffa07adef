//! Key layout: `<prefix>/sha256/<hh>/<hh>/<64 hex>`. The prefix comes from configuration only
//! and is validated to a safe relative path (no `..`, no hidden segments, a small character
//! set), so keys are equally safe as S3 keys and as filesystem paths. Nothing from mail ever
//! reaches a key: the only variable part is the hex digest.

use crate::error::StoreError;
use crate::sha::Sha256;

/// A validated key prefix (possibly empty) and the key scheme built on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Validated prefix without leading/trailing slashes; empty means keys start at `sha256/`.
    prefix: String,
}

impl Layout {
    /// Join and validate prefix parts (e.g. the S3 URL's path, then the configured prefix).
    pub(crate) fn new(parts: &[&str]) -> Result<Self, StoreError> {
        let mut segments = Vec::new();
        for part in parts {
            for segment in part.split('/').filter(|s| !s.is_empty()) {
                validate_segment(part, segment)?;
                segments.push(segment);
            }
        }
        Ok(Self {
            prefix: segments.join("/"),
        })
    }

    /// The directory-like key prefix every object key starts with: `<prefix>/sha256/`.
    pub(crate) fn objects_prefix(&self) -> String {
        if self.prefix.is_empty() {
            "sha256/".to_owned()
        } else {
            format!("{}/sha256/", self.prefix)
        }
    }

    /// The layout of this prefix's trash: `<prefix>/.trash/sha256/<hh>/<hh>/<64 hex>`. A
    /// configured prefix can never name it (no segment may start with `.`), so no org's
    /// objects and no other prefix's trash can collide with it.
    pub(crate) fn trash(&self) -> Layout {
        self.hidden(".trash")
    }

    /// The layout of this prefix's ledger heads (`<prefix>/.ledger-heads/sha256/…`): small
    /// records, content-addressed like objects, that runs leave so gc can tell a database
    /// that is behind the store (`crate::heads`). Hidden as the trash is.
    pub(crate) fn ledger_heads(&self) -> Layout {
        self.hidden(".ledger-heads")
    }

    fn hidden(&self, name: &str) -> Layout {
        Layout {
            prefix: if self.prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{}/{name}", self.prefix)
            },
        }
    }

    /// `<prefix>/.clock-probe-<name>`: where the clock probe writes (outside `sha256/`).
    pub(crate) fn clock_probe_key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            format!(".clock-probe-{name}")
        } else {
            format!("{}/.clock-probe-{name}", self.prefix)
        }
    }

    /// `<prefix>/<path>` for a record kept beside the objects (an anchored
    /// ledger head): `path`'s segments are validated as the prefix's are, and
    /// may not enter `sha256/`.
    pub(crate) fn record_key(&self, path: &str) -> Result<String, StoreError> {
        let record = Layout::new(&[path])?;
        if record.prefix.is_empty() || record.prefix.split('/').next() == Some("sha256") {
            return Err(StoreError::InvalidPrefix {
                prefix: path.to_owned(),
                reason: "a record path names a file outside sha256/".into(),
            });
        }
        Ok(if self.prefix.is_empty() {
            record.prefix
        } else {
            format!("{}/{}", self.prefix, record.prefix)
        })
    }

    /// `<prefix>/sha256/<hh>/<hh>/<64 hex>`.
    pub(crate) fn key_for(&self, sha: &Sha256) -> String {
        let hex = sha.to_hex();
        format!(
            "{}{}/{}/{}",
            self.objects_prefix(),
            &hex[0..2],
            &hex[2..4],
            hex
        )
    }

    /// Parse a key produced by `key_for` back into its digest; `None` for anything else
    /// (foreign objects that happen to live under the prefix).
    pub(crate) fn parse_key(&self, key: &str) -> Option<Sha256> {
        let rest = key.strip_prefix(&self.objects_prefix())?;
        let mut parts = rest.split('/');
        let (a, b, hex) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sha: Sha256 = hex.parse().ok()?;
        let canonical = sha.to_hex();
        (hex == canonical && a == &canonical[0..2] && b == &canonical[2..4]).then_some(sha)
    }
}

fn validate_segment(part: &str, segment: &str) -> Result<(), StoreError> {
    let reject = |reason: &str| StoreError::InvalidPrefix {
        prefix: part.to_owned(),
        reason: reason.to_owned(),
    };
    if segment.starts_with('.') {
        // Covers `.` and `..` (path traversal) and hidden names, which the fs backend uses
        // for staging files.
        return Err(reject("segments must not start with '.'"));
    }
    if segment.len() > 128 {
        return Err(reject("segments are limited to 128 characters"));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '=');
    if !segment.chars().all(allowed) {
        return Err(reject(
            "only ASCII letters, digits and - _ . @ + = are allowed in segments",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_matches_the_design() {
        let sha = Sha256::digest(b"");
        let layout = Layout::new(&["org-1"]).expect("valid");
        assert_eq!(
            layout.key_for(&sha),
            "org-1/sha256/e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(layout.parse_key(&layout.key_for(&sha)), Some(sha));
    }

    #[test]
    fn the_trash_is_beside_the_objects_and_no_prefix_can_name_it() {
        let sha = Sha256::digest(b"");
        let layout = Layout::new(&["org-1"]).expect("valid");
        let trash = layout.trash();
        assert_eq!(
            trash.key_for(&sha),
            "org-1/.trash/sha256/e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(trash.parse_key(&trash.key_for(&sha)), Some(sha));
        assert_eq!(layout.parse_key(&trash.key_for(&sha)), None);
        assert!(!trash.objects_prefix().starts_with(&layout.objects_prefix()));
        assert_eq!(
            Layout::new(&[""]).expect("valid").trash().objects_prefix(),
            ".trash/sha256/"
        );
        assert!(Layout::new(&["org-1/.trash"]).is_err());
    }

    #[test]
    fn url_prefix_comes_before_configured_prefix_and_slashes_are_normalised() {
        let layout = Layout::new(&["/archive/mail/", "org-1"]).expect("valid");
        assert_eq!(layout.objects_prefix(), "archive/mail/org-1/sha256/");
        assert_eq!(
            Layout::new(&["", ""]).expect("valid").objects_prefix(),
            "sha256/"
        );
    }

    #[test]
    fn unsafe_prefixes_are_rejected() {
        for bad in ["..", "a/../b", ".hidden", "a b", "a\\b", "ä"] {
            assert!(
                matches!(Layout::new(&[bad]), Err(StoreError::InvalidPrefix { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        let layout = Layout::new(&["p"]).expect("valid");
        let sha = Sha256::digest(b"x");
        let hex = sha.to_hex();
        for key in [
            format!("q/sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4]),
            format!("p/sha256/00/00/{hex}"),
            format!(
                "p/sha256/{}/{}/{}",
                &hex[0..2],
                &hex[2..4],
                hex.to_uppercase()
            ),
            format!("p/sha256/{}/{}/{hex}/x", &hex[0..2], &hex[2..4]),
            "p/sha256/readme".to_owned(),
        ] {
            assert_eq!(layout.parse_key(&key), None, "{key}");
        }
    }
}
