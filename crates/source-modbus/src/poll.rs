//! The connection to one device and the polls: each poll reads every planned block, decodes the
//! rows, and replaces the snapshot and the health at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::lookup_host;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::{ExceptionCode, Slave};
use uplink_model::{Status, TagValue};
use uplink_source::{Health, HealthIssue};

use crate::codec;
use crate::map::{Row, Table, ValueType};
use crate::plan::{self, Block};

/// What the poller shares with the source.
#[derive(Debug)]
pub struct Shared {
    /// `host:port`, for messages.
    pub endpoint: String,
    /// The unit id requests carry.
    pub unit: u8,
    /// How long one request (or connecting) may take.
    pub timeout: Duration,
    /// The map's rows.
    pub rows: Vec<Row>,
    /// The reads of one poll; a block the device refuses for its gaps is replaced by its
    /// mapped runs.
    blocks: Mutex<Vec<Block>>,
    /// The open connection, if any; a request that fails at the transport closes it.
    connection: tokio::sync::Mutex<Option<Connection>>,
    /// The snapshot and health from the last poll.
    state: Mutex<State>,
    /// Counts finished polls; subscribers wait on it.
    polls: watch::Sender<u64>,
    /// Every poll's values, for the edge historian.
    pub feed: uplink_source::ChangeFeed,
    /// The rows' names, shared by the values published to [`Shared::feed`].
    names: Vec<std::sync::Arc<str>>,
    /// Read requests sent by polls, in all.
    requests: AtomicU64,
    /// Read requests sent by the last poll.
    last_requests: AtomicU64,
}

/// A tokio-modbus client context (it has no Debug of its own).
struct Connection(Context);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

#[derive(Debug, Clone)]
struct State {
    values: Vec<TagValue>,
    health: Health,
}

/// Request counts, for the bench and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    /// Polls finished since the source opened.
    pub polls: u64,
    /// Read requests one complete poll sends (the coalesced plan).
    pub requests_per_poll: usize,
    /// Read requests the last poll sent (fewer when the device stopped answering mid-poll).
    pub last_poll_requests: u64,
    /// Read requests sent by polls since the source opened.
    pub requests: u64,
}

/// What one read brought back.
enum Data {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

/// Why a request failed.
enum Failure {
    /// The device answered with a Modbus exception: it is there, it refused.
    Exception(ExceptionCode),
    /// No answer in time, or the connection broke: the connection is closed.
    Lost(String),
}

/// An exception in plain words, with its code.
pub fn exception_words(code: ExceptionCode) -> String {
    let number = u8::from(code);
    let words = match code {
        ExceptionCode::IllegalFunction => {
            "illegal function (the device does not offer this read or write)"
        }
        ExceptionCode::IllegalDataAddress => {
            "illegal data address (the device has no such address)"
        }
        ExceptionCode::IllegalDataValue => "illegal data value",
        ExceptionCode::ServerDeviceFailure => "server device failure",
        ExceptionCode::Acknowledge => "acknowledge (the device is still working on it)",
        ExceptionCode::ServerDeviceBusy => "server device busy",
        ExceptionCode::MemoryParityError => "memory parity error",
        ExceptionCode::GatewayPathUnavailable => "gateway path unavailable",
        ExceptionCode::GatewayTargetDevice => "gateway target device failed to respond",
        ExceptionCode::Custom(_) => "a device-specific exception",
    };
    format!("exception {number}, {words}")
}

fn bad(time: DateTime<Utc>) -> TagValue {
    TagValue::event(time, Status::Bad)
}

impl Shared {
    /// A poller's state before its first poll: every value bad.
    pub fn new(
        endpoint: String,
        unit: u8,
        timeout: Duration,
        rows: Vec<Row>,
        blocks: Vec<Block>,
    ) -> Self {
        let now = Utc::now();
        let mut health = Health::ok();
        health.fail(HealthIssue {
            message: format!("the device at {endpoint} has not been polled yet"),
            file: None,
            line: None,
        });
        Self {
            state: Mutex::new(State {
                values: vec![bad(now); rows.len()],
                health,
            }),
            endpoint,
            unit,
            timeout,
            names: rows
                .iter()
                .map(|r| std::sync::Arc::from(r.name.as_str()))
                .collect(),
            feed: uplink_source::ChangeFeed::default(),
            rows,
            blocks: Mutex::new(blocks),
            connection: tokio::sync::Mutex::new(None),
            polls: watch::Sender::new(0),
            requests: AtomicU64::new(0),
            last_requests: AtomicU64::new(0),
        }
    }

    /// The health after the last poll.
    pub fn health(&self) -> Health {
        self.lock_state().health.clone()
    }

    /// The values of the rows at `indexes`, from the last poll.
    pub fn values(&self, indexes: &[usize]) -> Vec<TagValue> {
        let state = self.lock_state();
        indexes.iter().map(|&i| state.values[i].clone()).collect()
    }

    /// Request counts so far.
    pub fn stats(&self) -> PollStats {
        PollStats {
            polls: *self.polls.borrow(),
            requests_per_poll: self.plan().len(),
            last_poll_requests: self.last_requests.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// A receiver that changes after every poll.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.polls.subscribe()
    }

    /// The reads of one poll, as planned now.
    pub fn plan(&self) -> Vec<Block> {
        self.lock_plan().clone()
    }

    fn lock_plan(&self) -> std::sync::MutexGuard<'_, Vec<Block>> {
        self.blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole values behind: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connects when not connected.
    async fn connect(&self, slot: &mut Option<Connection>) -> Result<(), String> {
        if slot.is_some() {
            return Ok(());
        }
        let endpoint = &self.endpoint;
        let attempt = async {
            let address = lookup_host(endpoint.as_str())
                .await
                .map_err(|err| format!("cannot find the device at {endpoint}: {err}"))?
                .next()
                .ok_or_else(|| format!("cannot find the device at {endpoint}: no address"))?;
            tcp::connect_slave(address, Slave(self.unit))
                .await
                .map_err(|err| format!("cannot connect to the device at {endpoint}: {err}"))
        };
        match timeout(self.timeout, attempt).await {
            Ok(Ok(context)) => {
                *slot = Some(Connection(context));
                Ok(())
            }
            Ok(Err(message)) => Err(message),
            Err(_) => Err(format!(
                "the device at {endpoint} did not accept a connection within {}",
                words_of(self.timeout)
            )),
        }
    }

    /// One read on the open connection; a lost connection is closed.
    async fn read(
        &self,
        slot: &mut Option<Connection>,
        table: Table,
        start: u16,
        count: u16,
    ) -> Result<Data, Failure> {
        let Some(Connection(context)) = slot.as_mut() else {
            return Err(Failure::Lost("not connected".into()));
        };
        let call = async {
            match table {
                Table::Coil => context
                    .read_coils(start, count)
                    .await
                    .map(|r| r.map(Data::Bits)),
                Table::DiscreteInput => context
                    .read_discrete_inputs(start, count)
                    .await
                    .map(|r| r.map(Data::Bits)),
                Table::InputRegister => context
                    .read_input_registers(start, count)
                    .await
                    .map(|r| r.map(Data::Words)),
                Table::HoldingRegister => context
                    .read_holding_registers(start, count)
                    .await
                    .map(|r| r.map(Data::Words)),
            }
        };
        let outcome = timeout(self.timeout, call).await;
        self.settle(slot, outcome)
    }

    /// Writes registers or a coil on the open connection.
    async fn write_raw(
        &self,
        slot: &mut Option<Connection>,
        row: &Row,
        words: &[u16],
    ) -> Result<(), Failure> {
        let Some(Connection(context)) = slot.as_mut() else {
            return Err(Failure::Lost("not connected".into()));
        };
        let call = async {
            match (row.table, words) {
                (Table::Coil, [word]) => context.write_single_coil(row.address, *word != 0).await,
                (_, [word]) => context.write_single_register(row.address, *word).await,
                (_, words) => context.write_multiple_registers(row.address, words).await,
            }
        };
        let outcome = timeout(self.timeout, call).await;
        self.settle(slot, outcome)
    }

    fn settle<T>(
        &self,
        slot: &mut Option<Connection>,
        outcome: Result<tokio_modbus::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, Failure> {
        match outcome {
            Ok(Ok(Ok(data))) => Ok(data),
            Ok(Ok(Err(code))) => Err(Failure::Exception(code)),
            Ok(Err(err)) => {
                *slot = None;
                Err(Failure::Lost(format!(
                    "the connection to the device at {} failed: {err}",
                    self.endpoint
                )))
            }
            Err(_) => {
                // A late answer would arrive on this connection out of turn: start afresh.
                *slot = None;
                Err(Failure::Lost(format!(
                    "the device at {} (unit {}) did not answer within {}",
                    self.endpoint,
                    self.unit,
                    words_of(self.timeout)
                )))
            }
        }
    }

    /// Reads every block once and publishes the snapshot and health.
    pub async fn poll(&self) {
        let mut slot = self.connection.lock().await;
        let now = Utc::now();
        let mut values = vec![bad(now); self.rows.len()];
        let mut health = Health::ok();
        let mut sent = 0u64;
        let issue = |message: String| HealthIssue {
            message,
            file: None,
            line: None,
        };
        match self.connect(&mut slot).await {
            Err(message) => health.fail(issue(message)),
            Ok(()) => {
                let plan = self.plan();
                let mut replanned: Option<Vec<Block>> = None;
                let mut queue: std::collections::VecDeque<(Block, bool)> =
                    plan.iter().cloned().map(|b| (b, true)).collect();
                while let Some((block, may_split)) = queue.pop_front() {
                    sent += 1;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    match self
                        .read(&mut slot, block.table, block.start, block.count)
                        .await
                    {
                        Ok(data) => {
                            for &(index, at) in &block.rows {
                                let row = &self.rows[index];
                                if let Some(value) = decode_at(row, &data, usize::from(at)) {
                                    values[index] = good(now, row, value);
                                }
                            }
                        }
                        // A read over unmapped addresses the device does not have: read the
                        // mapped runs apart, now and in every later poll.
                        Err(Failure::Exception(ExceptionCode::IllegalDataAddress))
                            if may_split && block.has_gaps(&self.rows) =>
                        {
                            let pieces = plan::split_at_gaps(&block, &self.rows);
                            tracing::info!(
                                endpoint = %self.endpoint,
                                table = %block.table,
                                start = block.start,
                                count = block.count,
                                pieces = pieces.len(),
                                "modbus device refuses reads over unmapped addresses: reading the mapped runs apart"
                            );
                            let next = replanned.get_or_insert_with(|| plan.clone());
                            if let Some(at) = next.iter().position(|b| *b == block) {
                                next.splice(at..=at, pieces.iter().cloned());
                            }
                            for piece in pieces.into_iter().rev() {
                                queue.push_front((piece, false));
                            }
                        }
                        Err(Failure::Exception(code)) => health.report(issue(format!(
                            "the device refused to read {} {}–{}: {}",
                            block.table.plural(),
                            block.start,
                            block.last(),
                            exception_words(code)
                        ))),
                        Err(Failure::Lost(message)) => {
                            health.fail(issue(message));
                            break;
                        }
                    }
                }
                if let Some(next) = replanned {
                    *self.lock_plan() = next;
                }
            }
        }
        drop(slot);
        self.last_requests.store(sent, Ordering::Relaxed);
        self.feed.publish_all(self.names.iter().zip(&values));
        let before = {
            let mut state = self.lock_state();
            let before = state.health.state;
            state.values = values;
            state.health = health.clone();
            before
        };
        if before != health.state {
            match health.issues.first() {
                Some(first) => tracing::warn!(
                    endpoint = %self.endpoint,
                    state = %health.state,
                    problem = %first,
                    "modbus device health changed"
                ),
                None => tracing::info!(endpoint = %self.endpoint, "modbus device answers again"),
            }
        }
        self.polls.send_modify(|n| *n += 1);
    }

    /// Writes an engineering value (already checked to fit) to a row, then reads the row back
    /// into the snapshot.
    ///
    /// # Errors
    /// What the device said or that it did not answer, in plain words.
    pub async fn write(&self, index: usize, words: &[u16]) -> Result<(), String> {
        let row = &self.rows[index];
        let mut slot = self.connection.lock().await;
        self.connect(&mut slot).await?;
        let place = format!("{} {}", row.table, row.address);
        self.write_raw(&mut slot, row, words)
            .await
            .map_err(|failure| match failure {
                Failure::Exception(code) => format!(
                    "the device refused the write to {place}: {}",
                    exception_words(code)
                ),
                Failure::Lost(message) => message,
            })?;
        let width = row.width() as u16;
        let read = self.read(&mut slot, row.table, row.address, width).await;
        drop(slot);
        match read {
            Ok(data) => {
                if let Some(value) = decode_at(row, &data, 0) {
                    self.lock_state().values[index] = good(Utc::now(), row, value);
                }
                Ok(())
            }
            Err(Failure::Exception(code)) => Err(format!(
                "the write to {place} was sent, but reading it back failed: {}",
                exception_words(code)
            )),
            Err(Failure::Lost(message)) => Err(format!(
                "the write to {place} was sent, but reading it back failed: {message}"
            )),
        }
    }
}

fn decode_at(row: &Row, data: &Data, at: usize) -> Option<f64> {
    match data {
        Data::Bits(bits) => bits.get(at).map(|&on| f64::from(u8::from(on))),
        Data::Words(words) => {
            let width = row.width() as usize;
            let slice = words.get(at..at + width)?;
            Some(match row.value_type {
                ValueType::Bool => f64::from(u8::from(slice[0] != 0)),
                _ => codec::decode(row, slice),
            })
        }
    }
}

fn good(time: DateTime<Utc>, row: &Row, value: f64) -> TagValue {
    let value = TagValue::number(time, value);
    if row.units.is_empty() {
        value
    } else {
        value.with_units(row.units.clone())
    }
}

/// A duration as people write it: `1s`, `250ms`.
pub fn words_of(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}
