//! A log file that rolls over by size: `NAME.log` is written until the next record would take it
//! past its limit, then it becomes `NAME.log.1` (the older ones move up to `.2`, `.3`…, and the
//! oldest is deleted), so the files never hold more than `max_files × max_bytes`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;

/// Five files of 5 MiB: a week or more of a quiet connector's log, and small enough to mail.
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// The file being written and four older ones.
pub const DEFAULT_MAX_FILES: usize = 5;

/// Where a program's log goes, and how much of it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    /// The folder, e.g. `DATA_DIR/logs`.
    pub dir: PathBuf,
    /// The file name, e.g. `uplink-desktop.log`.
    pub name: String,
    /// A file rolls over before it would grow past this.
    pub max_bytes: u64,
    /// Files kept, counting the one being written (at least 1).
    pub max_files: usize,
}

impl LogFiles {
    /// `DATA_DIR/logs/PROGRAM.log`, five files of 5 MiB.
    pub fn in_data_dir(data_dir: &Path, program: &str) -> Self {
        Self {
            dir: data_dir.join("logs"),
            name: format!("{program}.log"),
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// The `n`th older file (`NAME.log.n`).
    fn older(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.name))
    }

    /// Opens the log for appending, creating the folder (owner-only) and file (owner-only).
    ///
    /// # Errors
    /// When the folder or file cannot be created or opened.
    pub fn open(self) -> io::Result<LogFile> {
        create_private_dir(&self.dir)?;
        let file = open_append(&self.path())?;
        let len = file.metadata()?.len();
        Ok(LogFile(Arc::new(Mutex::new(Rolling {
            files: self,
            file: Some(file),
            len,
        }))))
    }
}

/// An open rolling log, shared by every thread that logs: each `write` is one record (the
/// formatting layer writes one event at a time), never split across two files.
#[derive(Debug, Clone)]
pub struct LogFile(Arc<Mutex<Rolling>>);

#[derive(Debug)]
struct Rolling {
    files: LogFiles,
    /// `None` only while rolling over (closed first: Windows renames no open file).
    file: Option<File>,
    /// Bytes in the current file.
    len: u64,
}

impl LogFile {
    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.lock().files.path()
    }

    fn lock(&self) -> MutexGuard<'_, Rolling> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Rolling {
    fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let max = self.files.max_bytes.max(1);
        // One record longer than a whole file is cut, so no file outgrows its bound.
        let record = &record[..record.len().min(max as usize)];
        if self.len > 0 && self.len + record.len() as u64 > max {
            self.roll()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open_append(&self.files.path())?),
        };
        file.write_all(record)?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// `.n-1` → `.n` … `.1` → `.2`, the current file → `.1`, the oldest gone; a new current file.
    fn roll(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.files.max_files.max(1);
        let current = self.files.path();
        if keep == 1 {
            remove_if_present(&current)?;
        } else {
            remove_if_present(&self.files.older(keep - 1))?;
            for n in (1..keep - 1).rev() {
                rename_if_present(&self.files.older(n), &self.files.older(n + 1))?;
            }
            rename_if_present(&current, &self.files.older(1))?;
        }
        self.file = Some(open_append(&current)?);
        self.len = 0;
        Ok(())
    }
}

/// One record's writer: holds the log while the formatting layer writes the record.
#[derive(Debug)]
pub struct RecordWriter<'a>(MutexGuard<'a, Rolling>);

impl Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_record(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = RecordWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RecordWriter(self.lock())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, max_bytes: u64, max_files: usize) -> LogFiles {
        LogFiles {
            dir: dir.join("logs"),
            name: "test.log".into(),
            max_bytes,
            max_files,
        }
    }

    fn write(log: &LogFile, record: &str) {
        log.make_writer().write_all(record.as_bytes()).unwrap();
    }

    /// The log files in the folder, by name, with their contents.
    fn on_disk(dir: &Path) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = fs::read_dir(dir.join("logs"))
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(entry.path()).unwrap(),
                )
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn the_log_rolls_by_size_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = files(dir.path(), 20, 3).open().unwrap();
        // Records of 9 bytes: two to a file.
        for n in 0..9 {
            write(&log, &format!("record {n}\n"));
        }
        assert_eq!(
            on_disk(dir.path()),
            [
                ("test.log".into(), "record 8\n".into()),
                ("test.log.1".into(), "record 6\nrecord 7\n".into()),
                ("test.log.2".into(), "record 4\nrecord 5\n".into()),
            ]
        );
        // However long it runs, the bound holds.
        for n in 0..500 {
            write(&log, &format!("record {:1}\n", n % 10));
        }
        let kept = on_disk(dir.path());
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|(_, text)| text.len() <= 20), "{kept:?}");
    }

    #[test]
    fn a_reopened_log_counts_what_it_holds_and_a_huge_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        write(&files(dir.path(), 20, 2).open().unwrap(), "first run\n");
        let log = files(dir.path(), 20, 2).open().unwrap();
        // 10 bytes on disk already: the next 11-byte record starts a new file.
        write(&log, "second run\n");
        assert_eq!(
            on_disk(dir.path()),
            [
                ("test.log".into(), "second run\n".into()),
                ("test.log.1".into(), "first run\n".into()),
            ]
        );
        write(&log, &"x".repeat(100));
        assert_eq!(fs::read_to_string(log.path()).unwrap(), "x".repeat(20));
        // One file only: it starts over.
        let single = files(dir.path(), 20, 1).open().unwrap();
        write(&single, "a".repeat(15).as_str());
        write(&single, "b".repeat(15).as_str());
        assert_eq!(fs::read_to_string(single.path()).unwrap(), "b".repeat(15));
    }

    #[cfg(unix)]
    #[test]
    fn the_log_folder_and_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = files(&dir.path().join("new"), 10, 2).open().unwrap();
        write(&log, "12345678\n");
        write(&log, "12345678\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/logs")), 0o700);
        assert_eq!(mode(&log.path()), 0o600);
        assert_eq!(mode(&dir.path().join("new/logs/test.log.1")), 0o600);
    }
}
