//! COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS and COMMAND LIST, rendered from the
//! table so introspection can never disagree with what the server accepts.

use bytes::Bytes;

use crate::cmd::args::{is_kw, ParseResult};
use crate::cmd::table::{CommandSpec, KeySpec, COMMANDS};
use crate::cmd::{lookup, lookup_sub, Command};
use redraft_proxy::wire::glob::glob_match;
use redraft_proxy::wire::Reply;

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO [command-name ...]`,
/// `COMMAND DOCS [command-name ...]`,
/// `COMMAND LIST [FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]`
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
            .map(|s| Reply::status(s.as_ref()))
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
                map(vec![
                    ("type", Reply::bulk_str("index")),
                    ("spec", map(vec![("index", Reply::Int(k.index.into()))])),
                ]),
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

/// One COMMAND DOCS map. Arguments are not described (they are optional in the reply).
pub fn docs(c: &CommandSpec) -> Reply {
    let mut m = vec![
        ("summary", Reply::bulk_str(c.summary)),
        ("since", Reply::bulk_str(c.since)),
        ("group", Reply::bulk_str(c.group)),
        ("complexity", Reply::bulk_str(c.complexity)),
    ];
    if !c.doc_flags.is_empty() {
        m.push(("doc_flags", statuses(c.doc_flags)));
    }
    if let Some(v) = c.deprecated_since {
        m.push(("deprecated_since", Reply::bulk_str(v)));
    }
    if let Some(v) = c.replaced_by {
        m.push(("replaced_by", Reply::bulk_str(v)));
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

    fn st(s: &str) -> Reply {
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
        assert_eq!(subs.len(), 7);
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
            ]),
        )]);
        assert_eq!(run(&mut db, &["COMMAND", "DOCS", "get", "nosuch"]), want);
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
