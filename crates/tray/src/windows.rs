//! The window process: started on demand, next to this executable, for this data folder. It
//! ends when its window closes (taking WebKit's processes with it) or when this process stops
//! (its status stream closes); a launch while one is open only brings that one forward.

use std::path::PathBuf;

use crate::WINDOW_PROGRAM;

/// Starts window processes.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    program: PathBuf,
    data_dir: PathBuf,
}

impl Windows {
    pub(crate) fn new(data_dir: PathBuf) -> std::io::Result<Self> {
        let program = std::env::current_exe()?.with_file_name(WINDOW_PROGRAM);
        Ok(Self { program, data_dir })
    }

    /// Opens the window, or brings the open one forward.
    pub(crate) fn open(&self) {
        let spawned = tokio::process::Command::new(&self.program)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                tracing::info!(pid = child.id(), "window process started");
                // Waited for, so an ended window leaves no zombie behind.
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(status) if status.success() => tracing::debug!("window process ended"),
                        Ok(status) => tracing::warn!(%status, "window process ended with an error"),
                        Err(error) => tracing::warn!(%error, "window process lost"),
                    }
                });
            }
            Err(error) => tracing::error!(
                %error,
                program = %self.program.display(),
                "the window could not be opened"
            ),
        }
    }
}
