//! `uplink-window`: the desktop app's window, started by the tray process when the owner opens
//! it. It shows the connector that the tray process of its data folder runs.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        without_gl_driver();
        // The window's class (WM_CLASS) comes from the program's name: giving it the app's name
        // lets the desktop match the window to Uplink's launcher and icon, whose entry starts
        // `uplink-desktop`, and not show an unknown `uplink-window`.
        glib::set_prgname(Some("uplink-desktop"));
    }
    uplink_desktop::run_window(uplink_desktop::WindowOptions::parse())
}

/// GTK opens GL as it starts only to choose among visuals, which maps the whole GL driver (with
/// Mesa, an LLVM of some 45 MB) into the process. The window draws just as well without it
/// (WebKit then composites in software, which also avoids blank windows on troublesome GPUs),
/// so unless `GDK_GL` is set already, the window starts itself again, once, with
/// `GDK_GL=disable`. Set `GDK_GL` to anything (e.g. `GDK_GL=always`) to keep GL.
#[cfg(target_os = "linux")]
fn without_gl_driver() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` returns only if it failed; the window then carries on with GL.
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GDK_GL", "disable")
        .exec();
    eprintln!("uplink-window: starting without GL failed ({error}); starting with it");
}
