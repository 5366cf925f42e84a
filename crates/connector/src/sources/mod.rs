//! The data source adapters.

pub mod csv;
pub mod simulated;
pub mod sqlite;
