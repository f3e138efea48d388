//! Dispatch tests: the table against the parsers, unknown names, arity, session commands.

use bytes::Bytes;

use super::table::COMMANDS;
use super::testutil::*;
use super::*;

#[test]
fn table_and_parsers_agree_both_ways() {
    let table: Vec<&str> = COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.subcommands.iter().map(|s| s.name)))
        .collect();
    for name in &table {
        assert!(
            PARSERS.iter().any(|(n, _)| n == name),
            "{name} has no parser"
        );
    }
    for (name, _) in PARSERS {
        assert!(table.contains(name), "parser {name} is not in the table");
    }
    let mut sorted = table.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), table.len(), "duplicate table names");
}

#[test]
fn table_entries_are_well_formed() {
    for c in COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
    {
        assert_eq!(c.name, c.name.to_ascii_lowercase());
        assert!(c.arity != 0, "{}", c.name);
        assert!(
            !c.summary.is_empty() && !c.since.is_empty() && !c.group.is_empty(),
            "{}",
            c.name
        );
        assert!(
            c.flags.iter().all(|f| table::FLAG_ORDER.contains(f)),
            "{}",
            c.name
        );
        assert!(
            c.acl.iter().all(|f| table::CATEGORY_ORDER.contains(f)),
            "{}",
            c.name
        );
        for s in c.subcommands {
            assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
        }
        // Every key-taking command describes where its keys are.
        assert_eq!(c.first_key > 0, !c.key_specs.is_empty(), "{}", c.name);
    }
}

#[test]
fn unknown_command_text() {
    let mut db = db_with(&[]);
    check(
        &mut db,
        &[
            (
                &["FOO", "a", "b"],
                err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "),
            ),
            (
                &["foo"],
                err("ERR unknown command 'foo', with args beginning with: "),
            ),
            (
                &["a\r\nb"],
                err("ERR unknown command 'a  b', with args beginning with: "),
            ),
            // `%s` stops at a NUL, in the name and in each argument.
            (
                &["f\0oo", "k\r\n\0x", "y"],
                err("ERR unknown command 'f', with args beginning with: 'k  ' 'y' "),
            ),
            (
                &["CLIENT", "x\0y"],
                err("ERR unknown subcommand 'x'. Try CLIENT HELP."),
            ),
        ],
    );
    let long = "x".repeat(200);
    let want = format!(
        "ERR unknown command '{}', with args beginning with: ",
        "x".repeat(128)
    );
    assert_eq!(run(&mut db, &[&long]), err(&want));
    // Each argument is cut to the room left below 128 bytes; nothing follows once full.
    let a = "a".repeat(100);
    let b = "b".repeat(100);
    let want = format!(
        "ERR unknown command 'FOO', with args beginning with: '{a}' '{}' ",
        "b".repeat(25)
    );
    assert_eq!(run(&mut db, &["FOO", &a, &b, "c"]), err(&want));
}

#[test]
fn containers() {
    let mut db = db_with(&[]);
    check(
        &mut db,
        &[
            (
                &["CLIENT"],
                err("ERR wrong number of arguments for 'client' command"),
            ),
            (
                &["client", "foo"],
                err("ERR unknown subcommand 'foo'. Try CLIENT HELP."),
            ),
            (
                &["Config", "FOO"],
                err("ERR unknown subcommand 'FOO'. Try CONFIG HELP."),
            ),
            (
                &["CONFIG", "SET", "a"],
                err("ERR wrong number of arguments for 'config|set' command"),
            ),
            (
                &["CONFIG", "GET"],
                err("ERR wrong number of arguments for 'config|get' command"),
            ),
            (
                &["CLIENT", "SETNAME"],
                err("ERR wrong number of arguments for 'client|setname' command"),
            ),
            (
                &["CLIENT", "SETINFO", "lib-name"],
                err("ERR wrong number of arguments for 'client|setinfo' command"),
            ),
        ],
    );
    let long = "s".repeat(300);
    let want = format!(
        "ERR unknown subcommand '{}'. Try CLIENT HELP.",
        "s".repeat(128)
    );
    assert_eq!(run(&mut db, &["client", &long]), err(&want));
}

#[test]
fn session_commands_pass_through() {
    for args in [
        &["HELLO"][..],
        &["hello", "3", "AUTH", "u", "p"],
        &["QUIT", "extra"],
        &["INFO"],
        &["info", "keyspace"],
        &["ROLE"],
        &["CLIENT", "ID"],
        &["client", "setname", "x"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETINFO", "LIB-NAME", "x"],
        &["CLIENT", "INFO"],
        &["CLIENT", "LIST", "TYPE", "normal"],
        &["CLIENT", "HELP"],
        &["CONFIG", "GET", "save", "appendonly"],
        &["CONFIG", "SET", "a", "b"],
        &["CONFIG", "HELP"],
    ] {
        let a = argv(args);
        match parse(&a, NOW) {
            Command::Session(got) => assert_eq!(got, a),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert!(matches!(
        parse(&argv(&["ROLE", "x"]), NOW),
        Command::Reply(Reply::Error(_))
    ));
}

#[test]
fn names_are_case_insensitive_and_binary_safe() {
    let mut db = db_with(&[]);
    assert_eq!(run(&mut db, &["sEt", "k", "v"]), ok());
    assert_eq!(run(&mut db, &["GeT", "k"]), bulk("v"));
    let r = parse(
        &[Bytes::from_static(b"\xff\xfe"), Bytes::from_static(b"x")],
        NOW,
    );
    assert!(matches!(r, Command::Reply(Reply::Error(_))));
    assert!(matches!(parse(&[], NOW), Command::Reply(Reply::Error(_))));
}

#[test]
fn first_keys() {
    let key = |args: &[&str]| match parse(&argv(args), NOW) {
        Command::Read(c) => c.first_key().map(<[u8]>::to_vec),
        Command::Write(c) => c.first_key().map(<[u8]>::to_vec),
        other => panic!("{other:?}"),
    };
    assert_eq!(key(&["GET", "a"]), Some(b"a".to_vec()));
    assert_eq!(key(&["MSET", "b", "1", "c", "2"]), Some(b"b".to_vec()));
    assert_eq!(key(&["RENAME", "s", "d"]), Some(b"s".to_vec()));
    assert_eq!(key(&["DEL", "x", "y"]), Some(b"x".to_vec()));
    assert_eq!(key(&["SCAN", "0"]), None);
    assert_eq!(key(&["FLUSHALL"]), None);
    assert_eq!(key(&["DBSIZE"]), None);
}

#[test]
fn get_string_reads_live_strings() {
    // Only strings exist today, so WRONGTYPE (returned by `get_string` for other types) has
    // no test yet; this pins the shared helper's string path.
    let db = db_with(&[("k", "v")]);
    assert_eq!(
        get_string(&db, b"k", NOW),
        Ok(Some((Bytes::from_static(b"v"), None)))
    );
}

#[test]
fn once_stamps_parse_or_get_an_error() {
    let parse_once = |stamp: &str| {
        let argv = ["ONCE", "7", stamp, "SET", "k", "v"]
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .to_vec();
        parse(&argv, 0)
    };
    let err = |c: Command| match c {
        Command::Reply(Reply::Error(e)) => e,
        other => panic!("{other:?}"),
    };
    match parse_once("5:4") {
        Command::Write(WriteCmd::Once { seq, acked, .. }) => assert_eq!((seq, acked), (5, 4)),
        other => panic!("{other:?}"),
    }
    match parse_once("5:4:2") {
        Command::Write(WriteCmd::Once {
            seq, acked, after, ..
        }) => assert_eq!((seq, acked, after), (5, 4, 2)),
        other => panic!("{other:?}"),
    }
    assert!(err(parse_once("5:4:5")).contains("preceding sequence number must be below"));
    assert_eq!(
        err(parse_once("5:4:x")),
        "ERR value is not an integer or out of range"
    );
    // A read names the write it must see; its own numbers do not matter.
    let argv = ["ONCE", "7", "0:0:3", "GET", "k"]
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .to_vec();
    match parse(&argv, 0) {
        Command::Read(ReadCmd::After { client, after, .. }) => assert_eq!((client, after), (7, 3)),
        other => panic!("{other:?}"),
    }
    match parse_once("5") {
        Command::Write(WriteCmd::Once { seq, acked, .. }) => assert_eq!((seq, acked), (5, 0)),
        other => panic!("{other:?}"),
    }
    // A stamped write that fails to parse is still a write, carrying its error; a read
    // (seq 0) that fails to parse is just the error.
    let stamped = |args: &[&str]| {
        let argv = ["ONCE", "7"]
            .iter()
            .chain(args)
            .map(|a| Bytes::copy_from_slice(a.as_bytes()));
        parse(&argv.collect::<Vec<_>>(), 0)
    };
    match stamped(&["5:4:2", "SET", "k", "v", "FOO"]) {
        Command::Write(WriteCmd::Once {
            seq, after, cmd, ..
        }) => {
            assert_eq!((seq, after), (5, 2));
            assert_eq!(
                *cmd,
                WriteCmd::Refused {
                    slot: Some(redraft_proxy::wire::key_slot(b"k")),
                    reply: Reply::err("ERR syntax error")
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err(stamped(&["0:0:2", "GET", "k", "x"])),
        "ERR wrong number of arguments for 'get' command"
    );
    match stamped(&["5:4", "GETEX", "k"]) {
        Command::Write(WriteCmd::Once { cmd, .. }) => assert!(matches!(
            *cmd,
            WriteCmd::GetEx(string::getex::GetEx {
                op: string::getex::GetExOp::Keep,
                ..
            })
        )),
        other => panic!("{other:?}"),
    }
    assert!(err(parse_once("5:5")).contains("must be below"));
    assert_eq!(
        err(parse_once("5:x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(parse_once("-1:0")),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        err(parse_once(":")),
        "ERR value is not an integer or out of range"
    );
}
