//! Modbus polling speed: one poll of 1 000 holding registers (1 000 `u16` tags) from a real
//! device — the pymodbus fixture of the tests, on loopback — through `ModbusSource` (coalesced
//! reads, decoding, the snapshot swap), beside a baseline of plain tokio-modbus reads of the same
//! ranges on one connection, in the same process. Goal: 1 000 registers polled per second per
//! device. Prints medians, polls/s, registers/s, requests per poll and the ratio.
//!
//! `cargo bench -p uplink-source-modbus --bench poll` (needs the venv of
//! `scripts/lib/setup.sh`'s `ensure_pymodbus`, as the tests do).

// The bench starts the device the tests start; it does not freeze it.
#[allow(dead_code)]
#[path = "../tests/device/server.rs"]
mod server;

use std::time::Instant;

use serde_json::json;
use tokio_modbus::client::{Reader, tcp};
use uplink_measure::{Timing, compare, describe};
use uplink_source::SourceConfig;
use uplink_source_modbus::{ModbusSource, RegisterMap, plan};

const REGISTERS: u16 = 1_000;
const FIRST: u16 = 1_000;
const WARMUP: usize = 20;
const RUNS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn map() -> String {
    let mut map = String::from("name,table,address,type\n");
    for address in FIRST..FIRST + REGISTERS {
        map.push_str(&format!("r{address},holding register,{address},u16\n"));
    }
    map
}

async fn bench() {
    let device = server::Device::start(0);
    let text = map();
    let config = SourceConfig {
        name: "bench".into(),
        kind: "modbus".into(),
        description: String::new(),
        settings: json!({
            "host": "127.0.0.1",
            "port": device.port,
            // Only the polls timed below: the interval's own next poll is an hour away.
            "pollInterval": "1h",
            "timeout": "5s",
            "registerMap": text,
        })
        .as_object()
        .cloned()
        .expect("object"),
    };
    let source = ModbusSource::open(&config).await.expect("the source opens");
    let requests_per_poll = source.stats().requests_per_poll;

    // The baseline reads exactly the ranges the source plans, on its own connection.
    let ranges: Vec<(u16, u16)> = plan::plan(&RegisterMap::parse(&text).expect("map"), 10, 125)
        .iter()
        .map(|block| (block.start, block.count))
        .collect();
    assert_eq!(ranges.len(), requests_per_poll);
    let address = format!("127.0.0.1:{}", device.port)
        .parse()
        .expect("address");
    let mut plain = tcp::connect_slave(address, tokio_modbus::Slave(1))
        .await
        .expect("connect");

    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for run in 0..WARMUP + RUNS {
        // Interleaved, so both see the same device and machine load.
        let start = Instant::now();
        source.poll_now().await;
        let took = start.elapsed();
        let start = Instant::now();
        let mut words = 0;
        for &(first, count) in &ranges {
            words += plain
                .read_holding_registers(first, count)
                .await
                .expect("transport")
                .expect("no exception")
                .len();
        }
        let plain_took = start.elapsed();
        assert_eq!(words, usize::from(REGISTERS));
        if run >= WARMUP {
            ours.push(took);
            baseline.push(plain_took);
        }
    }
    let stats = source.stats();
    assert_eq!(stats.last_poll_requests as usize, requests_per_poll);
    let health = uplink_source::DataSource::health(&source);
    assert_eq!(health.state, uplink_source::HealthState::Ok, "{health:?}");

    let ours = Timing::from_samples(ours);
    let baseline = Timing::from_samples(baseline);
    report(&compare(
        &format!("Modbus poll of {REGISTERS} registers"),
        &ours,
        "plain tokio-modbus reads of the same ranges",
        &baseline,
    ));
    report(&describe("Modbus poll", &ours, Some(u64::from(REGISTERS))));
    let polls_per_second = 1.0 / ours.median().as_secs_f64();
    report(&format!(
        "polls/s: {polls_per_second:.1}; registers/s: {:.0}; requests per poll: {requests_per_poll} (uncoalesced: {REGISTERS})",
        polls_per_second * f64::from(REGISTERS)
    ));
    let goal = polls_per_second * f64::from(REGISTERS) >= 1_000.0;
    report(&format!(
        "goal 1 000 registers/s per device: {}",
        if goal { "met" } else { "NOT met" }
    ));
}

#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}
