// Hide the console window of a release build on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

//! `uplink-desktop`: the app people start. On Linux it is the tray process, which links no web
//! view at all (the window is `uplink-window`, started on demand); elsewhere it is the whole
//! app in one process.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    #[cfg(target_os = "linux")]
    {
        uplink_tray::run(uplink_tray::Options::parse(), started)
    }
    #[cfg(not(target_os = "linux"))]
    {
        uplink_desktop::run(uplink_desktop::Options::parse(), started);
        Ok(())
    }
}
