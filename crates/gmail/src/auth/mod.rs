//! Authentication: the `--auth` spec, the token sources handed to google-gmail1, the
//! installed-app login flow and the token cache's file permissions.

mod cache_file;
mod login;
mod provider;
mod spec;

pub use login::login;
pub(crate) use provider::{TokenSource, TransientTokenError};
pub use spec::{AuthSpec, default_token_cache};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use yup_oauth2::authenticator_delegate::InstalledFlowDelegate;
use yup_oauth2::{
    CustomHyperClientBuilder, InstalledFlowAuthenticator, InstalledFlowReturnMethod,
    ServiceAccountAuthenticator, ServiceAccountKey,
};

use crate::GmailError;
use crate::transport;

/// The only scope this crate ever asks for.
pub const READONLY_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// Turns the spec into token sources: one shared source, or one per mailbox (service account).
pub(crate) struct Authority {
    mode: Mode,
}

enum Mode {
    Shared(TokenSource),
    ServiceAccount {
        key: Box<ServiceAccountKey>,
        connect_timeout: Duration,
        // One authenticator per subject: each caches its own token.
        by_subject: Mutex<HashMap<String, TokenSource>>,
    },
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Shared(s) => format!("{s:?}"),
            Mode::ServiceAccount { .. } => "service-account".to_string(),
        };
        f.debug_struct("Authority").field("mode", &mode).finish()
    }
}

impl Authority {
    pub(crate) async fn from_spec(
        spec: &AuthSpec,
        connect_timeout: Duration,
    ) -> Result<Self, GmailError> {
        let mode = match spec {
            AuthSpec::None => Mode::Shared(TokenSource::none()),
            AuthSpec::TokenEnv { var } => Mode::Shared(TokenSource::from_env(var)?),
            AuthSpec::ServiceAccount { key } => {
                let parsed = yup_oauth2::read_service_account_key(key)
                    .await
                    .map_err(|e| {
                        GmailError::Auth(format!(
                            "service-account key {}: {}",
                            key.display(),
                            redact_io(&e)
                        ))
                    })?;
                Mode::ServiceAccount {
                    key: Box::new(parsed),
                    connect_timeout,
                    by_subject: Mutex::new(HashMap::new()),
                }
            }
            AuthSpec::Installed {
                credentials,
                token_cache,
            } => {
                if !token_cache.exists() {
                    return Err(GmailError::Auth(format!(
                        "no token cache at {}; run `mailingest auth login --credentials {}` first",
                        token_cache.display(),
                        credentials.display()
                    )));
                }
                cache_file::tighten(token_cache)?;
                let auth = installed_authenticator(
                    credentials,
                    token_cache,
                    connect_timeout,
                    Interaction::Refuse,
                )
                .await?;
                Mode::Shared(TokenSource::oauth(auth))
            }
        };
        Ok(Authority { mode })
    }

    /// The token source for `mailbox`.
    pub(crate) async fn source_for(&self, mailbox: &str) -> Result<TokenSource, GmailError> {
        match &self.mode {
            Mode::Shared(s) => Ok(s.clone()),
            Mode::ServiceAccount {
                key,
                connect_timeout,
                by_subject,
            } => {
                if let Some(s) = by_subject.lock().ok().and_then(|m| m.get(mailbox).cloned()) {
                    return Ok(s);
                }
                let client = transport::oauth_client(*connect_timeout, &key.token_uri)?;
                let auth = ServiceAccountAuthenticator::with_client(
                    (**key).clone(),
                    CustomHyperClientBuilder::from(client),
                )
                .subject(mailbox)
                .build()
                .await
                .map_err(|e| {
                    GmailError::Auth(format!("service account for {mailbox}: {}", redact_io(&e)))
                })?;
                let source = TokenSource::oauth(auth);
                let mut map = by_subject
                    .lock()
                    .map_err(|_| GmailError::Auth("service-account cache lock poisoned".into()))?;
                // Another task may have built one meanwhile; keep the first.
                Ok(map.entry(mailbox.to_string()).or_insert(source).clone())
            }
        }
    }
}

/// Whether the installed flow may ask the user to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interaction {
    /// `auth login`: print the consent URL and wait for the browser's loopback redirect.
    Login,
    /// Everything else (backfill, sync — often unattended): when the cached refresh token
    /// is refused (invalid_grant: revoked, expired) or missing, fail at once telling the
    /// user to run `mailingest auth login`; never print a URL or wait on a redirect.
    Refuse,
}

/// Build the installed-flow authenticator over our own client, caching to `token_cache`
/// (written atomically, 0600: see `cache_file::TokenFile`).
pub(crate) async fn installed_authenticator(
    credentials: &std::path::Path,
    token_cache: &std::path::Path,
    connect_timeout: Duration,
    interaction: Interaction,
) -> Result<yup_oauth2::authenticator::Authenticator<transport::Connector>, GmailError> {
    let secret = yup_oauth2::read_application_secret(credentials)
        .await
        .map_err(|e| {
            GmailError::Auth(format!(
                "client secret {}: {}",
                credentials.display(),
                redact_io(&e)
            ))
        })?;
    let client = transport::oauth_client(connect_timeout, &secret.token_uri)?;
    let storage = match interaction {
        // `auth login` is how a broken cache gets fixed: start from an empty one.
        Interaction::Login => cache_file::TokenFile::load(token_cache)
            .unwrap_or_else(|_| cache_file::TokenFile::empty(token_cache)),
        Interaction::Refuse => cache_file::TokenFile::load(token_cache)?,
    };
    // yup-oauth2 falls back to the full consent flow whenever a refresh fails. With
    // HTTPRedirect it ignores the delegate's answer and waits for the redirect regardless,
    // so outside `auth login` the flow is Interactive with a delegate that refuses: the
    // refusal comes straight back as the token error.
    let (method, delegate): (_, Box<dyn InstalledFlowDelegate>) = match interaction {
        Interaction::Login => (
            InstalledFlowReturnMethod::HTTPRedirect,
            Box::new(login::PrintUrl),
        ),
        Interaction::Refuse => (
            InstalledFlowReturnMethod::Interactive,
            Box::new(login::RefuseInteractive::new(credentials)),
        ),
    };
    InstalledFlowAuthenticator::with_client(secret, method, CustomHyperClientBuilder::from(client))
        .with_storage(Box::new(storage))
        .flow_delegate(delegate)
        .build()
        .await
        .map_err(|e| {
            GmailError::Auth(format!(
                "token cache {}: {}",
                token_cache.display(),
                redact_io(&e)
            ))
        })
}

/// io errors from yup-oauth2's file readers wrap serde errors that may quote the file's
/// content (a private key, a client secret): keep only the kind.
fn redact_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidData => "not a valid credentials file".to_string(),
        std::io::ErrorKind::NotFound => "file not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        kind => format!("{kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("gmail-auth-{}-{name}", std::process::id()))
    }

    #[tokio::test]
    async fn credential_errors_never_quote_file_contents() {
        let key = tmp("sa.json");
        std::fs::write(
            &key,
            r#"{"private_key": "-----BEGIN PRIVATE KEY-----SECRETKEYMATERIAL"#,
        )
        .expect("write");
        let spec = AuthSpec::ServiceAccount { key: key.clone() };
        let e = Authority::from_spec(&spec, Duration::from_secs(1))
            .await
            .expect_err("truncated key");
        let text = format!("{e} {e:?}");
        assert!(matches!(e, GmailError::Auth(_)), "{text}");
        assert!(text.contains("not a valid credentials file"), "{text}");
        assert!(!text.contains("SECRETKEYMATERIAL"), "{text}");
        let _ = std::fs::remove_file(&key);

        let missing = AuthSpec::ServiceAccount {
            key: tmp("absent.json"),
        };
        let e = Authority::from_spec(&missing, Duration::from_secs(1))
            .await
            .expect_err("missing");
        assert!(e.to_string().contains("file not found"), "{e}");
    }

    #[tokio::test]
    async fn installed_without_a_token_cache_points_at_auth_login() {
        let spec = AuthSpec::Installed {
            credentials: tmp("client_secret.json"),
            token_cache: tmp("no-such-cache.json"),
        };
        let e = Authority::from_spec(&spec, Duration::from_secs(1))
            .await
            .expect_err("no cache");
        assert!(e.to_string().contains("mailingest auth login"), "{e}");
    }

    #[tokio::test]
    async fn login_with_unreadable_secret_fails_cleanly() {
        let secret = tmp("bad_client_secret.json");
        std::fs::write(
            &secret,
            r#"{"installed": {"client_secret": "GOCSPX-TOPSECRET""#,
        )
        .expect("write");
        let cache = tmp("login-dir").join("token.json");
        let e = login(&secret, &cache).await.expect_err("bad secret");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("GOCSPX-TOPSECRET"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir = cache.parent().expect("dir");
            let mode = std::fs::metadata(dir)
                .expect("dir made")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let _ = std::fs::remove_file(&secret);
        let _ = std::fs::remove_dir_all(tmp("login-dir"));
    }
}
