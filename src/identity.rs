//! Who a node is on disk: its key pair ([`Keypair`], from the pure core) kept in a PKCS#8 PEM
//! file with mode 0600 (DESIGN §11). `replikativ keygen --out FILE` writes one; a node's
//! store directory keeps `node.key`, made on its first start so its identity is stable. Key
//! files are never overwritten.
//!
//! The file operations are the [`KeyFiles`] trait, so that the core (which builds for the
//! browser) has no filesystem.

use std::io::Write as _;
use std::path::Path;

pub use replikativ_core::identity::*;

/// The key file a node keeps in its store directory when no `--key` is given.
pub const NODE_KEY_FILE: &str = "node.key";

/// Key pairs kept in files.
pub trait KeyFiles: Sized {
    /// Reads a secret key from a PKCS#8 PEM file.
    fn read(path: &Path) -> Result<Self, KeyError>;

    /// Writes the secret key to a new file `path` (PKCS#8 PEM, mode 0600). An existing file
    /// is never overwritten ([`KeyError::Exists`]). The key appears whole or not at all: it is
    /// written and synced under a temporary name, then linked to `path` (a process killed
    /// meanwhile leaves no half-written key).
    fn write_new(&self, path: &Path) -> Result<(), KeyError>;

    /// The key of a node on `store`: `node.key` beside the store file (made on first use), or
    /// a fresh key for a store in memory or over a custom backend.
    fn of_store(store: &crate::store::Store) -> Result<Self, KeyError>;

    /// The node key of store directory `dir` (`node.key`), made and saved on first use.
    fn load_or_create_in(dir: &Path) -> Result<Self, KeyError>;
}

impl KeyFiles for Keypair {
    fn read(path: &Path) -> Result<Keypair, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Keypair::from_pkcs8_pem(&text, path)
    }

    fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let pem = self.to_pkcs8_pem(path)?;
        if path.exists() {
            return Err(KeyError::Exists {
                path: path.to_path_buf(),
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&tmp).and_then(|mut file| {
            file.write_all(pem.as_bytes())?;
            file.sync_all()
        });
        // A hard link never replaces an existing file: exactly one writer wins.
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    fn of_store(store: &crate::store::Store) -> Result<Keypair, KeyError> {
        match store.path().and_then(Path::parent) {
            Some(dir) => Keypair::load_or_create_in(dir),
            None => Keypair::generate(),
        }
    }

    fn load_or_create_in(dir: &Path) -> Result<Keypair, KeyError> {
        let path = dir.join(NODE_KEY_FILE);
        match Keypair::read(&path) {
            Ok(key) => return Ok(key),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Keypair::generate()?;
        match key.write_new(&path) {
            Ok(()) => Ok(key),
            // Another process made it first: use theirs.
            Err(KeyError::Exists { .. }) => Keypair::read(&path),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_never_overwritten_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k.pem");
        let key = Keypair::generate().expect("random");
        key.write_new(&path).expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&path).expect("read");
        let other = Keypair::generate().expect("random");
        assert!(matches!(
            other.write_new(&path),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");
        assert_eq!(Keypair::read(&path).expect("reads").public(), key.public());
        std::fs::write(dir.path().join("bad.pem"), "not a key").expect("write");
        assert!(matches!(
            Keypair::read(&dir.path().join("bad.pem")),
            Err(KeyError::NotAKey { .. })
        ));
    }

    #[test]
    fn a_store_directory_keeps_one_node_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Keypair::load_or_create_in(dir.path()).expect("made");
        let again = Keypair::load_or_create_in(dir.path()).expect("read");
        assert_eq!(first.public(), again.public());
    }
}
