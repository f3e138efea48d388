//! HELLO's arguments and reply, client-name rules and CLIENT LIST's filters: the node and
//! the proxy both answer HELLO and CLIENT themselves, with the same texts.

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

/// Which connections `CLIENT LIST [TYPE type | ID id [id ...]]` shows.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFilter {
    All,
    /// `TYPE normal` shows every connection; master, replica, slave and pubsub none (there
    /// are none of those).
    Normal(bool),
    /// Any integer is accepted; ids no connection has show nothing.
    Ids(Vec<i64>),
}

/// CLIENT LIST's arguments (`argv[0..2]` is `CLIENT LIST`), with Redis 7.0's grammar: TYPE
/// takes exactly one type, ID one or more integers, and nothing combines.
pub fn client_list_filter(argv: &[Bytes]) -> Result<ClientFilter, Reply> {
    let opt = argv.get(2).map(|o| o.to_ascii_lowercase());
    match opt.as_deref() {
        None => Ok(ClientFilter::All),
        Some(b"type") if argv.len() == 4 => match argv[3].to_ascii_lowercase().as_slice() {
            b"normal" => Ok(ClientFilter::Normal(true)),
            b"master" | b"replica" | b"slave" | b"pubsub" => Ok(ClientFilter::Normal(false)),
            _ => Err(Reply::err(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(&argv[3])
            ))),
        },
        Some(b"id") if argv.len() > 3 => argv[3..]
            .iter()
            .map(|a| string2ll(a).ok_or_else(|| Reply::err("ERR Invalid client ID")))
            .collect::<Result<_, _>>()
            .map(ClientFilter::Ids),
        Some(_) => Err(Reply::syntax_error()),
    }
}

impl ClientFilter {
    /// The connections to list, of `clients` (in id order): with ID, in the order the ids
    /// were given, as often as given.
    pub fn pick<'a, T>(&self, clients: &'a [T], id_of: impl Fn(&T) -> u64) -> Vec<&'a T> {
        match self {
            ClientFilter::All | ClientFilter::Normal(true) => clients.iter().collect(),
            ClientFilter::Normal(false) => Vec::new(),
            ClientFilter::Ids(ids) => ids
                .iter()
                .filter_map(|&i| clients.iter().find(|c| i >= 0 && id_of(c) == i as u64))
                .collect(),
        }
    }
}

/// `CLIENT NO-EVICT ON|OFF`: nothing is evicted here, so either is accepted.
pub fn no_evict(arg: &[u8]) -> Reply {
    if arg.eq_ignore_ascii_case(b"on") || arg.eq_ignore_ascii_case(b"off") {
        Reply::ok()
    } else {
        Reply::syntax_error()
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

/// HELLO's reply map. `mode`: `cluster` at a node of a sharded deployment (as a Redis
/// Cluster node says), `standalone` at the proxy and at a node on its own.
pub fn reply(proto: Protocol, id: u64, mode: &str, role: &str) -> Reply {
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
        (
            Reply::bulk_str("proto"),
            Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk_str("id"), Reply::Int(id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str(mode)),
        (Reply::bulk_str("role"), Reply::bulk_str(role)),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &[&str]) -> Result<ClientFilter, Reply> {
        let argv: Vec<Bytes> = ["CLIENT", "LIST"]
            .iter()
            .chain(args)
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        client_list_filter(&argv)
    }

    #[test]
    fn client_list_filters_follow_redis_grammar() {
        let err = |e: &str| Err(Reply::err(e));
        assert_eq!(filter(&[]), Ok(ClientFilter::All));
        assert_eq!(filter(&["type", "NORMAL"]), Ok(ClientFilter::Normal(true)));
        assert_eq!(filter(&["TYPE", "pubsub"]), Ok(ClientFilter::Normal(false)));
        assert_eq!(
            filter(&["TYPE", "foo"]),
            err("ERR Unknown client type 'foo'")
        );
        assert_eq!(filter(&["TYPE"]), Err(Reply::syntax_error()));
        assert_eq!(filter(&["TYPE", "normal", "x"]), Err(Reply::syntax_error()));
        assert_eq!(filter(&["ID"]), Err(Reply::syntax_error()));
        assert_eq!(filter(&["ID", "x"]), err("ERR Invalid client ID"));
        assert_eq!(filter(&["FOO"]), Err(Reply::syntax_error()));
        let ids = filter(&["id", "3", "0", "-1", "1", "3"]).unwrap();
        assert_eq!(ids, ClientFilter::Ids(vec![3, 0, -1, 1, 3]));
        // Ids no connection has show nothing; the others in the order given.
        let clients = [1u64, 2, 3];
        assert_eq!(ids.pick(&clients, |c| *c), vec![&3, &1, &3]);
        assert!(ClientFilter::Normal(false)
            .pick(&clients, |c| *c)
            .is_empty());
        assert_eq!(ClientFilter::All.pick(&clients, |c| *c).len(), 3);
    }
}
