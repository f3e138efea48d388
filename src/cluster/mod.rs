//! Cluster layout, decided by the controller (Raft group 0) as pure, deterministic logic.
//!
//! The controller keeps a list of numbered configurations (`config`): each maps every
//! slot to the data group that owns it and lists each group's nodes. Operators change it
//! through `controller` ops (join, leave, move, rebalance); every op that succeeds appends
//! exactly one configuration, so groups can follow them one number at a time. Joins and
//! leaves even out slot counts with `rebalance`, which moves as few slots as possible
//! because every moved slot means copying its data between groups.
pub mod config;
pub mod controller;
pub mod rebalance;
pub mod slots;
pub mod views;

pub use config::{Config, NodeInfo, SLOTS};
pub use controller::{ControllerState, CtlError, CtlOp};
