//! `Subject`: what a ledger event is about, and the one place its text form is defined.
//!
//! The form is stored in `ledger_events.subject_key` and hashed into the chain. Callers used
//! to build it with `format!` and other crates' SQL parsed it back with `substr`. Keeping the
//! format, its parser and the prefixes here lets the writer and the SQL share one spelling.
//! The format is unchanged, so existing chains still verify.
//!
//! | variant                                | key                       |
//! |----------------------------------------|---------------------------|
//! | `Run(42)`                              | `run:42`                  |
//! | `Thread("abc")`                        | `thread:abc`              |
//! | `Message("abc")`                       | `message:abc`             |
//! | `Part { message: "abc", part: "1.2" }` | `message:abc/part:1.2`    |
//! | `Mailbox("ann@example.com")`           | `mailbox:ann@example.com` |
//! | `Blob("9f86…")`                         | `blob:9f86…` (64 hex)     |
//! | `Label("Label_3")`                     | `label:Label_3`           |
//!
//! # Validity (the round-trip rule)
//!
//! A subject is valid when:
//!
//! * a `Run` id can be any `i64`, written the way `i64`'s `Display` writes it (no `+`,
//!   no leading zeros, no `-0`);
//! * `Thread`, `Message`, and both halves of `Part` are non-empty and contain neither `/`
//!   nor U+0000. A `/` in a message id would make `message:a/part:1` ambiguous, so `/` is
//!   refused in all of them. Gmail's hex ids and MIME part paths (`1.2`) never contain it.
//!   `:` is allowed, because each prefix is stripped exactly once;
//! * a `Mailbox` is non-empty and has no U+0000. It may contain `/` or `:`, which are legal
//!   in addresses and cause no ambiguity;
//! * a `Blob` is a sha256 in 64 lowercase hex digits;
//! * a `Label` (a Gmail label id) is non-empty and has no U+0000; it may hold `/` or `:`
//!   (nothing follows it in the key).
//!
//! U+0000 is refused because Postgres `text` cannot store it. [`FromStr`] accepts exactly
//! the keys of valid subjects, so for every valid `s`, `s.to_string().parse() == Ok(s)`,
//! and for every key `k` that parses, `k.parse()?.to_string() == k`. The variants are public,
//! so an invalid subject can still be built. [`Subject::validate`] checks one, and
//! `append`/`append_terminal` refuse it (`LedgerError::InvalidEvent`) before sending any
//! statement.

use std::fmt;
use std::str::FromStr;

/// What a ledger event is about. Its text form (the stored `subject_key`) is described in the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// A sync run (`sync_runs.id`): `run:42`.
    Run(i64),
    /// A Gmail thread id: `thread:abc`.
    Thread(String),
    /// A Gmail message id: `message:abc`.
    Message(String),
    /// A MIME part (path like `1.2`) of a Gmail message: `message:abc/part:1.2`.
    Part { message: String, part: String },
    /// A mailbox address, for mailbox-level events: `mailbox:ann@example.com`.
    Mailbox(String),
    /// A stored object by its sha256 (64 lowercase hex), for `blob.removed`: `blob:9f86…`.
    Blob(String),
    /// A Gmail label id, for `label.*` events: `label:Label_3`, `label:INBOX`.
    Label(String),
}

/// A key that is not the text of a valid [`Subject`], or a subject that has no valid key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ledger subject {key:?}: {reason}")]
pub struct SubjectError {
    key: String,
    reason: &'static str,
}

impl SubjectError {
    fn new(key: impl Into<String>, reason: &'static str) -> Self {
        SubjectError {
            key: key.into(),
            reason,
        }
    }

    /// The offending key (for an invalid [`Subject`] value, its `Display` text).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl Subject {
    /// Prefix of `Run` keys.
    pub const RUN_PREFIX: &'static str = "run:";
    /// Prefix of `Thread` keys.
    pub const THREAD_PREFIX: &'static str = "thread:";
    /// Prefix of `Message` keys, and of `Part` keys too: a `Message` key is one with this
    /// prefix and no `/` after it. In SQL, the message id of a `Message` key `k` is
    /// `substr(k, length($1) + 1)` with this constant bound as `$1`.
    pub const MESSAGE_PREFIX: &'static str = "message:";
    /// What separates the message id from the part path in a `Part` key.
    pub const PART_SEPARATOR: &'static str = "/part:";
    /// Prefix of `Mailbox` keys.
    pub const MAILBOX_PREFIX: &'static str = "mailbox:";
    /// Prefix of `Blob` keys.
    pub const BLOB_PREFIX: &'static str = "blob:";
    /// Prefix of `Label` keys.
    pub const LABEL_PREFIX: &'static str = "label:";

    /// The key of `Subject::Message(id)`, without building the subject (for SQL binds such
    /// as `subject_key = ANY($1)`). It does not validate `id`.
    pub fn message_key(id: &str) -> String {
        let mut key = String::with_capacity(Self::MESSAGE_PREFIX.len() + id.len());
        key.push_str(Self::MESSAGE_PREFIX);
        key.push_str(id);
        key
    }

    /// The Gmail message id of a `Message` or of a `Part`'s message; `None` otherwise.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Subject::Message(id) | Subject::Part { message: id, .. } => Some(id),
            _ => None,
        }
    }

    /// `Ok` when the subject follows the rules in the [module docs](self), so its key parses
    /// back to it. `append` refuses an event whose subject fails this.
    pub fn validate(&self) -> Result<(), SubjectError> {
        let problem = match self {
            Subject::Run(_) => None,
            Subject::Thread(id) | Subject::Message(id) => id_problem(id),
            Subject::Part { message, part } => id_problem(message).or_else(|| id_problem(part)),
            Subject::Mailbox(address) => mailbox_problem(address),
            Subject::Blob(sha256) => sha256_problem(sha256),
            Subject::Label(id) => label_problem(id),
        };
        match problem {
            Some(reason) => Err(SubjectError::new(self.to_string(), reason)),
            None => Ok(()),
        }
    }
}

/// Why `id` cannot be a thread, message or part id.
fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("an id must not be empty")
    } else if id.contains('/') {
        Some("an id must not contain '/'")
    } else if id.contains('\0') {
        Some("an id must not contain U+0000 (Postgres text cannot store it)")
    } else {
        None
    }
}

fn sha256_problem(sha256: &str) -> Option<&'static str> {
    let hex = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!hex).then_some("a blob is its sha256 in 64 lowercase hex digits")
}

fn label_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("a label id must not be empty")
    } else if id.contains('\0') {
        Some("a label id must not contain U+0000 (Postgres text cannot store it)")
    } else {
        None
    }
}

fn mailbox_problem(address: &str) -> Option<&'static str> {
    if address.is_empty() {
        Some("a mailbox address must not be empty")
    } else if address.contains('\0') {
        Some("a mailbox address must not contain U+0000 (Postgres text cannot store it)")
    } else {
        None
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Run(id) => write!(f, "{}{id}", Self::RUN_PREFIX),
            Subject::Thread(id) => write!(f, "{}{id}", Self::THREAD_PREFIX),
            Subject::Message(id) => write!(f, "{}{id}", Self::MESSAGE_PREFIX),
            Subject::Part { message, part } => write!(
                f,
                "{}{message}{}{part}",
                Self::MESSAGE_PREFIX,
                Self::PART_SEPARATOR
            ),
            Subject::Mailbox(address) => write!(f, "{}{address}", Self::MAILBOX_PREFIX),
            Subject::Blob(sha256) => write!(f, "{}{sha256}", Self::BLOB_PREFIX),
            Subject::Label(id) => write!(f, "{}{id}", Self::LABEL_PREFIX),
        }
    }
}

impl FromStr for Subject {
    type Err = SubjectError;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let err = |reason| SubjectError::new(key, reason);
        let subject = if let Some(digits) = key.strip_prefix(Self::RUN_PREFIX) {
            let id: i64 = digits
                .parse()
                .map_err(|_| err("a run id must be a decimal i64"))?;
            // i64's parser also takes "+7" and "007"; only the form Display writes round-trips.
            if id.to_string() != digits {
                return Err(err(
                    "a run id must be written without '+', leading zeros or '-0'",
                ));
            }
            Subject::Run(id)
        } else if let Some(id) = key.strip_prefix(Self::THREAD_PREFIX) {
            Subject::Thread(id.to_owned())
        } else if let Some(rest) = key.strip_prefix(Self::MESSAGE_PREFIX) {
            match rest.split_once('/') {
                None => Subject::Message(rest.to_owned()),
                Some((message, tail)) => {
                    // Strip "part:" (the separator minus the '/' split on).
                    let part = tail
                        .strip_prefix(&Self::PART_SEPARATOR[1..])
                        .ok_or_else(|| err("a '/' in a message key must start \"/part:\""))?;
                    Subject::Part {
                        message: message.to_owned(),
                        part: part.to_owned(),
                    }
                }
            }
        } else if let Some(address) = key.strip_prefix(Self::MAILBOX_PREFIX) {
            Subject::Mailbox(address.to_owned())
        } else if let Some(sha256) = key.strip_prefix(Self::BLOB_PREFIX) {
            Subject::Blob(sha256.to_owned())
        } else if let Some(id) = key.strip_prefix(Self::LABEL_PREFIX) {
            Subject::Label(id.to_owned())
        } else {
            return Err(err(
                "no known prefix (run:, thread:, message:, mailbox:, blob:, label:)",
            ));
        };
        // Same rules as for built values; the reason, not the re-rendered key, is kept.
        subject.validate().map_err(|e| err(e.reason))?;
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(message: &str, part: &str) -> Subject {
        Subject::Part {
            message: message.into(),
            part: part.into(),
        }
    }

    #[test]
    fn keys_are_the_existing_formats() {
        let cases = [
            (Subject::Run(42), "run:42"),
            (Subject::Run(-7), "run:-7"),
            (Subject::Thread("abc".into()), "thread:abc"),
            (Subject::Message("abc".into()), "message:abc"),
            (part("abc", "1.2"), "message:abc/part:1.2"),
            (
                Subject::Mailbox("ann@example.com".into()),
                "mailbox:ann@example.com",
            ),
            (
                Subject::Blob("ab".repeat(32)),
                &*format!("blob:{}", "ab".repeat(32)),
            ),
            (Subject::Label("Label_3".into()), "label:Label_3"),
            (Subject::Label("a/b:c".into()), "label:a/b:c"),
        ];
        for (subject, key) in cases {
            assert_eq!(subject.to_string(), key);
            assert_eq!(key.parse::<Subject>(), Ok(subject));
        }
        assert_eq!(Subject::message_key("18c3f"), "message:18c3f");
        assert_eq!(
            Subject::message_key("18c3f"),
            Subject::Message("18c3f".into()).to_string()
        );
        // The substr(subject_key, 9) other crates used is this prefix's length + 1.
        assert_eq!(Subject::MESSAGE_PREFIX.len() + 1, 9);
    }

    #[test]
    fn message_id_is_that_of_messages_and_parts() {
        assert_eq!(Subject::Message("m1".into()).message_id(), Some("m1"));
        assert_eq!(part("m2", "1").message_id(), Some("m2"));
        assert_eq!(Subject::Thread("t".into()).message_id(), None);
        assert_eq!(Subject::Run(1).message_id(), None);
        assert_eq!(Subject::Mailbox("a@b".into()).message_id(), None);
    }

    #[test]
    fn ids_may_contain_colons_and_addresses_slashes() {
        for subject in [
            Subject::Thread("a:b".into()),
            Subject::Message("message:x".into()),
            part("a:b", "part:1"),
            Subject::Mailbox("a/b:c@example.com".into()),
            Subject::Mailbox("mailbox:".into()),
            Subject::Run(i64::MIN),
            Subject::Run(i64::MAX),
        ] {
            assert_eq!(subject.validate(), Ok(()), "{subject:?}");
            assert_eq!(subject.to_string().parse::<Subject>(), Ok(subject));
        }
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        for key in [
            "",
            "run",
            "run:",
            "run:+1",
            "run:01",
            "run:-0",
            "run: 1",
            "run:1 ",
            "run:1.0",
            "run:99999999999999999999",
            "Run:1",
            "thread:",
            "thread:a/b",
            "thread:a\0",
            "message:",
            "message:/part:1",
            "message:a/",
            "message:a/b",
            "message:a/part",
            "message:a/Part:1",
            "message:a/part:",
            "message:a/part:1/2",
            "message:a/part:1/part:2",
            "message:a//part:1",
            "mailbox:",
            "mailbox:a\0@b",
            "part:1",
            "a@example.com",
            " message:a",
        ] {
            let err = key.parse::<Subject>();
            let Err(e) = err else {
                panic!("{key:?} parsed as {err:?}");
            };
            assert_eq!(e.key(), key);
            assert!(!e.reason().is_empty());
            assert!(e.to_string().contains(e.reason()), "{e}");
        }
    }

    #[test]
    fn invalid_values_are_named_by_validate() {
        for subject in [
            Subject::Thread(String::new()),
            Subject::Message(String::new()),
            Subject::Message("a/part:1".into()),
            Subject::Thread("a/b".into()),
            part("", "1"),
            part("a", ""),
            part("a/b", "1"),
            part("a", "1/2"),
            part("a", "\0"),
            Subject::Mailbox(String::new()),
            Subject::Mailbox("\0".into()),
        ] {
            let Err(e) = subject.validate() else {
                panic!("{subject:?} validated");
            };
            assert_eq!(e.key(), subject.to_string());
            // Its key never parses back to it (it may parse to something else: that is
            // exactly the ambiguity the rule prevents).
            assert_ne!(subject.to_string().parse::<Subject>().ok(), Some(subject));
        }
    }

    /// Every string of up to `len` tokens over `alphabet`.
    fn strings(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..len {
            layer = layer
                .iter()
                .flat_map(|s| alphabet.iter().map(move |t| format!("{s}{t}")))
                .collect();
            all.extend(layer.iter().cloned());
        }
        all
    }

    /// Characters that are separators somewhere, plus ordinary ones.
    const TRICKY: [&str; 13] = [
        "a", "0", "1", "-", "+", ":", "/", "/part:", "part:", ".", "\0", " ", "é",
    ];

    #[test]
    fn parse_accepts_only_keys_that_display_reproduces() {
        let prefixes = [
            "",
            "run:",
            "thread:",
            "message:",
            "message:a",
            "message:ab/part:",
            "mailbox:",
            "Run:",
        ];
        let tails = strings(&TRICKY, 4);
        let mut accepted = 0;
        for prefix in prefixes {
            for tail in &tails {
                let key = format!("{prefix}{tail}");
                if let Ok(subject) = key.parse::<Subject>() {
                    accepted += 1;
                    assert_eq!(subject.to_string(), key);
                    assert_eq!(subject.validate(), Ok(()), "{key:?}");
                }
            }
        }
        // Sanity: the sweep did reach the accepting branches of every variant.
        assert!(accepted > 10_000, "{accepted}");
    }

    #[test]
    fn valid_values_and_only_they_round_trip() {
        let ids = strings(&TRICKY, 3);
        let short = strings(&TRICKY, 2);
        let mut values: Vec<Subject> = [i64::MIN, -10, -1, 0, 1, 7, 10, 42, i64::MAX]
            .into_iter()
            .map(Subject::Run)
            .collect();
        for id in &ids {
            values.push(Subject::Thread(id.clone()));
            values.push(Subject::Message(id.clone()));
            values.push(Subject::Mailbox(id.clone()));
        }
        for message in &short {
            for p in &short {
                values.push(part(message, p));
            }
        }
        let mut valid = 0;
        for subject in values {
            let back = subject.to_string().parse::<Subject>();
            if subject.validate().is_ok() {
                valid += 1;
                assert_eq!(back, Ok(subject));
            } else {
                assert_ne!(back.ok(), Some(subject));
            }
        }
        assert!(valid > 1_000, "{valid}");
    }
}
