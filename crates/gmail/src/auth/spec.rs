//! `AuthSpec`: which credentials to use, parsed from the CLI's `--auth` string
//! (`installed:FILE`, `service-account:FILE`, `token-env:VAR`, `none`).
//! A spec names files and variables only; it never holds a secret itself.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::GmailError;

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSpec {
    /// A Desktop-app `client_secret.json` plus the token cache written by `auth login`.
    Installed {
        credentials: PathBuf,
        token_cache: PathBuf,
    },
    /// A service-account key with domain-wide delegation; each mailbox is the subject.
    ServiceAccount { key: PathBuf },
    /// A bearer token read from this environment variable (emulator, tests, external minting).
    TokenEnv { var: String },
    /// No Authorization header at all (the emulator without auth).
    None,
}

const FORMS: &str = "expected one of installed:FILE, service-account:FILE, token-env:VAR, none";

impl FromStr for AuthSpec {
    type Err = GmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(AuthSpec::None);
        }
        let Some((kind, arg)) = s.split_once(':') else {
            // The value is not echoed: it may be a token pasted in the wrong place.
            return Err(GmailError::Config(format!(
                "--auth: unrecognised value; {FORMS}"
            )));
        };
        let arg = arg.trim();
        if arg.is_empty() {
            return Err(GmailError::Config(format!(
                "--auth {kind}: missing value after ':' ({FORMS})"
            )));
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "installed" => {
                let credentials = PathBuf::from(arg);
                let token_cache = default_token_cache(&credentials);
                Ok(AuthSpec::Installed {
                    credentials,
                    token_cache,
                })
            }
            "service-account" => Ok(AuthSpec::ServiceAccount {
                key: PathBuf::from(arg),
            }),
            "token-env" => {
                let valid = arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(GmailError::Config(
                        "--auth token-env: the value is not an environment variable name \
                         (letters, digits and '_'; pass the variable's name, not the token)"
                            .to_string(),
                    ));
                }
                Ok(AuthSpec::TokenEnv {
                    var: arg.to_string(),
                })
            }
            other => Err(GmailError::Config(format!(
                "--auth: unknown kind {other:?}; {FORMS}"
            ))),
        }
    }
}

/// Where `installed:` keeps its refresh token: `$XDG_CONFIG_HOME/mailingest/gmail-token.json`,
/// else `$HOME/.config/mailingest/gmail-token.json`, else next to the credentials file.
pub fn default_token_cache(credentials: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        });
    match base {
        Some(dir) => dir.join("mailingest").join("gmail-token.json"),
        None => credentials.with_file_name("mailingest-gmail-token.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("none".parse::<AuthSpec>().ok(), Some(AuthSpec::None));
        assert_eq!(
            "token-env:GMAIL_TOKEN".parse::<AuthSpec>().ok(),
            Some(AuthSpec::TokenEnv {
                var: "GMAIL_TOKEN".into()
            })
        );
        assert_eq!(
            "service-account:/etc/sa.json".parse::<AuthSpec>().ok(),
            Some(AuthSpec::ServiceAccount {
                key: "/etc/sa.json".into()
            })
        );
        match "installed:/tmp/client_secret.json".parse::<AuthSpec>() {
            Ok(AuthSpec::Installed {
                credentials,
                token_cache,
            }) => {
                assert_eq!(credentials, PathBuf::from("/tmp/client_secret.json"));
                assert!(token_cache.ends_with("gmail-token.json"), "{token_cache:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_specs_with_clear_errors() {
        for bad in [
            "",
            "bogus",
            "installed:",
            "oauth:/x",
            "token-env:ya29.secret-token",
        ] {
            let err = bad.parse::<AuthSpec>().expect_err(bad).to_string();
            assert!(err.starts_with("gmail config: --auth"), "{bad:?} → {err}");
        }
        // A token pasted where the variable name belongs is not echoed back in full.
        let err = "token-env:ya29.secret-token"
            .parse::<AuthSpec>()
            .expect_err("token instead of a name")
            .to_string();
        assert!(err.contains("not an environment variable name"), "{err}");
        assert!(!err.contains("ya29.secret-token"), "{err}");
    }
}
