//! redraft-proxy: the client-facing side of redraft.
//!
//! For now it holds [`wire`], the RESP protocol layer shared by the node and (in a later
//! issue) the proxy: request parsing with Redis's exact limits, reply encoding for RESP2 and
//! RESP3, key → slot hashing and Redis glob matching.
#![forbid(unsafe_code)]

pub mod wire;
