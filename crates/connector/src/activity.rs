//! The activity trail: every relayed query the connector answered or refused, appended as one
//! JSON line to `activity.jsonl` in the data dir (bounded: past [`ActivityLog::DEFAULT_MAX_BYTES`]
//! the file becomes `activity.jsonl.1`, replacing the previous one), and the most recent kept in
//! memory for the status view.
//!
//! ```
//! use uplink_connector::activity::{ActivityLog, ActivityRecord};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = ActivityLog::open(dir.path()).unwrap();
//! log.record(ActivityRecord {
//!     time: chrono::Utc::now(),
//!     app_id: "app_dashboard".into(),
//!     user_id: "usr_1".into(),
//!     source: "line-1".into(),
//!     operation: "raw".into(),
//!     outcome: "ok".into(),
//!     duration_ms: 12.5,
//!     bytes: 4096,
//!     tag: None,
//!     old_value: None,
//!     new_value: None,
//! });
//! assert_eq!(log.recent()[0].app_id, "app_dashboard");
//! ```

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::config::ConfigError;

/// The trail's file name in the data dir.
pub const ACTIVITY_FILE: &str = "activity.jsonl";

/// One relayed query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRecord {
    /// When it arrived.
    pub time: DateTime<Utc>,
    /// The app asking (client id).
    pub app_id: String,
    /// The user whose grant it used.
    pub user_id: String,
    /// The data source.
    pub source: String,
    /// `search`, `snapshot`, `raw`, `plot`, `atTimes`, `processed` or `write`.
    pub operation: String,
    /// `ok`, `cancelled`, or a failure code (`vetoed`, `unknown_tag`, `busy`…).
    pub outcome: String,
    /// From arrival to the last chunk acknowledged (or the refusal).
    pub duration_ms: f64,
    /// Body bytes sent.
    #[ts(type = "number")]
    pub bytes: u64,
    /// The tag a write set (`operation` `write`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub tag: Option<String>,
    /// The tag's value just before the write, where the source could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub old_value: Option<String>,
    /// The value the write set (or tried to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub new_value: Option<String>,
}

/// The bounded trail, on disk and in memory.
#[derive(Debug)]
pub struct ActivityLog {
    path: PathBuf,
    max_bytes: u64,
    keep_recent: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: Option<File>,
    size: u64,
    recent: VecDeque<ActivityRecord>,
}

impl ActivityLog {
    /// The file is rotated past this size (5 MiB).
    pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
    /// How many records the status view shows.
    pub const DEFAULT_RECENT: usize = 50;

    /// Opens (or starts) the trail in `data_dir` with the default bounds.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the folder or file cannot be created.
    pub fn open(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::with_bounds(data_dir, Self::DEFAULT_MAX_BYTES, Self::DEFAULT_RECENT)
    }

    /// Opens the trail with explicit bounds; the last `keep_recent` records of an existing
    /// file are read back for the status view.
    ///
    /// # Errors
    /// [`ConfigError::Io`].
    pub fn with_bounds(
        data_dir: &Path,
        max_bytes: u64,
        keep_recent: usize,
    ) -> Result<Self, ConfigError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
        let path = data_dir.join(ACTIVITY_FILE);
        let mut recent = VecDeque::with_capacity(keep_recent);
        let mut torn = false;
        if let Ok(text) = fs::read_to_string(&path) {
            torn = !text.is_empty() && !text.ends_with('\n');
            // A torn last line (a crash mid-write) is skipped, not fatal.
            for record in text
                .lines()
                .filter_map(|line| serde_json::from_str::<ActivityRecord>(line).ok())
            {
                if recent.len() == keep_recent {
                    recent.pop_front();
                }
                recent.push_back(record);
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        if torn {
            // End the torn line so the next record starts on its own.
            file.write_all(b"\n").map_err(io("write", &path))?;
        }
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path,
            max_bytes,
            keep_recent,
            inner: Mutex::new(Inner {
                file: Some(file),
                size,
                recent,
            }),
        })
    }

    /// The trail's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (rotating first when the file is full). A write that fails is
    /// logged and the record still shows in memory: the trail never stops the connector.
    pub fn record(&self, record: ActivityRecord) {
        let mut line = serde_json::to_vec(&record).expect("records serialise");
        line.push(b'\n');
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.size > 0 && inner.size + line.len() as u64 > self.max_bytes {
            inner.file = None;
            let old = self.path.with_extension("jsonl.1");
            let reopened = fs::rename(&self.path, &old).and_then(|()| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            });
            match reopened {
                Ok(file) => {
                    inner.file = Some(file);
                    inner.size = 0;
                }
                Err(error) => {
                    tracing::warn!(%error, path = %self.path.display(), "cannot rotate the activity trail")
                }
            }
        }
        if let Some(file) = inner.file.as_mut() {
            match file.write_all(&line) {
                Ok(()) => inner.size += line.len() as u64,
                Err(error) => {
                    tracing::warn!(%error, path = %self.path.display(), "cannot append to the activity trail")
                }
            }
        }
        if self.keep_recent > 0 {
            if inner.recent.len() == self.keep_recent {
                inner.recent.pop_front();
            }
            inner.recent.push_back(record);
        }
    }

    /// The most recent records, newest first.
    pub fn recent(&self) -> Vec<ActivityRecord> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.recent.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> ActivityRecord {
        ActivityRecord {
            time: Utc::now(),
            app_id: format!("app_{n}"),
            user_id: "usr_1".into(),
            source: "line-1".into(),
            operation: "raw".into(),
            outcome: "ok".into(),
            duration_ms: 1.0,
            bytes: n as u64,
            tag: None,
            old_value: None,
            new_value: None,
        }
    }

    #[test]
    fn the_trail_is_bounded_on_disk_and_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let log = ActivityLog::with_bounds(dir.path(), 2_000, 5).unwrap();
        for n in 0..200 {
            log.record(record(n));
        }
        let current = fs::metadata(log.path()).unwrap().len();
        let old = fs::metadata(dir.path().join("activity.jsonl.1"))
            .unwrap()
            .len();
        assert!(current <= 2_000, "{current}");
        assert!(old <= 2_000 && old > 1_000, "{old}");
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "one current file and one old one, never more");
        let recent = log.recent();
        assert_eq!(recent.len(), 5);
        assert_eq!(recent[0].app_id, "app_199", "newest first");
        assert_eq!(recent[4].app_id, "app_195");
        // The newest record is the last line on disk.
        let text = fs::read_to_string(log.path()).unwrap();
        let last: ActivityRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last.app_id, "app_199");
    }

    #[test]
    fn reopening_reads_recent_records_back_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = ActivityLog::open(dir.path()).unwrap();
            log.record(record(1));
            log.record(record(2));
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(ACTIVITY_FILE))
            .unwrap();
        file.write_all(b"{\"time\":\"20").unwrap();
        let log = ActivityLog::open(dir.path()).unwrap();
        let recent = log.recent();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].app_id, "app_2");
        log.record(record(3));
        drop(log);
        let log = ActivityLog::open(dir.path()).unwrap();
        assert_eq!(
            log.recent()[0].app_id,
            "app_3",
            "a record after a torn line survives"
        );
    }
}
