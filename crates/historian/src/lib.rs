//! Uplink's edge historian: live values of a connector's data sources recorded to a SQLite file
//! on the connector's disk, and served back as raw, plot, processed and values-at-times.
//!
//! - [`Historian`]: one file per source. Writes are batched by a writer task and committed at
//!   least every [`HistorianOptions::flush_every`] (WAL mode: a killed process loses at most that,
//!   and never what was committed); values are packed per tag into delta-encoded blocks
//!   ([`codec`]) of a few bytes each; retention by age and size deletes the oldest blocks.
//! - [`Recorded`]: a data source wrapped so that its live values are recorded, and so that a
//!   source with no history of its own (Modbus, MQTT) answers raw, plot, processed and
//!   values-at-times from its recording through the model's shared aggregation.
//! - [`Journaled`]: a source that keeps its alarms and events only in memory (MQTT) with an
//!   [`EventJournal`] file beside: time-range event reads survive a restart.
#![warn(missing_docs)]

pub mod codec;
mod journal;
mod recorded;
mod store;

pub use journal::{EventJournal, JournalOptions, Journaled, events_file};
pub use recorded::{RECORDED_SINCE, Recorded, historian_file};
pub use store::{Historian, HistorianOptions, HistorianStats, Retention};

/// What can go wrong in the historian, without any secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistorianError {
    /// The file could not be opened, read or written.
    #[error("edge historian {path}: {message}")]
    Database {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored block does not decode: the file was damaged by something else.
    #[error("edge historian {path}: a stored block of tag id {tag_id} at {start_us} is damaged")]
    Damaged {
        /// The file.
        path: String,
        /// The tag's id.
        tag_id: i64,
        /// The block's first time.
        start_us: i64,
    },
    /// The writer task has stopped (the runtime is shutting down).
    #[error("edge historian {path}: the writer has stopped")]
    Stopped {
        /// The file.
        path: String,
    },
}

impl From<HistorianError> for uplink_source::SourceError {
    fn from(err: HistorianError) -> Self {
        uplink_source::SourceError::Database {
            source_name: "edge historian".into(),
            message: err.to_string(),
        }
    }
}
