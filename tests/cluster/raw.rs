//! A raw RESP connection: send exact bytes, read exact reply bytes.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// One whole reply's bytes (RESP2 or RESP3).
    pub async fn reply(&mut self) -> Vec<u8> {
        loop {
            // RESP2 first (`$-1` is not RESP3), then RESP3 after HELLO 3.
            let n = match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(Some((_, n))) => Some(n),
                _ => redis_protocol::resp3::decode::complete::decode(&self.buf)
                    .ok()
                    .flatten()
                    .map(|(_, n)| n),
            };
            if let Some(n) = n {
                return self.buf.split_to(n).to_vec();
            }
            let n =
                tokio::time::timeout(Duration::from_secs(20), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("reply within 20 s")
                    .expect("read");
            assert!(
                n > 0,
                "connection closed; buffered: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads one reply per entry of `want`, each equal to it, in order.
    pub async fn expect_replies(&mut self, want: &[Vec<u8>]) {
        for (i, w) in want.iter().enumerate() {
            let got = self.reply().await;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(w),
                "reply {i}"
            );
        }
    }

    pub async fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args)).await;
        self.reply().await
    }

    /// A command given as space-separated words (no spaces inside arguments).
    pub async fn call(&mut self, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&self.cmd(&args).await).into_owned()
    }

    /// Every byte left until the server closes the connection.
    pub async fn rest(&mut self) -> Vec<u8> {
        let mut rest = self.buf.split().to_vec();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .expect("closed within 10 s")
            .expect("read");
        rest
    }

    /// True once the server has closed the connection (after consuming any bytes left).
    pub async fn closed(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut tmp)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}
