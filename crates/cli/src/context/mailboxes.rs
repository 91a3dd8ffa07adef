//! Finding a mailbox of `--org` by its address, the one way every command
//! that names an existing mailbox does it (backfill and sync register an
//! unknown address instead; the engine resolves theirs). Only the org's rows
//! are read: an address registered in another org only is not found, and
//! naming it is a usage error.

use ingest::domain::MailboxAddress;
use ingest::repo::{MailboxRow, Repository};

use super::Context;
use crate::exit::UsageError;

impl Context {
    /// The mailbox of `--org` with this address (in any case), if registered.
    pub async fn find_mailbox(
        &self,
        repo: &dyn Repository,
        email: &str,
    ) -> anyhow::Result<Option<MailboxRow>> {
        let email = MailboxAddress::normalized(email);
        Ok(repo
            .list_mailboxes(&self.org)
            .await?
            .into_iter()
            .find(|m| m.provider_email == email.as_str()))
    }

    /// Every mailbox of `--org`, or with `only`, that one: an address that is
    /// not registered is an error, not an empty selection.
    pub async fn mailboxes_of_org(
        &self,
        repo: &dyn Repository,
        only: Option<&str>,
    ) -> anyhow::Result<Vec<MailboxRow>> {
        match only {
            Some(email) => match self.find_mailbox(repo, email).await? {
                Some(mailbox) => Ok(vec![mailbox]),
                None => Err(self.no_such_mailbox(email)),
            },
            None => Ok(repo.list_mailboxes(&self.org).await?),
        }
    }

    /// The error for an address `--org` has no mailbox for (exit 2).
    pub fn no_such_mailbox(&self, email: &str) -> anyhow::Error {
        UsageError(format!(
            "no mailbox {} in org {}",
            MailboxAddress::normalized(email),
            self.org
        ))
        .into()
    }
}
