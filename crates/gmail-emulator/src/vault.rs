//! A Google Vault Gmail export of one emulated mailbox: its mbox (`GET
//! /_emulator/mailboxes/{mb}/vault/mbox`) and its metadata file (`GET
//! /_emulator/mailboxes/{mb}/vault/metadata`), so tests of `mailingest import`
//! on a Vault export need no real one.
//!
//! Vault's classic layout, as in a real export (the one described in
//! `ingest::import::vault`): per message, oldest first, a separator `From
//! <file id>@xxx <date>` where the file id is `<message id in decimal>-<a
//! UUID>.mbox` and the date has no zone, then the message's own bytes (CRLF
//! kept; mboxrd quoting, as Takeout's, is assumed), then a blank line. No
//! header of Vault's own. The metadata is EDRM XML: one `Document` per
//! message with `Tag`s (`#From`, `#To`, `#CC`, `#BCC`, `#Subject`, `Labels`,
//! `#DateSent`, `#DateReceived`) and an `ExternalFile` naming the file id,
//! the message's size and its MD5. `Labels` lists system labels as `^INBOX`
//! and user labels by name (double-quoted when holding a comma). The UUIDs
//! are derived from the id, so the same mailbox gives the same export.

use chrono::{TimeZone, Utc};
use md5::{Digest as _, Md5};
use sha2::{Digest as _, Sha256};

use crate::model::{Mailbox, Message};

/// Messages oldest first (Gmail's order ties broken by id), spam and trash
/// included: a Vault search over all mail finds them.
fn oldest_first(mb: &Mailbox) -> impl Iterator<Item = &Message> {
    mb.order
        .iter()
        .rev()
        .filter_map(|(_, id)| mb.messages.get(&id.0))
}

/// The mailbox as Vault's mbox.
pub(crate) fn render_mbox(mb: &Mailbox) -> Vec<u8> {
    let mut out = Vec::new();
    for msg in oldest_first(mb) {
        let date = Utc
            .timestamp_millis_opt(msg.internal_date_ms)
            .single()
            .unwrap_or_default()
            .format("%a %b %e %H:%M:%S %Y");
        out.extend_from_slice(format!("From {}@xxx {date}\r\n", file_id(&msg.id)).as_bytes());
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
    out
}

/// The export's metadata file for the mailbox.
pub(crate) fn render_metadata(mb: &Mailbox) -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n\
         <Root DataInterchangeType='Update' Description='emulator'>\n\
         \t<Batch name='New batch'>\n\t\t<Documents>\n",
    );
    let parser = mail_parser::MessageParser::default();
    for msg in oldest_first(mb) {
        let parsed = parser.parse_headers(&msg.content.raw[..]);
        let subject = parsed
            .as_ref()
            .and_then(|p| p.subject())
            .unwrap_or_default()
            .to_owned();
        let date = Utc
            .timestamp_millis_opt(msg.internal_date_ms)
            .single()
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string();
        let labels: Vec<String> = msg.labels.iter().map(|id| vault_name(mb, id)).collect();
        let tags = [
            (
                "#From",
                "Text",
                addresses(parsed.as_ref().and_then(|p| p.from())),
            ),
            (
                "#To",
                "Text",
                addresses(parsed.as_ref().and_then(|p| p.to())),
            ),
            (
                "#CC",
                "Text",
                addresses(parsed.as_ref().and_then(|p| p.cc())),
            ),
            (
                "#BCC",
                "Text",
                addresses(parsed.as_ref().and_then(|p| p.bcc())),
            ),
            ("#Subject", "Text", subject),
            ("Labels", "Text", labels.join(",")),
            ("#DateSent", "DateTime", date.clone()),
            ("#DateReceived", "DateTime", date),
        ];
        out.push_str(&format!(
            "\t\t\t<Document DocID='{}'>\n\t\t\t\t<Tags>\n",
            doc_id(&msg.id)
        ));
        for (name, kind, value) in tags {
            out.push_str(&format!(
                "\t\t\t\t\t<Tag TagName='{name}' TagDataType='{kind}' TagValue='{}'/>\n",
                escape(&value)
            ));
        }
        out.push_str(&format!(
            "\t\t\t\t</Tags>\n\t\t\t\t<Files>\n\t\t\t\t\t<File FileType='Native'>\n\
             \t\t\t\t\t\t<ExternalFile FileName='{}' FileSize='{}' Hash='{}'/>\n\
             \t\t\t\t\t</File>\n\t\t\t\t</Files>\n\t\t\t</Document>\n",
            file_id(&msg.id),
            msg.content.raw.len(),
            hex::encode(Md5::digest(&msg.content.raw[..]))
        ));
    }
    out.push_str(&format!(
        "\t\t</Documents>\n\t\t<CustomBatchInfo>\n\t\t\t<Query>\n\
         \t\t\t\t<UserQuery></UserQuery>\n\t\t\t\t<TimeZone>GMT+0:00</TimeZone>\n\
         \t\t\t\t<Custodians>{}</Custodians>\n\t\t\t</Query>\n\t\t</CustomBatchInfo>\n\
         \t</Batch>\n</Root>\n",
        escape(&mb.email)
    ));
    out
}

/// Addresses as Vault's tags write them: `address Name`, comma-separated.
fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .map(|addr| {
                [addr.address(), addr.name()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

/// `<decimal id>-<UUID>.mbox`, the UUID derived from the id.
fn file_id(hex_id: &str) -> String {
    let decimal =
        u64::from_str_radix(hex_id, 16).map_or_else(|_| hex_id.to_owned(), |v| v.to_string());
    let h = hex::encode(Sha256::digest(hex_id.as_bytes()));
    format!(
        "{decimal}-{}-{}-{}-{}-{}.mbox",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An opaque id in the shape of Vault's (base64-like, per document).
fn doc_id(hex_id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(format!("doc:{hex_id}")))
}

/// Vault's spelling of a label: a system label as `^` and its id; a user
/// label by name, double-quoted when it holds a comma (quotes dropped).
fn vault_name(mb: &Mailbox, id: &str) -> String {
    match mb.labels.get(id) {
        Some(l) if l.system => format!("^{}", l.id),
        Some(l) if l.name.contains([',', '"']) => format!("\"{}\"", l.name.replace('"', "")),
        Some(l) => l.name.clone(),
        None => format!("^{id}"),
    }
}

/// XML escaping for a single-quoted attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_layout_names_each_message_by_its_file_id_size_and_md5() {
        let mut mb = Mailbox::new("a@example.com", 7);
        let work = mb.resolve_label("Work, <stuff>", true).expect("label");
        let raw = b"From: Ann <a@b>\r\nSubject: s & t\r\n\r\nFrom here\r\nend\r\n";
        let id = mb.add(
            bytes::Bytes::from_static(raw),
            vec!["INBOX".into(), work],
            None,
            1_555_372_840_389,
            false,
        );
        let mbox = String::from_utf8(render_mbox(&mb)).expect("utf-8");
        let fid = file_id(&id);
        let dec = u64::from_str_radix(&id, 16).expect("hex").to_string();
        assert!(fid.starts_with(&format!("{dec}-")) && fid.ends_with(".mbox"));
        assert_eq!(fid.len(), dec.len() + 1 + 36 + 5, "{fid}");
        assert_eq!(
            mbox,
            format!(
                "From {fid}@xxx Tue Apr 16 00:00:40 2019\r\nFrom: Ann <a@b>\r\nSubject: s & t\r\n\r\n>From here\r\nend\r\n\r\n"
            )
        );
        let xml = render_metadata(&mb);
        assert!(xml.contains("TagName='Labels' TagDataType='Text' TagValue='^INBOX,&quot;Work, &lt;stuff&gt;&quot;'"), "{xml}");
        assert!(
            xml.contains("TagName='#From' TagDataType='Text' TagValue='a@b Ann'"),
            "{xml}"
        );
        assert!(
            xml.contains("TagName='#Subject' TagDataType='Text' TagValue='s &amp; t'"),
            "{xml}"
        );
        assert!(xml.contains("TagName='#DateReceived' TagDataType='DateTime' TagValue='2019-04-16T00:00:40.389+00:00'"), "{xml}");
        assert!(xml.contains(&format!(
            "<ExternalFile FileName='{fid}' FileSize='{}' Hash='{}'/>",
            raw.len(),
            hex::encode(Md5::digest(raw))
        )));
    }
}
