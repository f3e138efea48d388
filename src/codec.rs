//! postcard encoding into a buffer of the exact size.
//!
//! `postcard::to_stdvec` grows its Vec by doubling. For a migration chunk or a batched log
//! entry (hundreds of KiB) every step is a fresh allocation that the kernel must fault in
//! and zero, 2 MiB at a time under transparent huge pages; for a small value it is several
//! reallocations. Counting the size first is one cheap pass with no copying.

use serde::Serialize;

/// The postcard encoding of `v`, allocated once.
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> postcard::Result<Vec<u8>> {
    let size = postcard::experimental::serialized_size(v)?;
    postcard::to_extend(v, Vec::with_capacity(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_postcard_and_no_spare_room() {
        let v = (7u64, "key".to_string(), vec![0u8; 100_000], Some(-3i32));
        let enc = to_vec(&v).unwrap();
        assert_eq!(enc, postcard::to_stdvec(&v).unwrap());
        assert_eq!(enc.capacity(), enc.len());
    }
}
