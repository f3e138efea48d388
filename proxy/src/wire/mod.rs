//! The RESP wire protocol as Redis speaks it.

pub mod acl;
pub mod clients;
pub mod command_stats;
pub mod decode;
pub mod docs;
pub mod glob;
pub mod hello;
pub mod info;
pub mod kill;
pub mod monitor;
pub mod pause;
pub mod reply;
pub mod reply_mode;
pub mod request;
pub mod shutdown;
pub mod slot;
pub mod slowlog;
pub mod table;
pub mod wait;

pub use reply::{Protocol, Reply};
pub use request::{Limits, ProtocolError, RequestParser};
pub use slot::{key_slot, SLOTS};

/// A command's arguments from its words (split on spaces), for tests.
#[cfg(test)]
pub(crate) fn argv(words: &str) -> Vec<bytes::Bytes> {
    words
        .split(' ')
        .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}
