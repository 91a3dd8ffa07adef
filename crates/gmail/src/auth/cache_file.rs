//! Token cache file permissions: the directory 0700 when we create it, the file 0600 always.
//! yup-oauth2 creates the file 0600 but leaves an existing file's mode alone, so we tighten it.

use std::path::Path;

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
}
