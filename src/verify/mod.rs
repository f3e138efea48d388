//! Checking what clients saw against what a linearizable store may show them.
//!
//! The workload is list-append (`APPEND k "<id>,"`, `GET k`): every value is the list of
//! appends in the one order the store applied them, so a history of appends and reads
//! pins that order down and every anomaly Jepsen's list-append checker looks for can be
//! found without a search. [`history`] records operations; [`list_append`] checks them.

pub mod history;
pub mod list_append;
