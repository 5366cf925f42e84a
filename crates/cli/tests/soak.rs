//! The short soak: a few apps and connectors against a real `uplink hub serve` for about
//! twenty seconds. The hub's memory must be flat after warm-up, its open files back to their
//! baseline once the apps leave, and every answer right. Latencies are printed, never
//! asserted: the long run (`cargo bench -p uplink-cli --bench soak`) judges them.
#![allow(clippy::print_stdout)]

// The soak's driver (with the demo's consent flow and HTTPS client, so the apps get their
// tokens as any app does).
#[path = "soak/driver.rs"]
#[allow(dead_code)]
mod driver;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_stays_flat_and_right_under_a_steady_load() {
    let report = driver::run(driver::Options {
        uplink: env!("CARGO_BIN_EXE_uplink").into(),
        apps: 4,
        connectors: 8,
        duration: Duration::from_secs(20),
        window: Duration::from_secs(2),
        warm_up: Duration::from_secs(6),
        pause: Duration::from_millis(10),
        live: false,
    })
    .await
    .expect("the soak ran");
    let summary = report.summary();
    println!("{summary}");
    let verdict = report.verdict();
    assert!(report.total_requests() > 0, "no request ran\n{summary}");
    assert!(verdict.no_errors, "requests failed\n{summary}");
    assert!(verdict.no_wrong_answers, "wrong answers\n{summary}");
    assert!(
        verdict.fds_back,
        "the hub leaks file descriptors\n{summary}"
    );
    assert!(verdict.memory_flat, "the hub's memory grows\n{summary}");
}
