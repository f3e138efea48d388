//! Keyspace and expiry commands (Redis's db.c and expire.c).

pub mod copy;
pub mod dbsize;
pub mod del;
pub mod dump;
pub mod exists;
pub mod expire;
pub mod flush;
pub mod keys;
pub mod memory;
pub mod migrate;
pub mod move_;
pub mod object;
pub mod persist;
pub mod randomkey;
pub mod rename;
pub mod restore;
pub mod scan;
pub mod swapdb;
pub mod ttl;
pub mod type_;
