//! openraft's `RaftStateMachine` for a shard group on fjall. (placeholder until merge)

use bytes::Bytes;

use crate::db::{DbRead, Value};

#[derive(Clone)]
pub struct ShardReader {}

impl ShardReader {
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        let _ = (now_ms, limit);
        todo!()
    }
}

impl DbRead for ShardReader {
    fn get_raw(&self, _key: &[u8]) -> Option<Value> {
        todo!()
    }
    fn scan(&self, _pos: u64, _count: usize) -> (Vec<(Bytes, Value)>, u64) {
        todo!()
    }
    fn key_count(&self) -> u64 {
        todo!()
    }
    fn expires_count(&self) -> u64 {
        todo!()
    }
}
