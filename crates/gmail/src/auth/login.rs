//! `mailingest auth login --credentials FILE`: run the installed-app flow once with a
//! loopback redirect, print the URL to open, and leave a 0600 token cache behind.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use yup_oauth2::authenticator_delegate::InstalledFlowDelegate;

use super::{Interaction, READONLY_SCOPE, cache_file, installed_authenticator};
use crate::GmailError;

/// Prints the consent URL on stderr (stdout stays clean for scripts); the loopback redirect
/// brings the code back, so nothing is read from the terminal.
pub(crate) struct PrintUrl;

impl InstalledFlowDelegate for PrintUrl {
    fn present_user_url<'a>(
        &'a self,
        url: &'a str,
        _need_code: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            eprintln!(
                "Open this URL in a browser to grant read-only Gmail access:\n\n  {url}\n\n\
                 Waiting for the browser to redirect back to this machine…"
            );
            Ok(String::new())
        })
    }
}

/// Outside `auth login`: the consent flow is never started. yup-oauth2 asks for it when the
/// cached refresh token is refused (400 invalid_grant: revoked, expired, password changed)
/// or gone; this answers with one line naming the command that fixes it.
pub(crate) struct RefuseInteractive {
    message: String,
}

impl RefuseInteractive {
    pub(crate) fn new(credentials: &Path) -> Self {
        RefuseInteractive {
            message: format!(
                "cannot refresh the saved Gmail token (revoked or expired, or the token \
                 endpoint unreachable); run `mailingest auth login --credentials {}` to sign \
                 in again",
                credentials.display()
            ),
        }
    }
}

impl InstalledFlowDelegate for RefuseInteractive {
    fn present_user_url<'a>(
        &'a self,
        _url: &'a str,
        _need_code: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move { Err(self.message.clone()) })
    }
}

/// Run the flow once for the gmail.readonly scope and store the refresh token in
/// `token_cache` (created 0600, its directory 0700 if new). Prints the URL to open.
pub async fn login(credentials: &Path, token_cache: &Path) -> Result<(), GmailError> {
    cache_file::prepare_dir(token_cache)?;
    cache_file::tighten(token_cache)?;
    let auth = installed_authenticator(
        credentials,
        token_cache,
        Duration::from_secs(30),
        Interaction::Login,
    )
    .await?;
    auth.token(&[READONLY_SCOPE])
        .await
        .map_err(|e| GmailError::Auth(format!("login failed: {e}")))?;
    cache_file::tighten(token_cache)?;
    eprintln!("Saved the Gmail token to {}", token_cache.display());
    Ok(())
}
