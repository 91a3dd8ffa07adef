//! Top-level header fields other than addresses: Message-ID, In-Reply-To,
//! References, Subject, Date.
//!
//! mail-parser's own accessors return the *last* occurrence of a repeated header;
//! we take the *first*, as Gmail and most clients display it, so lookups go
//! through `first_value` here.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use mail_parser::{HeaderName, HeaderValue, Message};

use super::encoded_words::decode_unstructured;
use super::text::clean_opt;

fn first_value<'a>(
    message: &'a Message<'_>,
    name: HeaderName<'static>,
) -> Option<&'a HeaderValue<'a>> {
    message
        .header_values(name)
        .find(|v| !matches!(v, HeaderValue::Empty))
}

/// Message ids of a header, without angle brackets, NULs removed, empties dropped.
fn ids(message: &Message<'_>, name: HeaderName<'static>) -> Vec<String> {
    let Some(value) = first_value(message, name) else {
        return Vec::new();
    };
    let list: Vec<&str> = match value {
        HeaderValue::Text(s) => vec![s.as_ref()],
        HeaderValue::TextList(l) => l.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .filter_map(|id| {
            clean_opt(Some(
                id.trim().trim_start_matches('<').trim_end_matches('>'),
            ))
        })
        .collect()
}

/// Message-ID without `<>`.
pub(crate) fn message_id(message: &Message<'_>) -> Option<String> {
    ids(message, HeaderName::MessageId).into_iter().next()
}

/// The first id of In-Reply-To (replies carry one; a few clients add more).
pub(crate) fn in_reply_to(message: &Message<'_>) -> Option<String> {
    ids(message, HeaderName::InReplyTo).into_iter().next()
}

/// References, in header order.
pub(crate) fn references(message: &Message<'_>) -> Vec<String> {
    ids(message, HeaderName::References)
}

/// Subject with encoded words decoded; `None` when absent or blank.
///
/// Decoded from the raw header bytes by `encoded_words` (see there for what
/// mail-parser gets wrong); mail-parser's value is the fallback should the raw
/// span ever be unavailable.
pub(crate) fn subject(message: &Message<'_>, raw: &[u8]) -> Option<String> {
    let header = message
        .headers()
        .iter()
        .find(|h| h.name == HeaderName::Subject)?;
    let span = raw.get(header.offset_start as usize..header.offset_end as usize);
    if let Some(bytes) = span {
        return clean_opt(Some(&decode_unstructured(bytes)));
    }
    match first_value(message, HeaderName::Subject)? {
        HeaderValue::Text(s) => clean_opt(Some(s)),
        HeaderValue::TextList(l) => clean_opt(Some(&l.join(", "))),
        _ => None,
    }
}

/// The Date header as UTC; `None` when absent or not a real calendar instant.
pub(crate) fn sent_at(message: &Message<'_>) -> Option<DateTime<Utc>> {
    let HeaderValue::DateTime(dt) = first_value(message, HeaderName::Date)? else {
        return None;
    };
    // mail-parser fills unparseable fields with zeros or out-of-range values;
    // is_valid() rejects those, chrono then rejects impossible days (Feb 30).
    if !dt.is_valid() {
        return None;
    }
    let local =
        NaiveDate::from_ymd_opt(i32::from(dt.year), u32::from(dt.month), u32::from(dt.day))?
            .and_hms_opt(
                u32::from(dt.hour),
                u32::from(dt.minute),
                u32::from(dt.second),
            )?;
    let offset_secs = (i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60)
        * if dt.tz_before_gmt { -1 } else { 1 };
    let offset = FixedOffset::east_opt(offset_secs)?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}
