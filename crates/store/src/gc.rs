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
