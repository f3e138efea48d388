//! COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS, COMMAND LIST, COMMAND GETKEYS and
//! GETKEYSANDFLAGS, rendered from the table so introspection can never disagree with what
//! the server accepts.

use bytes::Bytes;

use crate::cmd::args::{cut, is_kw, ParseResult};
use crate::cmd::table::{CommandSpec, DocArg, KeySpec, COMMANDS};
use crate::cmd::{lookup, lookup_sub, Command};
use redraft_proxy::wire::glob::glob_match;
use redraft_proxy::wire::Reply;

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO [command-name ...]`,
/// `COMMAND DOCS [command-name ...]`,
/// `COMMAND LIST [FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]`,
/// `COMMAND GETKEYS|GETKEYSANDFLAGS command [arg ...]`, `COMMAND HELP`
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let Some(sub) = argv.get(1) else {
        return Ok(Command::Reply(Reply::Array(
            COMMANDS.iter().map(info).collect(),
        )));
    };
    let names = &argv[2..];
    let reply = if is_kw(sub, "count") {
        Reply::Int(COMMANDS.len() as i64)
    } else if is_kw(sub, "info") {
        if names.is_empty() {
            Reply::Array(COMMANDS.iter().map(info).collect())
        } else {
            Reply::Array(
                names
                    .iter()
                    .map(|n| find(n).map_or(Reply::Null, info))
                    .collect(),
            )
        }
    } else if is_kw(sub, "docs") {
        let specs: Vec<&CommandSpec> = if names.is_empty() {
            COMMANDS.iter().collect()
        } else {
            names.iter().filter_map(|n| find(n)).collect()
        };
        Reply::Map(
            specs
                .into_iter()
                .map(|s| (Reply::bulk_str(s.name), docs(s)))
                .collect(),
        )
    } else if is_kw(sub, "getkeys") {
        getkeys(names, false)?
    } else if is_kw(sub, "getkeysandflags") {
        getkeys(names, true)?
    } else if is_kw(sub, "help") {
        Reply::Array(HELP.iter().map(|&l| Reply::status(l)).collect())
    } else {
        list(names)?
    };
    Ok(Command::Reply(reply))
}

/// A command by name, `container|sub` included, case-insensitively.
pub fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        Some(i) => lookup(&name[..i]).and_then(|c| lookup_sub(c, &name[i + 1..])),
        None => lookup(name),
    }
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// The keys of a full command, found by its key specs as Redis's getKeysUsingKeySpecs
/// does (each with its spec's flags if `with_flags`).
fn getkeys(argv: &[Bytes], with_flags: bool) -> ParseResult<Reply> {
    let spec = lookup(&argv[0]).and_then(|c| match argv.get(1) {
        Some(sub) if c.is_container() => lookup_sub(c, sub),
        _ => Some(c),
    });
    let Some(spec) = spec else {
        return Err(Reply::err("ERR Invalid command specified"));
    };
    if spec.key_specs.is_empty() {
        return Err(Reply::err("ERR The command has no key arguments"));
    }
    let argc = argv.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(Reply::err(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let mut keys = Vec::new();
    if spec.name == "migrate" {
        // Its keys are where its options say (Redis's migrateGetKeys).
        let flags = statuses(spec.key_specs[0].flags);
        for i in redraft_proxy::wire::table::migrate_keys(argv).unwrap_or_default() {
            let key = Reply::Bulk(argv[i].clone());
            keys.push(match with_flags {
                true => Reply::Array(vec![key, flags.clone()]),
                false => key,
            });
        }
    }
    if let Some(flags) = resolved_flags(spec.name, argv) {
        // Its flags depend on its arguments: Redis asks its getkeys callback, which finds
        // the one key at argv[1].
        let key = Reply::Bulk(argv[1].clone());
        keys.push(match with_flags {
            true => Reply::Array(vec![key, statuses(flags)]),
            false => key,
        });
    }
    let by_specs = !matches!(spec.name, "migrate" | "set" | "bitfield");
    for k in spec.key_specs.iter().filter(|_| by_specs) {
        let first = k.index;
        let last = match k.lastkey {
            l if l >= 0 => first + l,
            l if k.limit == 0 => argc + l,
            l => first + ((argc - first) / k.limit + l),
        };
        if last >= argc || last < first || first >= argc {
            // A range outside the arguments makes the whole search invalid, as in Redis
            // (`PFMERGE dest` has no source): no keys.
            keys.clear();
            break;
        }
        let step = k.keystep.max(1) as usize;
        for i in (first..=last).step_by(step) {
            let key = Reply::Bulk(argv[i as usize].clone());
            keys.push(match with_flags {
                true => Reply::Array(vec![key, statuses(k.flags)]),
                false => key,
            });
        }
    }
    if keys.is_empty() {
        return Err(Reply::err("ERR Invalid arguments specified for command"));
    }
    Ok(Reply::Array(keys))
}

/// The key flags of a command whose spec says `variable_flags`, as its Redis getkeys
/// callback resolves them: SET is a plain overwrite unless it has GET; BITFIELD is a read
/// while it only has well-formed GET and OVERFLOW operations.
fn resolved_flags(name: &str, argv: &[Bytes]) -> Option<&'static [&'static str]> {
    // Redis compares these as C strings: up to the first NUL.
    let is = |a: &Bytes, kw: &str| cut(a, usize::MAX).eq_ignore_ascii_case(kw.as_bytes());
    const RW: &[&str] = &["RW", "access", "update"];
    match name {
        "set" => Some(match argv[3..].iter().any(|a| is(a, "get")) {
            true => RW,
            false => &["OW", "update"],
        }),
        "bitfield" => {
            let mut i = 2;
            while i < argv.len() {
                let rest = argv.len() - i - 1;
                let a = &argv[i];
                if is(a, "get") && rest >= 2 {
                    i += 3;
                } else if is(a, "overflow") && rest >= 1 {
                    i += 2;
                } else {
                    // SET, INCRBY or a syntax error: not read-only.
                    return Some(RW);
                }
            }
            Some(&["RO", "access"])
        }
        _ => None,
    }
}

/// Every command, subcommands after their container.
fn all() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

fn list(args: &[Bytes]) -> ParseResult<Reply> {
    let names = |f: &dyn Fn(&CommandSpec) -> bool| {
        Reply::Array(
            all()
                .filter(|c| f(c))
                .map(|c| Reply::bulk_str(c.name))
                .collect(),
        )
    };
    match args {
        [] => Ok(names(&|_| true)),
        [filterby, kind, value] if is_kw(filterby, "filterby") => {
            if is_kw(kind, "module") {
                Ok(names(&|_| false))
            } else if is_kw(kind, "aclcat") {
                Ok(names(&|c| {
                    c.categories()
                        .iter()
                        .any(|cat| cat.as_bytes().eq_ignore_ascii_case(value))
                }))
            } else if is_kw(kind, "pattern") {
                Ok(names(&|c| glob_match(value, c.name.as_bytes(), true)))
            } else {
                Err(Reply::syntax_error())
            }
        }
        _ => Err(Reply::syntax_error()),
    }
}

fn statuses(items: impl IntoIterator<Item = impl AsRef<str>>) -> Reply {
    Reply::Set(
        items
            .into_iter()
            .map(|s| Reply::status(s.as_ref().to_owned()))
            .collect(),
    )
}

fn map(entries: Vec<(&str, Reply)>) -> Reply {
    Reply::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Reply::bulk_str(k), v))
            .collect(),
    )
}

fn key_spec(k: &KeySpec) -> Reply {
    let notes = (!k.notes.is_empty()).then(|| ("notes", Reply::bulk_str(k.notes)));
    map(notes
        .into_iter()
        .chain([
            ("flags", statuses(k.flags)),
            (
                "begin_search",
                match k.keyword {
                    "" => map(vec![
                        ("type", Reply::bulk_str("index")),
                        ("spec", map(vec![("index", Reply::Int(k.index.into()))])),
                    ]),
                    keyword => map(vec![
                        ("type", Reply::bulk_str("keyword")),
                        (
                            "spec",
                            map(vec![
                                ("keyword", Reply::bulk_str(keyword)),
                                ("startfrom", Reply::Int(k.index.into())),
                            ]),
                        ),
                    ]),
                },
            ),
            (
                "find_keys",
                map(vec![
                    ("type", Reply::bulk_str("range")),
                    (
                        "spec",
                        map(vec![
                            ("lastkey", Reply::Int(k.lastkey.into())),
                            ("keystep", Reply::Int(k.keystep.into())),
                            ("limit", Reply::Int(k.limit.into())),
                        ]),
                    ),
                ]),
            ),
        ])
        .collect())
}

/// One COMMAND INFO entry: the 10-element array redis-cli and cluster clients read.
pub fn info(c: &CommandSpec) -> Reply {
    let subcommands = if c.is_container() {
        Reply::Array(c.subcommands.iter().map(info).collect())
    } else {
        Reply::Set(vec![])
    };
    Reply::Array(vec![
        Reply::bulk_str(c.name),
        Reply::Int(c.arity.into()),
        statuses(c.ordered_flags()),
        Reply::Int(c.first_key.into()),
        Reply::Int(c.last_key.into()),
        Reply::Int(c.step.into()),
        statuses(c.categories().iter().map(|cat| format!("@{cat}"))),
        Reply::Set(c.tips.iter().map(|t| Reply::bulk_str(t)).collect()),
        Reply::Set(c.key_specs.iter().map(key_spec).collect()),
        subcommands,
    ])
}

/// COMMAND DOCS's arguments, each a map with Redis's keys in Redis's order.
fn doc_args(args: &[DocArg]) -> Reply {
    Reply::Array(
        args.iter()
            .map(|a| {
                let mut m = vec![
                    ("name", Reply::bulk_str(a.name)),
                    ("type", Reply::bulk_str(a.kind)),
                ];
                if let Some(i) = a.key_spec_index {
                    m.push(("key_spec_index", Reply::Int(i.into())));
                }
                for (key, v) in [
                    ("token", a.token),
                    ("summary", a.summary),
                    ("since", a.since),
                    ("deprecated_since", a.deprecated_since),
                ] {
                    if let Some(v) = v {
                        m.push((key, Reply::bulk_str(v)));
                    }
                }
                if !a.flags.is_empty() {
                    m.push(("flags", statuses(a.flags)));
                }
                if !a.args.is_empty() {
                    m.push(("arguments", doc_args(a.args)));
                }
                map(m)
            })
            .collect(),
    )
}

/// One COMMAND DOCS map, as Redis's: what redis-cli builds its command hints from.
pub fn docs(c: &CommandSpec) -> Reply {
    let mut m = vec![
        ("summary", Reply::bulk_str(c.summary)),
        ("since", Reply::bulk_str(c.since)),
        ("group", Reply::bulk_str(c.group)),
    ];
    // Redis leaves it out where its command file has none (MONITOR).
    if !c.complexity.is_empty() {
        m.push(("complexity", Reply::bulk_str(c.complexity)));
    }
    if !c.doc_flags.is_empty() {
        m.push(("doc_flags", statuses(c.doc_flags)));
    }
    if let Some(v) = c.deprecated_since {
        m.push(("deprecated_since", Reply::bulk_str(v)));
    }
    if let Some(v) = c.replaced_by {
        m.push(("replaced_by", Reply::bulk_str(v)));
    }
    let (history, args) = c.docs();
    if !history.is_empty() {
        let changes = history.iter().map(|(version, change)| {
            Reply::Array(vec![Reply::bulk_str(version), Reply::bulk_str(change)])
        });
        m.push(("history", Reply::Set(changes.collect())));
    }
    if !args.is_empty() {
        m.push(("arguments", doc_args(args)));
    }
    if c.is_container() {
        m.push((
            "subcommands",
            Reply::Map(
                c.subcommands
                    .iter()
                    .map(|s| (Reply::bulk_str(s.name), docs(s)))
                    .collect(),
            ),
        ));
    }
    map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testutil::*;

    fn st(s: &'static str) -> Reply {
        Reply::status(s)
    }

    #[test]
    fn info_get() {
        let mut db = db_with(&[]);
        let want = Reply::Array(vec![Reply::Array(vec![
            bulk("get"),
            int(2),
            Reply::Set(vec![st("readonly"), st("fast")]),
            int(1),
            int(1),
            int(1),
            Reply::Set(vec![st("@read"), st("@string"), st("@fast")]),
            Reply::Set(vec![]),
            Reply::Set(vec![Reply::Map(vec![
                (bulk("flags"), Reply::Set(vec![st("RO"), st("access")])),
                (
                    bulk("begin_search"),
                    Reply::Map(vec![
                        (bulk("type"), bulk("index")),
                        (bulk("spec"), Reply::Map(vec![(bulk("index"), int(1))])),
                    ]),
                ),
                (
                    bulk("find_keys"),
                    Reply::Map(vec![
                        (bulk("type"), bulk("range")),
                        (
                            bulk("spec"),
                            Reply::Map(vec![
                                (bulk("lastkey"), int(0)),
                                (bulk("keystep"), int(1)),
                                (bulk("limit"), int(0)),
                            ]),
                        ),
                    ]),
                ),
            ])]),
            Reply::Set(vec![]),
        ])]);
        assert_eq!(run(&mut db, &["COMMAND", "INFO", "GET"]), want);
    }

    #[test]
    fn info_lookup() {
        let mut db = db_with(&[]);
        let Reply::Array(v) = run(
            &mut db,
            &["COMMAND", "INFO", "nosuch", "client|setname", "CONFIG|GET"],
        ) else {
            panic!()
        };
        assert_eq!(v[0], Reply::Null);
        let Reply::Array(e) = &v[1] else { panic!() };
        assert_eq!(e[0], bulk("client|setname"));
        assert_eq!(e[1], int(3));
        let Reply::Array(e) = &v[2] else { panic!() };
        assert_eq!(e[0], bulk("config|get"));
        assert_eq!(e[1], int(-3));
        // Containers list their subcommands as entries.
        let Reply::Array(v) = run(&mut db, &["COMMAND", "INFO", "client"]) else {
            panic!()
        };
        let Reply::Array(e) = &v[0] else { panic!() };
        let Reply::Array(subs) = &e[9] else {
            panic!("{:?}", e[9])
        };
        assert_eq!(subs.len(), 12);
    }

    #[test]
    fn getkeys_by_key_specs() {
        let mut db = db_with(&[]);
        let keys = |k: &[&str]| Reply::Array(k.iter().map(|k| bulk(k)).collect());
        let flags = |f: &[&'static str]| Reply::Set(f.iter().map(|&f| Reply::status(f)).collect());
        check(
            &mut db,
            &[
                (&["COMMAND", "GETKEYS", "get", "a"], keys(&["a"])),
                (
                    &["COMMAND", "getkeys", "SET", "a", "b", "EX", "1"],
                    keys(&["a"]),
                ),
                // Every other argument from the first, odd counts included.
                (
                    &["COMMAND", "GETKEYS", "mset", "a", "1", "b"],
                    keys(&["a", "b"]),
                ),
                (
                    &["COMMAND", "GETKEYS", "exists", "a", "a"],
                    keys(&["a", "a"]),
                ),
                (
                    &["COMMAND", "GETKEYS", "copy", "a", "b", "DB", "1"],
                    keys(&["a", "b"]),
                ),
                (
                    &["COMMAND", "GETKEYSANDFLAGS", "rename", "a", "b"],
                    Reply::Array(vec![
                        Reply::Array(vec![bulk("a"), flags(&["RW", "access", "delete"])]),
                        Reply::Array(vec![bulk("b"), flags(&["OW", "update"])]),
                    ]),
                ),
                // Flags that depend on the arguments, as redis-server 7.0.15 resolves them.
                (
                    &["COMMAND", "GETKEYSANDFLAGS", "set", "a", "b", "NX"],
                    Reply::Array(vec![Reply::Array(vec![
                        bulk("a"),
                        flags(&["OW", "update"]),
                    ])]),
                ),
                (
                    &["COMMAND", "GETKEYSANDFLAGS", "set", "a", "b", "get"],
                    Reply::Array(vec![Reply::Array(vec![
                        bulk("a"),
                        flags(&["RW", "access", "update"]),
                    ])]),
                ),
                (
                    &[
                        "COMMAND",
                        "GETKEYSANDFLAGS",
                        "bitfield",
                        "a",
                        "GET",
                        "u8",
                        "0",
                    ],
                    Reply::Array(vec![Reply::Array(vec![
                        bulk("a"),
                        flags(&["RO", "access"]),
                    ])]),
                ),
                (
                    &["COMMAND", "GETKEYSANDFLAGS", "bitfield", "a", "GET", "u8"],
                    Reply::Array(vec![Reply::Array(vec![
                        bulk("a"),
                        flags(&["RW", "access", "update"]),
                    ])]),
                ),
                // A key spec past the arguments: Redis finds no keys at all.
                (
                    &["COMMAND", "GETKEYS", "pfmerge", "d"],
                    err("ERR Invalid arguments specified for command"),
                ),
                (
                    &["COMMAND", "GETKEYS", "nosuch", "a"],
                    err("ERR Invalid command specified"),
                ),
                (
                    &["COMMAND", "GETKEYS", "config", "nosub"],
                    err("ERR Invalid command specified"),
                ),
                (
                    &["COMMAND", "GETKEYS", "client", "list"],
                    err("ERR The command has no key arguments"),
                ),
                (
                    &["COMMAND", "GETKEYS", "scan", "0"],
                    err("ERR The command has no key arguments"),
                ),
                (
                    &["COMMAND", "GETKEYS", "get", "a", "b"],
                    err("ERR Invalid number of arguments specified for command"),
                ),
                (
                    &["COMMAND", "GETKEYS", "get"],
                    err("ERR wrong number of arguments for 'command|getkeys' command"),
                ),
            ],
        );
        let Reply::Array(help) = run(&mut db, &["COMMAND", "HELP"]) else {
            panic!()
        };
        assert_eq!(help.len(), 21);
    }

    #[test]
    fn categories_follow_flags() {
        let cats = |n: &str| find(n.as_bytes()).expect(n).categories();
        assert_eq!(cats("set"), vec!["write", "string", "slow"]);
        assert_eq!(cats("keys"), vec!["keyspace", "read", "slow", "dangerous"]);
        assert_eq!(cats("config|set"), vec!["admin", "slow", "dangerous"]);
        assert_eq!(cats("ping"), vec!["fast", "connection"]);
        assert_eq!(
            find(b"getset").expect("getset").ordered_flags(),
            vec!["write", "denyoom", "fast"]
        );
    }

    #[test]
    fn count_and_all() {
        let mut db = db_with(&[]);
        let n = COMMANDS.len() as i64;
        assert_eq!(run(&mut db, &["COMMAND", "COUNT"]), int(n));
        let Reply::Array(all) = run(&mut db, &["COMMAND"]) else {
            panic!()
        };
        assert_eq!(all.len() as i64, n);
        let Reply::Array(all) = run(&mut db, &["COMMAND", "INFO"]) else {
            panic!()
        };
        assert_eq!(all.len() as i64, n);
        assert_eq!(
            run(&mut db, &["COMMAND", "COUNT", "x"]),
            err("ERR wrong number of arguments for 'command|count' command")
        );
        assert_eq!(
            run(&mut db, &["COMMAND", "FOO"]),
            err("ERR unknown subcommand 'FOO'. Try COMMAND HELP.")
        );
    }

    #[test]
    fn docs_shape() {
        let mut db = db_with(&[]);
        let want = Reply::Map(vec![(
            bulk("get"),
            Reply::Map(vec![
                (bulk("summary"), bulk("Get the value of a key")),
                (bulk("since"), bulk("1.0.0")),
                (bulk("group"), bulk("string")),
                (bulk("complexity"), bulk("O(1)")),
                (
                    bulk("arguments"),
                    Reply::Array(vec![Reply::Map(vec![
                        (bulk("name"), bulk("key")),
                        (bulk("type"), bulk("key")),
                        (bulk("key_spec_index"), int(0)),
                    ])]),
                ),
            ]),
        )]);
        assert_eq!(run(&mut db, &["COMMAND", "DOCS", "get", "nosuch"]), want);
        // Every argument tree is in Redis's shape: a oneof or a block has parts, and only
        // they do; flags are Redis's three; a key points at one of the command's key specs.
        fn check_args(cmd: &CommandSpec, args: &[DocArg]) {
            for a in args {
                let nested = matches!(a.kind, "oneof" | "block");
                assert_eq!(nested, !a.args.is_empty(), "{} {}", cmd.name, a.name);
                assert!(a
                    .flags
                    .iter()
                    .all(|f| ["optional", "multiple", "multiple_token"].contains(f)));
                if let Some(i) = a.key_spec_index {
                    assert!(
                        (i as usize) < cmd.key_specs.len(),
                        "{} {}",
                        cmd.name,
                        a.name
                    );
                }
                check_args(cmd, a.args);
            }
        }
        for c in all() {
            check_args(c, c.docs().1);
        }
        let documented = all().filter(|c| !c.docs().1.is_empty()).count();
        assert!(documented > 50, "{documented}");
        let Reply::Map(all) = run(&mut db, &["COMMAND", "DOCS"]) else {
            panic!()
        };
        assert_eq!(all.len(), COMMANDS.len());
        // redis-cli dereferences subcommand names that lack a `|`.
        for (_, d) in &all {
            let Reply::Map(fields) = d else { panic!() };
            for (k, v) in fields {
                if *k == bulk("subcommands") {
                    let Reply::Map(subs) = v else { panic!() };
                    for (name, _) in subs {
                        let Reply::Bulk(name) = name else { panic!() };
                        assert!(name.contains(&b'|'));
                    }
                }
            }
        }
        let Reply::Map(m) = run(&mut db, &["COMMAND", "DOCS", "getset"]) else {
            panic!()
        };
        let Reply::Map(fields) = &m[0].1 else {
            panic!()
        };
        assert_eq!(
            fields[4],
            (bulk("doc_flags"), Reply::Set(vec![st("deprecated")]))
        );
        assert_eq!(fields[5], (bulk("deprecated_since"), bulk("6.2.0")));
    }

    #[test]
    fn list() {
        let mut db = db_with(&[]);
        let Reply::Array(all) = run(&mut db, &["COMMAND", "LIST"]) else {
            panic!()
        };
        assert!(all.contains(&bulk("client|setname")) && all.contains(&bulk("get")));
        assert_eq!(
            run(
                &mut db,
                &["COMMAND", "LIST", "FILTERBY", "PATTERN", "CLIENT|SET*"]
            ),
            Reply::Array(vec![bulk("client|setname"), bulk("client|setinfo")])
        );
        let Reply::Array(v) = run(
            &mut db,
            &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "STRING"],
        ) else {
            panic!()
        };
        assert!(v.contains(&bulk("incrbyfloat")) && !v.contains(&bulk("del")));
        assert_eq!(
            run(&mut db, &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]),
            Reply::Array(vec![])
        );
        assert_eq!(
            run(&mut db, &["COMMAND", "LIST", "FILTERBY", "FOO", "x"]),
            err("ERR syntax error")
        );
        assert_eq!(
            run(&mut db, &["COMMAND", "LIST", "x"]),
            err("ERR syntax error")
        );
    }
}
