use serde::Serialize;
use ts_rs::TS;

/// Which program serves the UI: the desktop app's window, or `uplink ui` for a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum HostKind {
    /// The tray app's own window.
    Desktop,
    /// A browser, served by `uplink ui` on loopback.
    Browser,
}

/// What the About page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// The product's name.
    pub name: String,
    /// The release, as in `uplink --version`.
    pub version: String,
    /// Who serves this UI.
    pub host: HostKind,
    /// The operating system and CPU it runs on, e.g. `linux x86_64`.
    pub platform: String,
}

impl AppInfo {
    pub(crate) fn current(host: HostKind) -> Self {
        Self {
            name: "Uplink".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host,
            platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}
