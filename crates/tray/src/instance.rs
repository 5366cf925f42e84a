//! One tray process per desktop session: the first takes a well-known name on the session bus
//! and answers `Open` there; a later launch finds the name taken, asks the first to open its
//! window, and ends.

use tokio::sync::mpsc::UnboundedSender;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::view::TrayAction;

/// The bus name, object path and interface the running app answers on.
const NAME: &str = "dev.uplink.desktop.Tray";
const PATH: &str = "/dev/uplink/desktop/Tray";

/// The object a second launch calls.
struct Opener(UnboundedSender<TrayAction>);

#[zbus::interface(name = "dev.uplink.desktop.Tray")]
impl Opener {
    /// Brings the window forward (opening it if it is closed).
    fn open(&self) {
        tracing::info!("Uplink was launched again: showing the window");
        let _ = self.0.send(TrayAction::Open);
    }
}

/// What claiming the session's instance found.
pub(crate) enum Claim {
    /// This process is the one; the connection holds the name for as long as it lives.
    First(zbus::Connection),
    /// Another process is the one and has been asked to show its window.
    Running,
}

/// Claims the session's one instance, or hands over to the process that holds it.
pub(crate) async fn claim(actions: UnboundedSender<TrayAction>) -> zbus::Result<Claim> {
    let connection = zbus::Connection::session().await?;
    // The object is served before the name is taken, so no call to it can arrive unanswered.
    connection.object_server().at(PATH, Opener(actions)).await?;
    let reply = connection
        .request_name_with_flags(NAME, RequestNameFlags::DoNotQueue.into())
        .await;
    match reply {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {
            Ok(Claim::First(connection))
        }
        Ok(RequestNameReply::Exists | RequestNameReply::InQueue) | Err(zbus::Error::NameTaken) => {
            connection
                .call_method(Some(NAME), PATH, Some(NAME), "Open", &())
                .await?;
            Ok(Claim::Running)
        }
        Err(error) => Err(error),
    }
}
