//! One writer per shard: an exclusive advisory lock (flock) on a file in
//! `.selfplay/locks`, holding the owner's pid and host. The kernel drops
//! the lock when its owner dies, so a killed job never leaves a stale
//! claim; NFS v4 maps flock to byte-range locks, so the claim also holds
//! across the hosts of a cluster on shared storage.

use super::RunDir;
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// A held claim on one unit of work (a stage's shard); released on drop.
#[derive(Debug)]
pub struct Claim {
    _file: File,
    /// File-name-safe key, also the prefix of this claim's temporary files.
    pub key: String,
    pub run: RunDir,
}

impl Claim {
    /// Claims `what` (e.g. "play iteration 3 shard 7"). When another process
    /// holds it: waits when `wait`, else fails naming the owner. Temporary
    /// files a killed earlier owner left behind are removed.
    pub fn acquire(run: &RunDir, what: &str, wait: bool) -> Result<Claim> {
        let key = key_of(what);
        let dir = run.locks_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{key}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                let owner = owner(&mut file);
                tracing::info!(target: crate::output::NOTE, claim = what, owner = owner.as_str(), "{what}: waiting for {owner}");
                file.lock().map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Busy(format!(
                "{what}: already being written by {} (lock {}); rerun with --wait to wait for it",
                owner(&mut file),
                path.display()
            )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let me = format!(
            "pid {} on host {}",
            std::process::id(),
            sysinfo::System::host_name().unwrap_or_else(|| "unknown".into())
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(me.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        let claim = Claim {
            _file: file,
            key,
            run: run.clone(),
        };
        claim.remove_stale_temps()?;
        Ok(claim)
    }

    /// Temporary files of this claim's key: only a dead owner leaves them.
    fn remove_stale_temps(&self) -> Result<()> {
        let dir = self.run.tmp_dir();
        let prefix = format!("{}.", self.key);
        let stale: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        for p in stale {
            // A folder is a whole store folder staged by `commit_folder`.
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        Ok(())
    }
}

/// The owner a lock file names, for the message. The owner writes its
/// name right after taking the lock, so an empty file is retried briefly.
fn owner(file: &mut File) -> String {
    for _ in 0..50 {
        let mut text = String::new();
        let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    "another process".into()
}

/// `play iteration 3 shard 7` -> `play-iteration-3-shard-7`.
fn key_of(what: &str) -> String {
    what.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_names_the_owner_and_the_first_release_frees_it() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let first = Claim::acquire(&run, "play iteration 3 shard 7", false).unwrap();
        let err = Claim::acquire(&run, "play iteration 3 shard 7", false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("play iteration 3 shard 7")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert_eq!(err.exit_code(), 75);
        Claim::acquire(&run, "play iteration 3 shard 8", false).unwrap();
        drop(first);
        Claim::acquire(&run, "play iteration 3 shard 7", false).unwrap();
    }

    #[test]
    fn a_claim_removes_only_its_own_stale_temps() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        std::fs::create_dir_all(run.tmp_dir()).unwrap();
        let mine = run.tmp_dir().join("tasks-iteration-1-shard-0.abc.parquet");
        let other = run.tmp_dir().join("tasks-iteration-1-shard-01.abc.parquet");
        std::fs::write(&mine, "x").unwrap();
        std::fs::write(&other, "x").unwrap();
        let _c = Claim::acquire(&run, "tasks iteration 1 shard 0", false).unwrap();
        assert!(!mine.exists());
        assert!(other.exists());
    }
}
