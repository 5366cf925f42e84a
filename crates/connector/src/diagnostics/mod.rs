//! Diagnostics for a site's IT staff: a connectivity test that walks the link's way to the
//! hub step by step — DNS, TCP (through the proxy when one applies), TLS, the SignalR
//! negotiate at `/hubs/connector`, then each transport opened for real — saying in plain words
//! what failed and why; and an archive of status, configuration, policy, activity and logs with
//! every secret removed, to send to support.
//!
//! ```no_run
//! # async fn run(credentials: uplink_connector::credentials::LinkCredentials, token: String) {
//! use uplink_connector::diagnostics::{check_connectivity, export_diagnostics, link_tls};
//! use uplink_signalr::client::ProxySetting;
//!
//! let hub = url::Url::parse(&credentials.hub_url).unwrap();
//! let tls = link_tls(&credentials).unwrap();
//! let report = check_connectivity(&hub, tls, ProxySetting::default(), Some(token)).await;
//! assert!(report.all_passed());
//!
//! let data_dir = std::path::Path::new("/var/lib/uplink");
//! let export = export_diagnostics(data_dir, &data_dir.join("diagnostics"), &[]).unwrap();
//! println!("wrote {} ({} bytes)", export.path, export.bytes);
//! # }
//! ```

mod connectivity;
mod export;
mod negotiate_check;
mod redact;
mod report;
mod route;
mod tls_check;
mod transport_check;

pub use connectivity::{check_connectivity, link_tls};
pub use export::export_diagnostics;
pub use report::{CheckId, DiagnosticCheck, DiagnosticsExport, DiagnosticsReport, Outcome};

#[cfg(test)]
mod tests;
