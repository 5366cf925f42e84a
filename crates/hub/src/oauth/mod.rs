//! The OAuth2 authorization server: authorization code flow with PKCE (RFC 6749, RFC 7636,
//! RFC 8252, RFC 9700), issuer in the response (RFC 9207), the device authorization grant
//! for headless connectors (RFC 8628), revocation (RFC 7009),
//! introspection (RFC 7662) and metadata (RFC 8414), and OpenID Connect on top (`oidc`).

pub mod authorize;
pub mod client_auth;
pub mod device;
pub mod error;
pub mod introspect;
pub mod metadata;
pub mod oidc;
pub mod openapi;
pub mod params;
pub mod redirect;
pub mod revoke;
pub mod token_endpoint;
