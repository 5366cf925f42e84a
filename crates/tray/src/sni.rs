//! The tray on Linux: a StatusNotifierItem with its menu over `com.canonical.dbusmenu`, on the
//! session bus, with no toolkit. It draws a [`TrayView`] and turns clicks into [`TrayAction`]s
//! for the host.

use std::path::Path;

use ksni::menu::{CheckmarkItem, StandardItem};
use ksni::{MenuItem, ToolTip, TrayMethods as _};
use tokio::sync::mpsc::UnboundedSender;
use uplink_control::{Alert, Control};

use crate::shortcuts::{self, Clipboard};
use crate::tray_loop::TrayHost;
use crate::view::{TrayAction, TrayEntry, TrayIconKind, TrayView, tray_view};
use crate::windows::Windows;
use crate::{autostart, notify};

/// The tray host on Linux: the StatusNotifierItem (when the session has a bus to put it on),
/// freedesktop notifications, the desktop's autostart entries, and window processes.
pub(crate) struct SniHost {
    tray: Option<ksni::Handle<UplinkTray>>,
    windows: Windows,
    clipboard: Clipboard,
    /// Keeps the action channel open while the tray loop runs, with a tray or without.
    _actions: UnboundedSender<TrayAction>,
}

impl std::fmt::Debug for SniHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniHost")
            .field("tray", &self.tray.is_some())
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl SniHost {
    /// Puts the tray showing `control`'s status on the session bus; clicks go to `actions`.
    /// Without a bus the app runs on with no icon (a second launch opens the window).
    pub(crate) async fn start(
        control: &Control,
        data_dir: &Path,
        actions: UnboundedSender<TrayAction>,
    ) -> anyhow::Result<Self> {
        let windows = Windows::new(data_dir.to_owned())?;
        let view = tray_view(&control.status(), autostart::enabled(), chrono::Utc::now());
        let item = UplinkTray::new(view, Pictures::decode()?, actions.clone());
        let tray = match item.assume_sni_available(true).spawn().await {
            Ok(tray) => Some(tray),
            Err(error) => {
                tracing::warn!(%error, "no tray icon: the session has no bus to put it on");
                None
            }
        };
        Ok(Self {
            tray,
            windows,
            clipboard: Clipboard::default(),
            _actions: actions,
        })
    }

    /// Takes the tray off the bus.
    pub(crate) async fn shutdown(&self) {
        if let Some(tray) = &self.tray {
            tray.shutdown().await;
        }
    }
}

impl TrayHost for SniHost {
    async fn draw(&mut self, view: &TrayView) {
        if let Some(tray) = &self.tray {
            let view = view.clone();
            tray.update(|tray| tray.view = view).await;
        }
    }

    async fn notify(&mut self, alert: &Alert) {
        notify::show(alert).await;
    }

    fn open_window(&mut self) {
        self.windows.open();
    }

    fn open_in_browser(&mut self, url: &str) {
        shortcuts::open_in_browser(url);
    }

    fn copy_to_clipboard(&mut self, text: &str) {
        self.clipboard.copy(text);
    }

    fn starts_at_login(&self) -> bool {
        autostart::enabled()
    }

    fn toggle_start_at_login(&mut self) {
        autostart::toggle();
    }
}

/// The three pictures, decoded once for the bus (ARGB32, network byte order).
#[derive(Debug, Clone)]
pub(crate) struct Pictures {
    connected: ksni::Icon,
    connecting: ksni::Icon,
    offline: ksni::Icon,
}

impl Pictures {
    fn decode() -> Result<Self, PictureError> {
        Ok(Self {
            connected: argb(TrayIconKind::Connected.png())?,
            connecting: argb(TrayIconKind::Connecting.png())?,
            offline: argb(TrayIconKind::Offline.png())?,
        })
    }

    fn of(&self, kind: TrayIconKind) -> &ksni::Icon {
        match kind {
            TrayIconKind::Connected => &self.connected,
            TrayIconKind::Connecting => &self.connecting,
            TrayIconKind::Offline => &self.offline,
        }
    }
}

/// Why a tray picture could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PictureError {
    #[error("the tray picture is not a readable PNG: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("the tray picture kept its palette after expansion")]
    Palette,
}

/// A PNG as the StatusNotifierItem protocol carries pictures.
fn argb(png_file: &[u8]) -> Result<ksni::Icon, PictureError> {
    let mut decoder = png::Decoder::new(png_file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels)?;
    pixels.truncate(frame.buffer_size());
    let data = match frame.color_type {
        png::ColorType::Rgba => pixels
            .chunks_exact(4)
            .flat_map(|p| [p[3], p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [0xff, p[0], p[1], p[2]])
            .collect(),
        png::ColorType::GrayscaleAlpha => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[1], p[0], p[0], p[0]])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [0xff, g, g, g]).collect(),
        // normalize_to_color8 expands palettes, so this is not reached.
        png::ColorType::Indexed => return Err(PictureError::Palette),
    };
    Ok(ksni::Icon {
        width: frame.width as i32,
        height: frame.height as i32,
        data,
    })
}

/// The tray item: what it shows, and where its clicks go.
#[derive(Debug)]
pub(crate) struct UplinkTray {
    view: TrayView,
    pictures: Pictures,
    actions: UnboundedSender<TrayAction>,
}

impl UplinkTray {
    fn new(view: TrayView, pictures: Pictures, actions: UnboundedSender<TrayAction>) -> Self {
        Self {
            view,
            pictures,
            actions,
        }
    }

    fn act(&self, action: TrayAction) {
        let _ = self.actions.send(action);
    }
}

impl ksni::Tray for UplinkTray {
    fn id(&self) -> String {
        "uplink".into()
    }

    fn title(&self) -> String {
        "Uplink".into()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        vec![self.pictures.of(self.view.icon).clone()]
    }

    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: self.view.tooltip.clone(),
            ..Default::default()
        }
    }

    /// A click on the icon itself opens the window, where the tray host delivers one.
    fn activate(&mut self, _x: i32, _y: i32) {
        self.act(TrayAction::Open);
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        self.view
            .menu
            .iter()
            .map(|entry| match entry {
                TrayEntry::Status(text) => StandardItem {
                    label: literal(text),
                    enabled: false,
                    ..Default::default()
                }
                .into(),
                &TrayEntry::Action {
                    action,
                    label,
                    enabled,
                } => StandardItem {
                    label: label.into(),
                    enabled,
                    activate: Box::new(move |tray: &mut Self| tray.act(action)),
                    ..Default::default()
                }
                .into(),
                &TrayEntry::Toggle {
                    action,
                    label,
                    checked,
                } => CheckmarkItem {
                    label: label.into(),
                    checked,
                    activate: Box::new(move |tray: &mut Self| tray.act(action)),
                    ..Default::default()
                }
                .into(),
                TrayEntry::Separator => MenuItem::Separator,
            })
            .collect()
    }

    /// Without a tray host on the bus (a stock GNOME, a server) the item stays exported, so it
    /// appears as soon as a host starts; the window opens from a second launch meanwhile.
    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::warn!(
            ?reason,
            "no tray host on the session bus: the icon shows when one starts"
        );
        true
    }
}

/// `text` as a dbusmenu label that shows it as it is: the protocol reads `_` as the mark of
/// an access key, and `__` as an underscore (errors and ids often hold underscores).
fn literal(text: &str) -> String {
    text.replace('_', "__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn informative_lines_keep_their_underscores() {
        assert_eq!(
            literal("Last error: unknown_tag in con_1"),
            "Last error: unknown__tag in con__1"
        );
        assert_eq!(literal("no marks"), "no marks");
    }

    #[test]
    fn every_picture_decodes_to_argb_with_its_alpha_first() {
        let pictures = Pictures::decode().expect("the tray pictures are valid PNGs");
        for kind in [
            TrayIconKind::Connected,
            TrayIconKind::Connecting,
            TrayIconKind::Offline,
        ] {
            let icon = pictures.of(kind);
            assert!(icon.width >= 16 && icon.width == icon.height, "{kind:?}");
            assert_eq!(icon.data.len(), (icon.width * icon.height * 4) as usize);
            // The corners of a round tray picture are transparent: alpha (the first byte) is 0.
            assert_eq!(icon.data[0], 0, "{kind:?}: alpha is not first");
            // And some pixel is opaque.
            assert!(icon.data.chunks_exact(4).any(|p| p[0] == 0xff), "{kind:?}");
        }
        assert_ne!(pictures.connected.data, pictures.offline.data);
        assert_ne!(pictures.connecting.data, pictures.offline.data);
    }

    #[test]
    fn rgb_and_grey_pictures_become_opaque_argb() {
        let mut file = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut file, 2, 1);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&[10, 20, 30, 40, 50, 60]).unwrap();
        }
        let icon = argb(&file).unwrap();
        assert_eq!(icon.data, vec![0xff, 10, 20, 30, 0xff, 40, 50, 60]);
    }
}
