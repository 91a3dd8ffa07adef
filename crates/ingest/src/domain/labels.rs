//! A mailbox's Gmail labels as the archive keeps them (`mailbox_labels`), what
//! changed between the stored set and a fresh labels.list (each change one
//! ledger event), and Takeout's words for Gmail's system labels. Message rows
//! keep label ids, which never change; names live here because they do.

use std::collections::BTreeMap;

use serde::Serialize;

/// Who owns a label: Gmail (INBOX, SPAM, CATEGORY_…) or the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    System,
    User,
}

impl LabelKind {
    /// The value `mailbox_labels.label_type` holds.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelKind::System => "system",
            LabelKind::User => "user",
        }
    }

    /// The stored value back; anything but "system" is the user's, as Gmail
    /// itself names only its own labels.
    pub fn from_stored(s: &str) -> LabelKind {
        if s == "system" {
            LabelKind::System
        } else {
            LabelKind::User
        }
    }
}

/// One label of a mailbox, as labels.list gives it and `mailbox_labels` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxLabel {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: LabelKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_list_visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_list_visibility: Option<String>,
}

/// Text as the database can hold it: PostgreSQL's `text` cannot hold U+0000.
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// As labels.list gives it, less any U+0000 (which no column can hold, so a
/// label holding one would otherwise look changed on every run).
impl From<gmail::Label> for MailboxLabel {
    fn from(l: gmail::Label) -> Self {
        let text = |v: Option<String>| v.map(without_nul);
        MailboxLabel {
            id: l.id,
            name: without_nul(l.name),
            kind: match l.label_type {
                gmail::LabelType::System => LabelKind::System,
                gmail::LabelType::User => LabelKind::User,
            },
            text_color: text(l.text_color),
            background_color: text(l.background_color),
            message_list_visibility: text(l.message_list_visibility),
            label_list_visibility: text(l.label_list_visibility),
        }
    }
}

/// A stored label row: the label, and whether Gmail deleted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLabel {
    pub label: MailboxLabel,
    pub deleted: bool,
}

/// What happened to one label since the archive last listed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum LabelChangeKind {
    /// New to the archive (or listed again after Gmail had deleted it).
    Created,
    /// Its name changed; `from` is the name the archive had.
    Renamed { from: String },
    /// Its type, colours or visibility changed; the name did not.
    Updated,
    /// labels.list no longer lists it.
    Deleted,
}

/// One label change: the label as it is now (as it was, for a deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelChange {
    #[serde(flatten)]
    pub kind: LabelChangeKind,
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub label: MailboxLabel,
}

/// The changes that take `stored` to `listed`, in label id order. A label
/// listed twice counts once (the last listing wins).
pub fn label_changes(stored: &[StoredLabel], listed: &[MailboxLabel]) -> Vec<LabelChange> {
    let stored: BTreeMap<&str, &StoredLabel> =
        stored.iter().map(|s| (s.label.id.as_str(), s)).collect();
    let listed: BTreeMap<&str, &MailboxLabel> = listed.iter().map(|l| (l.id.as_str(), l)).collect();
    let change = |kind, label: &MailboxLabel| LabelChange {
        kind,
        id: label.id.clone(),
        name: label.name.clone(),
        label: label.clone(),
    };
    let mut out = Vec::new();
    for (id, now) in &listed {
        let kind = match stored.get(id) {
            None => Some(LabelChangeKind::Created),
            Some(s) if s.deleted => Some(LabelChangeKind::Created),
            Some(s) if s.label.name != now.name => Some(LabelChangeKind::Renamed {
                from: s.label.name.clone(),
            }),
            Some(s) if s.label != **now => Some(LabelChangeKind::Updated),
            Some(_) => None,
        };
        out.extend(kind.map(|k| change(k, now)));
    }
    for (id, s) in &stored {
        if !s.deleted && !listed.contains_key(id) {
            out.push(change(LabelChangeKind::Deleted, &s.label));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Takeout's word for a Gmail system label in `X-Gmail-Labels`; `None` for
/// any other id (a user label goes by its name).
pub fn takeout_system_name(id: &str) -> Option<&'static str> {
    TAKEOUT_NAMES
        .iter()
        .find(|(gmail, _)| *gmail == id)
        .map(|(_, takeout)| *takeout)
}

/// The system label id Takeout's word stands for (`Inbox` → `INBOX`).
pub fn system_id_of_takeout_name(name: &str) -> Option<&'static str> {
    TAKEOUT_NAMES
        .iter()
        .find(|(_, takeout)| *takeout == name)
        .map(|(gmail, _)| *gmail)
}

/// Gmail's system label ids and the words Takeout writes for them.
const TAKEOUT_NAMES: &[(&str, &str)] = &[
    ("INBOX", "Inbox"),
    ("SENT", "Sent"),
    ("UNREAD", "Unread"),
    ("STARRED", "Starred"),
    ("IMPORTANT", "Important"),
    ("SPAM", "Spam"),
    ("TRASH", "Trash"),
    ("DRAFT", "Drafts"),
    ("CHAT", "Chat"),
    ("CATEGORY_PERSONAL", "Category Personal"),
    ("CATEGORY_SOCIAL", "Category Social"),
    ("CATEGORY_PROMOTIONS", "Category Promotions"),
    ("CATEGORY_UPDATES", "Category Updates"),
    ("CATEGORY_FORUMS", "Category Forums"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, name: &str) -> MailboxLabel {
        MailboxLabel {
            id: id.into(),
            name: name.into(),
            kind: LabelKind::User,
            text_color: None,
            background_color: None,
            message_list_visibility: None,
            label_list_visibility: None,
        }
    }

    fn stored(id: &str, name: &str, deleted: bool) -> StoredLabel {
        StoredLabel {
            label: label(id, name),
            deleted,
        }
    }

    #[test]
    fn each_kind_of_change_and_nothing_for_the_unchanged() {
        let before = [
            stored("L1", "same", false),
            stored("L2", "old", false),
            stored("L3", "coloured", false),
            stored("L4", "gone", false),
            stored("L5", "back", true),
            stored("L6", "long gone", true),
        ];
        let mut coloured = label("L3", "coloured");
        coloured.background_color = Some("#fad165".into());
        let now = [
            label("L1", "same"),
            label("L2", "new"),
            coloured,
            label("L5", "back"),
            label("L7", "fresh"),
        ];
        let changes: Vec<(String, LabelChangeKind)> = label_changes(&before, &now)
            .into_iter()
            .map(|c| (c.id, c.kind))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("L2".into(), LabelChangeKind::Renamed { from: "old".into() }),
                ("L3".into(), LabelChangeKind::Updated),
                ("L4".into(), LabelChangeKind::Deleted),
                ("L5".into(), LabelChangeKind::Created),
                ("L7".into(), LabelChangeKind::Created),
            ]
        );
        assert!(label_changes(&[stored("L1", "same", false)], &[label("L1", "same")]).is_empty());
    }

    #[test]
    fn takeout_words_map_both_ways() {
        assert_eq!(
            takeout_system_name("CATEGORY_SOCIAL"),
            Some("Category Social")
        );
        assert_eq!(takeout_system_name("Label_3"), None);
        assert_eq!(system_id_of_takeout_name("Inbox"), Some("INBOX"));
        assert_eq!(system_id_of_takeout_name("inbox"), None);
    }
}
