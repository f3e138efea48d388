//! openraft's `RaftStateMachine` for a shard group on fjall.
