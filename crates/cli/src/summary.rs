//! Printing a run summary (text, or one JSON object on stdout) and mapping it
//! to the exit code.

use std::process::ExitCode;

use ingest::engine::{EngineError, RunSummary};
use ingest::repo::OutcomeCounts;

use crate::exit;

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
    if summary.kind == "sync" {
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
    if let Some(cursor) = &summary.cursor {
        println!("  {:<12} {}", "cursor", cursor);
    }
    if !t.skipped.is_empty() {
        println!("  skipped {}:", t.skipped.len());
        for s in &t.skipped {
            println!("    {}  {}", s.message_id, s.reason);
        }
    }
    if let Some(err) = &summary.error {
        println!("  error: {err}");
    }
}

/// The exit code of a finished run.
pub fn exit_code(summary: &RunSummary) -> ExitCode {
    match summary.status {
        "completed" if summary.tally.skipped.is_empty() => ExitCode::SUCCESS,
        "completed" => ExitCode::from(exit::SKIPPED),
        "interrupted" => ExitCode::from(exit::INTERRUPTED),
        _ => ExitCode::from(exit::FAILED),
    }
}

/// Engine errors with their own exit code; anything else is a failure.
pub fn engine_error(err: EngineError) -> anyhow::Result<ExitCode> {
    match err {
        EngineError::Locked { .. } => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(exit::LOCKED))
        }
        EngineError::InvalidWindow(_) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(exit::USAGE))
        }
        other => Err(other.into()),
    }
}
