//! An online backup of the SQLite file: `VACUUM INTO` a new file beside the target, synced and
//! renamed into place, so that the target is either the whole copy or absent.

use std::path::Path;

use crate::{Result, StoreError};

/// Copies the database at `from` into `to` through a connection of its own: one read
/// transaction, so the copy is one consistent state while the server goes on writing. Returns
/// the copy's size.
pub(super) fn vacuum_into(from: &Path, to: &Path) -> Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: &str, p: &Path, e: std::io::Error| {
        StoreError::Backend(
            crate::BackendError::io(&e).context(format_args!("{what} {}", p.display())),
        )
    };
    if to.exists() {
        return Err(StoreError::Exists(format!(
            "the backup file {}",
            to.display()
        )));
    }
    let dir = match to.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    let name = to
        .file_name()
        .ok_or_else(|| StoreError::backend(format!("{} names no file", to.display())))?;
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // empty and private before SQLite writes a byte into it (VACUUM INTO takes an empty file)
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("cannot create", &tmp, e))?;
    let copied = (|| {
        let c = rusqlite::Connection::open(from)?;
        c.busy_timeout(std::time::Duration::from_secs(30))?;
        let target = tmp
            .to_str()
            .ok_or_else(|| rusqlite::Error::InvalidPath(tmp.clone()))?;
        c.execute("VACUUM INTO ?1", [target])?;
        Ok::<_, rusqlite::Error>(())
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Backend(
            crate::BackendError::sqlite(e).context(format_args!("backing up {}", from.display())),
        ));
    }
    // synced and renamed, or gone: no partial copy is left behind
    let placed = (|| {
        let file = std::fs::File::open(&tmp).map_err(|e| io("cannot open", &tmp, e))?;
        file.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
        let size = file
            .metadata()
            .map_err(|e| io("cannot read", &tmp, e))?
            .len();
        std::fs::rename(&tmp, to).map_err(|e| io("cannot rename into", to, e))?;
        Ok(size)
    })();
    let size = match placed {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", &dir, e))?;
    Ok(size)
}
