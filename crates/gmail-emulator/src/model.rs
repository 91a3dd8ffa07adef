//! The in-memory mailbox: messages, threads, labels and the history log.
//!
//! A `Mailbox` is always used behind a lock; methods here never block or await.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::mime_tree::Parsed;

/// Message content shared by every copy of a message's metadata; caches are filled lazily.
#[derive(Debug)]
pub(crate) struct Content {
    pub raw: Bytes,
    raw_b64: OnceLock<Arc<str>>,
    parsed: OnceLock<Arc<Parsed>>,
}

impl Content {
    pub fn new(raw: Bytes) -> Arc<Self> {
        Arc::new(Self {
            raw,
            raw_b64: OnceLock::new(),
            parsed: OnceLock::new(),
        })
    }

    /// base64url WITH padding, as Gmail sends `raw`.
    pub fn raw_b64(&self) -> Arc<str> {
        self.raw_b64
            .get_or_init(|| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE
                    .encode(&self.raw)
                    .into()
            })
            .clone()
    }

    /// The cached light tree (no bodies): snippet, structure, sizes, headers.
    pub fn parsed(&self) -> Arc<Parsed> {
        self.parsed
            .get_or_init(|| Arc::new(Parsed::parse_light(&self.raw)))
            .clone()
    }
}

/// One message's metadata; cheap to clone out of the lock.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: String,
    pub thread_id: String,
    /// Label ids, sorted.
    pub labels: Vec<String>,
    pub internal_date_ms: i64,
    pub history_id: u64,
    pub content: Arc<Content>,
}

impl Message {
    pub fn has_label(&self, id: &str) -> bool {
        self.labels.iter().any(|l| l == id)
    }
    pub fn is_spam_or_trash(&self) -> bool {
        self.has_label("SPAM") || self.has_label("TRASH")
    }
    pub fn order_key(&self) -> OrderKey {
        (Reverse(self.internal_date_ms), Reverse(self.id.clone()))
    }
    pub fn msg_ref(&self) -> MsgRef {
        MsgRef {
            id: self.id.clone(),
            thread_id: self.thread_id.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// Newest first; ties broken by id (descending, ids grow with insertion).
pub(crate) type OrderKey = (Reverse<i64>, Reverse<String>);

#[derive(Debug, Clone)]
pub(crate) struct MsgRef {
    pub id: String,
    pub thread_id: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Change {
    Added,
    Deleted,
    LabelsAdded(Vec<String>),
    LabelsRemoved(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct HistoryRecord {
    pub id: u64,
    pub change: Change,
    pub message: MsgRef,
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub id: String,
    pub name: String,
    pub system: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadInfo {
    /// Message ids, oldest first.
    pub messages: Vec<String>,
    /// Highest historyId of any change that touched the thread (deletions included).
    pub history_id: u64,
}

pub(crate) const SYSTEM_LABELS: &[&str] = &[
    "INBOX",
    "SENT",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "SPAM",
    "TRASH",
    "DRAFT",
    "CHAT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

#[derive(Debug)]
pub(crate) struct Mailbox {
    pub email: String,
    pub messages: HashMap<String, Message>,
    pub order: BTreeSet<OrderKey>,
    pub threads: HashMap<String, ThreadInfo>,
    /// Label id → label.
    pub labels: BTreeMap<String, Label>,
    pub history: Vec<HistoryRecord>,
    /// A startHistoryId below this is too old (404).
    pub history_floor: u64,
    pub history_id: u64,
    next_id: u64,
    next_label: u32,
    rng: StdRng,
}

impl Mailbox {
    pub fn new(email: &str, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let labels = SYSTEM_LABELS
            .iter()
            .map(|l| {
                (
                    (*l).to_string(),
                    Label {
                        id: (*l).to_string(),
                        name: (*l).to_string(),
                        system: true,
                    },
                )
            })
            .collect();
        // Gmail ids are 16 hex digits derived from time; start somewhere plausible.
        let next_id = 0x18c0_0000_0000_0000u64 + (rng.random::<u32>() as u64) * 0x1_0000;
        let history_id = 1000 + rng.random_range(0..100_000u64);
        Self {
            email: email.to_string(),
            messages: HashMap::new(),
            order: BTreeSet::new(),
            threads: HashMap::new(),
            labels,
            history: Vec::new(),
            history_floor: history_id,
            history_id,
            next_id,
            next_label: 1,
            rng,
        }
    }

    /// Advance historyId by a random gap (Gmail's ids are increasing, not contiguous).
    fn bump_history(&mut self) -> u64 {
        self.history_id += self.rng.random_range(1..=7u64);
        self.history_id
    }

    fn new_message_id(&mut self) -> String {
        self.next_id += self.rng.random_range(1..=0x3fffu64);
        format!("{:016x}", self.next_id)
    }

    /// Resolve a label given by id or (case-insensitively) by name; creates user labels
    /// for unknown names when `create` is set.
    pub fn resolve_label(&mut self, name_or_id: &str, create: bool) -> Option<String> {
        if self.labels.contains_key(name_or_id) {
            return Some(name_or_id.to_string());
        }
        if let Some(l) = self.find_label_by_name(name_or_id) {
            return Some(l);
        }
        if !create {
            return None;
        }
        let id = format!("Label_{}", self.next_label);
        self.next_label += 1;
        self.labels.insert(
            id.clone(),
            Label {
                id: id.clone(),
                name: name_or_id.to_string(),
                system: false,
            },
        );
        Some(id)
    }

    /// A new user label, as Gmail's labels.create: refused (None) when the
    /// name is empty or another label already has it.
    pub fn create_label(&mut self, name: &str) -> Option<String> {
        if name.trim().is_empty() || self.labels.values().any(|l| l.name == name) {
            return None;
        }
        self.resolve_label(name, true)
    }

    /// Renames a user label (labels.patch); Gmail's own labels cannot be
    /// renamed, and two labels never share a name. Touches no message and
    /// no history, as in Gmail.
    pub fn rename_label(&mut self, id: &str, name: &str) -> Result<(), &'static str> {
        if name.trim().is_empty() {
            return Err("a label needs a name");
        }
        if self.labels.values().any(|l| l.name == name && l.id != id) {
            return Err("another label has that name");
        }
        match self.labels.get_mut(id) {
            None => Err("no such label"),
            Some(l) if l.system => Err("a system label cannot be renamed"),
            Some(l) => {
                l.name = name.to_string();
                Ok(())
            }
        }
    }

    /// Deletes a user label (labels.delete): every message carrying it loses
    /// it first, recorded in history as Gmail records a label removed.
    pub fn delete_label(&mut self, id: &str) -> Result<(), &'static str> {
        match self.labels.get(id) {
            None => return Err("no such label"),
            Some(l) if l.system => return Err("a system label cannot be deleted"),
            Some(_) => {}
        }
        let carrying: Vec<String> = self
            .messages
            .values()
            .filter(|m| m.has_label(id))
            .map(|m| m.id.clone())
            .collect();
        let gone = [id.to_string()];
        for message in carrying {
            self.modify(&message, &[], &gone);
        }
        self.labels.remove(id);
        Ok(())
    }

    /// Gmail's `label:` matches names case-insensitively, with spaces and slashes as `-`.
    pub fn find_label_by_name(&self, name: &str) -> Option<String> {
        let norm = |s: &str| s.to_lowercase().replace([' ', '/'], "-");
        let want = norm(name);
        self.labels
            .values()
            .find(|l| norm(&l.name) == want || l.id.eq_ignore_ascii_case(name))
            .map(|l| l.id.clone())
    }

    fn touch_thread(&mut self, thread_id: &str, hid: u64) {
        if let Some(t) = self.threads.get_mut(thread_id) {
            t.history_id = t.history_id.max(hid);
        }
    }

    /// Add a message. `record` = false for the initial population (not in history).
    pub fn add(
        &mut self,
        raw: Bytes,
        labels: Vec<String>,
        thread_id: Option<String>,
        internal_date_ms: i64,
        record: bool,
    ) -> String {
        let id = self.new_message_id();
        let thread_id = thread_id.unwrap_or_else(|| id.clone());
        let hid = self.bump_history();
        let mut labels = labels;
        labels.sort();
        labels.dedup();
        let msg = Message {
            id: id.clone(),
            thread_id: thread_id.clone(),
            labels,
            internal_date_ms,
            history_id: hid,
            content: Content::new(raw),
        };
        self.order.insert(msg.order_key());
        let thread = self.threads.entry(thread_id.clone()).or_default();
        // Keep thread members sorted by date (imports may arrive out of order).
        let pos = thread
            .messages
            .iter()
            .position(|m| {
                self.messages
                    .get(m)
                    .is_some_and(|o| o.internal_date_ms > internal_date_ms)
            })
            .unwrap_or(thread.messages.len());
        thread.messages.insert(pos, id.clone());
        thread.history_id = thread.history_id.max(hid);
        if record {
            self.history.push(HistoryRecord {
                id: hid,
                change: Change::Added,
                message: msg.msg_ref(),
            });
        } else {
            self.history_floor = hid;
        }
        self.messages.insert(id.clone(), msg);
        id
    }

    /// Changes a message's internalDate in place (a test's way to serve a
    /// date our columns cannot hold). Not a history event: Gmail never changes it.
    pub fn set_internal_date(&mut self, id: &str, internal_date_ms: i64) -> bool {
        let Some(msg) = self.messages.get_mut(id) else {
            return false;
        };
        self.order.remove(&msg.order_key());
        msg.internal_date_ms = internal_date_ms;
        self.order.insert(msg.order_key());
        true
    }

    pub fn delete(&mut self, id: &str) -> bool {
        let Some(msg) = self.messages.remove(id) else {
            return false;
        };
        self.order.remove(&msg.order_key());
        let hid = self.bump_history();
        let empty = if let Some(t) = self.threads.get_mut(&msg.thread_id) {
            t.messages.retain(|m| m != id);
            t.history_id = t.history_id.max(hid);
            t.messages.is_empty()
        } else {
            false
        };
        if empty {
            self.threads.remove(&msg.thread_id);
        }
        self.history.push(HistoryRecord {
            id: hid,
            change: Change::Deleted,
            message: msg.msg_ref(),
        });
        true
    }

    /// Apply label changes (ids). Records one history record per direction that changed.
    pub fn modify(&mut self, id: &str, add: &[String], remove: &[String]) -> bool {
        let Some(msg) = self.messages.get(id) else {
            return false;
        };
        let added: Vec<String> = add
            .iter()
            .filter(|l| !msg.has_label(l))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let removed: Vec<String> = remove
            .iter()
            .filter(|l| msg.has_label(l) && !add.contains(l))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (change, ls) in [(true, added), (false, removed)] {
            if ls.is_empty() {
                continue;
            }
            let hid = self.bump_history();
            let Some(msg) = self.messages.get_mut(id) else {
                return false;
            };
            if change {
                msg.labels.extend(ls.iter().cloned());
                msg.labels.sort();
            } else {
                msg.labels.retain(|l| !ls.contains(l));
            }
            msg.history_id = hid;
            let r = msg.msg_ref();
            let thread_id = msg.thread_id.clone();
            self.history.push(HistoryRecord {
                id: hid,
                change: if change {
                    Change::LabelsAdded(ls)
                } else {
                    Change::LabelsRemoved(ls)
                },
                message: r,
            });
            self.touch_thread(&thread_id, hid);
        }
        true
    }

    /// Forget all history: any startHistoryId before the current one is now too old.
    pub fn expire_history(&mut self) {
        self.history.clear();
        let hid = self.bump_history();
        self.history_floor = hid;
    }

    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }
}
