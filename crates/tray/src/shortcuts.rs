//! What the tray's shortcuts need from the desktop, on every platform: the system browser
//! ("Open the hub") and the clipboard ("Copy connector id").

/// Opens `url` in the system browser, on a thread of its own: a launcher such as `xdg-open`
/// may take its time, and the tray must not wait for it.
pub fn open_in_browser(url: &str) {
    let url = url.to_owned();
    let started = std::thread::Builder::new()
        .name("open-browser".into())
        .spawn(move || match webbrowser::open(&url) {
            Ok(()) => tracing::info!(%url, "opened in the browser"),
            Err(error) => tracing::warn!(%url, %error, "the browser did not open"),
        });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start opening the browser");
    }
}

/// The system clipboard, opened on first use and then kept: on X11 copied text stays with
/// the program that copied it until another program takes the clipboard, so a clipboard
/// dropped at once would take the text with it wherever no clipboard manager saves it.
#[derive(Default)]
pub struct Clipboard {
    open: Option<arboard::Clipboard>,
}

impl std::fmt::Debug for Clipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clipboard")
            .field("open", &self.open.is_some())
            .finish()
    }
}

impl Clipboard {
    /// Puts `text` on the clipboard; a failure (no display to hold a clipboard) is logged.
    pub fn copy(&mut self, text: &str) {
        match self.try_copy(text) {
            Ok(()) => tracing::info!(chars = text.chars().count(), "copied to the clipboard"),
            Err(error) => {
                // A clipboard that failed may be stale (its display went away): open it anew.
                self.open = None;
                tracing::warn!(%error, "cannot copy to the clipboard");
            }
        }
    }

    fn try_copy(&mut self, text: &str) -> Result<(), arboard::Error> {
        let clipboard = match &mut self.open {
            Some(clipboard) => clipboard,
            None => self.open.insert(arboard::Clipboard::new()?),
        };
        clipboard.set_text(text)
    }
}
