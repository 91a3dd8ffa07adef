//! Deterministic synthetic mailbox content (seeded): realistic MIME built with
//! mail-builder, threads of 1–20 messages, Gmail-style labels, shared attachments.

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};

use crate::error::EmulatorError;

/// One generated message, ready to insert.
pub(crate) struct Generated {
    pub raw: Vec<u8>,
    pub labels: Vec<String>,
    /// Index (into the generated list) of the thread's first message.
    pub thread_root: usize,
    pub internal_date_ms: i64,
}

struct Attachment {
    mime: &'static str,
    filename: &'static str,
    bytes: Vec<u8>,
}

const WORDS: &[&str] = &[
    "meeting", "budget", "quarter", "report", "deadline", "review", "invoice", "project",
    "schedule", "update", "customer", "release", "draft", "attached", "please", "thanks",
    "tomorrow", "agenda", "numbers", "contract", "shipping", "team", "launch", "design",
    "feedback", "approval", "travel", "hotel", "flight", "lunch", "ticket", "server",
];
const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "Lunch on Friday?",
    "Invoice #4711",
    "Réunion de projet — compte rendu",
    "Übersicht für März",
    "会議の議事録",
    "Travel plans 🚆",
    "Contract draft v3",
    "Server maintenance window",
    "Welcome aboard!",
    "Ваш заказ отправлен",
    "Design feedback",
];
const PEOPLE: &[(&str, &str)] = &[
    ("Alice Example", "alice@example.org"),
    ("Bob Müller", "bob@example.net"),
    ("Chloé Dupont", "chloe@example.fr"),
    ("Dmitri Ivanov", "dmitri@example.ru"),
    ("Emi Tanaka", "emi@example.jp"),
    ("Newsletter", "news@lists.example.com"),
];
/// At most this many messages carry a 1.5–2.6 MB attachment.
const MAX_LARGE: usize = 8;
const USER_LABELS: &[&str] = &["Projects", "Receipts", "Travel/2026", "Équipe"];

fn random_bytes(rng: &mut StdRng, prefix: &[u8], len: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    let start = v.len();
    v.resize(len.max(start), 0);
    rng.fill_bytes(&mut v[start..]);
    v
}

fn pool(rng: &mut StdRng, large: bool) -> Vec<Attachment> {
    let csv: String = (0..200)
        .map(|i| format!("{i},item-{i},{}.{:02}\r\n", i * 7 % 100, i % 100))
        .collect();
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Planning\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let mut v = vec![
        Attachment {
            mime: "application/pdf",
            filename: "report.pdf",
            bytes: random_bytes(rng, b"%PDF-1.4\n", 40_000),
        },
        Attachment {
            mime: "image/jpeg",
            filename: "photo.jpg",
            bytes: random_bytes(rng, b"\xff\xd8\xff\xe0", 120_000),
        },
        Attachment {
            mime: "image/png",
            filename: "diagram.png",
            bytes: random_bytes(rng, b"\x89PNG\r\n\x1a\n", 30_000),
        },
        Attachment {
            mime: "text/csv",
            filename: "data.csv",
            bytes: csv.into_bytes(),
        },
        Attachment {
            mime: "application/zip",
            filename: "archive.zip",
            bytes: random_bytes(rng, b"PK\x03\x04", 200_000),
        },
        Attachment {
            mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            filename: "Übersicht März.xlsx",
            bytes: random_bytes(rng, b"PK\x03\x04", 60_000),
        },
        Attachment {
            mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename: "日本語の資料.docx",
            bytes: random_bytes(rng, b"PK\x03\x04", 25_000),
        },
        Attachment {
            mime: "text/calendar",
            filename: "invite.ics",
            bytes: ics.as_bytes().to_vec(),
        },
    ];
    if large {
        v.push(Attachment {
            mime: "application/pdf",
            filename: "scan-large.pdf",
            bytes: random_bytes(rng, b"%PDF-1.7\n", 1_500_000),
        });
        v.push(Attachment {
            mime: "video/mp4",
            filename: "clip.mp4",
            bytes: random_bytes(rng, b"\0\0\0\x18ftypmp42", 2_600_000),
        });
    }
    v
}

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(6..16);
    let s: Vec<&str> = (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"mail"))
        .collect();
    let mut text = s.join(" ");
    if let Some(c) = text.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    text.push('.');
    text
}

fn paragraph_text(rng: &mut StdRng, target: usize) -> String {
    let mut out = String::new();
    while out.len() < target {
        for _ in 0..rng.random_range(2..6) {
            out.push_str(&sentence(rng));
            out.push(' ');
        }
        out.push_str("\r\n\r\n");
    }
    out
}

fn ct(mime: &str) -> ContentType<'static> {
    ContentType::new(mime.to_string())
}

fn multipart(kind: &str, boundary: String, parts: Vec<MimePart<'static>>) -> MimePart<'static> {
    MimePart::new(
        ct(kind).attribute("boundary", boundary),
        BodyPart::Multipart(parts),
    )
}

/// Latin-1 bytes of a string whose chars are all < U+0100.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| u32::from(c).min(0xff) as u8).collect()
}

/// Generate `count` messages spread over `days` ending at `now_ms`.
pub(crate) fn generate(
    seed: u64,
    count: usize,
    days: u32,
    now_ms: i64,
    large: bool,
    attachment_percent: Option<u8>,
    mailbox: &str,
) -> Result<Vec<Generated>, EmulatorError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let attachments = pool(&mut rng, large);
    let span_ms = i64::from(days.max(1)) * 86_400_000;
    let mut out: Vec<Generated> = Vec::with_capacity(count);
    let mut thread_no = 0usize;
    while out.len() < count {
        thread_no += 1;
        let roll: f64 = rng.random();
        let size = if roll < 0.6 {
            1
        } else if roll < 0.85 {
            rng.random_range(2..=4)
        } else if roll < 0.97 {
            rng.random_range(5..=10)
        } else {
            rng.random_range(11..=20)
        };
        let size = size.min(count - out.len());
        let subject_base = *SUBJECTS.choose(&mut rng).unwrap_or(&"Hello");
        let spam = rng.random_bool(0.04);
        let trash = !spam && rng.random_bool(0.04);
        let thread_label = rng
            .random_bool(0.2)
            .then(|| USER_LABELS.choose(&mut rng).copied())
            .flatten();
        let root = out.len();
        // Reply gaps first, so the whole thread fits inside the window ending now.
        let gaps: Vec<i64> = (1..size)
            .map(|_| rng.random_range(120_000..(span_ms / 8).max(120_001)))
            .collect();
        let total: i64 = gaps.iter().sum::<i64>().min(span_ms - 1);
        let mut t = now_ms - total - rng.random_range(0..(span_ms - total).max(1));
        let mut ids: Vec<String> = Vec::new();
        for k in 0..size {
            let index = out.len();
            if k > 0 {
                t = (t + gaps[k - 1]).min(now_ms);
            }
            let from_me = k > 0 && rng.random_bool(0.3);
            let other = *PEOPLE.choose(&mut rng).unwrap_or(&("X", "x@example.com"));
            let msg_id = format!("<{seed:x}.{thread_no}.{k}@mail.example.com>");
            let subject = if k == 0 {
                subject_base.to_string()
            } else {
                format!("Re: {subject_base}")
            };
            let (body, latin1_body) =
                build_body(&mut rng, &attachments, index, seed, attachment_percent)?;
            let mut b = MessageBuilder::new()
                .message_id(msg_id.trim_matches(['<', '>']).to_string())
                .date(t / 1000)
                .body(body);
            // Latin-1 messages get a Latin-1 encoded-word subject when the text allows it.
            b = match latin1_body.then(|| latin1_q_word(&subject)).flatten() {
                Some(word) => b.header("Subject", Raw::new(word)),
                None => b.subject(subject),
            };
            b = if from_me {
                b.from(("Me".to_string(), mailbox.to_string()))
                    .to((other.0.to_string(), other.1.to_string()))
            } else {
                b.from((other.0.to_string(), other.1.to_string()))
                    .to(("Me".to_string(), mailbox.to_string()))
            };
            if let Some(prev) = ids.last() {
                b = b.in_reply_to(prev.trim_matches(['<', '>']).to_string());
                let refs: Vec<String> = ids
                    .iter()
                    .map(|i| i.trim_matches(['<', '>']).to_string())
                    .collect();
                b = b.references(refs);
            }
            ids.push(msg_id);
            let raw = b
                .write_to_vec()
                .map_err(|e| EmulatorError::Generate(e.to_string()))?;
            let mut labels = Vec::new();
            if from_me {
                labels.push("SENT".to_string());
            } else {
                labels.push("INBOX".to_string());
                labels.push("CATEGORY_PERSONAL".to_string());
                if rng.random_bool(0.3) {
                    labels.push("UNREAD".to_string());
                }
            }
            if rng.random_bool(0.05) {
                labels.push("STARRED".to_string());
            }
            if rng.random_bool(0.1) {
                labels.push("IMPORTANT".to_string());
            }
            if let Some(l) = thread_label {
                labels.push(l.to_string());
            }
            if spam {
                labels.retain(|l| l != "INBOX");
                labels.push("SPAM".to_string());
            }
            if trash {
                labels.retain(|l| l != "INBOX");
                labels.push("TRASH".to_string());
            }
            out.push(Generated {
                raw,
                labels,
                thread_root: root,
                internal_date_ms: t,
            });
        }
    }
    Ok(out)
}

/// `=?iso-8859-1?Q?…?=` of a non-ASCII text representable in Latin-1.
fn latin1_q_word(text: &str) -> Option<String> {
    if text.is_ascii() || text.chars().any(|c| u32::from(c) > 0xff) {
        return None;
    }
    let mut out = String::from("=?iso-8859-1?Q?");
    for b in latin1(text) {
        match b {
            b' ' => out.push('_'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b',' | b'-' | b'!' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    Some(out)
}

/// Shapes 55..=92 carry a non-body part (attachments, an inline image, a
/// forwarded message): 38 of 100. With a wanted percentage, a uniform roll in
/// 0..100 is mapped so that `percent` of rolls land in those shapes (spread
/// over all of them) and the rest over the plain ones (0..=54, 93..=99).
fn shape_for(roll: u32, attachment_percent: Option<u8>) -> u32 {
    const WITH: u32 = 38;
    let Some(percent) = attachment_percent.map(|p| u32::from(p.min(100))) else {
        return roll;
    };
    if roll < percent {
        55 + roll * WITH / percent
    } else {
        let plain = (roll - percent) * (100 - WITH) / (100 - percent);
        if plain < 55 { plain } else { 93 + (plain - 55) }
    }
}

/// Pick a MIME shape for message number `index`; the flag says the text is Latin-1.
fn build_body(
    rng: &mut StdRng,
    pool: &[Attachment],
    index: usize,
    seed: u64,
    attachment_percent: Option<u8>,
) -> Result<(MimePart<'static>, bool), EmulatorError> {
    let b = |n: &str| format!("=_b{seed:x}_{index}_{n}");
    let target = rng.random_range(400..12_000);
    let text = paragraph_text(rng, target);
    let html = format!(
        "<html><body>{}</body></html>",
        text.split("\r\n\r\n")
            .map(|p| format!("<p>{p}</p>"))
            .collect::<String>()
    );
    let shape = shape_for(rng.random_range(0..100), attachment_percent);
    let alternative = |text: String, html: String| {
        multipart(
            "multipart/alternative",
            b("alt"),
            vec![
                MimePart::new(
                    ct("text/plain").attribute("charset", "utf-8"),
                    BodyPart::Text(Cow::Owned(text)),
                ),
                MimePart::new(
                    ct("text/html").attribute("charset", "utf-8"),
                    BodyPart::Text(Cow::Owned(html)),
                ),
            ],
        )
    };
    let attach = |a: &Attachment| {
        MimePart::new(ct(a.mime), BodyPart::Binary(Cow::Owned(a.bytes.clone())))
            .attachment(a.filename)
    };
    // Large attachments are rare, capped and deterministic by index, so mailboxes stay modest.
    if pool.len() > 8 && index % 97 == 13 && index / 97 < MAX_LARGE {
        let big = &pool[8 + (index / 97) % (pool.len() - 8)];
        return Ok((
            multipart(
                "multipart/mixed",
                b("mix"),
                vec![alternative(text, html), attach(big)],
            ),
            false,
        ));
    }
    let latin1_shape = shape >= 93;
    let part = match shape {
        0..=29 => MimePart::new(
            ct("text/plain").attribute("charset", "utf-8"),
            BodyPart::Text(Cow::Owned(text)),
        ),
        30..=54 => alternative(text, html),
        55..=74 => {
            let n = rng.random_range(1..=3);
            let mut parts = vec![alternative(text, html)];
            for _ in 0..n {
                if let Some(a) = pool[..8.min(pool.len())].choose(rng) {
                    parts.push(attach(a));
                }
            }
            multipart("multipart/mixed", b("mix"), parts)
        }
        75..=84 => {
            // multipart/related: HTML referencing an inline image by Content-ID.
            let cid = format!("img{index}@example.com");
            let html =
                format!("<html><body><p>See the chart:</p><img src=\"cid:{cid}\"></body></html>");
            let img = pool.get(2).map(|a| a.bytes.clone()).unwrap_or_default();
            let related = multipart(
                "multipart/related",
                b("rel"),
                vec![
                    MimePart::new(
                        ct("text/html").attribute("charset", "utf-8"),
                        BodyPart::Text(Cow::Owned(html)),
                    ),
                    MimePart::new(ct("image/png"), BodyPart::Binary(Cow::Owned(img)))
                        .inline()
                        .cid(cid),
                ],
            );
            multipart(
                "multipart/alternative",
                b("alt2"),
                vec![
                    MimePart::new(
                        ct("text/plain").attribute("charset", "utf-8"),
                        BodyPart::Text(Cow::Owned(text)),
                    ),
                    related,
                ],
            )
        }
        85..=92 => {
            // A forwarded message as message/rfc822.
            let inner = MessageBuilder::new()
                .message_id(format!("fwd.{index}@example.org"))
                .from((
                    "Original Sender".to_string(),
                    "orig@example.org".to_string(),
                ))
                .to("someone@example.com")
                .subject("Original message")
                .date(1_700_000_000i64)
                .body(MimePart::new(
                    ct("text/plain").attribute("charset", "utf-8"),
                    BodyPart::Text(Cow::Owned(sentence(rng))),
                ))
                .write_to_string()
                .map_err(|e| EmulatorError::Generate(e.to_string()))?;
            multipart(
                "multipart/mixed",
                b("fwd"),
                vec![
                    MimePart::new(
                        ct("text/plain").attribute("charset", "utf-8"),
                        BodyPart::Text(Cow::Owned("Forwarding this.\r\n".to_string())),
                    ),
                    // Binary + explicit 7bit: written verbatim, no charset parameter.
                    MimePart::new(
                        ct("message/rfc822"),
                        BodyPart::Binary(Cow::Owned(inner.into_bytes())),
                    )
                    .transfer_encoding("7bit"),
                ],
            )
        }
        _ => {
            // Non-UTF-8 charset body (ISO-8859-1 bytes).
            let body = format!("Grüße aus Köln — café, naïve, façade.\r\n{text}").replace('—', "-");
            MimePart::new(
                ct("text/plain").attribute("charset", "iso-8859-1"),
                BodyPart::Binary(Cow::Owned(latin1(&body))),
            )
        }
    };
    Ok((part, latin1_shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(7, 30, 7, 1_800_000_000_000, false, None, "me@example.com").expect("gen");
        let b = generate(7, 30, 7, 1_800_000_000_000, false, None, "me@example.com").expect("gen");
        assert_eq!(a.len(), 30);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.raw == y.raw && x.labels == y.labels)
        );
        let c = generate(8, 30, 7, 1_800_000_000_000, false, None, "me@example.com").expect("gen");
        assert!(a.iter().zip(&c).any(|(x, y)| x.raw != y.raw));
    }

    fn share_with_attachments(percent: Option<u8>) -> f64 {
        let msgs = generate(
            9,
            1500,
            7,
            1_800_000_000_000,
            false,
            percent,
            "me@example.com",
        )
        .expect("gen");
        let with = msgs
            .iter()
            .filter(|m| {
                mail_parser::MessageParser::default()
                    .parse(&m.raw[..])
                    .is_some_and(|p| p.attachment_count() > 0)
            })
            .count();
        with as f64 / msgs.len() as f64
    }

    #[test]
    fn attachment_percent_sets_the_share_of_messages_with_parts() {
        let default = share_with_attachments(None);
        assert!((0.32..0.44).contains(&default), "default mix: {default}");
        let fifteen = share_with_attachments(Some(15));
        assert!((0.11..0.19).contains(&fifteen), "15%: {fifteen}");
        assert_eq!(share_with_attachments(Some(0)), 0.0);
        for roll in 0..100 {
            assert_eq!(shape_for(roll, None), roll);
            let with = (55..=92).contains(&shape_for(roll, Some(15)));
            assert_eq!(with, roll < 15, "roll {roll}");
            assert!(shape_for(roll, Some(100)) <= 92 && shape_for(roll, Some(0)) < 100);
        }
    }

    #[test]
    fn latin1_subjects_decode() {
        let word = latin1_q_word("Übersicht für März").expect("latin-1 text");
        assert!(word.starts_with("=?iso-8859-1?Q?"));
        let raw = format!("Subject: {word}\r\n\r\nx\r\n");
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parse");
        assert_eq!(parsed.subject(), Some("Übersicht für März"));
        assert_eq!(latin1_q_word("plain"), None);
        assert_eq!(latin1_q_word("会議"), None);
    }

    #[test]
    fn content_is_parseable_mime() {
        let msgs =
            generate(42, 120, 7, 1_800_000_000_000, false, None, "me@example.com").expect("gen");
        let mut attachments = 0;
        for m in &msgs {
            let parsed = mail_parser::MessageParser::default()
                .parse(&m.raw[..])
                .expect("parse");
            attachments += parsed.attachment_count();
            assert!(m.internal_date_ms <= 1_800_000_000_000);
        }
        assert!(attachments > 10, "expected attachments, got {attachments}");
        assert!(msgs.iter().any(|m| m.thread_root != msgs.iter().position(|x| std::ptr::eq(x, m)).unwrap_or(0)));
    }
}
