//! A Google Takeout file of one emulated mailbox (`GET
//! /_emulator/mailboxes/{mb}/takeout`), so tests and benchmarks of
//! `mailingest import` need no real archive.
//!
//! Takeout's layout, as in a real file (see `/work/shared/testdata`): per
//! message, oldest first, a separator `From <message id in decimal>@xxx
//! <date>`, `X-GM-THRID: <thread id in decimal>`, `X-Gmail-Labels: <names>`,
//! then the message's own bytes (CRLF kept) with mboxrd quoting (a line
//! `>*From ` gets one more `>`), then a blank line. Takeout's own lines end
//! in CRLF. A message that does not end with a line break gets one, which an
//! importer cannot tell from the message's own: mbox cannot keep that.
//!
//! System labels carry Takeout's names (`Inbox`, `Category Updates`); user
//! labels their name, double-quoted when it holds a comma or a quote.

use chrono::{TimeZone, Utc};

use crate::model::{Mailbox, Message};

/// The whole mailbox as one Takeout mbox, oldest message first (Gmail's
/// order ties broken by id). Spam and trash are included, as Takeout does.
pub(crate) fn render(mb: &Mailbox) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, id) in mb.order.iter().rev() {
        if let Some(msg) = mb.messages.get(&id.0) {
            write_message(&mut out, mb, msg);
        }
    }
    out
}

fn write_message(out: &mut Vec<u8>, mb: &Mailbox, msg: &Message) {
    let date = Utc
        .timestamp_millis_opt(msg.internal_date_ms)
        .single()
        .unwrap_or_default()
        .format("%a %b %d %H:%M:%S %z %Y");
    let labels: Vec<String> = msg
        .labels
        .iter()
        .map(|id| takeout_name(mb.labels.get(id).map_or(id.as_str(), |l| &l.name)))
        .collect();
    out.extend_from_slice(
        format!(
            "From {}@xxx {date}\r\nX-GM-THRID: {}\r\nX-Gmail-Labels: {}\r\n",
            decimal(&msg.id),
            decimal(&msg.thread_id),
            labels.join(",")
        )
        .as_bytes(),
    );
    let raw = &msg.content.raw[..];
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let arrows = line.iter().take_while(|b| **b == b'>').count();
        if line[arrows..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !raw.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Gmail's hex id as Takeout writes it; an id that is not hex (none the
/// emulator makes) as it is.
fn decimal(hex_id: &str) -> String {
    u64::from_str_radix(hex_id, 16).map_or_else(|_| hex_id.to_owned(), |v| v.to_string())
}

/// Takeout's name for a system label; any other name as it is, quoted when
/// it holds a comma or a quote (quotes dropped: Takeout has no escape).
fn takeout_name(name: &str) -> String {
    let system = match name {
        "INBOX" => "Inbox",
        "SENT" => "Sent",
        "UNREAD" => "Unread",
        "STARRED" => "Starred",
        "IMPORTANT" => "Important",
        "SPAM" => "Spam",
        "TRASH" => "Trash",
        "DRAFT" => "Drafts",
        "CHAT" => "Chat",
        "CATEGORY_PERSONAL" => "Category Personal",
        "CATEGORY_SOCIAL" => "Category Social",
        "CATEGORY_PROMOTIONS" => "Category Promotions",
        "CATEGORY_UPDATES" => "Category Updates",
        "CATEGORY_FORUMS" => "Category Forums",
        other if other.contains([',', '"']) => return format!("\"{}\"", other.replace('"', "")),
        other => return other.to_owned(),
    };
    system.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::split_mbox;

    #[test]
    fn takeout_layout_and_quoting_round_trip_through_the_emulators_own_import() {
        let mut mb = Mailbox::new("a@example.com", 7);
        let work = mb.resolve_label("Work, stuff", true).expect("label");
        let raw = b"From: a@b\r\nSubject: s\r\n\r\nFrom here\r\n>From there\r\nend\r\n";
        let id = mb.add(
            bytes::Bytes::from_static(raw),
            vec!["INBOX".into(), work],
            None,
            1_552_986_831_000,
            false,
        );
        let no_eol = b"From: c@d\r\n\r\nno newline at the end";
        mb.add(
            bytes::Bytes::from_static(no_eol),
            vec!["CATEGORY_UPDATES".into()],
            None,
            1_552_986_832_000,
            false,
        );
        let file = render(&mb);
        let text = String::from_utf8(file.clone()).expect("utf-8");
        let dec = u64::from_str_radix(&id, 16).expect("hex id");
        assert!(
            text.starts_with(&format!(
                "From {dec}@xxx Tue Mar 19 09:13:51 +0000 2019\r\nX-GM-THRID: {dec}\r\nX-Gmail-Labels: Inbox,\"Work, stuff\"\r\nFrom: a@b\r\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("\r\n>From here\r\n>>From there\r\n"),
            "{text}"
        );
        assert!(text.contains("X-Gmail-Labels: Category Updates\r\n"));
        let parts = split_mbox(&file);
        assert_eq!(parts.len(), 2);
        let body = |p: &[u8]| {
            let s = String::from_utf8(p.to_vec()).expect("utf-8");
            s.split_once("\r\nFrom: ")
                .map(|(_, rest)| format!("From: {rest}"))
                .expect("message")
        };
        assert_eq!(body(&parts[0]).as_bytes(), raw.as_slice());
        assert_eq!(
            body(&parts[1]).as_bytes(),
            [no_eol.as_slice(), b"\r\n"].concat()
        );
    }
}
