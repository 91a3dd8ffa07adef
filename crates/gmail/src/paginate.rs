//! The one paginator behind every list stream (`threads.list`, `messages.list`,
//! `history.list`): fetch a page, follow its `nextPageToken`, stop after the last page or the
//! first error. It also guards against servers that never finish: following a token that was
//! already followed in this listing would loop forever, so that ends the stream with
//! `GmailError::PageTokenCycle`.
//!
//! One repeat is tolerated, boundedly: Gmail (and the emulator's fault mode) may answer a
//! `history.list` page with no records and the very token it was fetched with, meaning "not
//! ready, ask again". That cannot skip or duplicate items, so it is followed — up to
//! `MAX_STALLED_PAGES` times in a row — while any other repeat is a cycle at once.

use std::collections::HashSet;
use std::future::Future;

use futures::StreamExt as _;
use futures::stream::BoxStream;

use crate::GmailError;
use crate::metrics::Method;
use crate::types::{HistoryPage, MessagePage, ThreadPage};

/// Consecutive empty pages that may hand back their own token before the listing is
/// declared stuck. Generous: the emulator test runs at a 90% empty-page rate, and a real
/// stall this long means the server is not going to make progress.
pub(crate) const MAX_STALLED_PAGES: u32 = 100;

/// What the paginator needs to know about a page.
pub(crate) trait Page {
    fn next_page_token(&self) -> Option<&str>;
    /// No items: following its token again cannot re-serve anything.
    fn is_empty(&self) -> bool;
}

impl Page for ThreadPage {
    fn next_page_token(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
    fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Page for MessagePage {
    fn next_page_token(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

impl Page for HistoryPage {
    fn next_page_token(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Where a listing stands: the token to fetch next and every token followed so far.
#[derive(Debug, Default)]
struct Cursor {
    /// The page to fetch (None: the first page).
    token: Option<String>,
    followed: HashSet<String>,
    /// Consecutive empty pages that answered with their own token.
    stalled: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Fetch,
    Done,
    Cycle,
}

impl Cursor {
    /// Decide what follows a page that answered `next` (and had no items if `empty`).
    fn advance(&mut self, next: Option<&str>, empty: bool) -> Step {
        let Some(next) = next else {
            return Step::Done;
        };
        if self.followed.insert(next.to_owned()) {
            self.stalled = 0;
        } else if empty && self.token.as_deref() == Some(next) && self.stalled < MAX_STALLED_PAGES {
            self.stalled += 1;
        } else {
            return Step::Cycle;
        }
        self.token = Some(next.to_owned());
        Step::Fetch
    }
}

/// Every page `fetch` returns, in order, starting from the first (token None). Ends after
/// the last page, the first error, or a token cycle; a page whose token points back is not
/// yielded, since the listing is already known to be broken.
pub(crate) fn paginate<P, F, Fut>(
    method: Method,
    fetch: F,
) -> BoxStream<'static, Result<P, GmailError>>
where
    P: Page + Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<P, GmailError>> + Send + 'static,
{
    // State: Some(cursor) = fetch the page at `cursor.token`; None = finished.
    let start = (Some(Cursor::default()), fetch);
    futures::stream::unfold(start, move |(cursor, fetch)| async move {
        let mut cursor = cursor?;
        let page = match fetch(cursor.token.clone()).await {
            Ok(page) => page,
            Err(e) => return Some((Err(e), (None, fetch))),
        };
        match cursor.advance(page.next_page_token(), page.is_empty()) {
            Step::Fetch => Some((Ok(page), (Some(cursor), fetch))),
            Step::Done => Some((Ok(page), (None, fetch))),
            Step::Cycle => {
                let e = GmailError::PageTokenCycle {
                    method: method.name(),
                };
                Some((Err(e), (None, fetch)))
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    fn page(items: usize, next: Option<&str>) -> MessagePage {
        MessagePage {
            messages: (0..items)
                .map(|i| crate::types::MessageRef {
                    id: format!("m{i}"),
                    thread_id: format!("t{i}"),
                })
                .collect(),
            result_size_estimate: 0,
            next_page_token: next.map(str::to_owned),
        }
    }

    /// Serve `script` in order; record the tokens asked for.
    async fn run(script: Vec<MessagePage>) -> (Vec<Result<MessagePage, GmailError>>, Vec<String>) {
        let script = Arc::new(Mutex::new(script.into_iter()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let out = paginate(Method::MessagesList, move |token| {
            log.lock()
                .expect("lock")
                .push(token.unwrap_or_else(|| "<first>".into()));
            let next = script.lock().expect("lock").next();
            async move { next.ok_or_else(|| GmailError::Config("script exhausted".into())) }
        })
        .collect::<Vec<_>>()
        .await;
        let asked = asked.lock().expect("lock").clone();
        (out, asked)
    }

    #[tokio::test]
    async fn follows_tokens_to_the_last_page() {
        let (out, asked) = run(vec![page(2, Some("a")), page(2, Some("b")), page(1, None)]).await;
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(asked, ["<first>", "a", "b"]);
    }

    #[tokio::test]
    async fn a_token_pointing_back_ends_the_stream_with_a_cycle_error() {
        // a → b → a: the third page is not yielded, and nothing more is fetched.
        let (out, asked) = run(vec![
            page(1, Some("a")),
            page(1, Some("b")),
            page(1, Some("a")),
            page(1, None),
        ])
        .await;
        assert_eq!(asked, ["<first>", "a", "b"]);
        assert_eq!(out.len(), 3);
        assert!(matches!(
            out[2],
            Err(GmailError::PageTokenCycle {
                method: "messages.list"
            })
        ));
        // A non-empty page answering with its own token would re-serve it: a cycle at once.
        let (out, asked) = run(vec![page(1, Some("a")), page(1, Some("a"))]).await;
        assert_eq!(asked.len(), 2);
        assert!(matches!(out[1], Err(GmailError::PageTokenCycle { .. })));
    }

    #[tokio::test]
    async fn empty_pages_repeating_their_token_are_followed_a_bounded_number_of_times() {
        let stall = MAX_STALLED_PAGES as usize;
        // A stall that clears before the limit is followed to the end.
        let mut script = vec![page(1, Some("a"))];
        script.extend((0..stall).map(|_| page(0, Some("a"))));
        script.push(page(1, None));
        let (out, _) = run(script).await;
        assert_eq!(out.len(), stall + 2);
        assert!(out.iter().all(Result::is_ok));
        // One more and it is a cycle; a fresh token resets the count.
        let mut script = vec![page(1, Some("a"))];
        script.extend((0..stall).map(|_| page(0, Some("a"))));
        script.push(page(0, Some("b")));
        script.extend((0..=stall).map(|_| page(0, Some("b"))));
        let (out, asked) = run(script).await;
        assert_eq!(asked.len(), 2 * stall + 3);
        assert!(out[..out.len() - 1].iter().all(Result::is_ok));
        assert!(matches!(
            out.last(),
            Some(Err(GmailError::PageTokenCycle { .. }))
        ));
        // An empty page pointing at an *older* token is a cycle at once.
        let (out, asked) = run(vec![
            page(1, Some("a")),
            page(0, Some("b")),
            page(0, Some("a")),
        ])
        .await;
        assert_eq!(asked.len(), 3);
        assert!(matches!(out[2], Err(GmailError::PageTokenCycle { .. })));
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let (out, asked) = run(vec![page(1, Some("a"))]).await;
        assert_eq!(asked.len(), 2);
        assert!(matches!(out[..], [Ok(_), Err(GmailError::Config(_))]));
    }
}
