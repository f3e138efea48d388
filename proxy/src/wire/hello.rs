//! HELLO's arguments and reply, and client-name rules: the node and the proxy both answer
//! HELLO and CLIENT SETNAME themselves, with the same texts.

use bytes::Bytes;

use super::request::string2ll;
use super::{Protocol, Reply};

/// The Redis version redraft's replies follow.
pub const REDIS_VERSION: &str = "7.0.15";

/// Client names and library info may not contain spaces or control bytes: CLIENT LIST
/// lines are split on spaces.
pub fn check_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().all(|b| (0x21..=0x7e).contains(b)) {
        Ok(())
    } else {
        Err(Reply::err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`: the protocol to
/// speak from now on (`current` without a protover) and the name to set, if any.
pub fn parse(argv: &[Bytes], current: Protocol) -> Result<(Protocol, Option<Bytes>), Reply> {
    if argv.len() < 2 {
        return Ok((current, None));
    }
    let proto = match string2ll(&argv[1]) {
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Err(Reply::err("NOPROTO unsupported protocol version")),
        None => {
            return Err(Reply::err(
                "ERR Protocol version is not an integer or out of range",
            ))
        }
    };
    let mut name = None;
    let mut i = 2;
    while i < argv.len() {
        let opt = argv[i].to_ascii_lowercase();
        let more = argv.len() - i - 1;
        if opt == b"auth" && more >= 2 {
            if !argv[i + 1].eq_ignore_ascii_case(b"default") {
                return Err(Reply::err(
                    "WRONGPASS invalid username-password pair or user is disabled.",
                ));
            }
            i += 3;
        } else if opt == b"setname" && more >= 1 {
            check_name(&argv[i + 1])?;
            name = Some(argv[i + 1].clone());
            i += 2;
        } else {
            return Err(Reply::err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&argv[i])
            )));
        }
    }
    Ok((proto, name))
}

/// HELLO's reply map.
pub fn reply(proto: Protocol, id: u64, role: &str) -> Reply {
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
        (
            Reply::bulk_str("proto"),
            Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk_str("id"), Reply::Int(id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str(role)),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}
