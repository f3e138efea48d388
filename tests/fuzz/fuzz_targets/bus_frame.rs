//! Bytes from a peer into the bus's frame codec and message decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = redraft::bus::decode_stream(data);
});
