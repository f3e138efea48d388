//! Order-preserving storage keys.
//!
//! A user key is stored under `slot (u16 BE) ++ fnv1a64(key) (u64 BE) ++ key`. The slot
//! prefix makes a slot one range scan (migration); the hash makes SCAN's cursor a plain u64:
//! a scan position is `slot << 50 | hash >> 14`, which orders exactly like the stored keys,
//! so a cursor can resume where the last page ended even though keys are arbitrary bytes.

use redraft_proxy::wire::key_slot;

/// Bytes before the user key in a storage key.
pub const PREFIX_LEN: usize = 10;

/// FNV-1a, 64 bit: stable across versions and platforms, which a stored order must be.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The storage key of a user key.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + key.len());
    out.extend_from_slice(&key_slot(key).to_be_bytes());
    out.extend_from_slice(&fnv1a64(key).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The user key inside a storage key.
pub fn user_key(data_key: &[u8]) -> &[u8] {
    &data_key[PREFIX_LEN..]
}

/// The scan position of a storage key (see the module doc).
pub fn scan_pos(data_key: &[u8]) -> u64 {
    let slot = u64::from(u16::from_be_bytes([data_key[0], data_key[1]]));
    let mut h = [0u8; 8];
    h.copy_from_slice(&data_key[2..10]);
    (slot << 50) | (u64::from_be_bytes(h) >> 14)
}

/// The smallest storage key whose scan position is `pos`.
pub fn pos_start(pos: u64) -> [u8; PREFIX_LEN] {
    let slot = (pos >> 50) as u16;
    let h = (pos & ((1 << 50) - 1)) << 14;
    let mut out = [0u8; PREFIX_LEN];
    out[..2].copy_from_slice(&slot.to_be_bytes());
    out[2..].copy_from_slice(&h.to_be_bytes());
    out
}

/// The first storage key of `slot` and the first key after it.
pub fn slot_range(slot: u16) -> (Vec<u8>, Vec<u8>) {
    let start = slot.to_be_bytes().to_vec();
    let end = (u32::from(slot) + 1).to_be_bytes()[2..].to_vec();
    (start, if slot == u16::MAX { vec![0xff; 3] } else { end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_pos_orders_like_storage_keys() {
        let mut keys: Vec<Vec<u8>> = (0..2000)
            .map(|i| data_key(format!("k{i}").as_bytes()))
            .collect();
        keys.sort();
        let pos: Vec<u64> = keys.iter().map(|k| scan_pos(k)).collect();
        assert!(pos.windows(2).all(|w| w[0] <= w[1]));
        for k in &keys {
            assert!(pos_start(scan_pos(k)).as_slice() <= k.as_slice());
        }
    }

    #[test]
    fn user_key_round_trips() {
        assert_eq!(user_key(&data_key(b"a\0b")), b"a\0b");
        assert_eq!(user_key(&data_key(b"")), b"");
    }
}
