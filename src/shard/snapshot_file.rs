//! Snapshot files: a group's whole state at one log id, as length-prefixed postcard records
//! ([`crate::storage::record`]): one header, the rows in storage order, the exactly-once
//! entries, and an end marker (a file without it is truncated). A file is written under a
//! temporary name, fsync'd, renamed and its directory fsync'd, so a file with a `.snap`
//! name is always whole. Streamed record by record both ways: a large group never sits in
//! memory twice.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use openraft::{SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};

use super::apply::{dedup_client, dedup_key, ClusterMeta, DedupEntry};
use crate::db::keyspace::{Keyspace, RowKey, Rows};
use crate::db::Value;
use crate::raft::{Gid, NodeAddr, NodeId};
use crate::storage::record::{read_record, write_record};
use crate::storage::StorageError;

pub(super) type Meta = SnapshotMeta<NodeId, NodeAddr>;
pub(super) type Membership = StoredMembership<NodeId, NodeAddr>;

/// File format version, in the header record.
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
enum SnapRecord {
    Header {
        version: u32,
        meta: Meta,
        clock: u64,
        cluster: Box<ClusterMeta>,
    },
    /// A row: storage key, postcard [`Value`].
    Kv(Bytes, Bytes),
    End {
        entries: u64,
    },
    /// An exactly-once entry (storage key, postcard value); before `End`, not counted in it.
    Dedup(Bytes, Bytes),
}

/// A group's state at one log id, taken from the live state to be written out: the rows
/// in O(1) (a persistent map), the (small) exactly-once table copied.
pub(super) struct Frozen {
    pub meta: Meta,
    pub clock: u64,
    pub cluster: Arc<ClusterMeta>,
    pub rows: Rows,
    pub dedup: BTreeMap<u64, DedupEntry>,
}

/// A group's state as loaded from a file.
pub(super) struct Image {
    pub meta: Meta,
    pub clock: u64,
    pub cluster: Arc<ClusterMeta>,
    pub db: Keyspace,
    pub dedup: BTreeMap<u64, DedupEntry>,
}

/// Keeps a snapshot id (chosen by whichever leader built it) safe as part of a file name.
pub(super) fn file_name(gid: Gid, snapshot_id: &str) -> String {
    let id: String = snapshot_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("g{gid}-{id}.snap")
}

/// Whether `name` is one of group `gid`'s files in the snapshot dir (whole or partial).
pub(super) fn belongs_to(gid: Gid, name: &str) -> bool {
    name.starts_with(&format!("g{gid}-"))
}

/// Writes `state` as file `dir/name`, durably.
pub(super) fn write(dir: &Path, name: &str, state: &Frozen) -> Result<(), StorageError> {
    let Frozen {
        meta,
        clock,
        cluster,
        rows,
        dedup,
    } = state;
    let path = dir.join(name);
    let tmp = path.with_extension("snap.tmp");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    write_record(
        &mut w,
        &SnapRecord::Header {
            version: VERSION,
            meta: meta.clone(),
            clock: *clock,
            cluster: Box::new((**cluster).clone()),
        },
    )?;
    for (k, v) in rows.iter() {
        let value = Bytes::from(crate::codec::to_vec(&v)?);
        write_record(&mut w, &SnapRecord::Kv(Bytes::from(k.storage_key()), value))?;
    }
    for (client, e) in dedup {
        let key = Bytes::copy_from_slice(&dedup_key(*client));
        write_record(
            &mut w,
            &SnapRecord::Dedup(key, Bytes::from(crate::codec::to_vec(e)?)),
        )?;
    }
    write_record(
        &mut w,
        &SnapRecord::End {
            entries: rows.len() as u64,
        },
    )?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn open(path: &Path) -> Result<(BufReader<std::fs::File>, Vec<u8>), StorageError> {
    Ok((
        BufReader::with_capacity(1 << 20, std::fs::File::open(path)?),
        Vec::new(),
    ))
}

/// The header of the file at `path`: its meta.
pub(super) fn read_meta(path: &Path) -> Result<Meta, StorageError> {
    let (mut r, mut buf) = open(path)?;
    match read_record(&mut r, &mut buf)? {
        Some(SnapRecord::Header {
            version: VERSION,
            meta,
            ..
        }) => Ok(meta),
        _ => Err(StorageError::Corrupt(format!(
            "{} is not a snapshot of version {VERSION}",
            path.display()
        ))),
    }
}

/// Reads the whole file at `path`, which must hold the snapshot `expect` names.
pub(super) fn load(path: &Path, expect: &Meta) -> Result<Image, StorageError> {
    let (mut r, mut buf) = open(path)?;
    let (meta, clock, cluster) = match read_record(&mut r, &mut buf)? {
        Some(SnapRecord::Header {
            version: VERSION,
            meta,
            clock,
            cluster,
        }) if meta.last_log_id == expect.last_log_id => (meta, clock, cluster),
        _ => {
            return Err(StorageError::Corrupt(
                "snapshot header does not match".into(),
            ))
        }
    };
    let mut db = Keyspace::new();
    let mut dedup = BTreeMap::new();
    loop {
        match read_record(&mut r, &mut buf)? {
            Some(SnapRecord::Kv(k, v)) => {
                let value: Value = postcard::from_bytes(&v)?;
                let key = RowKey::from_storage(k)
                    .ok_or_else(|| StorageError::Corrupt("short key in a snapshot".into()))?;
                db.put_row(key, value);
            }
            Some(SnapRecord::Dedup(k, v)) => {
                let client = dedup_client(&k)
                    .ok_or_else(|| StorageError::Corrupt("bad exactly-once key".into()))?;
                dedup.insert(client, postcard::from_bytes(&v)?);
            }
            Some(SnapRecord::End { entries }) if entries == db.rows().len() as u64 => {
                return Ok(Image {
                    meta,
                    clock,
                    cluster: Arc::new(*cluster),
                    db,
                    dedup,
                })
            }
            _ => return Err(StorageError::Corrupt("snapshot file is truncated".into())),
        }
    }
}
