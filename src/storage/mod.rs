//! The node's single fjall database, shared by every group the node hosts, and the
//! group-commit flusher: one fsync covers every pending log append of every group.

use std::path::Path;

/// Storage failures. A failed fsync poisons fjall: the node must stop.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("storage: corrupt record: {0}")]
    Codec(#[from] postcard::Error),
}

/// Cheap-clone handle to the node's database.
#[derive(Clone)]
pub struct Storage {}

impl Storage {
    pub fn open(dir: &Path) -> Result<Storage, StorageError> {
        let _ = dir;
        todo!("storage helper")
    }
}
