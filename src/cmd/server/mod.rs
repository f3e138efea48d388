//! Connection and server commands answered without the keyspace.

pub mod auth;
pub mod command;
pub mod echo;
pub mod ping;
pub mod select;
pub mod time;
