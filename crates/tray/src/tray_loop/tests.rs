//! The tray loop with a fake host over a real control surface (a real connector runtime in a
//! temporary data folder): what it draws, notifies and opens, and what the clicks do.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use uplink_connector::LinkState;
use uplink_control::{Alert, Control, ControlStatus, HostKind};

use super::{TrayEnd, TrayHost, TrayLoop};
use crate::view::{TrayAction, TrayEntry, TrayIconKind, TrayView};

/// What the fake host was asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Drawn(TrayView),
    Notified(&'static str),
    WindowOpened,
    Toggled,
    Browsed(String),
    Copied(String),
}

#[derive(Debug)]
struct FakeHost {
    seen: mpsc::UnboundedSender<Seen>,
    start_at_login: bool,
}

impl TrayHost for FakeHost {
    async fn draw(&mut self, view: &TrayView) {
        let _ = self.seen.send(Seen::Drawn(view.clone()));
    }

    async fn notify(&mut self, alert: &Alert) {
        let _ = self.seen.send(Seen::Notified(alert.id()));
    }

    fn open_window(&mut self) {
        let _ = self.seen.send(Seen::WindowOpened);
    }

    fn open_in_browser(&mut self, url: &str) {
        let _ = self.seen.send(Seen::Browsed(url.to_owned()));
    }

    fn copy_to_clipboard(&mut self, text: &str) {
        let _ = self.seen.send(Seen::Copied(text.to_owned()));
    }

    fn starts_at_login(&self) -> bool {
        self.start_at_login
    }

    fn toggle_start_at_login(&mut self) {
        self.start_at_login = !self.start_at_login;
        let _ = self.seen.send(Seen::Toggled);
    }
}

/// A generous bound for a failing test to fail rather than hang; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

struct Harness {
    control: Control,
    actions: mpsc::UnboundedSender<TrayAction>,
    seen: mpsc::UnboundedReceiver<Seen>,
    ended: tokio::task::JoinHandle<TrayEnd>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A loop over a fresh control surface, following `statuses` (its own by default).
    fn start(statuses: Option<watch::Receiver<ControlStatus>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::start(HostKind::Desktop, dir.path().to_owned());
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (actions, actions_rx) = mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let host = FakeHost {
            seen: seen_tx,
            start_at_login: false,
        };
        let statuses = statuses.unwrap_or_else(|| control.watch());
        let mut tray = TrayLoop::new(control.clone(), host);
        let ended = tokio::spawn(async move {
            tray.run(statuses, actions_rx, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            control,
            actions,
            seen,
            ended,
            stop: Some(stop),
            _dir: dir,
        }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.seen.recv())
            .await
            .expect("the loop did something")
            .expect("the loop is running")
    }

    /// Skips draws until one that `wanted` accepts, checking that every draw changed something.
    async fn draw_where(&mut self, wanted: impl Fn(&TrayView) -> bool) -> TrayView {
        let mut last: Option<TrayView> = None;
        loop {
            match self.next().await {
                Seen::Drawn(view) => {
                    assert_ne!(last.as_ref(), Some(&view), "the same view was drawn twice");
                    if wanted(&view) {
                        return view;
                    }
                    last = Some(view);
                }
                other => panic!("expected a draw, the host saw {other:?}"),
            }
        }
    }

    async fn end(mut self) -> TrayEnd {
        drop(self.stop.take());
        let end = tokio::time::timeout(PATIENCE, self.ended)
            .await
            .expect("the loop ended")
            .unwrap();
        self.control.shutdown().await;
        end
    }
}

fn toggle_checked(view: &TrayView) -> Option<bool> {
    view.menu.iter().find_map(|entry| match entry {
        TrayEntry::Toggle {
            action: TrayAction::StartAtLogin,
            checked,
            ..
        } => Some(*checked),
        _ => None,
    })
}

fn offers(view: &TrayView, wanted: TrayAction) -> bool {
    view.menu.iter().any(|entry| {
        matches!(entry, TrayEntry::Action { action, enabled: true, .. } if *action == wanted)
    })
}

#[tokio::test]
async fn the_loop_draws_the_status_and_pause_and_resume_reach_the_control_surface() {
    let mut tray = Harness::start(None);
    // The first thing the loop does is draw the current status.
    let first = tray.draw_where(|_| true).await;
    assert_eq!(toggle_checked(&first), Some(false));

    tray.actions.send(TrayAction::Pause).unwrap();
    let paused = tray
        .draw_where(|view| view.tooltip.contains("paused"))
        .await;
    assert_eq!(paused.icon, TrayIconKind::Offline);
    assert!(offers(&paused, TrayAction::Resume), "{paused:?}");
    assert!(tray.control.status().paused);

    tray.actions.send(TrayAction::Resume).unwrap();
    let resumed = tray
        .draw_where(|view| !view.tooltip.contains("paused"))
        .await;
    assert!(!offers(&resumed, TrayAction::Resume), "{resumed:?}");
    assert!(!tray.control.status().paused);
    assert_eq!(tray.end().await, TrayEnd::Stopped);
}

#[tokio::test]
async fn open_sign_in_and_start_at_login_go_to_the_host_and_quit_ends_the_loop() {
    let (publish, statuses) = watch::channel(blank_status().await);
    let mut tray = Harness::start(Some(statuses));
    let first = tray.draw_where(|_| true).await;
    assert_eq!(toggle_checked(&first), Some(false));

    tray.actions.send(TrayAction::Open).unwrap();
    tray.actions.send(TrayAction::SignIn).unwrap();
    assert_eq!(tray.next().await, Seen::WindowOpened);
    assert_eq!(tray.next().await, Seen::WindowOpened);

    // Start at login: toggled by the host, and the menu drawn again with the new check mark.
    tray.actions.send(TrayAction::StartAtLogin).unwrap();
    assert_eq!(tray.next().await, Seen::Toggled);
    let on = tray.draw_where(|_| true).await;
    assert_eq!(toggle_checked(&on), Some(true));
    tray.actions.send(TrayAction::StartAtLogin).unwrap();
    assert_eq!(tray.next().await, Seen::Toggled);
    assert_eq!(
        toggle_checked(&tray.draw_where(|_| true).await),
        Some(false)
    );

    tray.actions.send(TrayAction::Quit).unwrap();
    assert_eq!(tray.end().await, TrayEnd::Quit);
    drop(publish);
}

#[tokio::test]
async fn a_status_the_tray_does_not_show_draws_nothing_and_each_incident_notifies_once() {
    let blank = blank_status().await;
    let (publish, statuses) = watch::channel(blank.clone());
    let mut tray = Harness::start(Some(statuses));
    let first = tray.draw_where(|_| true).await;

    // A newer status that looks the same in the tray draws nothing: the window opening asked
    // for after it is the next thing the host sees (the loop takes a status before an action).
    let mut same = blank.clone();
    same.connector.updated_at += chrono::TimeDelta::seconds(1);
    publish.send(same.clone()).unwrap();
    tray.actions.send(TrayAction::Open).unwrap();
    assert_eq!(tray.next().await, Seen::WindowOpened);

    // The hub refusing the sign-in is drawn and notified once, however often it repeats.
    let mut expired = same.clone();
    expired.configured = true;
    expired.connector.link = LinkState::SignedOut;
    expired.connector.hub_url = Some("https://hub.example".into());
    publish.send(expired.clone()).unwrap();
    let drawn = tray.draw_where(|_| true).await;
    assert_ne!(drawn, first);
    assert_eq!(tray.next().await, Seen::Notified("sign-in-expired"));
    expired.connector.updated_at += chrono::TimeDelta::seconds(1);
    publish.send(expired.clone()).unwrap();
    tray.actions.send(TrayAction::Open).unwrap();
    assert_eq!(tray.next().await, Seen::WindowOpened);
    let mut paused = expired.clone();
    paused.paused = true;
    publish.send(paused).unwrap();
    let next = tray.draw_where(|_| true).await;
    assert_eq!(next.icon, TrayIconKind::Offline);
    assert!(next.tooltip.contains("paused"), "{next:?}");

    // The control surface's status ending ends the loop.
    drop(publish);
    let ended = tokio::time::timeout(PATIENCE, &mut tray.ended)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, TrayEnd::Closed);
}

#[tokio::test]
async fn open_the_hub_and_copy_connector_id_use_the_status_as_it_is_at_the_click() {
    let blank = blank_status().await;
    let (publish, statuses) = watch::channel(blank.clone());
    let mut tray = Harness::start(Some(statuses));
    tray.draw_where(|_| true).await;

    // Nothing to open or copy yet: the host is not asked (the window opening after shows that
    // nothing came before it).
    tray.actions.send(TrayAction::OpenHub).unwrap();
    tray.actions.send(TrayAction::CopyConnectorId).unwrap();
    tray.actions.send(TrayAction::Open).unwrap();
    assert_eq!(tray.next().await, Seen::WindowOpened);

    let mut linked = blank.clone();
    linked.configured = true;
    linked.connector.hub_url = Some("https://hub.example".into());
    linked.connector.connector_id = Some("con_7f3a".into());
    publish.send(linked).unwrap();
    tray.draw_where(|view| {
        view.menu.iter().any(|entry| {
            matches!(
                entry,
                TrayEntry::Action {
                    action: TrayAction::CopyConnectorId,
                    enabled: true,
                    ..
                }
            )
        })
    })
    .await;
    tray.actions.send(TrayAction::OpenHub).unwrap();
    assert_eq!(
        tray.next().await,
        Seen::Browsed("https://hub.example".into())
    );
    tray.actions.send(TrayAction::CopyConnectorId).unwrap();
    assert_eq!(tray.next().await, Seen::Copied("con_7f3a".into()));
    assert_eq!(tray.end().await, TrayEnd::Stopped);
    drop(publish);
}

/// A fresh control surface's first status.
async fn blank_status() -> ControlStatus {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Desktop, dir.path().to_owned());
    let status = control.status();
    control.shutdown().await;
    status
}
