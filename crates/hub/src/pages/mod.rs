//! The hub's pages for people, server-rendered and usable without JavaScript: sign-in, the
//! consent page with data-source choice, and the settings page with revoke buttons.

pub mod consent;
pub mod device;
pub mod fields;
pub mod form_guard;
pub mod layout;
pub mod login;
pub mod returned;
pub mod session;
pub mod settings;
