//! RESTORE's payload parser on arbitrary bytes, and on bytes given a valid footer (RDB
//! version and checksum) so that the parser behind the checksum is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redraft::db::rdb::restore(data);
    let _ = redraft::db::rdb::restore(&redraft::db::rdb::with_footer(data));
});
