//! A shard group as the rest of the node sees it.

pub mod request;
pub mod state_machine;
