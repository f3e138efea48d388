//! Every command through the whole stack (RESP → Raft → fjall → reply), table-driven, with
//! Redis's exact replies. Edge cases per command are unit-tested next to the commands; this
//! proves the replicated path gives the same bytes.

use crate::fixture::TestCluster;
use crate::raw::Raw;

/// (command, exact reply). Runs in order on one connection; `*` in a reply matches any
/// run of characters (for times and ids).
const SCRIPT: &[(&str, &str)] = &[
    ("PING", "+PONG\r\n"),
    ("PING hi", "$2\r\nhi\r\n"),
    ("PING a b", "-ERR wrong number of arguments for 'ping' command\r\n"),
    ("ECHO x", "$1\r\nx\r\n"),
    ("SELECT 0", "+OK\r\n"),
    ("AUTH pw", "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"),
    ("FOO a b", "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"),
    ("GET", "-ERR wrong number of arguments for 'get' command\r\n"),
    ("CLIENT FOO", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"),
    ("CLIENT SETNAME me", "+OK\r\n"),
    ("CLIENT GETNAME", "$2\r\nme\r\n"),
    ("CLIENT SETINFO LIB-NAME redis-py", "+OK\r\n"),
    ("CONFIG GET appendonly", "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"),
    ("CONFIG GET nosuch", "*0\r\n"),
    ("ACL WHOAMI", "$7\r\ndefault\r\n"),
    ("CONFIG REWRITE", "-ERR The server is running without a config file\r\n"),
    (
        "REPLICAOF NO ONE",
        "-ERR REPLICAOF is not supported: a redraft group's replicas are the members of its Raft group\r\n",
    ),
    ("MEMORY PURGE", "+OK\r\n"),
    ("MEMORY MALLOC-STATS", "$45\r\nStats not supported for the current allocator\r\n"),
    ("ACL DRYRUN default GET k", "+OK\r\n"),
    ("ACL DRYRUN default nosuch", "-ERR Command 'nosuch' not found\r\n"),
    ("ACL SAVE", "-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.\r\n"),
    ("LASTSAVE", ":*\r\n"),
    ("BGSAVE", "+Background saving started\r\n"),
    (
        "CONFIG GET maxmemory-policy",
        "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n",
    ),
    ("CONFIG SET port 1", "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"),
    // strings
    ("SET k v", "+OK\r\n"),
    ("GET k", "$1\r\nv\r\n"),
    ("SET k v2 NX", "$-1\r\n"),
    ("SET k v3 XX GET", "$1\r\nv\r\n"),
    ("SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n"),
    ("SET k v NX XX", "-ERR syntax error\r\n"),
    ("SETNX k x", ":0\r\n"),
    ("SETEX e 100 v", "+OK\r\n"),
    ("PSETEX e2 100000 v", "+OK\r\n"),
    ("SETEX e -1 v", "-ERR invalid expire time in 'setex' command\r\n"),
    ("GETSET k new", "$2\r\nv3\r\n"),
    ("GETDEL k", "$3\r\nnew\r\n"),
    ("GETDEL k", "$-1\r\n"),
    ("SET g v EX 100", "+OK\r\n"),
    ("GETEX g PERSIST", "$1\r\nv\r\n"),
    ("TTL g", ":-1\r\n"),
    ("MSET a 1 b 2", "+OK\r\n"),
    ("MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n"),
    ("MGET a b nosuch", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"),
    ("MSETNX a 9 c 3", ":0\r\n"),
    ("MSETNX c 3 d 4", ":1\r\n"),
    ("APPEND s Hello", ":5\r\n"),
    ("APPEND s \\x20World", ":11\r\n"),
    ("STRLEN s", ":11\r\n"),
    ("SET s Hello_World", "+OK\r\n"),
    ("GETRANGE s -4 -1", "$4\r\norld\r\n"),
    ("GETRANGE s 5 3", "$0\r\n\r\n"),
    ("SUBSTR s 0 4", "$5\r\nHello\r\n"),
    ("SET {l}1 ohmytext", "+OK\r\n"),
    ("SET {l}2 mynewtext", "+OK\r\n"),
    ("LCS {l}1 {l}2", "$6\r\nmytext\r\n"),
    ("LCS {l}1 {l}2 LEN", ":6\r\n"),
    (
        "LCS {l}1 {l}2 IDX MINMATCHLEN 4 WITHMATCHLEN",
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n",
    ),
    ("SETRANGE s 6 Redis", ":11\r\n"),
    ("GET s", "$11\r\nHello_Redis\r\n"),
    ("SETRANGE s -1 x", "-ERR offset is out of range\r\n"),
    ("INCR n", ":1\r\n"),
    ("INCRBY n 10", ":11\r\n"),
    ("DECR n", ":10\r\n"),
    ("DECRBY n 20", ":-10\r\n"),
    ("INCR s", "-ERR value is not an integer or out of range\r\n"),
    ("SET big 9223372036854775807", "+OK\r\n"),
    ("INCR big", "-ERR increment or decrement would overflow\r\n"),
    ("SET f 10.5", "+OK\r\n"),
    ("INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n"),
    ("SET f 0.1", "+OK\r\n"),
    ("INCRBYFLOAT f 0.2", "$3\r\n0.3\r\n"),
    ("INCRBYFLOAT f x", "-ERR value is not a valid float\r\n"),
    // keyspace
    ("EXISTS a a nosuch", ":2\r\n"),
    ("TYPE a", "+string\r\n"),
    ("TYPE nosuch", "+none\r\n"),
    ("EXPIRE a 100", ":1\r\n"),
    ("EXPIRE a 200 NX", ":0\r\n"),
    ("EXPIRE a 50 GT", ":0\r\n"),
    ("EXPIRE a 50 LT", ":1\r\n"),
    ("EXPIRE a 50 NX XX", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
    ("TTL a", ":50\r\n"),
    ("PERSIST a", ":1\r\n"),
    ("PERSIST a", ":0\r\n"),
    ("TTL nosuch", ":-2\r\n"),
    ("PEXPIREAT a 99999999999999", ":1\r\n"),
    ("PEXPIRETIME a", ":99999999999999\r\n"),
    ("EXPIRETIME a", ":100000000000\r\n"),
    ("PEXPIRE b 0", ":1\r\n"),
    ("GET b", "$-1\r\n"),
    ("RENAME nosuch x", "-ERR no such key\r\n"),
    ("RENAME a a2", "+OK\r\n"),
    ("PEXPIRETIME a2", ":99999999999999\r\n"),
    ("RENAMENX a2 c", ":0\r\n"),
    ("COPY a2 a3", ":1\r\n"),
    ("COPY a2 a3", ":0\r\n"),
    ("COPY a2 a3 REPLACE", ":1\r\n"),
    ("COPY a2 a2", "-ERR source and destination objects are the same\r\n"),
    ("MOVE a2 0", "-ERR source and destination objects are the same\r\n"),
    ("MOVE a2 1", "-ERR DB index is out of range\r\n"),
    ("SWAPDB 0 0", "+OK\r\n"),
    ("SWAPDB 0 x", "-ERR invalid second DB index\r\n"),
    ("DUMP nosuch", "$-1\r\n"),
    ("SET dumped 7", "+OK\r\n"),
    ("DUMP dumped", "$13\r\n\0\u{fffd}\u{7}\n\0*\r\n"),
    ("RESTORE a2 0 junk", "-BUSYKEY Target key name already exists.\r\n"),
    ("RESTORE fresh 0 junk", "-ERR DUMP payload version or checksum are wrong\r\n"),
    ("RESTORE fresh -1 junk", "-ERR Invalid TTL value, must be >= 0\r\n"),
    ("DEL a2 a3 a3 nosuch", ":2\r\n"),
    ("UNLINK c", ":1\r\n"),
    ("FLUSHALL", "+OK\r\n"),
    ("DBSIZE", ":0\r\n"),
    ("RANDOMKEY", "$-1\r\n"),
    ("KEYS *", "*0\r\n"),
    ("SCAN 0", "*2\r\n$1\r\n0\r\n*0\r\n"),
    ("SCAN x", "-ERR invalid cursor\r\n"),
    ("SET only v", "+OK\r\n"),
    ("KEYS o*", "*1\r\n$4\r\nonly\r\n"),
    ("RANDOMKEY", "$4\r\nonly\r\n"),
    ("DBSIZE", ":1\r\n"),
    ("FLUSHDB ASYNC", "+OK\r\n"),
    ("FLUSHDB a b", "-ERR syntax error\r\n"),
    ("TIME", "*2\r\n$*\r\n*\r\n$*\r\n*\r\n"),
    ("COMMAND COUNT", ":*\r\n"),
    ("QUIT", "+OK\r\n"),
];

fn matches(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| {
                    s.is_char_boundary(head.len() + i) && matches(rest, &s[head.len() + i..])
                })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_through_raft() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut r = Raw::connect(&c.peers[&leader].client_addr()).await;
    for (line, want) in SCRIPT {
        let line = line.replace("\\x20", " ");
        let args: Vec<&[u8]> = if line.starts_with("APPEND s  ") {
            vec![b"APPEND", b"s", b" World"]
        } else {
            line.split(' ').map(str::as_bytes).collect()
        };
        let got = String::from_utf8_lossy(&r.cmd(&args).await).into_owned();
        assert!(
            matches(want, &got),
            "{line}\n  want {want:?}\n   got {got:?}"
        );
    }
    assert!(r.closed().await, "QUIT closes the connection");

    // The replicas hold exactly what the leader holds.
    c.converged().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_client_round_trips() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut con = c.client(leader).await;
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query_async(&mut con).await.expect("pipeline");
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    let vals: Vec<i64> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .expect("mget");
    assert_eq!(vals, (0..1000).collect::<Vec<i64>>());
    let n: i64 = redis::cmd("DBSIZE")
        .query_async(&mut con)
        .await
        .expect("dbsize");
    assert_eq!(n, 1000);

    // SCAN with a small COUNT visits every key at least once.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(7)
            .query_async(&mut con)
            .await
            .expect("scan");
        seen.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 1000);
    let data = c.converged().await;
    assert_eq!(data.len(), 1000);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_keys_are_refused_not_fatal() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut r = Raw::connect(&c.peers[&leader].client_addr()).await;
    let long = vec![b'k'; 70_000];
    let want = b"-ERR key is too long (redraft keys are at most 65000 bytes)\r\n";
    assert_eq!(r.cmd(&[b"SET", &long, b"v"]).await, want);
    assert_eq!(r.cmd(&[b"SET", &long, b"v", b"PX", b"1000"]).await, want);
    assert_eq!(r.cmd(&[b"MSET", b"ok", b"1", &long, b"2"]).await, want);
    assert_eq!(r.cmd(&[b"GET", &long]).await, want);
    let ok = vec![b'k'; 65_000];
    assert_eq!(
        r.cmd(&[b"SET", &ok, b"v", b"PX", b"100000"]).await,
        b"+OK\r\n"
    );
    assert_eq!(r.cmd(&[b"STRLEN", &ok]).await, b":1\r\n");
    c.converged().await;
    c.stop().await;
}

/// The same families through a typed client, as applications use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_family_through_the_redis_crate() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut con = c.client(leader).await;
    macro_rules! q {
        ($t:ty, $($arg:expr),+) => {{
            let mut cmd = redis::Cmd::new();
            $(cmd.arg($arg);)+
            let r: $t = cmd.query_async(&mut con).await.expect(stringify!($($arg),+));
            r
        }};
    }
    // connection / server
    assert_eq!(q!(String, "PING"), "PONG");
    assert_eq!(q!(String, "ECHO", "hi"), "hi");
    assert_eq!(q!(String, "CLIENT", "SETNAME", "typed"), "OK");
    assert_eq!(
        q!(Option<String>, "CLIENT", "GETNAME"),
        Some("typed".into())
    );
    assert!(q!(i64, "CLIENT", "ID") > 0);
    assert_eq!(
        q!(Vec<String>, "CONFIG", "GET", "appendonly"),
        vec!["appendonly", "yes"]
    );
    assert!(q!(String, "INFO", "server").contains("redis_version:7.0.15"));
    assert_eq!(
        q!(redis::Value, "ROLE").as_sequence().map(|s| s.len()),
        Some(3)
    );
    assert!(q!(i64, "COMMAND", "COUNT") >= 50);
    assert_eq!(q!(Vec<String>, "TIME").len(), 2);
    // strings
    assert_eq!(q!(Option<String>, "SET", "s", "v1", "GET"), None);
    assert_eq!(q!(Option<String>, "SET", "s", "v2", "NX"), None);
    assert_eq!(q!(String, "SET", "s", "v3", "XX", "PX", 100_000), "OK");
    assert!(!q!(bool, "SETNX", "s", "x"));
    assert_eq!(q!(String, "SETEX", "e", 100, "v"), "OK");
    assert_eq!(q!(String, "PSETEX", "pe", 100_000, "v"), "OK");
    assert_eq!(q!(Option<String>, "GETSET", "s", "v4"), Some("v3".into()));
    assert_eq!(
        q!(Option<String>, "GETEX", "s", "EX", 50),
        Some("v4".into())
    );
    assert_eq!(q!(i64, "TTL", "s"), 50);
    assert_eq!(q!(Option<String>, "GETDEL", "s"), Some("v4".into()));
    assert_eq!(q!(String, "MSET", "a", "1", "b", "2"), "OK");
    assert!(!q!(bool, "MSETNX", "a", "9", "z", "9"));
    assert_eq!(
        q!(Vec<Option<i64>>, "MGET", "a", "b", "nosuch"),
        vec![Some(1), Some(2), None]
    );
    assert_eq!(q!(i64, "APPEND", "str", "Hello"), 5);
    assert_eq!(q!(i64, "SETRANGE", "str", 5, " World"), 11);
    assert_eq!(q!(String, "GETRANGE", "str", 0, 4), "Hello");
    assert_eq!(q!(i64, "STRLEN", "str"), 11);
    assert_eq!(q!(i64, "INCR", "n"), 1);
    assert_eq!(q!(i64, "INCRBY", "n", 41), 42);
    assert_eq!(q!(i64, "DECR", "n"), 41);
    assert_eq!(q!(i64, "DECRBY", "n", 1), 40);
    assert_eq!(q!(String, "INCRBYFLOAT", "f", "0.1"), "0.1");
    assert_eq!(q!(String, "INCRBYFLOAT", "f", "0.2"), "0.3");
    // keyspace
    assert_eq!(q!(i64, "EXISTS", "a", "b", "a"), 3);
    assert_eq!(q!(String, "TYPE", "a"), "string");
    assert!(q!(bool, "EXPIRE", "a", 100));
    assert!(q!(bool, "PEXPIRE", "a", 100_000, "XX"));
    assert!(q!(i64, "PTTL", "a") > 99_000);
    assert!(q!(bool, "EXPIREAT", "a", 4_000_000_000u64));
    assert_eq!(q!(i64, "EXPIRETIME", "a"), 4_000_000_000);
    assert!(!q!(bool, "PEXPIREAT", "a", 4_000_000_000_000u64, "GT"));
    assert_eq!(q!(i64, "PEXPIRETIME", "a"), 4_000_000_000_000);
    assert!(q!(bool, "PERSIST", "a"));
    assert_eq!(q!(String, "RENAME", "a", "a2"), "OK");
    assert!(!q!(bool, "RENAMENX", "a2", "b"));
    assert!(q!(bool, "COPY", "a2", "a3"));
    assert_eq!(q!(i64, "DEL", "a2", "nosuch"), 1);
    assert_eq!(q!(i64, "UNLINK", "a3"), 1);
    let mut keys = q!(Vec<String>, "KEYS", "*");
    keys.sort();
    assert_eq!(keys, vec!["b", "e", "f", "n", "pe", "str"]);
    let (cursor, page): (u64, Vec<String>) = {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(0)
            .arg("MATCH")
            .arg("s*")
            .arg("COUNT")
            .arg(1000)
            .arg("TYPE")
            .arg("string");
        cmd.query_async(&mut con).await.expect("scan")
    };
    assert_eq!((cursor, page), (0, vec!["str".to_string()]));
    assert!(keys.contains(&q!(String, "RANDOMKEY")));
    assert_eq!(q!(i64, "DBSIZE"), 6);
    assert_eq!(q!(String, "FLUSHDB"), "OK");
    assert_eq!(q!(i64, "DBSIZE"), 0);
    c.converged().await;
    c.stop().await;
}
