//! What travels on the bus: the handshake, requests, responses and the frames around them.
//!
//! Every frame is one postcard value inside a length-delimited frame. postcard encodes an
//! enum variant by its index, so new variants are only ever **appended** to [`BusRequest`]
//! and [`BusResponse`]; anything else is an incompatible change and bumps [`BUS_VERSION`].

use serde::{Deserialize, Serialize};

use crate::raft::{Gid, NodeId};

/// Protocol version, checked in the handshake so mixed builds refuse each other loudly
/// instead of misreading frames.
pub const BUS_VERSION: u32 = 2;

/// Largest frame accepted either way: a log entry holding one 512 MiB value (Redis's
/// proto-max-bulk-len) must fit; the proposer keeps batched entries under 8 MiB.
#[cfg(not(test))]
pub const MAX_FRAME_LEN: usize = 1024 * 1024 * 1024;
/// Unit tests exercise the limit without allocating gigabytes.
#[cfg(test)]
pub const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// Largest opaque body ([`BusRequest::Raft::body`]) guaranteed to fit in a frame with
/// its envelope (request id, variant tags, group id, length prefix).
pub const MAX_BODY_LEN: usize = MAX_FRAME_LEN - 1024;

/// First frame a client sends. `to` lets the server reject a caller that dialled the wrong
/// node: openraft panics if a leader ends up replicating to itself through a stale address.
/// Its layout is frozen across versions, so a version mismatch is always detected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub from: NodeId,
    /// [`ANY_NODE`] when the caller knows only the address (`--controller host:port`).
    pub to: NodeId,
}

/// The `to` of a caller that accepts whichever node answers at the address; never used for
/// Raft traffic, whose peers are always known by id.
pub const ANY_NODE: NodeId = 0;

/// The server's answer to [`Hello`]; on `Refused` it closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Accepted,
    Refused(String),
}

/// Which openraft RPC a [`BusRequest::Raft`] body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftRpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// A request from one node to another. Append new variants at the end only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusRequest {
    /// An openraft RPC for group `gid`; `body` is the postcard-encoded openraft request,
    /// kept opaque here so the bus does not depend on any Raft type configuration.
    Raft {
        gid: Gid,
        rpc: RaftRpcKind,
        #[serde(with = "byte_vec")]
        body: Vec<u8>,
    },
    /// Whether the node already holds group `gid` (answered with [`BusResponse::Status`]).
    /// A starting node with a blank data dir asks before it initialises a group: a blank
    /// dir can be a new group or a replaced disk, and only the peers know which.
    Status { gid: Gid },
    /// A controller or migration request for group `gid`.
    Cluster {
        gid: Gid,
        req: crate::shard::rpc::ClusterRequest,
    },
}

/// The answer to a [`BusRequest`]. Append new variants at the end only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusResponse {
    /// postcard of `Result<openraft response, openraft RaftError>`.
    Raft(#[serde(with = "byte_vec")] Vec<u8>),
    /// The request could not be handled at all (unknown group, undecodable body, ...).
    Error(String),
    /// Answer to [`BusRequest::Status`]: whether the node holds the group, and the last
    /// index of its log.
    Status {
        initialized: bool,
        last_log_index: Option<u64>,
    },
    /// Answer to [`BusRequest::Cluster`].
    Cluster(crate::shard::rpc::ClusterReply),
}

/// A request frame after the handshake; `id` matches the response on a multiplexed link.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RequestFrame {
    pub id: u64,
    pub req: BusRequest,
}

/// A server-to-client frame after the handshake.
#[derive(Debug, Serialize, Deserialize)]
pub enum ResponseFrame {
    Response {
        id: u64,
        resp: BusResponse,
    },
    /// Fault injection: the reply direction of the link is blocked. Sent instead of the
    /// response so the caller sees `Unreachable` at once rather than waiting out a timeout.
    LinkBlocked {
        id: u64,
    },
}

/// Serializes a `Vec<u8>` as serde bytes. postcard's wire format is the same as for a
/// sequence of `u8`, but encoding and decoding become one memcpy instead of a per-byte loop,
/// which matters for snapshot chunks and large AppendEntries.
mod byte_vec {
    use std::fmt;

    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(ByteVecVisitor)
    }

    struct ByteVecVisitor;

    impl<'de> Visitor<'de> for ByteVecVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte array")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_vec_matches_plain_vec_wire_format() {
        #[derive(Serialize)]
        struct Plain {
            body: Vec<u8>,
        }
        let body: Vec<u8> = (0..=255u8).collect();
        let req = BusRequest::Raft {
            gid: 7,
            rpc: RaftRpcKind::Vote,
            body: body.clone(),
        };
        let enc = crate::codec::to_vec(&req).expect("encode");
        // Variant 0, gid 7, rpc variant 1, then the same bytes a plain Vec<u8> gives.
        let plain = crate::codec::to_vec(&Plain { body }).expect("encode");
        assert_eq!(&enc[..3], &[0, 7, 1]);
        assert_eq!(&enc[3..], &plain[..]);
        let dec: BusRequest = postcard::from_bytes(&enc).expect("decode");
        assert_eq!(dec, req);
    }

    #[test]
    fn frames_round_trip() {
        let f = ResponseFrame::Response {
            id: u64::MAX,
            resp: BusResponse::Error("unknown group 9".into()),
        };
        let enc = crate::codec::to_vec(&f).expect("encode");
        match postcard::from_bytes::<ResponseFrame>(&enc).expect("decode") {
            ResponseFrame::Response { id, resp } => {
                assert_eq!(id, u64::MAX);
                assert_eq!(resp, BusResponse::Error("unknown group 9".into()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
