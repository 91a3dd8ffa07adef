//! Store URL parsing: a plain path or `file:///…` selects the filesystem backend,
//! `s3://bucket[/path][?path_style=true|false]` the S3 backend. Credentials in the URL are
//! rejected (they belong in the AWS chain) and never echoed back in errors.

use std::path::PathBuf;

use crate::error::StoreError;

/// Where the store lives, as parsed from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    Fs {
        root: PathBuf,
    },
    S3 {
        bucket: String,
        /// The URL's path (without slashes at the ends); prepended to the configured prefix.
        url_prefix: String,
        /// `?path_style=` from the URL, if given.
        path_style: Option<bool>,
    },
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid(
                "empty; use a directory path, file:///dir or s3://bucket/prefix",
            ));
        }
        let Some((scheme, _)) = url.split_once("://") else {
            // No scheme: a filesystem path (relative or absolute).
            return Ok(Self::Fs {
                root: PathBuf::from(url),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(invalid(
                        "file URLs must not name a host; use file:///absolute/path",
                    ));
                }
                let root = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not a valid absolute file path"))?;
                Ok(Self::Fs { root })
            }
            "s3" => Self::parse_s3(url),
            other => Err(StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: format!(
                    "unsupported scheme {other:?}; use a directory path, file:///dir or s3://bucket/prefix"
                ),
            }),
        }
    }

    fn parse_s3(url: &str) -> Result<Self, StoreError> {
        // Errors here must not echo a URL that may contain a secret.
        let redacted = redact(url);
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: redacted.clone(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "credentials in the URL are not supported; use the AWS credential chain (env, profile, SSO)".into(),
            ));
        }
        if parsed.port().is_some() {
            return Err(invalid(
                "s3:// URLs name a bucket, not a server; set AWS_ENDPOINT_URL for a custom endpoint".into(),
            ));
        }
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(invalid(format!(
                "{bucket:?} is not a valid bucket name (3-63 characters: a-z 0-9 - .)"
            )));
        }
        let mut path_style = None;
        for (name, value) in parsed.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("path_style", "true") => path_style = Some(true),
                ("path_style", "false") => path_style = Some(false),
                ("path_style", other) => {
                    return Err(invalid(format!(
                        "path_style must be true or false, not {other:?}"
                    )));
                }
                (other, _) => return Err(invalid(format!("unknown option {other:?}"))),
            }
        }
        if parsed.fragment().is_some() {
            return Err(invalid("fragments are not allowed".into()));
        }
        Ok(Self::S3 {
            bucket,
            url_prefix: parsed.path().trim_matches('/').to_owned(),
            path_style,
        })
    }
}

/// The URL as shown in errors and logs: any `user:password@` part is replaced.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_file_urls_select_fs() {
        assert_eq!(
            Location::parse("/var/lib/mail").expect("path"),
            Location::Fs {
                root: PathBuf::from("/var/lib/mail")
            }
        );
        assert_eq!(
            Location::parse("relative/dir").expect("path"),
            Location::Fs {
                root: PathBuf::from("relative/dir")
            }
        );
        assert_eq!(
            Location::parse("file:///var/lib/mail%20x").expect("file url"),
            Location::Fs {
                root: PathBuf::from("/var/lib/mail x")
            }
        );
    }

    #[test]
    fn s3_urls_parse_bucket_prefix_and_path_style() {
        assert_eq!(
            Location::parse("s3://my-bucket/archive/mail/?path_style=true").expect("s3"),
            Location::S3 {
                bucket: "my-bucket".into(),
                url_prefix: "archive/mail".into(),
                path_style: Some(true)
            }
        );
        assert_eq!(
            Location::parse("s3://my-bucket").expect("s3"),
            Location::S3 {
                bucket: "my-bucket".into(),
                url_prefix: String::new(),
                path_style: None
            }
        );
    }

    #[test]
    fn bad_urls_are_rejected_clearly() {
        for (url, needle) in [
            ("ftp://host/x", "unsupported scheme"),
            ("s3://B_ad/x", "not a valid bucket"),
            ("s3://bucket/x?foo=1", "unknown option"),
            ("s3://bucket/x?path_style=yes", "path_style"),
            ("s3://bucket:9000/x", "AWS_ENDPOINT_URL"),
            ("", "empty"),
        ] {
            let err = Location::parse(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn credentials_in_url_are_rejected_without_echoing_them() {
        let err = Location::parse("s3://AKIAXXX:supersecret@bucket/x")
            .expect_err("credentials")
            .to_string();
        assert!(err.contains("credential chain"), "{err}");
        assert!(
            !err.contains("supersecret") && !err.contains("AKIAXXX"),
            "{err}"
        );
    }
}
