//! The file primitives of every write that holds secrets: following symbolic links, private
//! directories, the lock file beside a file, and the atomic write (temporary file, sync, rename,
//! directory sync, mode 0600).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file a path names once every symbolic link is followed (a link to a missing file names
/// the file it would create).
///
/// # Errors
/// [`Error::Io`] for a link that cannot be read, or a chain of more than 40 links.
pub fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&current)
                    .map_err(|e| Error::io("cannot read the link", &current, e))?;
                current = match current.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::io(
        "cannot follow the links of",
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "more than 40 links"),
    ))
}

/// Creates `dir` and its missing parents with mode 0700 (directories holding secrets, keys or
/// databases are private to their owner). An existing directory is left as it is.
///
/// # Errors
/// The directory cannot be created.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The lock file that serialises writers of `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    path.with_file_name(name)
}

/// Writes a file that holds secrets, atomically: a temporary file created with mode 0600 before
/// any byte is written, in the same directory, synced and renamed over the old file; then the
/// directory is synced. The file is 0600 afterwards whatever its mode was (a mode that let group
/// or others read it is narrowed, with a warning). A symbolic link is written through: its target
/// is replaced and the link kept.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = resolve_symlinks(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let old_mode = std::fs::metadata(&target)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    let mut tmp = tempfile::Builder::new()
        .prefix(".sigil-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    // the umask can only take bits away: make sure the owner can read and write
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot set permissions of", tmp.path().to_owned(), e))?;
    // a failure names the file being replaced (which it leaves as it was), not the temporary copy
    // (through the file itself: the temporary file's own writer adds its path to the error)
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(|e| Error::io("cannot write the new version of", &target, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("cannot sync the new version of", &target, e))?;
    tmp.persist(&target)
        .map_err(|e| Error::io("cannot replace", &target, e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", dir, e))?;
    if let Some(mode) = old_mode.filter(|m| m & 0o077 != 0) {
        tracing::warn!(
            "{} holds secrets: its mode was narrowed from {mode:04o} to 0600",
            target.display()
        );
    }
    Ok(())
}
