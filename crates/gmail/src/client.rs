//! `GmailClient`: the typed, quota-aware API the ingest engine uses. One google-gmail1 hub,
//! limiter and metrics table per mailbox, created on first use; the client is an `Arc` and
//! cheap to clone.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::stream::BoxStream;
use google_gmail1::Gmail;
use google_gmail1::common::Body;
use hyper_util::client::legacy::Client;

use crate::GmailError;
use crate::auth::Authority;
use crate::call::{Mailbox, Recorder, SCOPE, settle};
use crate::config::{ClientConfig, QuotaConfig};
use crate::limiter::{MailboxLimiter, MinuteWindow, Pacer, TokenBucket};
use crate::metrics::{ApiMetrics, Method, MetricsTable};
use crate::paginate::{Page, paginate};
use crate::query::build_q;
use crate::quota_table::QuotaTable;
use crate::shared_quota::{SharedPacer, SharedQuota};
use crate::transport::{self, Connector, Endpoint};
use crate::types::*;
use crate::wire::{
    JHistoryList, JLabelList, JMessage, JMessageList, JProfile, JThread, JThreadList,
};

/// The Gmail client. Clone + Send + Sync.
#[derive(Clone)]
pub struct GmailClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    endpoint: Endpoint,
    http: Client<Connector, Body>,
    authority: Authority,
    mailboxes: Mutex<HashMap<String, Arc<Mailbox>>>,
    /// Whether the endpoint has ever answered (any HTTP status): until it has,
    /// a transport failure is more likely a wrong or dead endpoint than a blip.
    endpoint_answered: Arc<AtomicBool>,
    /// A budget shared with other processes (`share_quota`), for every mailbox.
    shared: Arc<OnceLock<SharedPacer>>,
}

impl std::fmt::Debug for GmailClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailClient")
            .field("endpoint", &self.inner.endpoint.base)
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

fn validate(q: &QuotaConfig) -> Result<(), GmailError> {
    let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
    if !positive(q.units_per_second) {
        return Err(GmailError::Config(format!(
            "quota units per second must be > 0 (got {:?})",
            q.units_per_second
        )));
    }
    if !positive(q.units_per_minute) {
        return Err(GmailError::Config(format!(
            "quota units per minute must be > 0 (got {:?})",
            q.units_per_minute
        )));
    }
    if !(q.headroom.is_finite() && (0.0..0.5).contains(&q.headroom)) {
        return Err(GmailError::Config(format!(
            "quota headroom must be in [0, 0.5) (got {})",
            q.headroom
        )));
    }
    if let Some(rate) = q.units_per_second
        && !(q.burst_units.is_finite() && q.burst_units >= 0.0 && q.burst_units <= rate)
    {
        return Err(GmailError::Config(format!(
            "quota burst must be between 0 and one second of quota (got {})",
            q.burst_units
        )));
    }
    if q.max_concurrent == 0 {
        return Err(GmailError::Config(
            "max concurrent requests must be ≥ 1".into(),
        ));
    }
    Ok(())
}

impl GmailClient {
    /// Validate the config, build the HTTPS (or loopback HTTP) client and load credentials.
    pub async fn new(config: ClientConfig) -> Result<Self, GmailError> {
        let endpoint = transport::parse_endpoint(&config.endpoint)?;
        validate(&config.quota)?;
        if config.retry.max_attempts == 0 {
            return Err(GmailError::Config("retry max_attempts must be ≥ 1".into()));
        }
        let http = transport::api_client(transport::connector(
            endpoint.plain_http,
            config.connect_timeout,
        )?);
        let authority = Authority::from_spec(&config.auth, config.connect_timeout).await?;
        Ok(GmailClient {
            inner: Arc::new(Inner {
                config,
                endpoint,
                http,
                authority,
                mailboxes: Mutex::new(HashMap::new()),
                endpoint_answered: Arc::new(AtomicBool::new(false)),
                shared: Arc::new(OnceLock::new()),
            }),
        })
    }

    /// The quota table calls are charged and paced by.
    pub fn quota_table(&self) -> QuotaTable {
        self.inner.config.quota.table
    }

    /// The per-minute limit `mailbox` is paced at, when Gmail's rate-limit answers taught a
    /// lower one than the configured limit (`None`: never refused, or smooth pacing).
    pub fn learned_units_per_minute(&self, mailbox: &str) -> Option<f64> {
        self.lookup(mailbox)?.limiter.pacer.learned_per_minute()
    }

    /// How each mailbox is paced and charged.
    pub fn quota_config(&self) -> &QuotaConfig {
        &self.inner.config.quota
    }

    /// Spends every request's units from `quota` too (after the mailbox's
    /// own pace), taking credit `chunk` units at a time: a Cloud project's
    /// budget shared with other processes. Set once; later calls are ignored.
    pub fn share_quota(&self, quota: Arc<dyn SharedQuota>, chunk: f64) {
        let _ = self.inner.shared.set(SharedPacer::new(quota, chunk));
    }

    /// The per-mailbox state, created on first use.
    async fn mailbox(&self, user_id: &str) -> Result<Arc<Mailbox>, GmailError> {
        if let Some(m) = self.lookup(user_id) {
            return Ok(m);
        }
        let auth = self.inner.authority.source_for(user_id).await?;
        let mut hub = Gmail::new(self.inner.http.clone(), auth.clone());
        hub.base_url(self.inner.endpoint.base.clone());
        hub.root_url(self.inner.endpoint.base.clone());
        hub.user_agent(concat!("mailingest-gmail/", env!("CARGO_PKG_VERSION")).to_string());
        let q = &self.inner.config.quota;
        let pacer = match q.units_per_second {
            Some(rate) => Pacer::Smooth(TokenBucket::new(rate * (1.0 - q.headroom), q.burst_units)),
            None => Pacer::Window(MinuteWindow::new(
                q.minute_limit(),
                Duration::from_secs(60) + q.window_margin,
            )),
        };
        let mb = Arc::new(Mailbox {
            user_id: user_id.to_string(),
            quota_user: quota_user(user_id),
            hub,
            auth,
            limiter: MailboxLimiter::new(pacer, q.max_concurrent),
            table: q.table,
            limit_told: AtomicBool::new(false),
            metrics: MetricsTable::new(q.table),
            policy: Arc::new(self.inner.config.retry.clone()),
            timeout: self.inner.config.request_timeout,
            endpoint_answered: self.inner.endpoint_answered.clone(),
            shared: self.inner.shared.clone(),
        });
        let mut map = self
            .inner
            .mailboxes
            .lock()
            .map_err(|_| GmailError::Config("mailbox table lock poisoned".into()))?;
        Ok(map.entry(user_id.to_string()).or_insert(mb).clone())
    }

    fn lookup(&self, user_id: &str) -> Option<Arc<Mailbox>> {
        self.inner
            .mailboxes
            .lock()
            .ok()
            .and_then(|m| m.get(user_id).cloned())
    }

    /// `users.getProfile`: address and the current history id.
    pub async fn profile(&self, mailbox: &str) -> Result<Profile, GmailError> {
        let mb = self.mailbox(mailbox).await?;
        let m = Method::GetProfile;
        let j: JProfile = mb
            .run(m, mailbox, || async {
                let mut rec = Recorder::default();
                let r = mb
                    .hub
                    .users()
                    .get_profile(&mb.user_id)
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str())
                    .delegate(&mut rec)
                    .doit()
                    .await;
                settle(r, &rec).await
            })
            .await?;
        j.into_profile(m.name())
    }

    /// `labels.list`: every label of the mailbox, system and user (1 unit; not paged).
    pub async fn labels(&self, mailbox: &str) -> Result<Vec<Label>, GmailError> {
        let mb = self.mailbox(mailbox).await?;
        let m = Method::LabelsList;
        let j: JLabelList = mb
            .run(m, mailbox, || async {
                let mut rec = Recorder::default();
                let r = mb
                    .hub
                    .users()
                    .labels_list(&mb.user_id)
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str())
                    .delegate(&mut rec)
                    .doit()
                    .await;
                settle(r, &rec).await
            })
            .await?;
        j.into_labels(m.name())
    }

    /// One page of `threads.list` (`page_token` None for the first page).
    pub async fn threads_page(
        &self,
        mailbox: &str,
        q: &ListQuery,
        page_token: Option<&str>,
    ) -> Result<ThreadPage, GmailError> {
        let mb = self.mailbox(mailbox).await?;
        let m = Method::ThreadsList;
        let j: JThreadList = mb
            .run(m, mailbox, || async {
                let mut rec = Recorder::default();
                let call = mb
                    .hub
                    .users()
                    .threads_list(&mb.user_id)
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str());
                let r = with_query(call, q, page_token)
                    .delegate(&mut rec)
                    .doit()
                    .await;
                settle(r, &rec).await
            })
            .await?;
        j.into_page(m.name())
    }

    /// One page of `messages.list`.
    pub async fn messages_page(
        &self,
        mailbox: &str,
        q: &ListQuery,
        page_token: Option<&str>,
    ) -> Result<MessagePage, GmailError> {
        let mb = self.mailbox(mailbox).await?;
        let m = Method::MessagesList;
        let j: JMessageList = mb
            .run(m, mailbox, || async {
                let mut rec = Recorder::default();
                let call = mb
                    .hub
                    .users()
                    .messages_list(&mb.user_id)
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str());
                let r = with_query(call, q, page_token)
                    .delegate(&mut rec)
                    .doit()
                    .await;
                settle(r, &rec).await
            })
            .await?;
        j.into_page(m.name())
    }

    /// Every page of `threads.list` for the window, in order. Stops after the first error; a
    /// token cycle ends it with `PageTokenCycle`.
    pub fn list_threads(
        &self,
        mailbox: &str,
        q: ListQuery,
    ) -> BoxStream<'static, Result<ThreadPage, GmailError>> {
        self.pages(Method::ThreadsList, mailbox, move |c, mailbox, token| {
            let q = q.clone();
            async move { c.threads_page(&mailbox, &q, token.as_deref()).await }
        })
    }

    /// Every page of `messages.list` for the window, in order. Stops after the first error; a
    /// token cycle ends it with `PageTokenCycle`.
    pub fn list_messages(
        &self,
        mailbox: &str,
        q: ListQuery,
    ) -> BoxStream<'static, Result<MessagePage, GmailError>> {
        self.pages(Method::MessagesList, mailbox, move |c, mailbox, token| {
            let q = q.clone();
            async move { c.messages_page(&mailbox, &q, token.as_deref()).await }
        })
    }

    /// `threads.get?format=minimal`: message ids, labels and history ids of one thread.
    pub async fn thread_minimal(
        &self,
        mailbox: &str,
        thread_id: &str,
    ) -> Result<ThreadMinimal, GmailError> {
        let m = Method::ThreadsGet;
        checked_id(m, thread_id)?;
        let mb = self.mailbox(mailbox).await?;
        let j: JThread = mb
            .run(m, thread_id, || async {
                let mut rec = Recorder::default();
                let r = mb
                    .hub
                    .users()
                    .threads_get(&mb.user_id, thread_id)
                    .format("minimal")
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str())
                    .delegate(&mut rec)
                    .doit()
                    .await;
                settle(r, &rec).await
            })
            .await?;
        j.into_minimal(m.name())
    }

    /// `messages.get?format=minimal`.
    pub async fn message_minimal(
        &self,
        mailbox: &str,
        id: &str,
    ) -> Result<MessageMeta, GmailError> {
        let j = self.message_get(mailbox, id, "minimal").await?;
        j.into_meta(Method::MessagesGet.name())
    }

    /// `messages.get?format=raw`: the RFC 822 bytes and the message's metadata.
    pub async fn message_raw(&self, mailbox: &str, id: &str) -> Result<RawMessage, GmailError> {
        let j = self.message_get(mailbox, id, "raw").await?;
        j.into_raw(Method::MessagesGet.name())
    }

    async fn message_get(
        &self,
        mailbox: &str,
        id: &str,
        format: &str,
    ) -> Result<JMessage, GmailError> {
        checked_id(Method::MessagesGet, id)?;
        let mb = self.mailbox(mailbox).await?;
        mb.run(Method::MessagesGet, id, || async {
            let mut rec = Recorder::default();
            let r = mb
                .hub
                .users()
                .messages_get(&mb.user_id, id)
                .format(format)
                .add_scope(SCOPE)
                .param("quotaUser", mb.quota_user.as_str())
                .delegate(&mut rec)
                .doit()
                .await;
            settle(r, &rec).await
        })
        .await
    }

    /// One page of `history.list` from `start_history_id`; 404 → `HistoryExpired`.
    pub async fn history_page(
        &self,
        mailbox: &str,
        start_history_id: u64,
        page_token: Option<&str>,
    ) -> Result<HistoryPage, GmailError> {
        let mb = self.mailbox(mailbox).await?;
        let m = Method::HistoryList;
        let subject = start_history_id.to_string();
        let j: Result<JHistoryList, GmailError> = mb
            .run(m, &subject, || async {
                let mut rec = Recorder::default();
                let mut call = mb
                    .hub
                    .users()
                    .history_list(&mb.user_id)
                    .start_history_id(start_history_id)
                    .max_results(500)
                    .add_scope(SCOPE)
                    .param("quotaUser", mb.quota_user.as_str());
                if let Some(t) = page_token {
                    call = call.page_token(t);
                }
                let r = call.delegate(&mut rec).doit().await;
                settle(r, &rec).await
            })
            .await;
        match j {
            Ok(j) => j.into_page(m.name()),
            Err(GmailError::NotFound { .. }) => {
                Err(GmailError::HistoryExpired { start_history_id })
            }
            Err(e) => Err(e),
        }
    }

    /// Every page of `history.list` since `start_history_id`, in order (pages may be empty).
    /// Stops after the first error; a token cycle ends it with `PageTokenCycle`.
    pub fn history(
        &self,
        mailbox: &str,
        start_history_id: u64,
    ) -> BoxStream<'static, Result<HistoryPage, GmailError>> {
        self.pages(
            Method::HistoryList,
            mailbox,
            move |c, mailbox, token| async move {
                c.history_page(&mailbox, start_history_id, token.as_deref())
                    .await
            },
        )
    }

    /// A list stream over `fetch`, which gets its own client handle and mailbox name so the
    /// stream owns everything it needs ('static).
    fn pages<P, F, Fut>(
        &self,
        method: Method,
        mailbox: &str,
        fetch: F,
    ) -> BoxStream<'static, Result<P, GmailError>>
    where
        P: Page + Send + 'static,
        F: Fn(GmailClient, String, Option<String>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<P, GmailError>> + Send + 'static,
    {
        let (client, mailbox) = (self.clone(), mailbox.to_string());
        paginate(method, move |token| {
            fetch(client.clone(), mailbox.clone(), token)
        })
    }

    /// Usage so far, summed over every mailbox.
    pub fn metrics(&self) -> ApiMetrics {
        let mut out = ApiMetrics::default();
        if let Ok(map) = self.inner.mailboxes.lock() {
            for mb in map.values() {
                mb.metrics.add_to(&mut out);
            }
        }
        out
    }

    /// How many server wait hints (Retry-After, "Retry after <time>") were longer than
    /// [`crate::MAX_RETRY_AFTER`] and cut to it, over all mailboxes.
    pub fn retry_after_clamped(&self) -> u64 {
        self.inner.mailboxes.lock().map_or(0, |map| {
            map.values()
                .map(|mb| mb.metrics.retry_after_clamped_count())
                .sum()
        })
    }

    /// Usage so far for one mailbox.
    pub fn mailbox_metrics(&self, mailbox: &str) -> ApiMetrics {
        let mut out = ApiMetrics::default();
        if let Some(mb) = self.lookup(mailbox) {
            mb.metrics.add_to(&mut out);
        }
        out
    }
}

/// The setters a [`ListQuery`] maps onto. google-gmail1 generates the same ones on every list
/// builder but shares no trait between them, so this mirrors them (each impl forwards to the
/// builder's own method) and `with_query` is written once.
trait ListCall: Sized {
    fn include_spam_trash(self, v: bool) -> Self;
    fn max_results(self, v: u32) -> Self;
    fn q(self, v: &str) -> Self;
    fn add_label_ids(self, v: &str) -> Self;
    fn page_token(self, v: &str) -> Self;
}

macro_rules! list_call {
    ($($call:ident),+) => {$(
        impl ListCall for google_gmail1::api::$call<'_, Connector> {
            fn include_spam_trash(self, v: bool) -> Self {
                Self::include_spam_trash(self, v)
            }
            fn max_results(self, v: u32) -> Self {
                Self::max_results(self, v)
            }
            fn q(self, v: &str) -> Self {
                Self::q(self, v)
            }
            fn add_label_ids(self, v: &str) -> Self {
                Self::add_label_ids(self, v)
            }
            fn page_token(self, v: &str) -> Self {
                Self::page_token(self, v)
            }
        }
    )+};
}

list_call!(UserThreadListCall, UserMessageListCall);

/// Apply the window, filters, page size and page token to a list call.
fn with_query<C: ListCall>(call: C, q: &ListQuery, page_token: Option<&str>) -> C {
    let mut call = call
        .include_spam_trash(q.include_spam_trash)
        .max_results(q.page_size.clamp(1, 500));
    if let Some(s) = build_q(q.after, q.before) {
        call = call.q(&s);
    }
    for l in &q.label_ids {
        call = call.add_label_ids(l);
    }
    if let Some(t) = page_token {
        call = call.page_token(t);
    }
    call
}

/// The `quotaUser` of a mailbox: its address, or for one longer than Gmail's
/// 40 characters a prefix and a hash of it (any stable string unique per user
/// will do).
fn quota_user(user_id: &str) -> String {
    const MAX: usize = 40;
    if user_id.len() <= MAX {
        return user_id.to_owned();
    }
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = user_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut cut = MAX - 17;
    while !user_id.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash:016x}", &user_id[..cut])
}

/// Refuses to put anything but a Gmail id into a request path: a hostile id
/// such as `../../labels` would otherwise reach another method.
fn checked_id(method: Method, id: &str) -> Result<(), GmailError> {
    if crate::is_gmail_id(id) {
        Ok(())
    } else {
        Err(GmailError::InvalidId {
            method: method.name(),
            id: crate::printable_id(id).into_owned(),
        })
    }
}

#[cfg(test)]
mod quota_user_tests {
    use super::quota_user;

    #[test]
    fn short_addresses_are_used_as_they_are_and_long_ones_fit_forty_chars() {
        assert_eq!(quota_user("ann@example.com"), "ann@example.com");
        let long = "a.very.long.mailbox.name.indeed@subdomain.example.com";
        let q = quota_user(long);
        assert!(q.len() <= 40, "{q}");
        assert_ne!(
            q,
            quota_user("a.very.long.mailbox.name.indeed@subdomain.example.org")
        );
        assert_eq!(q, quota_user(long), "stable");
        let wide = "ééééééééééééééééééééééééééé@example.com";
        assert!(quota_user(wide).len() <= 40);
    }
}
