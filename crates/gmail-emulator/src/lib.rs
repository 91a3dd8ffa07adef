//! gmail-emulator: a Gmail REST v1 emulator (the wire format google-gmail1 and Google's
//! client libraries speak) with synthetic or imported mail, a control API and faults.
//!
//! Served (GET, under `{url}gmail/v1/users/{userId}/`): `profile`, `messages`,
//! `messages/{id}` (format minimal|metadata|full|raw), `messages/{id}/attachments/{aid}`,
//! `threads`, `threads/{id}`, `history`, `labels`; batches at `{url}batch/gmail/v1` and
//! `{url}batch`; the control API under `{url}_emulator/` (see `control.rs`).
//!
//! Wire choices (as Gmail): uint64/int64 fields (historyId, internalDate, history ids) are
//! JSON strings, int32 fields (sizeEstimate, body.size, messagesTotal) are numbers; `raw`
//! is padded base64url, part and attachment `data` is unpadded base64url (google-gmail1 7
//! cannot decode unpadded data whose length is not a multiple of 4 — use `raw`).
//! Initial (generated/imported) mail is not in history: the retained history starts at
//! the historyId the mailbox had when the emulator started.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gmail_emulator::EmulatorError> {
//! let emu = gmail_emulator::Emulator::start(Default::default()).await?;
//! println!("point a Gmail client at {}", emu.url());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod batch;
mod config;
mod control;
mod error;
mod generator;
mod handlers;
mod import;
mod limits;
mod mime_tree;
mod model;
mod pacific;
mod query;
mod quota_table;
mod server;
mod state;
mod takeout;
mod vault;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{EmulatorConfig, Faults, Quota};
pub use error::EmulatorError;
pub use limits::{MethodStats, Stats};
pub use quota_table::QuotaTable;

use model::Mailbox;
use state::State;

/// A running emulator. Cloning shares the same server.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<State>,
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

fn populate(config: &EmulatorConfig, now: i64) -> Result<Vec<Mailbox>, EmulatorError> {
    let mut out = Vec::new();
    for (i, email) in config.mailboxes.iter().enumerate() {
        let seed = config.seed.wrapping_add(i as u64);
        let mut mb = Mailbox::new(email, seed);
        if i == 0
            && let Some(path) = &config.import
        {
            let mut msgs = import::load(path, now)?;
            msgs.sort_by_key(|m| m.internal_date_ms);
            let mut threads: HashMap<String, String> = HashMap::new();
            for m in msgs {
                let labels = m
                    .labels
                    .iter()
                    .filter_map(|l| mb.resolve_label(l, true))
                    .collect();
                let tid = threads.get(&m.thread_key).cloned();
                let id = mb.add(
                    Bytes::from(m.raw),
                    labels,
                    tid.clone(),
                    m.internal_date_ms,
                    false,
                );
                threads.entry(m.thread_key).or_insert(id);
            }
        }
        let generated = generator::generate(
            seed,
            config.messages,
            config.days,
            now,
            config.large_attachments,
            config.attachment_percent,
            email,
        )?;
        let mut order: Vec<usize> = (0..generated.len()).collect();
        order.sort_by_key(|i| (generated[*i].internal_date_ms, *i));
        let mut roots: HashMap<usize, String> = HashMap::new();
        let mut generated: Vec<Option<generator::Generated>> =
            generated.into_iter().map(Some).collect();
        for i in order {
            let Some(g) = generated.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let labels = g
                .labels
                .iter()
                .filter_map(|l| mb.resolve_label(l, true))
                .collect();
            let tid = roots.get(&g.thread_root).cloned();
            let id = mb.add(Bytes::from(g.raw), labels, tid, g.internal_date_ms, false);
            roots.entry(g.thread_root).or_insert(id);
        }
        out.push(mb);
    }
    Ok(out)
}

impl Emulator {
    /// Build the mailboxes and start serving on `config.addr` (default 127.0.0.1:0).
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        if config.mailboxes.is_empty() {
            return Err(EmulatorError::Config(
                "at least one mailbox is required".into(),
            ));
        }
        let now = state::now_ms();
        let cfg = config.clone();
        // Generation is CPU work: keep it off the async workers.
        let mailboxes = tokio::task::spawn_blocking(move || populate(&cfg, now))
            .await
            .map_err(|e| EmulatorError::Generate(e.to_string()))??;
        let state = Arc::new(State::new(
            mailboxes,
            config.tokens.clone(),
            config.faults.clone(),
            config.quota.clone(),
            config.seed,
        )?);
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = server::router(state.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "gmail emulator server stopped");
            }
        });
        Ok(Emulator {
            inner: Arc::new(Inner {
                state,
                addr,
                stop: Mutex::new(Some(tx)),
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// Parses and base64-encodes every stored message now instead of on its first
    /// fetch (both are cached per message). For benchmarks: the first backfill of a
    /// large mailbox otherwise pays the emulator's first-touch work on the same CPUs
    /// as the system under test (~10 s for 20,000 messages on 2 cores).
    pub async fn warm_caches(&self) {
        let state = self.inner.state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for mailbox in state.mailboxes.values() {
                let contents: Vec<_> = mailbox
                    .read()
                    .map(|mb| mb.messages.values().map(|m| m.content.clone()).collect())
                    .unwrap_or_default();
                for content in contents {
                    content.parsed();
                    content.raw_b64();
                }
            }
        })
        .await;
    }

    /// Base URL with trailing slash, e.g. "http://127.0.0.1:41234/".
    pub fn url(&self) -> String {
        format!("http://{}/", self.inner.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The mailbox `me` means without a token map.
    pub fn default_mailbox(&self) -> String {
        self.inner.state.default_mailbox.clone()
    }

    /// Insert a raw RFC 822 message (labels by id or name; unknown names become user
    /// labels); returns the new message id. Recorded in history as messagesAdded.
    pub fn insert_raw(
        &self,
        mailbox: &str,
        raw: &[u8],
        labels: &[&str],
        thread_id: Option<&str>,
    ) -> Result<String, EmulatorError> {
        self.inner.state.insert_raw(mailbox, raw, labels, thread_id)
    }

    /// Permanently delete a message (history: messagesDeleted).
    pub fn delete_message(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        self.inner.state.delete_message(mailbox, id)
    }

    /// Add/remove labels (ids or names).
    pub fn modify_labels(
        &self,
        mailbox: &str,
        id: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<(), EmulatorError> {
        self.inner.state.modify_labels(mailbox, id, add, remove)
    }

    /// Adds a user label with exactly this id, which [`Emulator::modify_labels`] then
    /// accepts: any id, even one Gmail never makes (a CR/LF in it), so tests can play a
    /// broken or hostile endpoint.
    pub fn create_label_with_id(
        &self,
        mailbox: &str,
        id: &str,
        name: &str,
    ) -> Result<(), EmulatorError> {
        self.inner.state.create_label_with_id(mailbox, id, name)
    }

    /// Creates a user label (Gmail's labels.create); returns its id. Refused
    /// when another label has the name.
    pub fn create_label(&self, mailbox: &str, name: &str) -> Result<String, EmulatorError> {
        self.inner.state.create_label(mailbox, name)
    }

    /// Renames a user label by id (labels.patch); no message or history
    /// changes, as in Gmail.
    pub fn rename_label(&self, mailbox: &str, id: &str, name: &str) -> Result<(), EmulatorError> {
        self.inner.state.rename_label(mailbox, id, name)
    }

    /// Deletes a user label by id (labels.delete); the messages carrying it
    /// lose it (history: labelsRemoved).
    pub fn delete_label(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        self.inner.state.delete_label(mailbox, id)
    }

    /// The id of a label given by name (or id).
    pub fn label_id(&self, mailbox: &str, name_or_id: &str) -> Option<String> {
        self.inner.state.label_id(mailbox, name_or_id)
    }

    /// Move to trash (adds TRASH, removes INBOX/SPAM).
    pub fn trash(&self, mailbox: &str, id: &str) -> Result<(), EmulatorError> {
        self.inner.state.trash(mailbox, id)
    }

    /// Forget history: every startHistoryId before now answers 404.
    /// Serve a message with another internalDate (any i64, e.g. one beyond
    /// what a timestamp column holds). Not recorded in history.
    pub fn set_internal_date(
        &self,
        mailbox: &str,
        id: &str,
        internal_date_ms: i64,
    ) -> Result<(), EmulatorError> {
        self.inner
            .state
            .set_internal_date(mailbox, id, internal_date_ms)
    }

    pub fn expire_history(&self, mailbox: &str) {
        if let Err(e) = self.inner.state.expire_history(mailbox) {
            tracing::warn!(error = %e, "expire_history on unknown mailbox");
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.inner.state.set_faults(faults);
    }

    pub fn set_quota(&self, quota: Quota) {
        self.inner.state.set_quota(quota);
    }

    /// Calls and quota units per mailbox per method, peak concurrency, faults injected.
    pub fn stats(&self) -> Stats {
        self.inner.state.stats()
    }

    /// Zero the statistics and forget every quota window (users' and the project's).
    pub fn reset_stats(&self) {
        self.inner.state.limits.reset();
    }

    /// The exact stored bytes of a message.
    pub fn raw_message(&self, mailbox: &str, id: &str) -> Option<Vec<u8>> {
        self.inner.state.raw_message(mailbox, id)
    }

    /// All live message ids (newest first).
    pub fn message_ids(&self, mailbox: &str) -> Vec<String> {
        self.inner.state.message_ids(mailbox)
    }

    /// Current historyId of a mailbox.
    pub fn history_id(&self, mailbox: &str) -> Option<u64> {
        self.inner.state.read(mailbox).ok().map(|m| m.history_id)
    }

    /// Thread id of a message.
    pub fn thread_of(&self, mailbox: &str, id: &str) -> Option<String> {
        let mb = self.inner.state.read(mailbox).ok()?;
        mb.messages.get(id).map(|m| m.thread_id.clone())
    }

    /// Stop serving and wait for the server task (other clones stop too).
    pub async fn shutdown(self) {
        let stop = self
            .inner
            .stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tx) = stop {
            let _ = tx.send(());
        }
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}
