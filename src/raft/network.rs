//! openraft's `RaftNetworkFactory` / `RaftNetwork` over the bus, and the receiving side
//! ([`serve`]) that hands incoming RPCs to a local `Raft`.
//!
//! Every group on a node shares the bus's single connection per peer; requests are tagged
//! with the group id and carried as opaque postcard bodies, so the bus knows nothing about
//! type configurations and the controller group (another type config) reuses all of this.
//! `new_client` is called for every replication stream and every linearizable read, so it
//! only builds a handle; the bus dials lazily on the first call.

use std::marker::PhantomData;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Gid, NodeAddr, NodeId};
use crate::bus::{Bus, BusError, BusRequest, BusResponse, RaftRpcKind, MAX_BODY_LEN};

/// The RPC error openraft expects from a network call, with API error `E`.
pub type RpcError<E = openraft::error::Infallible> =
    RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>;

/// A group's network factory: hands openraft cheap per-target clients over the shared bus.
pub struct Network<C> {
    bus: Bus,
    gid: Gid,
    _c: PhantomData<fn() -> C>,
}

impl<C> Network<C> {
    /// The network of group `gid` on this node's `bus`.
    pub fn new(bus: Bus, gid: Gid) -> Self {
        Self {
            bus,
            gid,
            _c: PhantomData,
        }
    }
}

impl<C> Clone for Network<C> {
    fn clone(&self) -> Self {
        Self::new(self.bus.clone(), self.gid)
    }
}

impl<C> RaftNetworkFactory<C> for Network<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeAddr>,
{
    type Network = NetworkClient<C>;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> NetworkClient<C> {
        NetworkClient {
            bus: self.bus.clone(),
            gid: self.gid,
            target,
            addr: node.bus_addr(),
            node: node.clone(),
            _c: PhantomData,
        }
    }
}

/// One group's view of one peer: a bus handle plus where to send. Holds no connection.
pub struct NetworkClient<C> {
    bus: Bus,
    gid: Gid,
    target: NodeId,
    addr: String,
    node: NodeAddr,
    _c: PhantomData<fn() -> C>,
}

impl<C> NetworkClient<C> {
    /// Sends one encoded RPC and decodes the remote `Result`. The bus timeout is the
    /// option's soft TTL, so our own `Timeout` error wins over openraft's outer timer on
    /// the hard TTL.
    async fn rpc<Resp, E>(
        &self,
        kind: RaftRpcKind,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RpcError<E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let req = BusRequest::Raft {
            gid: self.gid,
            rpc: kind,
            body,
        };
        let timeout = option.soft_ttl();
        let resp = self
            .bus
            .call(self.target, &self.addr, req, timeout)
            .await
            .map_err(|e| rpc_error(e, kind, self.bus.node_id()))?;
        let bytes = match resp {
            BusResponse::Raft(bytes) => bytes,
            other => {
                let e = BusError::Codec(format!("unexpected response to a Raft RPC: {other:?}"));
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            postcard::from_bytes(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl<C> RaftNetwork<C> for NetworkClient<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = NodeAddr>,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        let body = encode_request(&rpc)?;
        // Ask openraft to split the batch rather than fail the frame; the hint is the
        // number of entries that would fit if they are of similar size.
        let n = rpc.entries.len() as u64;
        if body.len() > MAX_BODY_LEN && n > 1 {
            let fit = n.saturating_mul(MAX_BODY_LEN as u64) / body.len() as u64;
            let hint = fit.clamp(1, n - 1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.rpc(RaftRpcKind::AppendEntries, body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let body = encode_request(&rpc)?;
        self.rpc(RaftRpcKind::InstallSnapshot, body, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        let body = encode_request(&rpc)?;
        self.rpc(RaftRpcKind::Vote, body, &option).await
    }
}

// The error type is openraft's; every trait method returns it by value anyway.
#[allow(clippy::result_large_err)]
fn encode_request<Req: Serialize, E: std::error::Error>(req: &Req) -> Result<Vec<u8>, RpcError<E>> {
    crate::codec::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

/// Maps a bus failure onto openraft's retry semantics. Everything that means "the peer is
/// not there (for this group)" becomes `Unreachable`, which makes openraft back off;
/// `Network` would be retried at once and flood the logs, so only codec trouble uses it.
pub fn rpc_error<E: std::error::Error>(
    err: BusError,
    kind: RaftRpcKind,
    me: NodeId,
) -> RPCError<NodeId, NodeAddr, E> {
    match err {
        BusError::Timeout { target, timeout } => RPCError::Timeout(Timeout {
            action: rpc_type(kind),
            id: me,
            target,
            timeout,
        }),
        BusError::Codec(_) => RPCError::Network(NetworkError::new(&err)),
        // Remote: the peer runs but does not host the group (yet, or any more).
        // Handshake: wrong node at that address; already logged loudly by the bus.
        // TooLarge: retrying at once cannot help; only AppendEntries can be split, and
        // `append_entries` does that before it gets here.
        BusError::Unreachable { .. }
        | BusError::Handshake { .. }
        | BusError::TooLarge { .. }
        | BusError::Remote { .. }
        | BusError::Shutdown => RPCError::Unreachable(Unreachable::new(&err)),
    }
}

fn rpc_type(kind: RaftRpcKind) -> RPCTypes {
    match kind {
        RaftRpcKind::AppendEntries => RPCTypes::AppendEntries,
        RaftRpcKind::Vote => RPCTypes::Vote,
        RaftRpcKind::InstallSnapshot => RPCTypes::InstallSnapshot,
    }
}

/// The receiving side: decodes `body` as the `rpc` request, runs it on `raft` and returns
/// the postcard-encoded `Result` as [`BusResponse::Raft`]. A body that does not decode
/// gets [`BusResponse::Error`], which the caller sees as the peer being unreachable.
pub async fn serve<C>(raft: &Raft<C>, rpc: RaftRpcKind, body: &[u8]) -> BusResponse
where
    C: RaftTypeConfig,
{
    match rpc {
        RaftRpcKind::AppendEntries => match decode::<AppendEntriesRequest<C>>(rpc, body) {
            Ok(req) => encode(&raft.append_entries(req).await),
            Err(resp) => resp,
        },
        RaftRpcKind::Vote => match decode::<VoteRequest<C::NodeId>>(rpc, body) {
            Ok(req) => encode(&raft.vote(req).await),
            Err(resp) => resp,
        },
        RaftRpcKind::InstallSnapshot => match decode::<InstallSnapshotRequest<C>>(rpc, body) {
            Ok(req) => encode(&raft.install_snapshot(req).await),
            Err(resp) => resp,
        },
    }
}

fn decode<T: DeserializeOwned>(rpc: RaftRpcKind, body: &[u8]) -> Result<T, BusResponse> {
    postcard::from_bytes(body).map_err(|e| BusResponse::Error(format!("undecodable {rpc:?}: {e}")))
}

fn encode<T: Serialize>(result: &T) -> BusResponse {
    match crate::codec::to_vec(result) {
        Ok(bytes) => BusResponse::Raft(bytes),
        Err(e) => BusResponse::Error(format!("cannot encode Raft response: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use openraft::error::{Fatal, Infallible, SnapshotMismatch};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, Vote};

    use super::*;
    use crate::bus::{BusHandler, FaultTable};
    use crate::raft::ShardTC;
    use crate::shard::request::ShardRequest;

    /// Gid whose fake Raft answers normally.
    const OK_GID: Gid = 1;
    /// Gid whose fake Raft has stopped.
    const STOPPED_GID: Gid = 2;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn node(port: u16) -> NodeAddr {
        NodeAddr {
            host: "127.0.0.1".into(),
            client_port: 1,
            bus_port: port,
        }
    }

    fn membership() -> Membership<NodeId, NodeAddr> {
        let nodes: BTreeMap<NodeId, NodeAddr> = (1..=3).map(|i| (i, node(i as u16))).collect();
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
    }

    fn append_request() -> AppendEntriesRequest<ShardTC> {
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 9)),
            entries: vec![
                Entry {
                    log_id: log_id(3, 10),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: log_id(3, 11),
                    payload: EntryPayload::Normal(ShardRequest::new(1_700_000_000_000, vec![])),
                },
                Entry {
                    log_id: log_id(3, 12),
                    payload: EntryPayload::Membership(membership()),
                },
            ],
            leader_commit: Some(log_id(3, 10)),
        }
    }

    fn snapshot_request() -> InstallSnapshotRequest<ShardTC> {
        InstallSnapshotRequest {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 12)),
                last_membership: openraft::StoredMembership::new(Some(log_id(3, 12)), membership()),
                snapshot_id: "3-12-abc".into(),
            },
            offset: 4096,
            data: vec![7; 1000],
            done: true,
        }
    }

    /// Encodes and decodes `v`; openraft's messages lack `PartialEq`, so compare `Debug`.
    fn round_trip<T: Serialize + DeserializeOwned + std::fmt::Debug>(v: &T) {
        let bytes = crate::codec::to_vec(v).expect("encode");
        let back: T = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(format!("{v:?}"), format!("{back:?}"));
    }

    #[test]
    fn openraft_messages_round_trip_through_postcard() {
        round_trip(&VoteRequest::new(Vote::new(4, 2), Some(log_id(3, 12))));
        round_trip(&VoteResponse::new(Vote::new(4, 2), None, true));
        round_trip(&append_request());
        round_trip(&snapshot_request());
        round_trip::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(&Ok(
            AppendEntriesResponse::Conflict,
        ));
        round_trip::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(&Err(
            RaftError::Fatal(Fatal::Stopped),
        ));
        let mismatch = InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: openraft::SnapshotSegmentId {
                id: "a".into(),
                offset: 0,
            },
            got: openraft::SnapshotSegmentId {
                id: "b".into(),
                offset: 9,
            },
        });
        round_trip::<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        >(&Err(RaftError::APIError(mismatch)));
    }

    #[test]
    fn bus_errors_map_to_openraft_retry_classes() {
        let unreachable = |e: BusError| {
            matches!(
                rpc_error::<Infallible>(e, RaftRpcKind::Vote, 1),
                RPCError::Unreachable(_)
            )
        };
        assert!(unreachable(BusError::Unreachable {
            target: 2,
            reason: "refused".into()
        }));
        assert!(unreachable(BusError::Handshake {
            target: 2,
            reason: "wrong node".into()
        }));
        assert!(unreachable(BusError::Remote {
            target: 2,
            message: "unknown group".into()
        }));
        assert!(unreachable(BusError::Shutdown));
        assert!(unreachable(BusError::TooLarge { size: 2, max: 1 }));
        let timeout = Duration::from_millis(75);
        match rpc_error::<Infallible>(
            BusError::Timeout { target: 2, timeout },
            RaftRpcKind::AppendEntries,
            1,
        ) {
            RPCError::Timeout(t) => {
                assert_eq!(
                    (t.action, t.id, t.target, t.timeout),
                    (RPCTypes::AppendEntries, 1, 2, timeout)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            rpc_error::<Infallible>(BusError::Codec("bad".into()), RaftRpcKind::Vote, 1),
            RPCError::Network(_)
        ));
    }

    /// Plays the Raft side of [`serve`]: decodes what `NetworkClient` sent and answers the
    /// way openraft would, without needing a log store.
    struct FakeRaft;

    impl BusHandler for FakeRaft {
        fn handle(&self, _from: NodeId, req: BusRequest) -> BoxFuture<'static, BusResponse> {
            Box::pin(async move {
                let BusRequest::Raft { gid, rpc, body } = req else {
                    return BusResponse::Error("not a raft rpc".into());
                };
                let stopped = RaftError::<NodeId>::Fatal(Fatal::Stopped);
                match (gid, rpc) {
                    (OK_GID, RaftRpcKind::Vote) => {
                        let req: VoteRequest<NodeId> = postcard::from_bytes(&body).expect("vote");
                        encode::<Result<_, RaftError<NodeId>>>(&Ok(VoteResponse::new(
                            req.vote,
                            req.last_log_id,
                            true,
                        )))
                    }
                    (OK_GID, RaftRpcKind::AppendEntries) => {
                        let req: AppendEntriesRequest<ShardTC> =
                            postcard::from_bytes(&body).expect("append");
                        let resp = AppendEntriesResponse::PartialSuccess(
                            req.entries.last().map(|e| e.log_id),
                        );
                        encode::<Result<_, RaftError<NodeId>>>(&Ok(resp))
                    }
                    (OK_GID, RaftRpcKind::InstallSnapshot) => {
                        let req: InstallSnapshotRequest<ShardTC> =
                            postcard::from_bytes(&body).expect("snapshot");
                        encode::<Result<_, RaftError<NodeId, InstallSnapshotError>>>(&Ok(
                            InstallSnapshotResponse { vote: req.vote },
                        ))
                    }
                    (STOPPED_GID, _) => encode::<Result<VoteResponse<NodeId>, _>>(&Err(stopped)),
                    _ => BusResponse::Error(format!("unknown group {gid}")),
                }
            })
        }
    }

    async fn bus(id: NodeId, faults: &Arc<FaultTable>) -> Bus {
        Bus::start(
            id,
            "127.0.0.1:0".parse().expect("addr"),
            Arc::new(FakeRaft),
            faults.clone(),
        )
        .await
        .expect("bus")
    }

    async fn client(bus: &Bus, gid: Gid, target: &Bus) -> NetworkClient<ShardTC> {
        let mut net = Network::<ShardTC>::new(bus.clone(), gid);
        net.new_client(target.node_id(), &node(target.local_addr().port()))
            .await
    }

    fn opt() -> RPCOption {
        RPCOption::new(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn rpcs_travel_over_the_bus() {
        let faults = Arc::new(FaultTable::new());
        let (a, b) = (bus(1, &faults).await, bus(2, &faults).await);
        let mut c = client(&a, OK_GID, &b).await;

        let vote = VoteRequest::new(Vote::new(4, 1), Some(log_id(3, 12)));
        let resp = c.vote(vote, opt()).await.expect("vote");
        assert!(resp.vote_granted);
        assert_eq!(resp.vote, Vote::new(4, 1));

        let resp = c
            .append_entries(append_request(), opt())
            .await
            .expect("append");
        assert_eq!(
            resp,
            AppendEntriesResponse::PartialSuccess(Some(log_id(3, 12)))
        );

        let resp = c
            .install_snapshot(snapshot_request(), opt())
            .await
            .expect("snapshot");
        assert_eq!(resp.vote, Vote::new_committed(3, 1));
    }

    #[tokio::test]
    async fn oversized_append_asks_openraft_to_split() {
        let faults = Arc::new(FaultTable::new());
        let (a, b) = (bus(1, &faults).await, bus(2, &faults).await);
        let mut c = client(&a, OK_GID, &b).await;
        // Four entries of ~20 MiB each: 80 MiB does not fit a frame, three of them might not
        // either, so the hint is a split that fits.
        let big = |i: u64| {
            let mut nodes = BTreeMap::new();
            nodes.insert(
                1,
                NodeAddr {
                    host: "h".repeat(20 << 20),
                    client_port: 1,
                    bus_port: 2,
                },
            );
            Entry {
                log_id: log_id(3, i),
                payload: EntryPayload::Membership(Membership::new(
                    vec![BTreeSet::from([1])],
                    nodes,
                )),
            }
        };
        let mut req = append_request();
        req.entries = (10..14).map(big).collect();
        match c.append_entries(req, opt()).await {
            Err(RPCError::PayloadTooLarge(e)) => assert_eq!(e.entries_hint(), 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn remote_raft_error_is_remote_error() {
        let faults = Arc::new(FaultTable::new());
        let (a, b) = (bus(1, &faults).await, bus(2, &faults).await);
        let mut c = client(&a, STOPPED_GID, &b).await;
        match c.vote(VoteRequest::new(Vote::new(4, 1), None), opt()).await {
            Err(RPCError::RemoteError(e)) => {
                assert_eq!(e.target, 2);
                assert_eq!(e.target_node, Some(node(b.local_addr().port())));
                assert!(matches!(e.source, RaftError::Fatal(Fatal::Stopped)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn transport_failures_map_to_unreachable_and_timeout() {
        let faults = Arc::new(FaultTable::new());
        let (a, b) = (bus(1, &faults).await, bus(2, &faults).await);
        let vote = || VoteRequest::new(Vote::new(4, 1), None);

        // The peer does not host the group.
        let mut c = client(&a, 77, &b).await;
        let r = c.vote(vote(), opt()).await;
        assert!(matches!(r, Err(RPCError::Unreachable(_))), "{r:?}");

        // Dropped messages time out after the soft TTL of the option.
        let mut c = client(&a, OK_GID, &b).await;
        faults.set_drop(1, 2, 1.0);
        let hard = Duration::from_millis(200);
        match c.vote(vote(), RPCOption::new(hard)).await {
            Err(RPCError::Timeout(t)) => {
                assert_eq!((t.action, t.id, t.target), (RPCTypes::Vote, 1, 2));
                assert_eq!(t.timeout, hard * 3 / 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        faults.partition(1, 2);
        let r = c.vote(vote(), opt()).await;
        assert!(matches!(r, Err(RPCError::Unreachable(_))), "{r:?}");
        faults.heal();
        assert!(c.vote(vote(), opt()).await.is_ok());

        // A dead peer.
        b.shutdown().await;
        let r = c.append_entries(append_request(), opt()).await;
        assert!(matches!(r, Err(RPCError::Unreachable(_))), "{r:?}");
    }
}
