//! Answers a relayed query: runs it on a [`DataSource`] and writes the body the app receives
//! (docs/protocol.md §4, `json` or `ndjson`) as a stream of chunks of at most
//! [`MAX_CHUNK_BYTES`](uplink_link::MAX_CHUNK_BYTES), produced only as fast as they are taken.
//!
//! A raw read is serialized chunk by chunk as the source streams it, so no whole answer is
//! held in memory; the stream stops reading the source when it is dropped.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use futures::StreamExt;
//! use uplink_connector::{answer, config::ConnectorConfig, kinds};
//! use uplink_link::ResultFormat;
//! use uplink_model::Query;
//!
//! let source = kinds::open(&ConnectorConfig::default().sources[0]).await.unwrap();
//! let query: Query = serde_json::from_str(r#"{"type":"snapshot","tags":["sim.ramp.1"]}"#).unwrap();
//! let body: Vec<String> = answer::answer(source, query, ResultFormat::Json)
//!     .map(|chunk| chunk.unwrap())
//!     .collect()
//!     .await;
//! let json: serde_json::Value = serde_json::from_str(&body.concat()).unwrap();
//! assert_eq!(json["values"][0]["tag"], "sim.ramp.1");
//! # });
//! ```

mod body_writer;

use std::sync::{Arc, OnceLock};

use chrono::Utc;
use futures::StreamExt;
use futures::stream::BoxStream;
use uplink_link::{QueryFailure, ResultFormat, failure};
use uplink_model::{ComputedBy, Function, ModelError, Query, Sample, Tag, TagValue};

use self::body_writer::ChunkWriter;
use crate::{DataSource, RawStream, SourceError};

/// The body of an answer, chunk by chunk; an `Err` item ends it with the reason (before any
/// chunk: the app gets an error status; after: its body is cut short).
pub type AnswerStream = BoxStream<'static, Result<String, QueryFailure>>;

/// How many computed samples are serialized per step, so a large plot or processed answer
/// is written as it is taken rather than all at once.
const SAMPLES_PER_STEP: usize = 4_096;

/// Runs `query` on `source` and streams the answer body in `format`.
pub fn answer(source: Arc<dyn DataSource>, query: Query, format: ResultFormat) -> AnswerStream {
    answer_noting(source, query, format, Arc::default())
}

/// [`answer`], noting in `computed_by` who computed a plot, values-at-times or processed
/// answer (set before the first chunk is yielded; left empty for the other queries).
pub fn answer_noting(
    source: Arc<dyn DataSource>,
    query: Query,
    format: ResultFormat,
    computed_by: Arc<OnceLock<ComputedBy>>,
) -> AnswerStream {
    enum State {
        Start(Arc<dyn DataSource>, Query, Arc<OnceLock<ComputedBy>>),
        Running(Box<Producer>),
        Done,
    }
    let start = State::Start(source, query, computed_by);
    futures::stream::unfold(start, move |state| async move {
        let mut producer = match state {
            State::Done => return None,
            State::Running(producer) => producer,
            State::Start(source, query, computed_by) => {
                match Producer::start(&*source, query, format, &computed_by).await {
                    Ok(producer) => Box::new(producer),
                    Err(failure) => return Some((Err(failure), State::Done)),
                }
            }
        };
        match producer.next().await {
            Some(Ok(chunk)) => Some((Ok(chunk), State::Running(producer))),
            Some(Err(failure)) => Some((Err(failure), State::Done)),
            None => None,
        }
    })
    .boxed()
}

/// Maps a data source's error to the protocol's failure codes.
pub fn failure_of(error: &SourceError) -> QueryFailure {
    let code = match error {
        SourceError::UnknownTag { .. } => failure::UNKNOWN_TAG,
        SourceError::UnknownSource(_) => failure::UNKNOWN_SOURCE,
        SourceError::Query(_) => failure::INVALID_QUERY,
        SourceError::Unsupported { .. } => failure::UNSUPPORTED,
        _ => failure::SOURCE_ERROR,
    };
    QueryFailure {
        code: code.to_owned(),
        message: error.to_string(),
    }
}

fn invalid(error: ModelError) -> QueryFailure {
    QueryFailure {
        code: failure::INVALID_QUERY.to_owned(),
        message: error.to_string(),
    }
}

/// What is left to write.
enum Body {
    /// Everything is in the writer already.
    Written,
    /// A raw read still streaming from the source.
    Raw(RawStream),
    /// Computed samples (plot, values at times), written a step at a time.
    Samples { samples: Vec<Sample>, at: usize },
    /// Computed series (processed), written a step at a time.
    Series {
        series: Vec<(Function, Vec<Sample>)>,
        function: usize,
        at: usize,
    },
}

struct Producer {
    format: ResultFormat,
    writer: ChunkWriter,
    body: Body,
    /// Whether the next record in the current JSON array needs a comma before it.
    comma: bool,
    finished: bool,
}

impl Producer {
    async fn start(
        source: &dyn DataSource,
        query: Query,
        format: ResultFormat,
        computed_by: &OnceLock<ComputedBy>,
    ) -> Result<Self, QueryFailure> {
        let now = Utc::now();
        let mut producer = Producer {
            format,
            writer: ChunkWriter::default(),
            body: Body::Written,
            comma: false,
            finished: false,
        };
        let json = format == ResultFormat::Json;
        match query {
            Query::Search(search) => {
                search.validate().map_err(invalid)?;
                let page = source.search(&search).await.map_err(|e| failure_of(&e))?;
                producer.write_tags(&page.tags, page.next_offset);
            }
            Query::Snapshot(snapshot) => {
                snapshot.validate().map_err(invalid)?;
                let values = source
                    .snapshot(&snapshot.tags)
                    .await
                    .map_err(|e| failure_of(&e))?;
                producer.write_snapshot(&snapshot.tags, &values);
            }
            Query::Raw(raw) => {
                let request = raw.resolve(now).map_err(invalid)?;
                let stream = source.raw(&request).await.map_err(|e| failure_of(&e))?;
                producer.open_series(json, &request.tag);
                producer.body = Body::Raw(stream);
            }
            Query::Plot(plot) => {
                let request = plot.resolve(now).map_err(invalid)?;
                let answer = source.plot(&request).await.map_err(|e| failure_of(&e))?;
                let _ = computed_by.set(answer.by);
                let samples = answer.values;
                producer.open_series(json, &request.tag);
                producer.body = Body::Samples { samples, at: 0 };
            }
            Query::AtTimes(at_times) => {
                let request = at_times.resolve(now).map_err(invalid)?;
                let answer = source
                    .at_times(&request)
                    .await
                    .map_err(|e| failure_of(&e))?;
                let _ = computed_by.set(answer.by);
                let samples = answer.values;
                producer.open_series(json, &request.tag);
                producer.body = Body::Samples { samples, at: 0 };
            }
            Query::Processed(processed) => {
                let request = processed.resolve(now).map_err(invalid)?;
                let answer = source
                    .processed(&request)
                    .await
                    .map_err(|e| failure_of(&e))?;
                let _ = computed_by.set(answer.by);
                let series = answer.values;
                if json {
                    let tag = request.tag.clone();
                    producer.writer.record(|buf, _| {
                        buf.extend_from_slice(b"{\"tag\":");
                        body_writer::string(buf, &tag);
                        buf.extend_from_slice(b",\"functions\":{");
                    });
                }
                producer.body = Body::Series {
                    series,
                    function: 0,
                    at: 0,
                };
            }
            Query::Events(events) => {
                let request = events.resolve(now).map_err(invalid)?;
                let page = source.events(&request).await.map_err(|e| failure_of(&e))?;
                producer.write_events(&page);
            }
        }
        Ok(producer)
    }

    /// The next chunk; `None` once the body is complete.
    async fn next(&mut self) -> Option<Result<String, QueryFailure>> {
        loop {
            if let Some(chunk) = self.writer.take_ready() {
                return Some(Ok(chunk));
            }
            if self.finished {
                return None;
            }
            match self.advance().await {
                Ok(true) => {}
                Ok(false) => {
                    self.close();
                    self.writer.finish();
                    self.finished = true;
                }
                Err(failure) => {
                    self.finished = true;
                    return Some(Err(failure));
                }
            }
        }
    }

    /// Writes the next part of the body; `false` when there is no more.
    async fn advance(&mut self) -> Result<bool, QueryFailure> {
        let json = self.format == ResultFormat::Json;
        match &mut self.body {
            Body::Written => Ok(false),
            Body::Raw(stream) => match stream.next().await {
                None => Ok(false),
                Some(Err(error)) => Err(failure_of(&error)),
                Some(Ok(samples)) => {
                    write_samples(&mut self.writer, &mut self.comma, json, &samples);
                    Ok(true)
                }
            },
            Body::Samples { samples, at } => {
                if *at >= samples.len() {
                    return Ok(false);
                }
                let end = (*at + SAMPLES_PER_STEP).min(samples.len());
                write_samples(&mut self.writer, &mut self.comma, json, &samples[*at..end]);
                *at = end;
                Ok(true)
            }
            Body::Series {
                series,
                function,
                at,
            } => {
                let Some((name, samples)) = series.get(*function) else {
                    return Ok(false);
                };
                let name = name.name();
                if json && *at == 0 {
                    let first = *function == 0;
                    self.writer.record(|buf, _| {
                        if !first {
                            buf.extend_from_slice(b"],");
                        }
                        buf.push(b'"');
                        buf.extend_from_slice(name.as_bytes());
                        buf.extend_from_slice(b"\":[");
                    });
                    self.comma = false;
                }
                let end = (*at + SAMPLES_PER_STEP).min(samples.len());
                let part = &samples[*at..end];
                if json {
                    write_samples(&mut self.writer, &mut self.comma, true, part);
                } else {
                    for sample in part {
                        self.writer.record(|buf, date| {
                            buf.extend_from_slice(b"{\"function\":\"");
                            buf.extend_from_slice(name.as_bytes());
                            buf.extend_from_slice(b"\",");
                            body_writer::sample_fields(buf, date, sample);
                            buf.extend_from_slice(b"}\n");
                        });
                    }
                }
                if end >= samples.len() {
                    *function += 1;
                    *at = 0;
                } else {
                    *at = end;
                }
                Ok(true)
            }
        }
    }

    /// Writes what ends the JSON document.
    fn close(&mut self) {
        if self.format != ResultFormat::Json {
            return;
        }
        match &self.body {
            Body::Written => {}
            Body::Raw(_) | Body::Samples { .. } => self.writer.raw(b"]}"),
            Body::Series { series, .. } => {
                self.writer
                    .raw(if series.is_empty() { b"}}" } else { b"]}}" });
            }
        }
    }

    fn open_series(&mut self, json: bool, tag: &str) {
        if json {
            self.writer.record(|buf, _| {
                buf.extend_from_slice(b"{\"tag\":");
                body_writer::string(buf, tag);
                buf.extend_from_slice(b",\"values\":[");
            });
        }
    }

    fn write_tags(&mut self, tags: &[Tag], next_offset: Option<u64>) {
        let json = self.format == ResultFormat::Json;
        if json {
            self.writer.raw(b"{\"tags\":[");
        }
        for (i, tag) in tags.iter().enumerate() {
            self.writer.record(|buf, _| {
                if json && i > 0 {
                    buf.push(b',');
                }
                body_writer::tag(buf, tag);
                if !json {
                    buf.push(b'\n');
                }
            });
        }
        if json {
            self.writer.record(|buf, _| {
                buf.extend_from_slice(b"],\"nextOffset\":");
                match next_offset {
                    Some(offset) => body_writer::integer(buf, offset),
                    None => buf.extend_from_slice(b"null"),
                }
                buf.push(b'}');
            });
        }
    }

    /// A page of events: `{"events":[…],"next":…}`, or one event per line and, when more
    /// follow, a last line `{"next":…}`.
    fn write_events(&mut self, page: &uplink_model::EventPage) {
        let json = self.format == ResultFormat::Json;
        if json {
            self.writer.raw(b"{\"events\":[");
        }
        for (i, event) in page.events.iter().enumerate() {
            self.writer.record(|buf, _| {
                if json && i > 0 {
                    buf.push(b',');
                }
                // An event is small and rare next to samples: serde writes it.
                let _ = serde_json::to_writer(&mut *buf, event);
                if !json {
                    buf.push(b'\n');
                }
            });
        }
        let next = serde_json::to_vec(&page.next).unwrap_or_else(|_| b"null".to_vec());
        if json {
            self.writer.raw(b"],\"next\":");
            self.writer.raw(&next);
            self.writer.raw(b"}");
        } else if page.next.is_some() {
            self.writer.raw(b"{\"next\":");
            self.writer.raw(&next);
            self.writer.raw(b"}\n");
        }
    }

    fn write_snapshot(&mut self, tags: &[String], values: &[TagValue]) {
        let json = self.format == ResultFormat::Json;
        if json {
            self.writer.raw(b"{\"values\":[");
        }
        for (i, (tag, value)) in tags.iter().zip(values).enumerate() {
            self.writer.record(|buf, date| {
                if json && i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"tag\":");
                body_writer::string(buf, tag);
                buf.push(b',');
                body_writer::tag_value_fields(buf, date, value);
                buf.push(b'}');
                if !json {
                    buf.push(b'\n');
                }
            });
        }
        if json {
            self.writer.raw(b"]}");
        }
    }
}

/// Writes samples as array elements (json) or lines (ndjson).
#[inline]
fn write_samples(writer: &mut ChunkWriter, comma: &mut bool, json: bool, samples: &[Sample]) {
    for sample in samples {
        let separate = json && *comma;
        writer.record(|buf, date| {
            if separate {
                buf.push(b',');
            }
            buf.push(b'{');
            body_writer::sample_fields(buf, date, sample);
            buf.push(b'}');
            if !json {
                buf.push(b'\n');
            }
        });
        *comma = true;
    }
}

#[cfg(test)]
mod tests;
