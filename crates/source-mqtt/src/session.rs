//! What a kept broker session is subscribed to. A broker that keeps a session (clean session
//! off) keeps its subscriptions too, and MQTT has no way to ask which they are: a line removed
//! from the source's subscriptions would stay subscribed, its messages delivered for nothing,
//! for as long as the session lives. So the filters a kept session was last subscribed to are
//! remembered in a small file per broker and client id, and those no longer wanted are
//! unsubscribed when the session is resumed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Broker;

/// The file of one kept session: `DIR/<SHA-256 of broker and client id>.json`, a JSON array of
/// topic filters.
#[derive(Debug, Clone)]
pub(crate) struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    pub(crate) fn new(dir: &Path, broker: &Broker, client_id: &str) -> Self {
        let digest = Sha256::digest(format!("{}:{}\n{client_id}", broker.host, broker.port));
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            path: dir.join(format!("{name}.json")),
        }
    }

    /// The filters last subscribed under the session; `None` when not known (never written, or
    /// unreadable), in which case nothing can be unsubscribed.
    pub(crate) fn read(&self) -> Option<BTreeSet<String>> {
        let bytes = std::fs::read(&self.path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(filters) => Some(filters),
            Err(err) => {
                tracing::warn!(file = %self.path.display(), error = %err, "mqtt session file unreadable; filters removed earlier stay subscribed");
                None
            }
        }
    }

    /// Remembers `filters` as the session's (written to a new file, then renamed over the old).
    pub(crate) fn write(&self, filters: &BTreeSet<String>) {
        let written = (|| {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let new = self.path.with_extension("json.new");
            std::fs::write(&new, serde_json::to_vec(filters)?)?;
            std::fs::rename(&new, &self.path)
        })();
        if let Err(err) = written {
            tracing::warn!(file = %self.path.display(), error = %err, "mqtt session file not written; a filter removed later may stay subscribed");
        }
    }
}

/// What a connection resuming a kept session does with its subscriptions.
#[derive(Debug)]
pub(crate) struct Resume {
    file: Option<SessionFile>,
    /// The filters the session was last subscribed to, read when the connection starts.
    previous: Option<BTreeSet<String>>,
    /// Filters no longer wanted whose unsubscribe could not be queued: remembered as still
    /// subscribed, so that a later start tries again.
    left: BTreeSet<String>,
}

impl Resume {
    pub(crate) fn new(file: Option<SessionFile>) -> Self {
        let previous = file.as_ref().and_then(SessionFile::read);
        Self {
            file,
            previous,
            left: BTreeSet::new(),
        }
    }

    /// The filters to unsubscribe when the broker says it kept the session: those it was
    /// subscribed to that `wanted` no longer has.
    pub(crate) fn stale<'a>(&'a self, wanted: &'a [String]) -> impl Iterator<Item = &'a String> {
        self.previous
            .iter()
            .flatten()
            .filter(move |filter| !wanted.contains(filter))
    }

    /// An unsubscribe that could not be queued.
    pub(crate) fn not_unsubscribed(&mut self, filter: String) {
        self.left.insert(filter);
    }

    /// The broker acknowledged the subscribe of `wanted` (after the unsubscribes sent before
    /// it, which it handles in order): the session holds `wanted`.
    pub(crate) fn subscribed(&mut self, wanted: &[String]) {
        if let Some(file) = &self.file {
            let mut now: BTreeSet<String> = wanted.iter().cloned().collect();
            now.extend(std::mem::take(&mut self.left));
            file.write(&now);
            self.previous = Some(now);
        }
    }
}
