//! Which node leads the group that owns each slot, as the proxy last learned it.
//!
//! Learned with `CLUSTER SLOTS` (every redraft node, the controller's included, answers it
//! from the latest configuration and the leaders it knows) and `CLUSTER INFO` (the
//! configuration number is `cluster_current_epoch`). Refreshed every second, at once when a
//! reply says the view is stale (MOVED, a connection lost), and a MOVED updates its slot
//! straight away. A stale view costs a redirect, never a wrong answer: nodes check
//! ownership themselves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::backend::Backend;
use crate::wire::{Protocol, Reply, SLOTS};

/// Background refresh period.
const REFRESH: Duration = Duration::from_secs(1);
/// Time one node gets to answer a refresh.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct View {
    /// Slot → the address of its owner's leader; None while unassigned.
    slots: Vec<Option<Arc<str>>>,
    /// The configuration number the view came from.
    epoch: u64,
    /// Every node the view named, for the next refresh.
    nodes: Vec<Arc<str>>,
}

pub struct Topology {
    seeds: Vec<Arc<str>>,
    view: RwLock<Arc<View>>,
    /// Bumped after each change of the view, for clients' copies of it ([`Topology::view`]).
    version: AtomicU64,
    wake: Notify,
    /// Counts completed refreshes, so a caller can wait for the next one.
    refreshed: watch::Sender<u64>,
}

impl Topology {
    /// A topology that learns from `seeds` (host:port of any nodes, usually the
    /// controller's); starts its refresh task.
    pub fn start(seeds: Vec<String>) -> Arc<Topology> {
        let t = Arc::new(Topology {
            seeds: seeds.into_iter().map(Arc::from).collect(),
            view: RwLock::new(Arc::new(View {
                slots: vec![None; SLOTS],
                ..View::default()
            })),
            version: AtomicU64::new(0),
            wake: Notify::new(),
            refreshed: watch::channel(0).0,
        });
        let weak = Arc::downgrade(&t);
        tokio::spawn(async move {
            loop {
                let Some(t) = weak.upgrade() else { return };
                t.refresh_once().await;
                let _ = tokio::time::timeout(REFRESH, t.wake.notified()).await;
            }
        });
        t
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Arc<View>> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the view; `change` says whether it did.
    fn update(&self, change: impl FnOnce(&mut Arc<View>) -> bool) {
        let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
        if change(&mut v) {
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    /// The number of the view's changes so far: a copy taken at an older one is stale.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The view and its version (a copy is at least this fresh).
    pub(crate) fn view(&self) -> (u64, Arc<View>) {
        let version = self.version();
        (version, self.read().clone())
    }

    /// The leader to send a command on `slot` to.
    pub fn addr(&self, slot: u16) -> Option<Arc<str>> {
        self.read().leader(slot).cloned()
    }

    /// The configuration number last seen.
    pub fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// The run of slots from `slot` that the same leader serves: (leader, last slot).
    pub fn run_from(&self, slot: u16) -> Option<(Arc<str>, u16)> {
        let v = self.read();
        let addr = v.slots[usize::from(slot)].clone()?;
        let mut end = slot;
        while usize::from(end) + 1 < SLOTS
            && v.slots[usize::from(end) + 1].as_deref() == Some(&*addr)
        {
            end += 1;
        }
        Some((addr, end))
    }

    /// Some node to send a keyless command to: a leader, else a seed.
    pub fn any(&self) -> Option<Arc<str>> {
        let v = self.read();
        v.slots
            .iter()
            .flatten()
            .next()
            .cloned()
            .or_else(|| v.nodes.first().cloned())
            .or_else(|| self.seeds.first().cloned())
    }

    /// A node answered MOVED: believe it for this slot now, and refresh the rest.
    pub fn moved(&self, slot: u16, addr: &str) {
        self.update(|v| {
            if v.slots[usize::from(slot)].as_deref() == Some(addr) {
                return false;
            }
            let known = v.nodes.iter().find(|n| ***n == *addr).cloned();
            Arc::make_mut(v).slots[usize::from(slot)] =
                Some(known.unwrap_or_else(|| Arc::from(addr)));
            true
        });
        self.request_refresh();
    }

    pub fn request_refresh(&self) {
        self.wake.notify_one();
    }

    /// Asks for a refresh and waits (bounded) until one has completed.
    pub async fn refresh_and_wait(&self, timeout: Duration) {
        let mut rx = self.refreshed.subscribe();
        rx.mark_unchanged();
        self.request_refresh();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    async fn refresh_once(&self) {
        let mut candidates: Vec<Arc<str>> = self.read().nodes.clone();
        for s in &self.seeds {
            if !candidates.contains(s) {
                candidates.insert(0, s.clone());
            }
        }
        for addr in candidates {
            if let Some(new) = query(&addr).await {
                self.update(|v| {
                    let changed = **v != new;
                    if changed {
                        *v = Arc::new(new);
                    }
                    changed
                });
                self.refreshed.send_modify(|n| *n += 1);
                return;
            }
        }
        self.refreshed.send_modify(|n| *n += 1);
    }
}

impl View {
    /// The leader to send a command on `slot` to.
    pub(crate) fn leader(&self, slot: u16) -> Option<&Arc<str>> {
        self.slots[usize::from(slot)].as_ref()
    }
}

/// One node's `CLUSTER SLOTS` and `CLUSTER INFO`, as a view.
async fn query(addr: &Arc<str>) -> Option<View> {
    let b = Backend::connect(addr.clone(), Protocol::Resp2);
    let slots = b.send(Bytes::from_static(
        b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n",
    ));
    let info = b.send(Bytes::from_static(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n"));
    let (slots, info) = tokio::time::timeout(QUERY_TIMEOUT, async { (slots.await, info.await) })
        .await
        .ok()?;
    let (Ok(Ok(Reply::Array(ranges))), Ok(Ok(Reply::Bulk(info)))) = (slots, info) else {
        return None;
    };
    let epoch = String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("cluster_current_epoch:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    parse_slots(&ranges, epoch)
}

/// `CLUSTER SLOTS`: `[start, end, [host, port, id, ...] (master), replicas...]` per range.
fn parse_slots(ranges: &[Reply], epoch: u64) -> Option<View> {
    let mut v = View {
        slots: vec![None; SLOTS],
        epoch,
        nodes: Vec::new(),
    };
    let intern = |nodes: &mut Vec<Arc<str>>, a: String| -> Arc<str> {
        if let Some(n) = nodes.iter().find(|n| ***n == *a) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(a);
        nodes.push(n.clone());
        n
    };
    for r in ranges {
        let Reply::Array(parts) = r else { return None };
        let (Some(Reply::Int(start)), Some(Reply::Int(end))) = (parts.first(), parts.get(1)) else {
            return None;
        };
        let mut addrs = parts[2..].iter().filter_map(node_addr);
        let master = intern(&mut v.nodes, addrs.next()?);
        for a in addrs {
            intern(&mut v.nodes, a);
        }
        let (start, end) = (*start as usize, *end as usize);
        if start > end || end >= SLOTS {
            return None;
        }
        for s in &mut v.slots[start..=end] {
            *s = Some(master.clone());
        }
    }
    Some(v)
}

fn node_addr(r: &Reply) -> Option<String> {
    let Reply::Array(n) = r else { return None };
    match (n.first(), n.get(1)) {
        (Some(Reply::Bulk(host)), Some(Reply::Int(port))) => {
            Some(format!("{}:{port}", String::from_utf8_lossy(host)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Reply {
        Reply::Array(vec![
            Reply::bulk_str(host),
            Reply::Int(port),
            Reply::bulk_str("id"),
        ])
    }

    #[tokio::test]
    async fn a_moved_slot_changes_the_view_and_its_version_once() {
        let t = Topology::start(vec![]);
        let (v0, before) = t.view();
        assert_eq!(before.leader(5), None);
        t.moved(5, "127.0.0.1:7001");
        let (v1, after) = t.view();
        assert!(v1 > v0, "clients' copies are now stale");
        assert_eq!(after.leader(5).map(|a| &**a), Some("127.0.0.1:7001"));
        assert_eq!(
            before.leader(5),
            None,
            "a copy does not change under its client"
        );
        t.moved(5, "127.0.0.1:7001");
        assert_eq!(t.version(), v1, "nothing changed");
    }

    #[test]
    fn slots_reply_maps_every_range_to_its_master() {
        let ranges = vec![
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(99),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7002),
            ]),
            Reply::Array(vec![
                Reply::Int(100),
                Reply::Int(16383),
                node("127.0.0.1", 7004),
            ]),
        ];
        let v = parse_slots(&ranges, 7).unwrap();
        assert_eq!(v.epoch, 7);
        assert_eq!(v.slots[0].as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(v.slots[99].as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(v.slots[100].as_deref(), Some("127.0.0.1:7004"));
        assert_eq!(v.nodes.len(), 3);
        let bad = vec![Reply::Array(vec![
            Reply::Int(5),
            Reply::Int(16384),
            node("h", 1),
        ])];
        assert!(parse_slots(&bad, 1).is_none());
    }
}
