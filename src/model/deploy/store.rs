//! The deployment record: every fix the loop has taken up, every release, as one JSON file that
//! the running stage and `hephaestus fixes` share.
//!
//! In: changes made under the file's lock (`Store::update`). Out: the current `Book` (`load`).
//! State: the file itself (written to a temporary file and renamed, so a reader never sees half
//! of it) and its lock file beside it; in memory, the last version read, reused while the file's
//! inode, length and modification time are unchanged (the stage asks on every incident update).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::core::time::Millis;

/// Where a fix is in the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Committed on its branch; staging not passed yet.
    Proposed,
    /// Staging failed (merge conflict, tests, load): not deployed.
    StagingFailed,
    /// Passed staging; waits for `hephaestus fixes approve`.
    AwaitingApproval,
    /// Turned down with `hephaestus fixes reject`.
    Rejected,
    /// In production, watched for recurrences.
    Production,
    /// The error came back from a release with the fix (or an operator rolled it back).
    RolledBack,
    /// In production for the whole watch window without a recurrence.
    Successful,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::StagingFailed => "staging_failed",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Rejected => "rejected",
            Status::Production => "production",
            Status::RolledBack => "rolled_back",
            Status::Successful => "successful",
        }
    }
}

/// One step in a fix's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Millis,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixRecord {
    /// `fix-<n>`.
    pub id: String,
    pub fingerprint: String,
    pub title: String,
    pub branch: String,
    /// The fix's own commit (on `branch`).
    pub commit: String,
    /// The diff the validator proved (fix only).
    pub diff: String,
    pub status: Status,
    /// When the stage first saw the incident (for time to production).
    pub incident_seen: Millis,
    /// The staging merge commit, when staged by merging.
    pub staging_commit: Option<String>,
    /// The release that first shipped it, and when.
    pub release: Option<String>,
    pub deployed_at: Option<Millis>,
    /// The incident's event count when the fix reached production.
    pub count_at_deploy: u64,
    /// Why it was rolled back.
    pub rollback: Option<String>,
    pub history: Vec<Event>,
}

/// A production release: what the production branch pointed at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// `r<n>`.
    pub id: String,
    pub commit: String,
    pub at: Millis,
    /// `deploy <fix id>` or `rollback <fix id>`.
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub fixes: Vec<FixRecord>,
    /// Oldest first.
    pub releases: Vec<Release>,
}

impl FixRecord {
    /// The commit that reached (or would reach) production: the staging merge, else the fix.
    pub fn shipped_commit(&self) -> String {
        self.staging_commit
            .clone()
            .unwrap_or_else(|| self.commit.clone())
    }
}

impl Book {
    pub fn fix(&self, id: &str) -> Option<&FixRecord> {
        self.fixes.iter().find(|f| f.id == id)
    }

    pub fn fix_mut(&mut self, id: &str) -> Option<&mut FixRecord> {
        self.fixes.iter_mut().find(|f| f.id == id)
    }

    /// The newest fix for a fingerprint.
    pub fn latest_for(&self, fingerprint: &str) -> Option<&FixRecord> {
        self.fixes
            .iter()
            .rev()
            .find(|f| f.fingerprint == fingerprint)
    }

    pub fn next_fix_id(&self) -> String {
        format!("fix-{}", self.fixes.len() + 1)
    }

    pub fn next_release_id(&self) -> String {
        format!("r{}", self.releases.len() + 1)
    }

    /// Releases from `release` on (it included): the ones that carry a fix it shipped.
    pub fn releases_since(&self, release: &str) -> Vec<&str> {
        match self.releases.iter().position(|r| r.id == release) {
            Some(i) => self.releases[i..].iter().map(|r| r.id.as_str()).collect(),
            None => Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a deployment record: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// The file and its lock.
#[derive(Clone, Debug)]
pub struct Store {
    pub path: PathBuf,
    /// The version last read or written, by its stamp (shared by clones).
    cache: Arc<Mutex<Option<Cached>>>,
}

/// A version of the file in memory, and the stamp it had (`None`: there was no file).
type Cached = (Option<Stamp>, Book);

/// One version of the file: every writer renames a new file into place, so a new version has
/// a new inode (and its own length and time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// The file's stamp; `None` when it does not exist (or cannot be looked at).
fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        modified: m.modified().ok(),
    })
}

impl Store {
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store {
            path: path.into(),
            cache: Arc::default(),
        }
    }

    fn remember(&self, book: &Book) {
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((stamp(&self.path), book.clone()));
        }
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn read(&self) -> Result<Book, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: self.path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Book::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn lock(&self) -> Result<File, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&self.path))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        Ok(lock)
    }

    /// The record as it is now: the version in memory while the file is unchanged, else read
    /// under the lock.
    pub fn load(&self) -> Result<Book, StoreError> {
        let now = stamp(&self.path);
        if let Ok(c) = self.cache.lock()
            && let Some((seen, book)) = c.as_ref()
            && *seen == now
        {
            return Ok(book.clone());
        }
        let _lock = self.lock()?;
        let book = self.read()?;
        self.remember(&book);
        Ok(book)
    }

    /// Reads, changes and writes the record under its lock; returns what `change` returned.
    pub fn update<T>(&self, change: impl FnOnce(&mut Book) -> T) -> Result<T, StoreError> {
        let _lock = self.lock()?;
        let mut book = self.read()?;
        let out = change(&mut book);
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&book).map_err(|source| StoreError::Json {
            path: self.path.display().to_string(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        self.remember(&book);
        Ok(out)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_persist_and_releases_are_ordered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("d/deploys.json"));
        assert_eq!(store.load().expect("empty"), Book::default());
        for n in 0..3 {
            store
                .update(|b| {
                    let id = b.next_release_id();
                    b.releases.push(Release {
                        id,
                        commit: format!("c{n}"),
                        at: n,
                        reason: String::new(),
                    });
                })
                .expect("update");
        }
        let book = store.load().expect("load");
        assert_eq!(book.releases_since("r2"), vec!["r2", "r3"]);
        assert!(book.releases_since("r9").is_empty());
    }

    fn release(b: &mut Book, commit: &str) {
        let id = b.next_release_id();
        b.releases.push(Release {
            id,
            commit: commit.into(),
            at: 0,
            reason: String::new(),
        });
    }

    #[test]
    fn a_change_by_another_process_is_seen_and_an_unchanged_file_is_not_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deploys.json");
        let stage = Store::new(&path);
        let cli = Store::new(&path); // as `hephaestus fixes` would: its own store
        stage.update(|b| release(b, "aaaa")).expect("update");
        assert_eq!(stage.load().expect("load").releases.len(), 1);
        cli.update(|b| release(b, "bbbb")).expect("other writer");
        assert_eq!(stage.load().expect("load").releases.len(), 2, "seen");

        // Same inode, length and time, other bytes: the file was not read again.
        let before = std::fs::metadata(&path).expect("meta");
        let text = std::fs::read_to_string(&path).expect("read");
        let swapped = text.replace("bbbb", "cccc");
        assert_eq!(swapped.len(), text.len());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, swapped.as_bytes())?;
                f.set_modified(before.modified()?)
            })
            .expect("rewrite in place");
        assert_eq!(stage.load().expect("cached").releases[1].commit, "bbbb");
        assert_eq!(
            Store::new(&path).load().expect("fresh").releases[1].commit,
            "cccc"
        );
    }
}
