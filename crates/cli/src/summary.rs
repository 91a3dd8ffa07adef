//! Printing a run summary (text, or one JSON object on stdout).

use std::process::ExitCode;

use ingest::domain::{LabelChange, LabelChangeKind};
use ingest::engine::{BackfillEstimate, EngineError, RunKind, RunSummary, SkipKind};
use ingest::repo::OutcomeCounts;

use crate::exit::Exit;

pub fn print(summary: &RunSummary, json: bool) {
    if json {
        match serde_json::to_string(summary) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode the summary: {e}"),
        }
        return;
    }
    let t = &summary.tally;
    let window = summary
        .window
        .map(|w| format!("{} .. {}", w.since.to_rfc3339(), w.until.to_rfc3339()))
        .unwrap_or_else(|| "from cursor".into());
    println!(
        "run {} {} {} [{}] {} in {:.1}s",
        summary.run_id,
        summary.kind,
        summary.mailbox,
        window,
        summary.status,
        summary.duration_ms as f64 / 1000.0
    );
    let row = |name: &str, c: &OutcomeCounts| {
        println!(
            "  {name:<12} inserted {:>7}  updated {:>7}  unchanged {:>7}",
            c.inserted, c.updated, c.unchanged
        )
    };
    row("threads", &t.threads);
    row("messages", &t.messages);
    row("attachments", &t.attachments);
    println!(
        "  {:<12} stored {:>9}  deduplicated {:>7}",
        "blobs", t.blobs.stored, t.blobs.deduplicated
    );
    println!(
        "  {:<12} threads listed {}  fetched {}  messages fetched {}  labels changed {}  deleted {}",
        "work",
        t.threads_listed,
        t.threads_fetched,
        t.messages_fetched,
        t.labels_changed,
        t.messages_deleted
    );
    if !t.label_changes.is_empty() {
        println!("  {:<12} {}", "labels", label_changes(&t.label_changes));
    }
    if summary.kind == RunKind::Sync {
        println!(
            "  {:<12} pages {}  records {}{}",
            "history",
            t.history_pages,
            t.history_records,
            if summary.history_expired {
                "  (expired: fell back to a backfill)"
            } else {
                ""
            }
        );
    }
    let api = &summary.api.total;
    println!(
        "  {:<12} calls {}  quota units {}  retries {}  rate limited {}  throttled {} ms",
        "api", api.calls, api.quota_units, api.retries, api.rate_limited, api.throttled_ms
    );
    let st = &summary.stages;
    println!(
        "  {:<12} list {:.1}s  fetch {:.1}s  parse {:.1}s  store {:.1}s  write {:.1}s (busy time, concurrent work summed)",
        "stages", st.list, st.fetch, st.parse, st.store, st.write
    );
    if let Some(cursor) = &summary.cursor {
        println!("  {:<12} {}", "cursor", cursor);
    }
    if let Some(head) = &summary.ledger_head {
        println!("  {:<12} {}:{}", "ledger head", head.seq, head.hash);
    }
    if let Some(error) = &summary.anchor_error {
        println!("  {:<12} NOT anchored: {error}", "anchor");
    }
    if !t.skipped.is_empty() {
        println!("  skipped {}:", t.skipped.len());
        for s in &t.skipped {
            // gone: nothing to retry; rejected/unavailable: quarantined, retried later.
            let kind = match s.kind {
                SkipKind::Gone => "gone",
                SkipKind::Rejected => "quarantined, rejected",
                SkipKind::Unavailable => "quarantined, unavailable",
            };
            println!("    {}  ({kind})  {}", s.message_id, s.reason);
        }
    }
    if let Some(err) = &summary.error {
        println!("  error: {err}");
    }
}

/// What labels.list showed changed, by name: `created 3 (Inbox, work, …)
/// renamed 1 (old → new) deleted 1 (gone)`. A name is printed as
/// [`gmail::printable_id`] prints an untrusted value; at most 8 per kind.
fn label_changes(changes: &[LabelChange]) -> String {
    const SHOWN: usize = 8;
    let word = |kind: &LabelChangeKind| match kind {
        LabelChangeKind::Created => "created",
        LabelChangeKind::Renamed { .. } => "renamed",
        LabelChangeKind::Updated => "changed",
        LabelChangeKind::Deleted => "deleted",
    };
    let mut by_kind: Vec<(&str, Vec<String>)> = Vec::new();
    for c in changes {
        let name = match &c.kind {
            LabelChangeKind::Renamed { from } => format!(
                "{} → {}",
                gmail::printable_id(from),
                gmail::printable_id(&c.name)
            ),
            _ => gmail::printable_id(&c.name).into_owned(),
        };
        match by_kind.iter_mut().find(|(w, _)| *w == word(&c.kind)) {
            Some((_, names)) => names.push(name),
            None => by_kind.push((word(&c.kind), vec![name])),
        }
    }
    by_kind
        .iter()
        .map(|(word, names)| {
            let mut shown = names
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > SHOWN {
                shown.push_str(&format!(", … {} more", names.len() - SHOWN));
            }
            format!("{word} {} ({shown})", names.len())
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Printing `backfill --estimate`.
pub fn print_estimate(e: &BackfillEstimate, json: bool) {
    if json {
        match serde_json::to_string(e) {
            Ok(s) => println!("{s}"),
            Err(err) => eprintln!("error: cannot encode the estimate: {err}"),
        }
        return;
    }
    println!(
        "estimate {} (quota table {}): {} messages in {} threads in the window, {} stored, {} to fetch",
        e.mailbox, e.quota_table, e.messages_in_window, e.threads_in_window, e.stored, e.to_fetch
    );
    let by: Vec<String> = e
        .units_by_method
        .iter()
        .map(|(m, u)| format!("{m} {u}"))
        .collect();
    println!("  quota units {} ({})", e.units, by.join(", "));
    let mins = e.quota_seconds / 60.0;
    println!(
        "  at least {:.0} s ({mins:.1} min) of quota at this pace; this estimate spent {} units",
        e.quota_seconds, e.estimate_units
    );
}

/// An engine error as the command's result: its own exit code with one line
/// on stderr, or an ordinary failure for `main` to report.
pub fn engine_error(err: EngineError) -> anyhow::Result<ExitCode> {
    match Exit::of_error(&err) {
        Some(exit) => {
            eprintln!("error: {err}");
            Ok(exit.into())
        }
        None => Err(err.into()),
    }
}
