// Hide the console window of a release build on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;

fn main() {
    let started = std::time::Instant::now();
    let options = uplink_desktop::Options::parse();
    uplink_desktop::run(options, started);
}
