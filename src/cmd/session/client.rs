//! CLIENT ID | SETNAME name | GETNAME | SETINFO LIB-NAME|LIB-VER value | INFO |
//! LIST [TYPE normal|master|replica|pubsub] [ID id ...] | KILL addr:port |
//! KILL [ID id] [TYPE type] [USER user] [ADDR addr] [LADDR addr] [SKIPME yes|no] |
//! NO-EVICT ON|OFF | REPLY ON|OFF|SKIP | HELP

use std::sync::Arc;

use bytes::Bytes;

use crate::node::NodeShared;
use crate::resp::session::Session;
use redraft_proxy::wire::hello::{client_list_filter, no_evict};
use redraft_proxy::wire::kill::client_kill_filter;
use redraft_proxy::wire::Reply;

pub use redraft_proxy::wire::hello::check_name;

pub fn execute(argv: &[Bytes], session: &mut Session, node: &Arc<NodeShared>) -> Reply {
    let sub = argv[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"id" => Reply::Int(session.id() as i64),
        b"setname" => match check_name(&argv[2]) {
            Ok(()) => {
                let name = argv[2].clone();
                session.client.state.update(|i| i.name = name);
                Reply::ok()
            }
            Err(e) => e,
        },
        b"getname" => {
            let name = session.client.state.info().name;
            if name.is_empty() {
                Reply::Null
            } else {
                Reply::Bulk(name)
            }
        }
        b"setinfo" => {
            let attr = argv[2].to_ascii_lowercase();
            let value = argv[3].clone();
            if !value.iter().all(|b| (0x21..=0x7e).contains(b)) {
                return Reply::err(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&argv[2])
                ));
            }
            match attr.as_slice() {
                b"lib-name" => session.client.state.update(|i| i.lib_name = value),
                b"lib-ver" => session.client.state.update(|i| i.lib_ver = value),
                _ => {
                    return Reply::err(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&argv[2])
                    ))
                }
            }
            Reply::ok()
        }
        b"info" => Reply::Verbatim(Bytes::from(format!("{}\n", session.client.state.line()))),
        b"list" => list(argv, node),
        b"kill" => kill(argv, session, node),
        b"no-evict" => no_evict(&argv[2]),
        b"reply" => session.reply_mode.set(&argv[2]),
        b"help" => super::help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ID",
            "    Return the ID of the current connection.",
            "GETNAME",
            "    Return the name of the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [TYPE <type>] [ID <id> [<id> ...]]",
            "    Return information about client connections.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "HELP",
            "    Print this help.",
        ]),
        // cmd::parse answered unknown subcommands already.
        _ => super::unknown_subcommand("CLIENT", &argv[1]),
    }
}

fn list(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    let filter = match client_list_filter(argv) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let all = node.clients.all();
    let mut text = String::new();
    for c in filter.pick(&all, |c| c.id) {
        text.push_str(&c.line());
        text.push('\n');
    }
    Reply::Verbatim(Bytes::from(text))
}

/// Closes the matching connections at once; the one asking, after this reply.
fn kill(argv: &[Bytes], session: &mut Session, node: &Arc<NodeShared>) -> Reply {
    let filter = match client_kill_filter(argv) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let all = node.clients.all();
    let (reply, myself) = filter.kill(
        session.id(),
        all.iter()
            .map(|c| (c.id, c.addr.as_str(), c.laddr.as_str(), &c.kill)),
    );
    session.quit |= myself;
    reply
}
