//! Token sources behind google-gmail1's `GetToken`: a yup-oauth2 authenticator (installed
//! flow, or service account with one subject per mailbox), a bearer token from an
//! environment variable, or nothing. A 401 marks the source so the next fetch is a forced
//! refresh (re-reading the variable for `token-env`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use google_gmail1::common::GetToken;
use yup_oauth2::authenticator::Authenticator;

use crate::GmailError;
use crate::secret::Secret;
use crate::transport::Connector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<String>, BoxError>> + Send + 'a>>;

/// A token source for one mailbox (or shared by all, for installed/env/none).
#[derive(Clone)]
pub(crate) struct TokenSource(Arc<Inner>);

struct Inner {
    kind: Kind,
    refresh_next: AtomicBool,
}

enum Kind {
    OAuth(Authenticator<Connector>),
    Env { var: String, token: RwLock<Secret> },
    None,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0.kind {
            Kind::OAuth(_) => "oauth",
            Kind::Env { .. } => "token-env",
            Kind::None => "none",
        };
        f.debug_struct("TokenSource")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    fn wrap(kind: Kind) -> Self {
        TokenSource(Arc::new(Inner {
            kind,
            refresh_next: AtomicBool::new(false),
        }))
    }

    pub(crate) fn oauth(auth: Authenticator<Connector>) -> Self {
        Self::wrap(Kind::OAuth(auth))
    }

    pub(crate) fn none() -> Self {
        Self::wrap(Kind::None)
    }

    /// Read the token from `var` now, so a missing variable is a config error at start-up.
    pub(crate) fn from_env(var: &str) -> Result<Self, GmailError> {
        let token = read_env_token(var)?;
        Ok(Self::wrap(Kind::Env {
            var: var.to_string(),
            token: RwLock::new(token),
        }))
    }

    /// After a 401: the next `get_token` fetches a fresh token instead of the cached one.
    pub(crate) fn invalidate(&self) {
        self.0.refresh_next.store(true, Ordering::SeqCst);
    }

    /// The static token, when there is one, so error text can be scrubbed of it.
    pub(crate) fn known_secret(&self) -> Option<Secret> {
        match &self.0.kind {
            Kind::Env { token, .. } => token.read().ok().map(|t| t.clone()),
            _ => None,
        }
    }

    async fn fetch(&self, scopes: &[&str]) -> Result<Option<String>, BoxError> {
        let refresh = self.0.refresh_next.swap(false, Ordering::SeqCst);
        match &self.0.kind {
            Kind::None => Ok(None),
            Kind::Env { var, token } => {
                if refresh {
                    let fresh =
                        read_env_token(var).map_err(|e| -> BoxError { e.to_string().into() })?;
                    if let Ok(mut slot) = token.write() {
                        *slot = fresh;
                    }
                }
                let t = token
                    .read()
                    .map_err(|_| -> BoxError { "token lock poisoned".into() })?;
                Ok(Some(t.expose().to_string()))
            }
            Kind::OAuth(auth) => {
                let tok = if refresh {
                    auth.force_refreshed_token(scopes).await
                } else {
                    auth.token(scopes).await
                };
                let tok = tok.map_err(classify_oauth_error)?;
                Ok(tok.token().map(str::to_owned))
            }
        }
    }
}

/// A token-endpoint failure worth retrying (connection trouble), as opposed to a refusal.
#[derive(Debug)]
pub(crate) struct TransientTokenError(pub(crate) String);

impl std::fmt::Display for TransientTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransientTokenError {}

fn classify_oauth_error(e: yup_oauth2::Error) -> BoxError {
    use yup_oauth2::Error as Y;
    match e {
        Y::HttpError(_) | Y::HttpClientError(_) | Y::LowLevelError(_) => {
            Box::new(TransientTokenError(format!("oauth token endpoint: {e}")))
        }
        // serde errors may quote the response body, which can hold a token: drop the text.
        Y::JSONError(_) => "oauth token endpoint: unexpected response".into(),
        // Our refusal to start the consent flow outside `auth login`: its text is the advice.
        Y::UserError(m) => format!("oauth token: {m}").into(),
        // AuthError carries the server's error code and description, never a token.
        other => format!("oauth token: {other}").into(),
    }
}

fn read_env_token(var: &str) -> Result<Secret, GmailError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        Ok(_) => Err(GmailError::Auth(format!(
            "environment variable {var} is empty"
        ))),
        Err(_) => Err(GmailError::Auth(format!(
            "environment variable {var} is not set (or not valid UTF-8)"
        ))),
    }
}

impl GetToken for TokenSource {
    fn get_token<'a>(&'a self, scopes: &'a [&str]) -> TokenFuture<'a> {
        Box::pin(self.fetch(scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_source_rereads_after_invalidate() {
        // A variable name unique to this test: tests in this binary run in parallel.
        let var = "GMAIL_CRATE_TEST_PROVIDER_TOKEN";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(var, "first-token-value") };
        let src = TokenSource::from_env(var).expect("set");
        assert_eq!(
            src.fetch(&[]).await.ok().flatten().as_deref(),
            Some("first-token-value")
        );
        unsafe { std::env::set_var(var, "second-token-value") };
        assert_eq!(
            src.fetch(&[]).await.ok().flatten().as_deref(),
            Some("first-token-value")
        );
        src.invalidate();
        assert_eq!(
            src.fetch(&[]).await.ok().flatten().as_deref(),
            Some("second-token-value")
        );
        assert!(!format!("{src:?}").contains("token-value"));
        unsafe { std::env::remove_var(var) };
        assert!(matches!(
            TokenSource::from_env(var),
            Err(GmailError::Auth(m)) if m.contains(var)
        ));
    }
}
