//! `cache_dir`: the ACME account key and the certificates, one file each,
//! named as Go's autocert names them (`acme_account+key`, the host name,
//! `<token>+http-01`), so a Centrifugo cache directory keeps working and
//! several nodes can share one directory. Files are written whole (to a
//! temporary file, then renamed) and readable by the owner only.

use std::io::ErrorKind;
use std::path::PathBuf;

/// The account key's file.
pub(crate) const ACCOUNT_KEY: &str = "acme_account+key";

/// A directory of cached ACME objects.
#[derive(Debug, Clone)]
pub(crate) struct DirCache {
    dir: PathBuf,
}

impl DirCache {
    pub(crate) fn new(dir: &str) -> Self {
        Self { dir: dir.into() }
    }

    /// Creates the directory (owner-only) when it is missing.
    pub(crate) fn prepare(&self) -> Result<(), String> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))
    }

    /// Where `name` is kept; names with a path separator are refused.
    fn path(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!("{name:?} is not a cache entry name"));
        }
        Ok(self.dir.join(name))
    }

    /// The content of `name`, `None` when there is no such entry.
    pub(crate) async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let path = self.path(name)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes `name` whole: readers see the old content or the new one.
    pub(crate) async fn put(&self, name: &str, data: &[u8]) -> Result<(), String> {
        let path = self.path(name)?;
        let tmp = self.path(&format!("{name}.tmp{}", rand::random::<u32>()))?;
        let write = async {
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, data).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(format!("cannot write {}: {e}", path.display()));
        }
        Ok(())
    }

    /// Removes `name`; a missing entry is not an error.
    pub(crate) async fn delete(&self, name: &str) {
        if let Ok(path) = self.path(name) {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DirCache::new(&dir.path().join("sub").to_string_lossy());
        cache.prepare().expect("created");
        assert_eq!(cache.get("a.example").await.expect("read"), None);
        cache.put("a.example", b"one").await.expect("write");
        cache.put("a.example", b"two").await.expect("overwrite");
        assert_eq!(
            cache.get("a.example").await.expect("read").as_deref(),
            Some(&b"two"[..])
        );
        cache.delete("a.example").await;
        assert_eq!(cache.get("a.example").await.expect("read"), None);
        assert!(cache.get("../etc").await.is_err());
        assert!(cache.put(".hidden", b"x").await.is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            cache.put("k", b"secret").await.expect("write");
            let meta = std::fs::metadata(dir.path().join("sub/k")).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }
}
