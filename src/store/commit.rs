//! Atomic commits: a file is written under a unique name in `.selfplay/tmp`
//! (same filesystem as the stores), fsynced, then renamed into place and its
//! folder fsynced. Readers see the old file or the new one, never a part;
//! a kill before the rename leaves only a temporary file that the next
//! claim of the same work removes.

use super::RunDir;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// A finished, fsynced file waiting for its rename into a store.
#[derive(Debug)]
pub struct Staged {
    tmp: TempPath,
    dest: PathBuf,
    pub rows: u64,
}

impl Staged {
    pub fn new(tmp: TempPath, dest: PathBuf, rows: u64) -> Staged {
        Staged { tmp, dest, rows }
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The commit: one rename, then the folder's fsync so it survives a crash.
    pub fn commit(self) -> Result<u64> {
        let dir = self.dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::failpoint::hit(&format!("before-commit:{}", self.dest.display()));
        self.tmp
            .persist(&self.dest)
            .map_err(|e| Error::io(&self.dest, e.error))?;
        sync_dir(dir)?;
        crate::failpoint::hit(&format!("after-commit:{}", self.dest.display()));
        Ok(self.rows)
    }
}

impl Staged {
    /// Commits only if `dest` does not exist yet (a hard link never
    /// replaces); an existing `dest` is kept and this file dropped.
    /// Returns whether this file became `dest`.
    pub fn link_new(self) -> Result<bool> {
        let dir = self.dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::failpoint::hit(&format!("before-commit:{}", self.dest.display()));
        match std::fs::hard_link(&self.tmp, &self.dest) {
            Ok(()) => {
                sync_dir(dir)?;
                crate::failpoint::hit(&format!("after-commit:{}", self.dest.display()));
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io(&self.dest, e)),
        }
    }
}

/// A new, empty temporary file for the work of claim `key`, with its path.
pub fn temp_file(run: &RunDir, key: &str) -> Result<(std::fs::File, TempPath)> {
    temp_file_ending(run, key, ".tmp")
}

/// [`temp_file`] with a chosen ending (libtorch picks the format by it).
pub fn temp_file_ending(
    run: &RunDir,
    key: &str,
    ending: &str,
) -> Result<(std::fs::File, TempPath)> {
    let dir = run.tmp_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let named = tempfile::Builder::new()
        .prefix(&format!("{key}."))
        .suffix(ending)
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    Ok(named.into_parts())
}

/// Stages `bytes` as the future content of `dest`, under claim `key`.
pub fn stage_bytes(run: &RunDir, key: &str, dest: &Path, bytes: &[u8]) -> Result<Staged> {
    use std::io::Write;
    let (mut file, path) = temp_file(run, key)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(&path, e))?;
    Ok(Staged::new(path, dest.to_path_buf(), 0))
}

/// Replaces a small file atomically (`models/BEST`, `model.json`); its
/// temporary name is unique, so concurrent writers never mix bytes.
pub fn write_file(run: &RunDir, key: &str, dest: &Path, bytes: &[u8]) -> Result<()> {
    stage_bytes(run, key, dest, bytes)?.commit().map(|_| ())
}

/// Commits staged files that together make up the folder `root` (each
/// one's `dest` lies under it): they are gathered into a fresh folder in
/// `.selfplay/tmp`, which then trades places with `root` in one
/// `renameat2(RENAME_EXCHANGE)`, so readers see all the old files or all
/// the new ones, never a mix; the old folder is removed after. A kill
/// leaves only a folder named after `claim_key` there, which the next
/// claim of the same work removes. Returns each file's rows.
pub fn commit_folder(
    run: &RunDir,
    claim_key: &str,
    root: &Path,
    parts: Vec<Staged>,
) -> Result<Vec<u64>> {
    let tmp = run.tmp_dir();
    let fresh = tempfile::Builder::new()
        .prefix(&format!("{claim_key}."))
        .tempdir_in(&tmp)
        .map_err(|e| Error::io(&tmp, e))?
        .keep();
    let mut rows = Vec::with_capacity(parts.len());
    for part in parts {
        let rel = part.dest.strip_prefix(root).map_err(|_| {
            Error::Other(format!(
                "{} is not under {}",
                part.dest.display(),
                root.display()
            ))
        })?;
        let dest = fresh.join(rel);
        let dir = dest.parent().unwrap_or(&fresh);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        part.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
        sync_dir(dir)?;
        rows.push(part.rows);
    }
    sync_dir(&fresh)?;
    let parent = root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    crate::failpoint::hit(&format!("before-commit:{}", root.display()));
    if root.exists() {
        exchange(&fresh, root)?;
        sync_dir(parent)?;
        // `fresh` now names the old folder.
        std::fs::remove_dir_all(&fresh).map_err(|e| Error::io(&fresh, e))?;
    } else {
        std::fs::rename(&fresh, root).map_err(|e| Error::io(root, e))?;
        sync_dir(parent)?;
    }
    crate::failpoint::hit(&format!("after-commit:{}", root.display()));
    Ok(rows)
}

/// Swaps two paths on one file system atomically (Linux `renameat2` with
/// `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::Other(format!("{}: a NUL byte in the path", p.display())))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths for the call's duration.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Error::io(b, std::io::Error::last_os_error()))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folder is replaced whole, a file the new one lacks included, and
    /// nothing is left in `.selfplay/tmp`; a claim removes a folder a
    /// killed owner staged there.
    #[test]
    fn a_folder_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let root = dir.path().join("traces");
        let stage =
            |rel: &str, text: &str| stage_bytes(&run, "k", &root.join(rel), text.as_bytes());
        let first = vec![
            stage("a/x", "old a").unwrap(),
            stage("b/x", "old b").unwrap(),
        ];
        commit_folder(&run, "k", &root, first).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("b/x")).unwrap(), "old b");
        let second = vec![
            stage("a/x", "new a").unwrap(),
            stage("c/x", "new c").unwrap(),
        ];
        commit_folder(&run, "k", &root, second).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("a/x")).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(root.join("c/x")).unwrap(), "new c");
        assert!(!root.join("b").exists());
        let left: Vec<_> = std::fs::read_dir(run.tmp_dir()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");

        let stale = run.tmp_dir().join("k.abc");
        std::fs::create_dir_all(stale.join("a")).unwrap();
        std::fs::write(stale.join("a/x"), "staged").unwrap();
        let _claim = crate::store::lock::Claim::acquire(&run, "k", false).unwrap();
        assert!(!stale.exists());
    }
}
