//! The rows both store backends read, one module per room: a row is the same columns on
//! SQLite and PostgreSQL (`sqlx::FromRow` is generic over the database), so each is declared
//! once, with its conversion to the store's own type.

pub(crate) mod accounts;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod authorization;
pub(crate) mod changes;
pub(crate) mod connectors;
pub(crate) mod device_flow;
pub(crate) mod families;
pub(crate) mod grants;
pub(crate) mod login_sessions;
pub(crate) mod token_keys;
pub(crate) mod users;
pub(crate) mod writes;
