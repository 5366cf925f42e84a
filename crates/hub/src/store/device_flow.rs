//! The device authorization grant (RFC 8628).

use async_trait::async_trait;

use super::TokenFamily;
use crate::error::Result;

/// A pending device authorization (RFC 8628), as the approving user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// The requesting app.
    pub app_id: String,
    /// The scopes it asked for.
    pub scopes: Vec<String>,
    /// Created.
    pub created_at: i64,
    /// After this the user code is void.
    pub expires_at: i64,
    /// Minimum seconds between polls.
    pub interval_secs: i64,
    /// The client address the device asked from (as the hub saw it), shown to the approver.
    pub requested_from: String,
}

/// Outcome of a device polling the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// The user has not decided yet; `too_fast` if the device polled before its interval.
    Pending {
        /// Polled sooner than allowed.
        too_fast: bool,
    },
    /// The user approved: this is the one redemption, with a newly opened token family.
    Approved(TokenFamily),
    /// The user denied.
    Denied,
    /// Expired, unknown, or already redeemed.
    Invalid,
}

/// The device-flow room.
#[async_trait]
pub trait DeviceFlowStore: Send + Sync {
    /// Stores a new device authorization by the digests of its device and user codes.
    async fn create_device_authorization(
        &self,
        device_digest: &[u8],
        user_code_digest: &[u8],
        request: &DeviceAuthorization,
    ) -> Result<()>;
    /// An undecided, unexpired device authorization by its user code.
    async fn pending_device_authorization(
        &self,
        user_code_digest: &[u8],
        now: i64,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Records the user's decision (approve for `user_id`, or deny with None); false if it was
    /// already decided or expired.
    async fn decide_device_authorization(
        &self,
        user_code_digest: &[u8],
        user_id: Option<&str>,
        now: i64,
    ) -> Result<bool>;
    /// A device polls with its device code, as app `app_id`; approval is redeemed once.
    async fn poll_device_authorization(
        &self,
        device_digest: &[u8],
        app_id: &str,
        now: i64,
    ) -> Result<DevicePoll>;
}
