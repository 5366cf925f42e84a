//! The attack suite: a real hub over real TLS on loopback, attacked the ways the security
//! model must withstand. Every test asserts the refusal AND that nothing was granted.

mod harness;

mod answers_in_flight;
mod codes;
mod connector_consent;
mod connector_oauth_client;
mod consent_csrf;
mod device;
mod limits;
mod pkce;
mod protocol;
mod rate_limits;
mod redirect_uri;
mod refresh;
mod revocation_race;
mod settings;
mod tokens;
