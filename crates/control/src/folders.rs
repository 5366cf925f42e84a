//! The folder listing behind a form's path picker: the names of the folders and files in one
//! folder of the connector's machine, so a browser window (which cannot see that machine's
//! disk) and the desktop window choose paths the same way.
//!
//! Confined: names and kinds only, never contents; hidden entries (a leading dot) are left
//! out, and the connector's own data folder — its credentials, keys and configuration — is
//! neither listed nor shown in its parent.

use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

use crate::{Control, ControlError, ControlErrorCode};

/// One folder's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FolderListing {
    /// The folder, as a full path with links resolved.
    pub path: String,
    /// The folder above it; absent at the root.
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its folders then its files, each by name.
    pub entries: Vec<FolderEntry>,
    /// Whether entries past [`MAX_FOLDER_ENTRIES`] were left out.
    pub truncated: bool,
}

/// A folder or a file in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FolderEntry {
    /// Its name in the folder.
    pub name: String,
    /// Its full path.
    pub path: String,
    /// Whether it is a folder.
    pub folder: bool,
}

/// A listing shows at most this many entries.
pub const MAX_FOLDER_ENTRIES: usize = 2_000;

impl Control {
    /// The folders and files in `path` (the user's home folder when absent).
    pub fn list_folder(&self, path: Option<&str>) -> Result<FolderListing, ControlError> {
        let asked = match path.map(str::trim).filter(|p| !p.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => start_folder(),
        };
        if !asked.is_absolute() {
            return Err(ControlError::new(
                ControlErrorCode::InvalidArguments,
                format!(
                    "`{}` is not a full path; folders are listed from the root, such as /srv/data",
                    asked.display()
                ),
            ));
        }
        let folder = asked.canonicalize().map_err(|e| folder_error(&asked, &e))?;
        let hidden = self.inner.data_dir.canonicalize().ok();
        if hidden
            .as_deref()
            .is_some_and(|data| folder.starts_with(data))
        {
            return Err(ControlError::new(
                ControlErrorCode::Io,
                format!(
                    "Uplink does not list its own data folder ({}): it holds the connector's credentials; choose a folder outside it",
                    folder.display()
                ),
            ));
        }
        let mut entries: Vec<FolderEntry> = std::fs::read_dir(&folder)
            .map_err(|e| folder_error(&folder, &e))?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_owned();
                let path = entry.path();
                if name.starts_with('.') || hidden.as_deref() == Some(path.as_path()) {
                    return None;
                }
                // Follows links, so a linked folder opens like a folder.
                let folder = std::fs::metadata(&path).ok()?.is_dir();
                Some(FolderEntry {
                    name,
                    path: path.to_string_lossy().into_owned(),
                    folder,
                })
            })
            .collect();
        entries.sort_by(|a, b| {
            b.folder
                .cmp(&a.folder)
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
        });
        let truncated = entries.len() > MAX_FOLDER_ENTRIES;
        entries.truncate(MAX_FOLDER_ENTRIES);
        Ok(FolderListing {
            path: folder.to_string_lossy().into_owned(),
            parent: folder.parent().map(|p| p.to_string_lossy().into_owned()),
            entries,
            truncated,
        })
    }
}

/// Where a picker opens when no path is typed yet: the user's home folder, else the root.
fn start_folder() -> PathBuf {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .filter(|home| home.is_absolute() && home.is_dir())
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn folder_error(path: &Path, error: &std::io::Error) -> ControlError {
    ControlError::new(
        ControlErrorCode::Io,
        format!(
            "the folder {} cannot be listed: {}",
            path.display(),
            uplink_connector::io_words(error)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_lists_its_folders_then_files_without_hidden_ones_or_the_data_folder() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("uplink-data");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(root.path().join("zeta")).unwrap();
        std::fs::write(root.path().join("Alpha.csv"), "tag,timestamp,value\n").unwrap();
        std::fs::write(root.path().join(".secret"), "x").unwrap();
        let control = Control::start(crate::HostKind::Browser, data.clone());

        let listing = control
            .list_folder(Some(&root.path().to_string_lossy()))
            .unwrap();
        let names: Vec<(&str, bool)> = listing
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.folder))
            .collect();
        assert_eq!(names, [("zeta", true), ("Alpha.csv", false)]);
        assert!(!listing.truncated);
        assert!(listing.parent.is_some());

        let refused = control
            .list_folder(Some(&data.to_string_lossy()))
            .unwrap_err();
        assert_eq!(refused.code, ControlErrorCode::Io);
        assert!(
            refused.message.contains("credentials"),
            "{}",
            refused.message
        );
        let inside = data.join("..").join("uplink-data");
        assert!(
            control
                .list_folder(Some(&inside.to_string_lossy()))
                .is_err()
        );

        let relative = control.list_folder(Some("data")).unwrap_err();
        assert!(
            relative.message.contains("not a full path"),
            "{}",
            relative.message
        );
        let missing = control
            .list_folder(Some(&root.path().join("gone").to_string_lossy()))
            .unwrap_err();
        assert!(
            missing.message.contains("no such file or folder")
                && !missing.message.contains("os error"),
            "{}",
            missing.message
        );
    }
}
