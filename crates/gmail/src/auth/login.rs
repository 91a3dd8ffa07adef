//! `mailingest auth login --credentials FILE`: run the installed-app flow once with a
//! loopback redirect, print the URL to open, and leave a 0600 token cache behind.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use yup_oauth2::authenticator_delegate::InstalledFlowDelegate;

use super::{READONLY_SCOPE, cache_file, installed_authenticator};
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

/// Run the flow once for the gmail.readonly scope and store the refresh token in
/// `token_cache` (created 0600, its directory 0700 if new). Prints the URL to open.
pub async fn login(credentials: &Path, token_cache: &Path) -> Result<(), GmailError> {
    cache_file::prepare_dir(token_cache)?;
    cache_file::tighten(token_cache)?;
    let auth = installed_authenticator(credentials, token_cache, Duration::from_secs(30)).await?;
    auth.token(&[READONLY_SCOPE])
        .await
        .map_err(|e| GmailError::Auth(format!("login failed: {e}")))?;
    cache_file::tighten(token_cache)?;
    eprintln!("Saved the Gmail token to {}", token_cache.display());
    Ok(())
}
