//! Length-prefixed postcard records, for streaming large files (snapshots) record by
//! record instead of holding them in memory: `len (u32 LE) ++ postcard bytes`.

use std::io::{ErrorKind, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StorageError;

/// Largest record accepted on read; guards against allocating garbage lengths.
const MAX_RECORD: usize = 1 << 30;

pub fn write_record<W: Write, T: Serialize>(w: &mut W, rec: &T) -> Result<(), StorageError> {
    let buf = crate::codec::to_vec(rec)?;
    let len = u32::try_from(buf.len())
        .map_err(|_| StorageError::Corrupt(format!("record of {} bytes", buf.len())))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&buf)?;
    Ok(())
}

/// The next record, or `None` at a clean end of file.
pub fn read_record<R: Read, T: DeserializeOwned>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, StorageError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_RECORD {
        return Err(StorageError::Corrupt(format!("record length {len}")));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(Some(postcard::from_bytes(buf)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        write_record(&mut out, &(1u64, "a".to_string())).unwrap();
        write_record(&mut out, &(2u64, "bc".to_string())).unwrap();
        let mut r = &out[..];
        let mut buf = Vec::new();
        let a: Option<(u64, String)> = read_record(&mut r, &mut buf).unwrap();
        let b: Option<(u64, String)> = read_record(&mut r, &mut buf).unwrap();
        let c: Option<(u64, String)> = read_record(&mut r, &mut buf).unwrap();
        assert_eq!(a, Some((1, "a".into())));
        assert_eq!(b, Some((2, "bc".into())));
        assert_eq!(c, None);
    }
}
