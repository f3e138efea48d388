//! Key → slot, identical to Redis Cluster: CRC16-XMODEM mod 16384 with `{hash tags}`.

/// Number of hash slots.
pub const SLOTS: usize = 16384;

/// The slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    let _ = key;
    todo!("wire helper")
}
