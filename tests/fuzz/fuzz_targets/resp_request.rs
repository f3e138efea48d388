//! Client bytes into the node's and the proxy's request parser, fed in pieces split where
//! the input's first byte says (a slow client), then the same bytes as backend replies.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redraft_proxy::wire::decode::decode_reply;
use redraft_proxy::wire::{Limits, RequestParser};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let step = usize::from(split).max(1);
    let mut parser = RequestParser::new(Limits { max_multibulk_len: 1024 * 1024, ..Limits::default() });
    let mut buf = BytesMut::new();
    'feed: for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(argv)) => drop(argv),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let mut replies = BytesMut::from(data);
    while let Ok(Some(_)) = decode_reply(&mut replies) {}
});
