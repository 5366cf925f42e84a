//! Durable files: one atomic write for every file Uplink keeps (configuration, credentials, the
//! policy, the loopback CA, status files), so a crash or a kill in the middle of a save leaves
//! either the old file or the new one, whole.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("config.json");
//! uplink_files::write_atomically(&path, b"{}", uplink_files::Access::OwnerOnly).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}");
//! ```
#![warn(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Mode 0600 on Unix: secrets, credentials, anything about the owner's access.
    OwnerOnly,
    /// The process's default (the umask decides): files with nothing secret in them.
    Default,
}

impl Access {
    /// `OwnerOnly` when `owner_only`, else `Default`.
    pub fn owner_only(owner_only: bool) -> Self {
        if owner_only {
            Self::OwnerOnly
        } else {
            Self::Default
        }
    }
}

/// A write that did not happen; the file at `path` is as it was before.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", .path.display())]
pub struct WriteError {
    /// What was being done: "create", "write", "flush", "replace".
    pub action: &'static str,
    /// The file or folder it was done to.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// A temp file untouched this long belongs to a save that will never finish.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Writes `bytes` to `path` so that readers see the old or the new file whole, and the new one
/// survives a crash once this returns: a temp file named for this process, flushed, renamed
/// over `path`, then the folder flushed. Temp files that killed saves left behind are removed.
///
/// # Errors
/// [`WriteError`] naming the step and the file; the temp file is removed and `path` untouched.
pub fn write_atomically(path: &Path, bytes: &[u8], access: Access) -> Result<(), WriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let step = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError {
            action,
            path,
            source,
        }
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if access == Access::OwnerOnly {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = access;
    let result = (|| {
        let mut file = options.open(&temp).map_err(step("create", &temp))?;
        file.write_all(bytes).map_err(step("write", &temp))?;
        file.sync_all().map_err(step("flush", &temp))?;
        drop(file);
        fs::rename(&temp, path).map_err(step("replace", path))?;
        // The rename itself is durable only once the folder is flushed.
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(step("flush", dir))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    } else {
        remove_abandoned_temp_files(dir, &name);
    }
    result
}

/// Removes the temp files of `name` that a process killed in the middle of a save left
/// behind: those of processes no longer running, or untouched for a minute. Another process
/// saving right now keeps its own.
fn remove_abandoned_temp_files(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if stale || !process_is_running(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is running, where the system says so cheaply (Linux's `/proc`);
/// `true` where it cannot tell, so a caller never treats a live process as gone.
pub fn process_is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"old", Access::Default).unwrap();
        write_atomically(&path, b"new", Access::Default).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        write_atomically(&path, b"{}", Access::OwnerOnly).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_names_the_step_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomically(&path, b"kept", Access::Default).unwrap();
        // A folder where the file should go: the rename fails, the old content stays elsewhere.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("inner")).unwrap();
        let error = write_atomically(&blocked, b"x", Access::Default).unwrap_err();
        assert_eq!(error.action, "replace");
        assert!(error.to_string().contains("blocked"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"kept");
        assert!(
            !dir.path().join(".blocked.tmp-0").exists()
                && fs::read_dir(dir.path()).unwrap().all(|e| !e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")),
            "the temp file of a failed write is removed"
        );
    }

    #[test]
    fn temp_files_of_dead_processes_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // No process has pid u32::MAX - 1 on Linux (pid_max is at most 2^22).
        let dead = dir
            .path()
            .join(format!(".config.json.tmp-{}", u32::MAX - 1));
        let other = dir.path().join(".other.json.tmp-1");
        fs::write(&dead, b"half").unwrap();
        fs::write(&other, b"not ours").unwrap();
        write_atomically(&path, b"{}", Access::Default).unwrap();
        if cfg!(target_os = "linux") {
            assert!(!dead.exists(), "a dead process's temp file is removed");
        }
        assert!(other.exists(), "another file's temp file is left alone");
    }

    #[test]
    fn this_process_is_running() {
        assert!(process_is_running(std::process::id()));
    }
}
