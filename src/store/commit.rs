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

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
