//! postcard encoding into a buffer of the exact size.
//!
//! `postcard::to_stdvec` grows its Vec by doubling. For a migration chunk or a batched log
//! entry (hundreds of KiB) every step is a fresh allocation that the kernel must fault in
//! and zero, 2 MiB at a time under transparent huge pages; for a small value it is several
//! reallocations. Counting the size first is one cheap pass with no copying.

use std::cell::RefCell;

use bytes::Bytes;
use serde::de::{Deserializer, Error, Visitor};
use serde::{Deserialize, Serialize};

/// The postcard encoding of `v`, allocated once.
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> postcard::Result<Vec<u8>> {
    let size = postcard::experimental::serialized_size(v)?;
    postcard::to_extend(v, Vec::with_capacity(size))
}

thread_local! {
    /// The buffer [`from_shared`] is decoding, which [`shared_bytes`] fields slice.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Decodes `src`, its [`shared_bytes`] fields as slices of `src` rather than copies.
///
/// Every replica decodes each log entry's commands to apply them and drops them after: a
/// SET's key and value, copied out of the entry, were two allocations, two frees and two
/// copies per replica, and a third allocation when the value was shared with the row
/// write. The keyspace copies what it keeps, so a slice pins the entry for no longer
/// than the apply.
pub fn from_shared<'a, T: Deserialize<'a>>(src: &'a Bytes) -> postcard::Result<T> {
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = prev);
        }
    }
    let _restore = Restore(SOURCE.with(|s| s.borrow_mut().replace(src.clone())));
    postcard::from_bytes(src)
}

/// `#[serde(deserialize_with)]` for a `Bytes` field that the decoded value only reads
/// (see [`from_shared`]); a copy when decoded some other way.
pub fn shared_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    struct Shared;
    impl<'de> Visitor<'de> for Shared {
        type Value = Bytes;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_borrowed_bytes<E: Error>(self, b: &'de [u8]) -> Result<Bytes, E> {
            Ok(SOURCE.with(|s| match &*s.borrow() {
                Some(src) if src.as_ptr_range().contains(&b.as_ptr()) => src.slice_ref(b),
                _ => Bytes::copy_from_slice(b),
            }))
        }

        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(b))
        }

        fn visit_byte_buf<E: Error>(self, b: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(b))
        }
    }
    d.deserialize_bytes(Shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Cmd {
        #[serde(deserialize_with = "shared_bytes")]
        key: Bytes,
        #[serde(deserialize_with = "shared_bytes")]
        empty: Bytes,
        copied: Bytes,
    }

    #[test]
    fn shared_fields_slice_the_source_and_others_copy() {
        let cmd = Cmd {
            key: Bytes::from_static(b"some key"),
            empty: Bytes::new(),
            copied: Bytes::from_static(b"value"),
        };
        let src = Bytes::from(to_vec(&vec![cmd]).unwrap());
        let within = |b: &Bytes| src.as_ptr_range().contains(&b.as_ptr());
        let decoded: Vec<Cmd> = from_shared(&src).unwrap();
        assert_eq!(decoded[0].key, "some key");
        assert!(within(&decoded[0].key));
        assert!(decoded[0].empty.is_empty());
        assert_eq!(decoded[0].copied, "value");
        assert!(!within(&decoded[0].copied));
        // Decoded any other way, a shared field is a copy (and the source is forgotten).
        let plain: Vec<Cmd> = postcard::from_bytes(&src).unwrap();
        assert_eq!(plain[0].key, "some key");
        assert!(!within(&plain[0].key));
        // A decode forgets its source when it ends.
        let inner = Bytes::from(
            to_vec(&vec![Cmd {
                key: Bytes::from_static(b"inner"),
                empty: Bytes::new(),
                copied: Bytes::new(),
            }])
            .unwrap(),
        );
        let _: Vec<Cmd> = from_shared(&inner).unwrap();
        SOURCE.with(|s| assert!(s.borrow().is_none()));
    }

    #[test]
    fn same_bytes_as_postcard_and_no_spare_room() {
        let v = (7u64, "key".to_string(), vec![0u8; 100_000], Some(-3i32));
        let enc = to_vec(&v).unwrap();
        assert_eq!(enc, postcard::to_stdvec(&v).unwrap());
        assert_eq!(enc.capacity(), enc.len());
    }
}
