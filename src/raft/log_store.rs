//! openraft's `RaftLogStorage` on fjall with group commit.
