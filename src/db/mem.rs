//! An in-memory keyspace with the same order and scan positions as the fjall one, for unit
//! tests of commands.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::keys::{data_key, pos_start, scan_pos, user_key};
use super::{DbRead, DbWrite, Value};

#[derive(Default, Debug, Clone)]
pub struct MemDb {
    map: BTreeMap<Vec<u8>, Value>,
}

impl MemDb {
    pub fn new() -> Self {
        Self::default()
    }
}

impl DbRead for MemDb {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        self.map.get(&data_key(key)).cloned()
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        let start = pos_start(pos).to_vec();
        let mut out = Vec::new();
        let mut last_pos = None;
        for (k, v) in self.map.range(start..) {
            let p = scan_pos(k);
            if out.len() >= count.max(1) && Some(p) != last_pos {
                return (out, p);
            }
            last_pos = Some(p);
            out.push((Bytes::copy_from_slice(user_key(k)), v.clone()));
        }
        (out, 0)
    }

    fn key_count(&self) -> u64 {
        self.map.len() as u64
    }

    fn expires_count(&self) -> u64 {
        self.map.values().filter(|v| v.expire_at.is_some()).count() as u64
    }
}

impl DbWrite for MemDb {
    fn put(&mut self, key: &[u8], value: Value) {
        self.map.insert(data_key(key), value);
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        self.map.remove(&data_key(key)).is_some()
    }

    fn clear(&mut self) {
        self.map.clear();
    }
}
