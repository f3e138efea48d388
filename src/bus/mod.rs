//! Node-to-node RPC.
