//! Keeps remote content out of the window: the webview may show only the app's own bundled UI.
//! A link or script that tries to load anything else is refused (and logged), so no remote page
//! ever runs with the window's IPC access — the hub's sign-in page opens in the system browser.

use tauri::plugin::TauriPlugin;
use tauri::{Runtime, Url};

/// Whether `url` is the app's own bundled UI, as each platform's webview addresses it.
pub fn is_bundled_ui(url: &Url) -> bool {
    match url.scheme() {
        // Linux and macOS.
        "tauri" => url.host_str() == Some("localhost"),
        // Windows serves the bundle from a fixed host over http(s).
        "http" | "https" => url.host_str() == Some("tauri.localhost"),
        // In-page fragments and blank frames carry nothing remote.
        "about" => url.as_str() == "about:blank",
        _ => false,
    }
}

/// A plugin that refuses every navigation away from the bundled UI.
pub(crate) fn guard<R: Runtime>() -> TauriPlugin<R> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|_webview, url| {
            let allowed = is_bundled_ui(url);
            if !allowed {
                tracing::warn!(%url, "refused to load remote content in the window");
            }
            allowed
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str) -> bool {
        is_bundled_ui(&url.parse().unwrap())
    }

    #[test]
    fn the_bundled_ui_loads() {
        assert!(allowed("tauri://localhost/"));
        assert!(allowed("tauri://localhost/index.html#/status"));
        assert!(allowed("http://tauri.localhost/#/apps"));
        assert!(allowed("https://tauri.localhost/assets/index.js"));
        assert!(allowed("about:blank"));
    }

    #[test]
    fn nothing_remote_or_local_outside_the_bundle_loads() {
        for url in [
            "https://hub.example/oauth/authorize?client_id=x",
            "http://127.0.0.1:8443/",
            "https://localhost/",
            "tauri://evil.example/",
            "http://tauri.localhost.evil.example/",
            "file:///etc/passwd",
            "data:text/html,<script>alert(1)</script>",
            "javascript:alert(1)",
        ] {
            assert!(!allowed(url), "{url}");
        }
    }
}
