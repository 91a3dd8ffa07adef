//! What garbage collection sees of a store: every object with its size and age
//! ([`StoredObject`]), a removal that keeps an object touched since a cutoff
//! ([`Removal`]), and writes that never finished ([`AbandonedWrite`]: fs staging
//! files, S3 multipart uploads). The store only reports and removes; which
//! objects are garbage is decided by the caller against its database.

use std::time::SystemTime;

use crate::sha::Sha256;

/// One object as listed: its digest, key, size and last modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub sha256: Sha256,
    pub key: String,
    pub size: u64,
    /// fs: the file's mtime, which a put of the same content refreshes. S3: LastModified.
    /// Unknown (the platform or server gave none): now, so the object counts as young.
    pub modified: SystemTime,
}

/// The store's clock against this host's ([`crate::BlobStore::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// The time the store gave the probe object.
    pub store: SystemTime,
    /// This host's clock just before and just after the probe.
    pub before: SystemTime,
    pub after: SystemTime,
}

impl ClockReading {
    /// How far the store's clock is from this host's, in seconds, at the least: zero when the
    /// store's time falls within the probe (one second of slack for S3's whole seconds), else
    /// the distance to the nearer end, positive when the store is ahead.
    pub fn skew_secs(&self) -> f64 {
        let secs = |a: SystemTime, b: SystemTime| match a.duration_since(b) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let ahead = secs(self.store, self.after);
        let behind = secs(self.store, self.before) + 1.0;
        if ahead > 0.0 {
            ahead
        } else if behind < 0.0 {
            behind
        } else {
            0.0
        }
    }
}

/// Result of [`crate::BlobStore::remove_if_unmodified`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    Removed,
    /// There was no object.
    Absent,
    /// The object was modified (on fs: put again) after the cutoff, so something uses it: kept.
    Kept,
}

/// What kind of write was left unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbandonedKind {
    /// fs: a `.staging-*` file a writer never linked into place (killed, or power lost).
    StagingFile,
    /// S3: a multipart upload neither completed nor aborted.
    MultipartUpload,
}

impl AbandonedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AbandonedKind::StagingFile => "staging_file",
            AbandonedKind::MultipartUpload => "multipart_upload",
        }
    }
}

/// An unfinished write older than the cutoff it was listed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedWrite {
    pub kind: AbandonedKind,
    /// fs: the staging file's path relative to the store root. S3: the upload's object key.
    pub name: String,
    /// fs: the file's size. S3: unknown without listing its parts.
    pub size: Option<u64>,
    /// Unknown: now (so it is never discarded as old).
    pub started: SystemTime,
    /// S3: the upload id that aborting needs.
    pub(crate) upload_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::ClockReading;

    #[test]
    fn skew_is_the_distance_outside_the_probe() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let reading = |store: SystemTime| ClockReading {
            store,
            before: t,
            after: t + Duration::from_millis(300),
        };
        assert_eq!(reading(t + Duration::from_millis(100)).skew_secs(), 0.0);
        // S3's whole seconds: up to a second before the probe is no skew.
        assert_eq!(reading(t - Duration::from_millis(900)).skew_secs(), 0.0);
        assert_eq!(reading(t + Duration::from_secs(30)).skew_secs(), 29.7);
        assert_eq!(reading(t - Duration::from_secs(30)).skew_secs(), -29.0);
    }
}
