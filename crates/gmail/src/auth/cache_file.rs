//! The token cache file: its directory 0700 when we create it, the file 0600 always, and
//! every write atomic.
//!
//! yup-oauth2's own disk storage truncates the cache in place and writes it again: a crash
//! or a full disk between the two leaves an empty or half-written file (the refresh token
//! lost, `auth login` needed again), a concurrent reader can see half a file, and an existing
//! file keeps whatever mode it had. [`TokenFile`] replaces it: the new content goes to a
//! temporary file in the same directory, created 0600 (never chmod-ed afterwards), written,
//! fsync-ed, then renamed over the cache, and the directory is fsync-ed so the rename itself
//! survives a crash. A reader sees the old file or the new one, never a mix. The format is
//! yup-oauth2's (`[{"scopes": [...], "token": {...}}]`), so caches from either read back.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use yup_oauth2::storage::{TokenInfo, TokenStorage, TokenStorageError};

use crate::GmailError;

fn io_err(path: &Path, source: std::io::Error) -> GmailError {
    GmailError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create the parent directory (0700) if it is missing.
pub(crate) fn prepare_dir(cache: &Path) -> Result<(), GmailError> {
    let Some(dir) = cache.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| io_err(dir, e))
}

/// Set the cache file to 0600 if it exists.
pub(crate) fn tighten(cache: &Path) -> Result<(), GmailError> {
    if !cache.exists() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err(cache, e))?;
    }
    Ok(())
}

/// One cached token, in yup-oauth2's disk format.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    scopes: Vec<String>,
    token: TokenInfo,
}

/// A `TokenStorage` over one JSON file, replaced atomically on every write.
pub(crate) struct TokenFile {
    path: PathBuf,
    // Held across the whole write so two refreshes never interleave their renames.
    entries: Mutex<Vec<Entry>>,
}

impl TokenFile {
    /// Read the cache (a missing file is an empty cache). The content is never quoted in
    /// errors: it holds the refresh token.
    pub(crate) fn load(path: &Path) -> Result<Self, GmailError> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
                io_err(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not a valid token cache; run `mailingest auth login` again",
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(path, e)),
        };
        Ok(TokenFile {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    /// An empty cache at `path` (the file is replaced on the first write).
    pub(crate) fn empty(path: &Path) -> Self {
        TokenFile {
            path: path.to_path_buf(),
            entries: Mutex::new(Vec::new()),
        }
    }

    fn find(entries: &[Entry], scopes: &[&str]) -> Option<TokenInfo> {
        entries
            .iter()
            .find(|e| scopes.iter().all(|s| e.scopes.iter().any(|t| t == s)))
            .map(|e| e.token.clone())
    }

    fn store(&self, scopes: &[&str], token: TokenInfo) -> Result<(), TokenStorageError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| TokenStorageError::Other("token cache lock poisoned".into()))?;
        let mut wanted: Vec<String> = scopes.iter().map(|s| (*s).to_string()).collect();
        wanted.sort();
        let same = |e: &Entry| {
            let mut have = e.scopes.clone();
            have.sort();
            have == wanted
        };
        match entries.iter_mut().find(|e| same(e)) {
            Some(e) => e.token = token,
            None => entries.push(Entry {
                scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
                token,
            }),
        }
        let json = serde_json::to_vec(&*entries)
            .map_err(|_| TokenStorageError::Other("cannot encode the token cache".into()))?;
        write_atomically(&self.path, &json)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl TokenStorage for TokenFile {
    async fn set(&self, scopes: &[&str], token: TokenInfo) -> Result<(), TokenStorageError> {
        self.store(scopes, token)
    }

    async fn get(&self, scopes: &[&str]) -> Option<TokenInfo> {
        let entries = self.entries.lock().ok()?;
        Self::find(&entries, scopes)
    }
}

/// Replace `path` with `bytes`: temp file (0600 from creation) in the same directory, write,
/// fsync, rename over, fsync the directory. The temp file is removed on any failure.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".into());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dir_0700_and_file_0600() {
        let tmp = std::env::temp_dir().join(format!("gmail-cache-test-{}", std::process::id()));
        let cache = tmp.join("nested").join("token.json");
        prepare_dir(&cache).expect("dir");
        let mode = std::fs::metadata(cache.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(&cache, "{}").expect("write");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        tighten(&cache).expect("tighten");
        let mode = std::fs::metadata(&cache)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gmail-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_a_0644_file_with_a_0600_one_and_leaves_no_temp() {
        let dir = scratch("atomic");
        let cache = dir.join("token.json");
        std::fs::write(&cache, "old").expect("write");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomically(&cache, b"new").expect("atomic write");
        assert_eq!(std::fs::read(&cache).expect("read"), b"new");
        let mode = std::fs::metadata(&cache)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(listing(&dir), ["token.json"]);

        // A failed rename (the target is a directory) removes the temporary file.
        let blocked = dir.join("blocked");
        std::fs::create_dir(&blocked).expect("mkdir");
        std::fs::write(blocked.join("x"), "x").expect("write");
        assert!(write_atomically(&blocked, b"data").is_err());
        assert_eq!(listing(&dir), ["blocked", "token.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_concurrent_reader_sees_the_old_or_the_new_file_never_a_mix() {
        let dir = scratch("readers");
        let cache = dir.join("token.json");
        // Big enough that a non-atomic write is caught mid-way.
        let a = vec![b'a'; 256 * 1024];
        let b = vec![b'b'; 512 * 1024];
        write_atomically(&cache, &a).expect("first");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (cache, stop, a, b) = (cache.clone(), stop.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let got = std::fs::read(&cache).expect("the cache always exists");
                    assert!(got == a || got == b, "partial file of {} bytes", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..200 {
            write_atomically(&cache, if i % 2 == 0 { &b } else { &a }).expect("write");
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().expect("reader saw only whole files");
        assert!(reads > 0);
        assert_eq!(listing(&dir), ["token.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn token_file_round_trips_yup_oauth2_format() {
        let dir = scratch("roundtrip");
        let cache = dir.join("token.json");
        let store = TokenFile::load(&cache).expect("missing file is empty");
        assert!(store.get(&["s1"]).await.is_none());
        let token = TokenInfo {
            access_token: Some("at".into()),
            refresh_token: Some("rt".into()),
            expires_at: None,
            id_token: None,
        };
        store.set(&["s1", "s2"], token.clone()).await.expect("set");
        // A subset of the stored scopes finds it; scope order does not matter on update.
        assert_eq!(store.get(&["s2"]).await, Some(token.clone()));
        let newer = TokenInfo {
            access_token: Some("at2".into()),
            ..token
        };
        store.set(&["s2", "s1"], newer.clone()).await.expect("set");
        let again = TokenFile::load(&cache).expect("reload");
        assert_eq!(again.get(&["s1", "s2"]).await, Some(newer));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cache).expect("read")).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
        std::fs::write(&cache, "{ not json").expect("write");
        let e = TokenFile::load(&cache).err().expect("corrupt cache");
        assert!(e.to_string().contains("auth login"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
