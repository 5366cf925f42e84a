//! The connector's configuration survives being killed while it is saved: a process saves
//! ever newer configurations with the connector's `ConfigStore` as fast as it can and is killed
//! with SIGKILL at a random moment, 200 times over. After every kill the file on disk is whole
//! and is the last configuration the process reported saved, or the one it was saving — never
//! a mix, never a truncated file, never an older one, never none. Nor do the temporary files
//! of killed saves pile up: the next save clears them.
//!
//! This file is its own harness: run with `UPLINK_FAULTS_SAVER=<dir>` it is the saving process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use uplink_connector::{ConfigStore, ConnectorConfig, SourceConfig};

const SAVER: &str = "UPLINK_FAULTS_SAVER";
const KILLS: u32 = 200;

fn main() {
    match std::env::var_os(SAVER) {
        Some(dir) => save_forever(Path::new(&dir)),
        None => {
            a_connector_killed_while_saving_keeps_the_old_or_the_new_configuration();
            eprintln!(
                "test a_connector_killed_while_saving_keeps_the_old_or_the_new_configuration ... ok"
            );
        }
    }
}

/// The configuration of generation `n`: its name says which, and its size varies with it, so a
/// torn or mixed file cannot pass for a whole one.
fn generation(n: u64) -> ConnectorConfig {
    let mut config = ConnectorConfig::default();
    config.settings.display_name = Some(format!("generation {n}"));
    let template = config.sources[0].clone();
    for i in 0..(n % 7) {
        config.sources.push(SourceConfig {
            name: format!("line-{i}"),
            description: format!("generation {n} ")
                .repeat(1 + (n as usize * 31 + i as usize) % 200),
            ..template.clone()
        });
    }
    config
}

/// Which generation a configuration is, checking it is that generation whole.
fn generation_of(config: &ConnectorConfig) -> u64 {
    let n: u64 = match config.settings.display_name.as_deref() {
        None => return 0,
        Some(name) => name
            .strip_prefix("generation ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a generation: {name}")),
    };
    assert_eq!(*config, generation(n), "generation {n} is whole");
    n
}

fn save_forever(dir: &Path) -> ! {
    let store = ConfigStore::new(dir);
    let mut n = generation_of(&store.load().expect("the saver reads the configuration"));
    let mut out = std::io::stderr();
    loop {
        n += 1;
        store.save(&generation(n)).expect("saved");
        // Said only once `save` returned: from here on, generation `n` must survive.
        writeln!(out, "{n}").expect("the test reads along");
    }
}

fn a_connector_killed_while_saving_keeps_the_old_or_the_new_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    let mut rng = rand::rng();
    let mut known = 0u64;
    let mut caught_saving = 0u32;
    for kill in 0..KILLS {
        let mut saver = Command::new(std::env::current_exe().unwrap())
            .env(SAVER, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let reports = saver.stderr.take().unwrap();
        let its_temp_file = dir.path().join(format!(
            ".{}.tmp-{}",
            store.path().file_name().unwrap().to_string_lossy(),
            saver.id()
        ));
        // Let it save a few times first, then kill it at a random moment.
        let mut lines = BufReader::new(reports).lines();
        let warm_up = rng.random_range(1..=3);
        for _ in 0..warm_up {
            match lines.next() {
                Some(Ok(line)) => known = parse_report(&line, known),
                other => panic!("the saver stopped early: {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..5_000)));
        saver.kill().unwrap();
        saver.wait().unwrap();
        for line in lines {
            known = parse_report(&line.unwrap(), known);
        }

        let on_disk = match store.load() {
            Ok(config) => generation_of(&config),
            Err(e) => panic!("after kill {kill}, the configuration is unreadable: {e}"),
        };
        assert!(
            on_disk == known || on_disk == known + 1,
            "after kill {kill}: generation {on_disk} on disk, {known} reported saved"
        );
        if on_disk == known + 1 || its_temp_file.exists() {
            caught_saving += 1;
        }
        // Each save clears what earlier killed saves left: at most this kill's remains.
        assert!(
            leftover_temp_files(dir.path()) <= 1,
            "after kill {kill}: {} temporary files",
            leftover_temp_files(dir.path())
        );
        known = on_disk;
    }
    eprintln!(
        "{KILLS} kills: the configuration was always the old or the new one; {caught_saving} kills landed inside a save; {} temporary files left behind",
        leftover_temp_files(dir.path())
    );
    assert!(
        caught_saving > 0,
        "no kill landed inside a save: the test proved nothing"
    );
}

fn parse_report(line: &str, known: u64) -> u64 {
    let n: u64 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the saver said: {line}"));
    assert_eq!(n, known + 1, "the saver reports each generation in turn");
    n
}

fn leftover_temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count()
}
