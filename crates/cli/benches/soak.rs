//! The long soak: N apps × M connectors on loopback against a real `uplink hub serve` for ten
//! minutes (by default), one table row per window — the hub's RSS and open files, requests,
//! errors, wrong answers, p50 and p99 — and a verdict: memory flat after warm-up, open files
//! back to their baseline, no error, no wrong answer, p99 stable. Exits non-zero on a FAIL.
//!
//! `cargo bench -p uplink-cli --bench soak -- --minutes 10 [--apps 8] [--connectors 16]
//! [--window-secs 10] [--warm-up-secs 60] [--pause-ms 20]`
#![allow(clippy::print_stdout)]

#[path = "../tests/soak/driver.rs"]
#[allow(dead_code)]
mod driver;

use std::time::Duration;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut options = driver::Options {
        uplink: env!("CARGO_BIN_EXE_uplink").into(),
        apps: 8,
        connectors: 16,
        duration: Duration::from_secs(600),
        window: Duration::from_secs(10),
        warm_up: Duration::from_secs(60),
        pause: Duration::from_millis(20),
        live: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<f64> {
            args.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--minutes" => options.duration = Duration::from_secs_f64(value(&arg)? * 60.0),
            "--apps" => options.apps = value(&arg)? as usize,
            "--connectors" => options.connectors = value(&arg)? as usize,
            "--window-secs" => options.window = Duration::from_secs_f64(value(&arg)?),
            "--warm-up-secs" => options.warm_up = Duration::from_secs_f64(value(&arg)?),
            "--pause-ms" => options.pause = Duration::from_secs_f64(value(&arg)? / 1000.0),
            // Cargo adds `--bench`; other harness flags mean nothing here.
            other if other.starts_with("--") => {}
            other => anyhow::bail!("unexpected argument '{other}'"),
        }
    }
    let report = tokio::runtime::Runtime::new()?.block_on(driver::run(options))?;
    println!("{}", report.summary());
    let v = report.verdict();
    if !(v.memory_flat && v.fds_back && v.no_errors && v.no_wrong_answers && v.p99_stable) {
        std::process::exit(1);
    }
    Ok(())
}
