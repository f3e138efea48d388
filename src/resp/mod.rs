//! The client side of a node: per-connection sessions and the request/reply loop.

pub mod connection;
pub mod output_limit;
pub mod route;
pub mod session;
