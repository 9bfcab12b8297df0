//! Secrets of the embedded default, generated on first start and kept in
//! the data directory, readable by the owner only.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use base64::Engine;
use rand::TryRng;
use zeroize::Zeroizing;

use crate::config::ConfigError;

const JWT_SECRET_FILE: &str = "jwt-secret";
const SEALING_KEY_FILE: &str = "bid-sealing-key";

/// The JWT secret kept in `data_dir`, generated (64 random bytes, base64) if absent.
pub(crate) fn jwt_secret(data_dir: &Path) -> Result<String, ConfigError> {
    read_or_create(data_dir, JWT_SECRET_FILE, 64)
}

/// The sealing key kept in `data_dir`, generated (32 random bytes, base64) if absent.
pub(crate) fn sealing_key(data_dir: &Path) -> Result<String, ConfigError> {
    read_or_create(data_dir, SEALING_KEY_FILE, 32)
}

fn problem(path: &Path, what: impl std::fmt::Display) -> ConfigError {
    ConfigError::new("DATA_DIR", format_args!("{}: {what}", path.display()))
}

fn read_or_create(dir: &Path, name: &str, random_bytes: usize) -> Result<String, ConfigError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| problem(dir, e))?;
    let path = dir.join(name);
    // create_new: if two processes start at once, one creates and both read
    // the same file afterwards.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let mut raw = Zeroizing::new(vec![0u8; random_bytes]);
            rand::rngs::SysRng
                .try_fill_bytes(&mut raw)
                .map_err(|e| problem(&path, e))?;
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*raw));
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| problem(&path, e))?;
            tracing::info!(path = %path.display(), "generated a new secret");
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(problem(&path, e)),
    }
    let mode = fs::metadata(&path).map_err(|e| problem(&path, e))?.mode();
    if mode & 0o077 != 0 {
        return Err(problem(
            &path,
            format_args!(
                "is readable by others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    let content = fs::read_to_string(&path).map_err(|e| problem(&path, e))?;
    Ok(content.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secrets_are_created_owner_only_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let first = jwt_secret(&data).unwrap();
        assert_eq!(first, jwt_secret(&data).unwrap());
        assert_ne!(first, sealing_key(&data).unwrap());
        let file_mode = fs::metadata(data.join(JWT_SECRET_FILE)).unwrap().mode() & 0o777;
        let dir_mode = fs::metadata(&data).unwrap().mode() & 0o777;
        assert_eq!((file_mode, dir_mode), (0o600, 0o700));
    }

    #[test]
    fn a_secret_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        sealing_key(dir.path()).unwrap();
        let path = dir.path().join(SEALING_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = sealing_key(dir.path()).unwrap_err();
        assert_eq!(err.variable, "DATA_DIR");
        assert!(err.problem.contains("chmod 600"));
    }

    #[test]
    fn an_unwritable_data_dir_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let err = jwt_secret(&blocker.join("data")).unwrap_err();
        assert_eq!(err.variable, "DATA_DIR");
    }
}
