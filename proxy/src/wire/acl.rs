//! ACL, with the one user redraft has: `default`, on, with no password and every
//! permission, as on a redis-server given no ACL configuration. What reads the ACL answers
//! as such a server does (byte for byte, checked against redis-server 7.0.15); what would
//! create or change users is refused, there being no ACL to change. The ACL log stays
//! empty: nothing is ever denied.

use std::io::Read;

use bytes::Bytes;

use super::table::{resolve, CommandSpec, CATEGORY_ORDER, COMMANDS};
use super::Reply;

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// Runs `ACL <subcommand> ...`; the table has checked the subcommand and its arity.
pub fn command(argv: &[Bytes]) -> Reply {
    let is_default = |b: &Bytes| &b[..] == b"default";
    match argv[1].to_ascii_lowercase().as_slice() {
        b"whoami" => Reply::bulk_str("default"),
        b"users" => Reply::Array(vec![Reply::bulk_str("default")]),
        b"list" => Reply::Array(vec![Reply::bulk_str("user default on nopass ~* &* +@all")]),
        b"getuser" if is_default(&argv[2]) => Reply::Map(vec![
            (
                Reply::bulk_str("flags"),
                Reply::Array(vec![Reply::bulk_str("on"), Reply::bulk_str("nopass")]),
            ),
            (Reply::bulk_str("passwords"), Reply::Array(vec![])),
            (Reply::bulk_str("commands"), Reply::bulk_str("+@all")),
            (Reply::bulk_str("keys"), Reply::bulk_str("~*")),
            (Reply::bulk_str("channels"), Reply::bulk_str("&*")),
            (Reply::bulk_str("selectors"), Reply::Array(vec![])),
        ]),
        b"getuser" => Reply::Null,
        b"cat" => match argv.get(2) {
            None => Reply::Array(CATEGORY_ORDER.iter().map(|c| Reply::bulk_str(c)).collect()),
            Some(c) => category(c),
        },
        b"genpass" => genpass(argv.get(2)),
        b"log" => match argv.get(2) {
            Some(a) if a.eq_ignore_ascii_case(b"reset") => Reply::ok(),
            Some(a) if super::request::string2ll(a).is_none() => Reply::not_integer(),
            _ => Reply::Array(vec![]),
        },
        b"dryrun" if !is_default(&argv[2]) => Reply::err(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&argv[2])
        )),
        b"dryrun" => match resolve(&argv[3..]) {
            Ok(_) => Reply::ok(),
            Err(Reply::Error(e)) if e.starts_with("ERR unknown ") => Reply::err(
                format!("ERR Command '{}' not found", String::from_utf8_lossy(&argv[3])),
            ),
            Err(e) => e,
        },
        b"deluser" if argv[2..].iter().any(is_default) => {
            Reply::err("ERR The 'default' user cannot be removed")
        }
        // The others do not exist: none deleted.
        b"deluser" => Reply::Int(0),
        b"setuser" => Reply::err(
            "ERR redraft has one user, 'default', with no password and every permission: ACL SETUSER is not supported",
        ),
        b"load" | b"save" => Reply::err(NO_ACL_FILE),
        _ => Reply::Array(HELP.iter().map(|&l| Reply::status(l)).collect()),
    }
}

/// `ACL CAT <category>`: the commands (and subcommands, as `container|sub`) in it.
fn category(name: &[u8]) -> Reply {
    let name = String::from_utf8_lossy(name).to_lowercase();
    let Some(&cat) = CATEGORY_ORDER.iter().find(|c| **c == name) else {
        return Reply::err(format!("ERR Unknown category '{name}'"));
    };
    let mut out = Vec::new();
    let mut add = |spec: &CommandSpec| {
        if spec.categories().contains(&cat) {
            out.push(Reply::bulk_str(spec.name));
        }
    };
    for spec in COMMANDS {
        add(spec);
        spec.subcommands.iter().for_each(&mut add);
    }
    Reply::Array(out)
}

/// `ACL GENPASS [bits]`: that many random bits (256 by default) as hex digits, from the
/// kernel's random source.
fn genpass(bits: Option<&Bytes>) -> Reply {
    let bits = match bits.map(|b| super::request::string2ll(b)) {
        None => 256,
        Some(Some(b)) if (1..=4096).contains(&b) => b as usize,
        Some(Some(_)) => {
            return Reply::err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
        }
        Some(None) => return Reply::not_integer(),
    };
    let chars = bits.div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
    if read.is_err() {
        return Reply::err("ERR no random source to generate a password from");
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Reply::bulk_str(&hex[..chars])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;

    #[test]
    fn the_default_user_as_redis_shows_it() {
        assert_eq!(command(&argv("ACL WHOAMI")), Reply::bulk_str("default"));
        assert_eq!(
            command(&argv("ACL LIST")),
            Reply::Array(vec![Reply::bulk_str("user default on nopass ~* &* +@all")])
        );
        assert_eq!(command(&argv("ACL GETUSER bob")), Reply::Null);
        let Reply::Map(fields) = command(&argv("ACL GETUSER default")) else {
            panic!("a map")
        };
        assert_eq!(fields.len(), 6);
        assert_eq!(
            command(&argv("ACL DELUSER bob default")),
            Reply::err("ERR The 'default' user cannot be removed")
        );
        assert_eq!(command(&argv("ACL DELUSER bob")), Reply::Int(0));
        assert_eq!(command(&argv("ACL LOAD")), Reply::err(NO_ACL_FILE));
        assert!(command(&argv("ACL SETUSER bob on")).is_error());
    }

    #[test]
    fn dryrun_cat_genpass_and_log() {
        assert_eq!(command(&argv("ACL DRYRUN default GET k")), Reply::ok());
        assert_eq!(
            command(&argv("ACL DRYRUN default client list")),
            Reply::ok()
        );
        for (words, want) in [
            ("ACL DRYRUN default GET", "ERR wrong number of arguments for 'get' command"),
            ("ACL DRYRUN default nosuch", "ERR Command 'nosuch' not found"),
            ("ACL DRYRUN default client nosuch", "ERR Command 'client' not found"),
            ("ACL DRYRUN bob get k", "ERR User 'bob' not found"),
            ("ACL CAT nosuch", "ERR Unknown category 'nosuch'"),
            ("ACL GENPASS 0", "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
            ("ACL GENPASS 4097", "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
            ("ACL GENPASS x", "ERR value is not an integer or out of range"),
            ("ACL LOG x", "ERR value is not an integer or out of range"),
        ] {
            assert_eq!(command(&argv(words)), Reply::err(want), "{words}");
        }
        let Reply::Array(cats) = command(&argv("ACL CAT")) else {
            panic!()
        };
        assert_eq!(cats.len(), 21);
        let Reply::Array(strings) = command(&argv("ACL CAT string")) else {
            panic!()
        };
        assert!(
            strings.contains(&Reply::bulk_str("lcs")) && !strings.contains(&Reply::bulk_str("del"))
        );
        let Reply::Array(conn) = command(&argv("ACL CAT connection")) else {
            panic!()
        };
        assert!(conn.contains(&Reply::bulk_str("client|setname")));
        for (bits, len) in [("5", 2), ("256", 64), ("4096", 1024)] {
            let Reply::Bulk(p) = command(&argv(&format!("ACL GENPASS {bits}"))) else {
                panic!()
            };
            assert_eq!(p.len(), len);
            assert!(p.iter().all(u8::is_ascii_hexdigit));
        }
        assert_ne!(command(&argv("ACL GENPASS")), command(&argv("ACL GENPASS")));
        assert_eq!(command(&argv("ACL LOG")), Reply::Array(vec![]));
        assert_eq!(command(&argv("ACL LOG 5")), Reply::Array(vec![]));
        assert_eq!(command(&argv("ACL LOG RESET")), Reply::ok());
    }
}
