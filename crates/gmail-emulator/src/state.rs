//! Shared server state and the control operations used by both the Rust handle and
//! the HTTP control API.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Faults, Quota};
use crate::error::EmulatorError;
use crate::limits::Limits;
use crate::model::Mailbox;

pub(crate) struct State {
    /// Keyed by lower-cased address.
    pub mailboxes: HashMap<String, RwLock<Mailbox>>,
    pub default_mailbox: String,
    pub tokens: HashMap<String, String>,
    pub faults: RwLock<Faults>,
    pub quota: RwLock<Quota>,
    pub limits: Limits,
    pub rng: Mutex<StdRng>,
    /// Makes every issued attachmentId distinct.
    pub attachment_nonce: AtomicU64,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl State {
    pub fn new(
        mailboxes: Vec<Mailbox>,
        tokens: HashMap<String, String>,
        faults: Faults,
        quota: Quota,
        seed: u64,
    ) -> Result<Self, EmulatorError> {
        let default_mailbox = mailboxes
            .first()
            .map(|m| m.email.clone())
            .ok_or_else(|| EmulatorError::Config("at least one mailbox is required".into()))?;
        Ok(Self {
            mailboxes: mailboxes
                .into_iter()
                .map(|m| (m.email.to_lowercase(), RwLock::new(m)))
                .collect(),
            default_mailbox,
            tokens: tokens
                .into_iter()
                .map(|(t, m)| (t, m.to_lowercase()))
                .collect(),
            faults: RwLock::new(faults),
            quota: RwLock::new(quota),
            limits: Limits::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed.wrapping_add(7))),
            attachment_nonce: AtomicU64::new(1),
        })
    }

    fn lock_of(&self, mailbox: &str) -> Result<&RwLock<Mailbox>, EmulatorError> {
        self.mailboxes
            .get(&mailbox.to_lowercase())
            .ok_or_else(|| EmulatorError::UnknownMailbox(mailbox.to_string()))
    }

    pub fn read(&self, mailbox: &str) -> Result<RwLockReadGuard<'_, Mailbox>, EmulatorError> {
        Ok(self
            .lock_of(mailbox)?
            .read()
            .unwrap_or_else(|e| e.into_inner()))
    }

    pub fn write(&self, mailbox: &str) -> Result<RwLockWriteGuard<'_, Mailbox>, EmulatorError> {
        Ok(self
            .lock_of(mailbox)?
            .write()
            .unwrap_or_else(|e| e.into_inner()))
    }

    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_faults(&self, f: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = f;
    }

    pub fn quota(&self) -> Quota {
        self.quota.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The statistics, labelled with the active quota table.
    pub fn stats(&self) -> crate::limits::Stats {
        self.limits.stats(self.quota().table)
    }

    pub fn set_quota(&self, q: Quota) {
        *self.quota.write().unwrap_or_else(|e| e.into_inner()) = q;
    }

    /// Draw from the fault RNG: true with probability `rate`.
    pub fn chance(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.random_bool(rate.min(1.0))
    }

    pub fn random_below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.random_range(0..=n)
    }

    /// Resolve a Gmail `userId` path segment to a served mailbox address.
    pub fn resolve_user(&self, user_id: &str, bearer: Option<&str>) -> Result<String, String> {
        if user_id == "me" {
            if self.tokens.is_empty() {
                return Ok(self.default_mailbox.clone());
            }
            return match bearer.and_then(|t| self.tokens.get(t)) {
                Some(m) => Ok(m.clone()),
                None => Err("unauthenticated".into()),
            };
        }
        let key = user_id.to_lowercase();
        match self.mailboxes.get(&key) {
            Some(m) => Ok(m.read().unwrap_or_else(|e| e.into_inner()).email.clone()),
            None => Err(format!("Delegation denied for {user_id}")),
        }
    }

    pub fn insert_raw(
        &self,
        mailbox: &str,
        raw: &[u8],
        labels: &[&str],
        thread_id: Option<&str>,
    ) -> Result<String, EmulatorError> {
        let mut mb = self.write(mailbox)?;
        if let Some(t) = thread_id
            && !mb.threads.contains_key(t)
        {
            return Err(EmulatorError::ThreadNotFound {
                mailbox: mailbox.to_string(),
                id: t.to_string(),
            });
        }
        let label_ids = labels
            .iter()
            .filter_map(|l| mb.resolve_label(l, true))
            .collect();
        Ok(mb.add(
            Bytes::copy_from_slice(raw),
            label_ids,
            thread_id.map(str::to_string),
            now_ms(),
            true,
        ))
    }

    pub fn delete_message(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        if self.write(mailbox)?.delete(id) {
            Ok(())
        } else {
            Err(EmulatorError::MessageNotFound {
                mailbox: mailbox.to_string(),
                id: id.to_string(),
            })
        }
    }

    pub fn modify_labels(
        &self,
        mailbox: &str,
        id: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<(), EmulatorError> {
        let mut mb = self.write(mailbox)?;
        let add: Vec<String> = add
            .iter()
            .filter_map(|l| mb.resolve_label(l, true))
            .collect();
        let remove: Vec<String> = remove
            .iter()
            .filter_map(|l| mb.resolve_label(l, false))
            .collect();
        if mb.modify(id, &add, &remove) {
            Ok(())
        } else {
            Err(EmulatorError::MessageNotFound {
                mailbox: mailbox.to_string(),
                id: id.to_string(),
            })
        }
    }

    /// Adds a user label with exactly this id (see `Emulator::create_label_with_id`).
    pub fn create_label_with_id(
        &self,
        mailbox: &str,
        id: &str,
        name: &str,
    ) -> Result<(), EmulatorError> {
        let mut mb = self.write(mailbox)?;
        mb.labels.insert(
            id.to_string(),
            crate::model::Label {
                id: id.to_string(),
                name: name.to_string(),
                system: false,
            },
        );
        Ok(())
    }

    /// A new user label; returns its id.
    pub fn create_label(&self, mailbox: &str, name: &str) -> Result<String, EmulatorError> {
        self.write(mailbox)?
            .create_label(name)
            .ok_or_else(|| EmulatorError::Label {
                mailbox: mailbox.to_string(),
                label: name.to_string(),
                reason: "empty, or another label has that name".into(),
            })
    }

    pub fn rename_label(&self, mailbox: &str, id: &str, name: &str) -> Result<(), EmulatorError> {
        self.write(mailbox)?
            .rename_label(id, name)
            .map_err(|reason| EmulatorError::Label {
                mailbox: mailbox.to_string(),
                label: id.to_string(),
                reason: reason.into(),
            })
    }

    pub fn delete_label(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        self.write(mailbox)?
            .delete_label(id)
            .map_err(|reason| EmulatorError::Label {
                mailbox: mailbox.to_string(),
                label: id.to_string(),
                reason: reason.into(),
            })
    }

    /// The label id of a name (Gmail's `label:` matching) or id.
    pub fn label_id(&self, mailbox: &str, name_or_id: &str) -> Option<String> {
        let mb = self.read(mailbox).ok()?;
        if mb.labels.contains_key(name_or_id) {
            return Some(name_or_id.to_string());
        }
        mb.find_label_by_name(name_or_id)
    }

    /// Gmail's trash: add TRASH, drop INBOX/SPAM/UNREAD… (only TRASH marks it in lists).
    pub fn trash(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        self.modify_labels(mailbox, id, &["TRASH"], &["INBOX", "SPAM"])
    }

    pub fn set_internal_date(
        &self,
        mailbox: &str,
        id: &str,
        internal_date_ms: i64,
    ) -> Result<(), EmulatorError> {
        if self.write(mailbox)?.set_internal_date(id, internal_date_ms) {
            Ok(())
        } else {
            Err(EmulatorError::MessageNotFound {
                mailbox: mailbox.to_string(),
                id: id.to_string(),
            })
        }
    }

    pub fn expire_history(&self, mailbox: &str) -> Result<(), EmulatorError> {
        self.write(mailbox)?.expire_history();
        Ok(())
    }

    pub fn raw_message(&self, mailbox: &str, id: &str) -> Option<Vec<u8>> {
        let mb = self.read(mailbox).ok()?;
        mb.messages.get(id).map(|m| m.content.raw.to_vec())
    }

    /// Live message ids, newest first.
    pub fn message_ids(&self, mailbox: &str) -> Vec<String> {
        match self.read(mailbox) {
            Ok(mb) => mb.order.iter().map(|(_, id)| id.0.clone()).collect(),
            Err(_) => Vec::new(),
        }
    }
}
