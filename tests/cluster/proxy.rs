//! The proxy in front of a controller and three groups: plain clients see one Redis. Every
//! command family, multi-key commands split across slots, keyless commands fanned out,
//! 10k-command pipelines in order, and exactly-once appends through a leader kill and a
//! slot migration (compared against what each writer was told).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::AsyncCommands;
use redraft_proxy::wire::key_slot;
use redraft_proxy::{Proxy, ProxyConfig};
use tokio::io::AsyncWriteExt;

use crate::fixture::{wait_until, TestCluster};
use crate::raw::{encode, Raw};

pub(crate) async fn start() -> (TestCluster, Proxy) {
    let c = TestCluster::sharded(3, 3, |_| {}).await;
    c.join_all().await;
    let proxy = start_proxy(&c, Duration::from_secs(10)).await;
    (c, proxy)
}

/// A proxy that learns the cluster from `c`'s controller and retries for `retry_window`.
pub async fn start_proxy(c: &TestCluster, retry_window: Duration) -> Proxy {
    let seeds = c
        .members(0)
        .iter()
        .map(|id| c.peers[id].client_addr())
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ProxyConfig {
        seeds,
        retry_window,
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start(listener, config).expect("proxy");
    assert!(
        proxy.ready(Duration::from_secs(30)).await,
        "proxy learned the slots"
    );
    proxy
}

pub(crate) async fn client(proxy: &Proxy) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{}/", proxy.addr)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    con.set_response_timeout(Duration::from_secs(30));
    con
}

/// redis-rs names the error kind rather than printing Redis's code word.
pub(crate) fn is_crossslot(e: redis::RedisError) -> bool {
    format!("{e:?} {e}").to_lowercase().contains("crossslot")
}

/// Keys spread over every group: one per slot range of 1000.
fn spread_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key:{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_family_through_the_proxy() {
    let (c, proxy) = start().await;
    let mut con = client(&proxy).await;
    let keys = spread_keys(200);
    let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 100, "keys cover many slots");

    // Cross-slot MSET / MGET / EXISTS / DEL split per slot and merge in order.
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    let _: () = con.mset(&pairs).await.unwrap();
    // MEMORY USAGE is routed by its key (the second argument): a longer value takes more.
    let usage = |k: &str| redis::cmd("MEMORY").arg("USAGE").arg(k).clone();
    let short: i64 = usage(&keys[0]).query_async(&mut con).await.unwrap();
    let _: () = con.set("mem:long", "x".repeat(4000)).await.unwrap();
    let long: i64 = usage("mem:long").query_async(&mut con).await.unwrap();
    assert!(
        short > pairs[0].1.len() as i64 && long - short > 3900,
        "{short} {long}"
    );
    let none: Option<i64> = usage("mem:none").query_async(&mut con).await.unwrap();
    assert_eq!(none, None);
    // OBJECT is routed by its second argument too.
    let object = |sub: &str, k: &str| redis::cmd("OBJECT").arg(sub).arg(k).clone();
    let _: () = con.set("obj:int", 42).await.unwrap();
    let mut encodings = Vec::new();
    for k in ["obj:int", &keys[0], "mem:long", "obj:none"] {
        let e: Option<String> = object("ENCODING", k).query_async(&mut con).await.unwrap();
        encodings.push(e);
    }
    let want = [Some("int"), Some("embstr"), Some("raw"), None].map(|e| e.map(String::from));
    assert_eq!(encodings, want);
    let shared: i64 = object("REFCOUNT", "obj:int")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(shared, 2147483647);
    let _: () = con.del(&["mem:long", "obj:int"]).await.unwrap();
    // LCS reads two keys of one slot; SUBSTR is GETRANGE.
    let _: () = con.set("{lcs}a", "ohmytext").await.unwrap();
    let _: () = con.set("{lcs}b", "mynewtext").await.unwrap();
    let lcs: String = redis::cmd("LCS")
        .arg("{lcs}a")
        .arg("{lcs}b")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(lcs, "mytext");
    let substr: String = redis::cmd("SUBSTR")
        .arg("{lcs}a")
        .arg(2)
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(substr, "my");
    let apart: redis::RedisResult<String> = redis::cmd("LCS")
        .arg("{lcs}a")
        .arg("{other}b")
        .query_async(&mut con)
        .await;
    assert_eq!(apart.unwrap_err().code(), Some("CROSSSLOT"));
    let _: () = con.del(&["{lcs}a", "{lcs}b"]).await.unwrap();
    // Cluster nodes answer REPLICAOF as Redis Cluster's do.
    let replicaof: redis::RedisResult<()> = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut con)
        .await;
    assert_eq!(
        replicaof.unwrap_err().detail(),
        Some("REPLICAOF not allowed in cluster mode.")
    );
    // DUMP and RESTORE carry a value in Redis's serialized form, with a new TTL.
    let _: () = con.set("dump:a", "x".repeat(300)).await.unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg("dump:a")
        .query_async(&mut con)
        .await
        .unwrap();
    let restore = |key: &str, ttl: i64, payload: &[u8]| {
        redis::cmd("RESTORE").arg(key).arg(ttl).arg(payload).clone()
    };
    let _: () = restore("dump:b", 50_000, &payload)
        .query_async(&mut con)
        .await
        .unwrap();
    let b: String = con.get("dump:b").await.unwrap();
    assert_eq!(b, "x".repeat(300));
    let ttl: i64 = con.pttl("dump:b").await.unwrap();
    assert!(ttl > 40_000 && ttl <= 50_000, "{ttl}");
    let busy: redis::RedisResult<()> = restore("dump:b", 0, &payload).query_async(&mut con).await;
    assert_eq!(busy.unwrap_err().code(), Some("BUSYKEY"));
    // A payload redis-server 7.0.15 wrote: "ab" 30 times, LZF-compressed by liblzf.
    let from_redis =
        b"\x00\xc3\x0a\x3c\x02aba\xe0\x2e\x01\x01ab\x0a\x00\xbb\x16\xd3\xeb\xae\x6f\xc5\x74";
    let _: () = restore("dump:b", 0, from_redis)
        .arg("REPLACE")
        .query_async(&mut con)
        .await
        .unwrap();
    let b: String = con.get("dump:b").await.unwrap();
    assert_eq!(b, "ab".repeat(30));
    let ttl: i64 = con.pttl("dump:b").await.unwrap();
    assert_eq!(ttl, -1);
    let _: () = con.del(&["dump:a", "dump:b"]).await.unwrap();
    let mut ask: Vec<String> = keys.clone();
    ask.insert(7, "missing".into());
    let got: Vec<Option<String>> = con.mget(&ask).await.unwrap();
    for (k, v) in ask.iter().zip(&got) {
        let want = (k != "missing").then(|| format!("v-{k}"));
        assert_eq!(v, &want, "MGET {k}");
    }
    let n: i64 = redis::cmd("EXISTS")
        .arg(&keys[0])
        .arg(&keys[0])
        .arg(&keys[1])
        .arg("missing")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 3, "EXISTS counts repeats, as Redis");
    let n: i64 = redis::cmd("TOUCH")
        .arg(&keys[2..12])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 10);
    let dbsize: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(dbsize, 200, "DBSIZE sums the groups");
    let all: Vec<String> = con.keys("key:*").await.unwrap();
    assert_eq!(
        all.iter().cloned().collect::<BTreeSet<_>>(),
        keys.iter().cloned().collect()
    );

    // SCAN walks every group with one cursor: each key exactly once.
    let mut seen = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(17)
            .query_async(&mut con)
            .await
            .unwrap();
        seen.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    seen.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(seen, want, "a full SCAN returns every key once");
    let bad: redis::RedisResult<()> = redis::cmd("SCAN").arg("x1").query_async(&mut con).await;
    assert!(bad.unwrap_err().to_string().contains("invalid cursor"));
    let rk: String = redis::cmd("RANDOMKEY").query_async(&mut con).await.unwrap();
    assert!(keys.contains(&rk));

    // Strings.
    let _: () = con.set("s", "hello").await.unwrap();
    assert_eq!(con.append::<_, _, i64>("s", " world").await.unwrap(), 11);
    assert_eq!(con.strlen::<_, i64>("s").await.unwrap(), 11);
    assert_eq!(con.getrange::<_, String>("s", 0, 4).await.unwrap(), "hello");
    assert_eq!(
        con.setrange::<_, _, i64>("s", 6, "WORLD").await.unwrap(),
        11
    );
    assert_eq!(con.get::<_, String>("s").await.unwrap(), "hello WORLD");
    // Bitmaps: bits of strings, BITOP's keys in one slot.
    assert!(!con.setbit::<_, bool>("b", 7, true).await.unwrap());
    assert!(con.getbit::<_, bool>("b", 7).await.unwrap());
    assert_eq!(con.get::<_, String>("b").await.unwrap(), "\u{1}");
    let _: () = con.set("{b}x", "foobar").await.unwrap();
    assert_eq!(con.bitcount::<_, i64>("{b}x").await.unwrap(), 26);
    let bits: i64 = redis::cmd("BITCOUNT")
        .arg(&["{b}x", "5", "30", "BIT"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(bits, 17);
    let pos: i64 = redis::cmd("BITPOS")
        .arg(&["{b}x", "1", "2"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(pos, 17);
    let _: () = con.set("{b}y", "abcdef").await.unwrap();
    assert_eq!(
        con.bit_and::<_, _, i64>("{b}and", &["{b}x", "{b}y"])
            .await
            .unwrap(),
        6
    );
    assert_eq!(con.get::<_, String>("{b}and").await.unwrap(), "`bc`ab");
    let cross = con.bit_or::<_, _, i64>("{b}or", &["{b}x", "s"]).await;
    assert_eq!(
        cross.unwrap_err().code(),
        Some("CROSSSLOT"),
        "BITOP needs one slot"
    );
    let field: Vec<Option<i64>> = redis::cmd("BITFIELD")
        .arg(&["bf", "INCRBY", "u2", "0", "3", "OVERFLOW", "FAIL"])
        .arg(&["INCRBY", "u2", "0", "1", "GET", "u2", "0"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(field, [Some(3), None, Some(3)]);
    let ro: Vec<i64> = redis::cmd("BITFIELD_RO")
        .arg(&["bf", "GET", "i2", "0"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ro, [-1]);
    // HyperLogLog: sketches in strings; a union needs its keys in one slot.
    assert!(con
        .pfadd::<_, _, bool>("{h}a", &["x", "y", "z"])
        .await
        .unwrap());
    assert!(!con.pfadd::<_, _, bool>("{h}a", "x").await.unwrap());
    assert!(con.pfadd::<_, _, bool>("{h}b", &["z", "w"]).await.unwrap());
    assert_eq!(con.pfcount::<_, i64>("{h}a").await.unwrap(), 3);
    assert_eq!(con.pfcount::<_, i64>(&["{h}a", "{h}b"]).await.unwrap(), 4);
    let _: () = con.pfmerge("{h}u", &["{h}a", "{h}b"]).await.unwrap();
    assert_eq!(con.pfcount::<_, i64>("{h}u").await.unwrap(), 4);
    // A union of keys in several slots is counted by the proxy; PFMERGE, a write, needs
    // one slot.
    assert!(con.pfadd::<_, _, bool>("hx", &["z", "v"]).await.unwrap());
    assert_ne!(key_slot(b"hx"), key_slot(b"{h}a"));
    let union = con.pfcount::<_, i64>(&["{h}a", "hx", "missing"]).await;
    assert_eq!(union.unwrap(), 4);
    let not_hll = con.pfcount::<_, i64>(&["{h}a", "s"]).await.unwrap_err();
    assert_eq!(not_hll.code(), Some("WRONGTYPE"));
    let cross = con.pfmerge::<_, _, ()>("{h}a", "hx").await;
    assert_eq!(cross.unwrap_err().code(), Some("CROSSSLOT"));
    let not_hll = con.pfadd::<_, _, bool>("s", "x").await.unwrap_err();
    assert_eq!(not_hll.code(), Some("WRONGTYPE"));

    assert_eq!(con.incr::<_, _, i64>("n", 5).await.unwrap(), 5);
    assert_eq!(con.decr::<_, _, i64>("n", 2).await.unwrap(), 3);
    let f: String = redis::cmd("INCRBYFLOAT")
        .arg("f")
        .arg("1.5")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(f, "1.5");
    assert!(!con.set_nx::<_, _, bool>("s", "x").await.unwrap());
    let old: String = redis::cmd("GETSET")
        .arg("s")
        .arg("new")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(old, "hello WORLD");
    let gd: String = redis::cmd("GETDEL")
        .arg("s")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(gd, "new");
    let e: redis::RedisResult<i64> = con.incr("f", 1).await;
    assert!(e.unwrap_err().to_string().contains("not an integer"));

    // Keyspace and TTLs.
    let _: () = con.set_ex("t", "v", 100).await.unwrap();
    let ttl: i64 = con.ttl("t").await.unwrap();
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    assert!(con.persist::<_, bool>("t").await.unwrap());
    assert_eq!(con.ttl::<_, i64>("t").await.unwrap(), -1);
    let ty: String = redis::cmd("TYPE")
        .arg("t")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ty, "string");
    // Commands that must be atomic need one slot; hash tags give them one.
    let _: () = con.set("{u}a", "1").await.unwrap();
    let _: () = con.rename("{u}a", "{u}b").await.unwrap();
    assert_eq!(con.get::<_, String>("{u}b").await.unwrap(), "1");
    let cross: redis::RedisResult<()> = con.rename("{u}b", "{v}b").await;
    assert!(is_crossslot(cross.unwrap_err()));
    let ok: bool = redis::cmd("MSETNX")
        .arg("{u}x")
        .arg(1)
        .arg("{u}y")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(ok);
    let cross: redis::RedisResult<bool> = redis::cmd("MSETNX")
        .arg("{u}z")
        .arg(1)
        .arg("{v}z")
        .arg(2)
        .query_async(&mut con)
        .await;
    assert!(is_crossslot(cross.unwrap_err()));

    // The connection itself is the proxy's.
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let too_many: redis::RedisResult<String> = redis::cmd("PING")
        .arg("a")
        .arg("b")
        .query_async(&mut con)
        .await;
    assert!(
        format!("{:?}", too_many.unwrap_err())
            .contains("wrong number of arguments for 'ping' command"),
        "PING takes at most one argument"
    );
    // The proxy is one plain Redis; the nodes behind it say they are cluster nodes.
    let mode = |hello: Vec<u8>| {
        let text = String::from_utf8_lossy(&hello).into_owned();
        ["standalone", "cluster"]
            .into_iter()
            .find(|m| text.contains(&format!("$4\r\nmode\r\n${}\r\n{m}\r\n", m.len())))
    };
    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    assert_eq!(mode(raw.cmd(&[b"HELLO"]).await), Some("standalone"));
    let node = c.peers[&c.members(1)[0]].client_addr();
    let mut raw = Raw::connect(&node).await;
    assert_eq!(mode(raw.cmd(&[b"HELLO"]).await), Some("cluster"));
    assert_eq!(
        raw.call("CONFIG GET cluster-enabled").await,
        "*2\r\n$15\r\ncluster-enabled\r\n$3\r\nyes\r\n"
    );
    assert!(raw
        .call("INFO server")
        .await
        .contains("redis_mode:cluster\r\n"));
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut con)
        .await
        .unwrap();
    let mine: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("ID")
        .arg(id)
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        mine.starts_with(&format!("id={id} ")) && mine.lines().count() == 1,
        "{mine}"
    );
    // CLIENT LIST shows each connection's own protocol and last command, at the proxy and
    // at a node alike: `cmd` is the full name, `client|list` for the one asking.
    for addr in [proxy.addr.to_string(), node.clone()] {
        let mut a = Raw::connect(&addr).await;
        let mut b = Raw::connect(&addr).await;
        a.call("HELLO 3").await;
        assert_eq!(a.call("ECHO hi").await, "$2\r\nhi\r\n");
        let id = |r: String| r.trim_start_matches(':').trim_end().to_owned();
        let (a_id, b_id) = (id(a.call("CLIENT ID").await), id(b.call("CLIENT ID").await));
        a.call("ECHO again").await;
        let list = b.call(&format!("CLIENT LIST ID {a_id} {b_id}")).await;
        let lines: Vec<&str> = list.lines().skip(1).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{addr}: {list}");
        assert!(lines[0].starts_with(&format!("id={a_id} ")), "{list}");
        assert!(
            lines[0].contains(" cmd=echo ") && lines[0].contains(" resp=3 "),
            "{addr}: {list}"
        );
        assert!(
            lines[1].contains(" cmd=client|list ") && lines[1].contains(" resp=2 "),
            "{addr}: {list}"
        );
        assert!(!lines[0].contains(" fd=0 "), "the socket's fd: {list}");
    }
    let bad_type: redis::RedisResult<String> = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("foo")
        .query_async(&mut con)
        .await;
    assert!(format!("{:?}", bad_type.unwrap_err()).contains("Unknown client type 'foo'"));
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("me")
        .query_async(&mut con)
        .await
        .unwrap();
    let name: String = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(name, "me");
    let e: redis::RedisResult<()> = redis::cmd("NOPE").arg("x").query_async(&mut con).await;
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("unknown command 'NOPE'"));
    let e: redis::RedisResult<()> = redis::cmd("GET").query_async(&mut con).await;
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("wrong number of arguments for 'get' command"));

    // Controller commands and Redis Cluster's views describe the real groups.
    let q: redis::Value = redis::cmd("CLUSTER")
        .arg("QUERY")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(format!("{q:?}").contains("groups"), "{q:?}");
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(slots.len() >= 3);

    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    assert!(
        info.contains("redraft_role:proxy") && info.contains("db0:keys="),
        "{info}"
    );
    let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(dbsize, 0);
    proxy.stop();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_10k_mixed_commands_keeps_its_order() {
    let (c, proxy) = start().await;
    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    let mut bytes = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..10_000i64 {
        let k = format!("p{}", i % 97);
        match i % 4 {
            0 => {
                bytes.extend(encode(&[b"SET", k.as_bytes(), i.to_string().as_bytes()]));
                model.insert(k, i);
                want.push(b"+OK\r\n".to_vec());
            }
            1 | 3 => {
                bytes.extend(encode(&[b"INCR", k.as_bytes()]));
                let v = model.entry(k).or_insert(0);
                *v += 1;
                want.push(format!(":{v}\r\n").into_bytes());
            }
            _ => {
                bytes.extend(encode(&[b"GET", k.as_bytes()]));
                want.push(match model.get(&k) {
                    Some(v) => format!("${}\r\n{v}\r\n", v.to_string().len()).into_bytes(),
                    None => b"$-1\r\n".to_vec(),
                });
            }
        }
    }
    raw.send(&bytes).await;
    raw.expect_replies(&want).await;
    proxy.stop();
    c.stop().await;
}

/// CLIENT KILL closes other connections at once (one that does not read its replies too)
/// and the asking one after its reply, at the proxy (its own clients) and at a node alike;
/// CLIENT REPLY drops replies, not commands; COMMAND GETKEYS, CONFIG RESETSTAT and CLIENT
/// NO-EVICT answer as Redis does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_and_admin_commands_at_the_proxy_and_the_nodes() {
    let (c, proxy) = start().await;
    // At a node: the leader that owns the key `rk`.
    let node = c.peers[&c.members(1)[0]].client_addr();
    let owner = match Raw::connect(&node).await.call("SET rk 0").await {
        moved if moved.starts_with("-MOVED ") => {
            moved.trim_end().rsplit(' ').next().unwrap().to_string()
        }
        ok => {
            assert_eq!(ok, "+OK\r\n");
            node
        }
    };
    let field = |line: &str, name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    for addr in [proxy.addr.to_string(), owner.clone()] {
        let mut me = Raw::connect(&addr).await;
        let mut victim = Raw::connect(&addr).await;
        let mut bystander = Raw::connect(&addr).await;
        let id = victim.call("CLIENT ID").await;
        let id = id.trim_start_matches(':').trim_end();
        assert_eq!(me.call(&format!("CLIENT KILL ID {id}")).await, ":1\r\n");
        assert!(
            victim.closed().await,
            "{addr}: the killed connection is closed"
        );
        assert_eq!(bystander.call("PING").await, "+PONG\r\n");
        // The old form names an address: +OK, and `No such client` once it is gone.
        let info = bystander.call("CLIENT INFO").await;
        let (peer, local) = (field(&info, "addr"), field(&info, "laddr"));
        assert_eq!(local, addr, "laddr is the address connected to");
        assert_eq!(me.call(&format!("CLIENT KILL {peer}")).await, "+OK\r\n");
        assert!(bystander.closed().await, "{addr}: killed by address");
        // Closed on the killer's word, gone from the list a moment later.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while me.call(&format!("CLIENT KILL {peer}")).await != "-ERR No such client\r\n" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr}: {peer} still listed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            me.call("CLIENT KILL ID 0").await,
            "-ERR client-id should be greater than 0\r\n"
        );
        assert_eq!(me.call("CLIENT KILL TYPE pubsub").await, ":0\r\n");
        assert_eq!(me.call("CLIENT NO-EVICT on").await, "+OK\r\n");
        assert_eq!(
            me.call("CLIENT NO-EVICT maybe").await,
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            me.call("COMMAND GETKEYS mset a 1 {a}b 2").await,
            "*2\r\n$1\r\na\r\n$4\r\n{a}b\r\n"
        );
        assert_eq!(
            me.call("COMMAND GETKEYSANDFLAGS rename a b").await,
            "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n\
             *2\r\n$1\r\nb\r\n*2\r\n+OW\r\n+update\r\n"
        );
        assert_eq!(
            me.call("COMMAND GETKEYS get a b").await,
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        // INFO counts commands and connections, and RESETSTAT starts them again: at the
        // proxy too, whose INFO gives what `redis-cli --stat` reads.
        let field = |info: &str, name: &str| -> i64 {
            let line = info.lines().find(|l| l.starts_with(&format!("{name}:")));
            line.and_then(|l| l.split(':').nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("{addr}: no {name} in {info}"))
        };
        let info = me.call("INFO").await;
        assert!(
            field(&info, "total_commands_processed") > 5,
            "{addr}: {info}"
        );
        assert!(
            field(&info, "total_connections_received") >= 1,
            "{addr}: {info}"
        );
        assert!(field(&info, "used_memory") > 0, "{addr}: {info}");
        assert_eq!(field(&info, "blocked_clients"), 0, "{addr}: {info}");
        assert_eq!(me.call("CONFIG RESETSTAT").await, "+OK\r\n");
        let info = me.call("INFO stats").await;
        assert_eq!(
            field(&info, "total_commands_processed"),
            1,
            "{addr}: {info}"
        );
        assert_eq!(
            field(&info, "total_connections_received"),
            0,
            "{addr}: {info}"
        );
        // Per command and per error code, as Redis counts them (RESETSTAT cleared them).
        assert_eq!(me.call("SET rk 1").await, "+OK\r\n");
        assert_eq!(me.call("INCR rk").await, ":2\r\n");
        assert_eq!(me.call("SET rk x").await, "+OK\r\n");
        assert_eq!(
            me.call("INCR rk").await,
            "-ERR value is not an integer or out of range\r\n"
        );
        // (STRLEN, not GET: the previous round's hog may still have GETs on their way to
        // the node.)
        assert_eq!(
            me.call("STRLEN").await,
            "-ERR wrong number of arguments for 'strlen' command\r\n"
        );
        assert!(me.call("NOSUCH").await.starts_with("-ERR unknown command"));
        let info = me.call("INFO commandstats").await;
        let stat = |name: &str| -> Vec<String> {
            let line = info
                .lines()
                .find(|l| l.starts_with(&format!("cmdstat_{name}:")));
            let line = line.unwrap_or_else(|| panic!("{addr}: no {name} in {info}"));
            let fields = line.split_once(':').unwrap().1.split(',');
            fields
                .filter(|f| !f.starts_with("usec"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            stat("set"),
            ["calls=2", "rejected_calls=0", "failed_calls=0"]
        );
        assert_eq!(
            stat("incr"),
            ["calls=2", "rejected_calls=0", "failed_calls=1"]
        );
        assert_eq!(
            stat("strlen"),
            ["calls=0", "rejected_calls=1", "failed_calls=0"]
        );
        assert!(!info.contains("nosuch"), "{addr}: {info}");
        let errors = me.call("INFO errorstats").await;
        assert!(
            errors.contains("# Errorstats\r\nerrorstat_ERR:count=3\r\n"),
            "{addr}: {errors}"
        );
        let info = me.call("INFO").await;
        assert!(info.contains("# Errorstats\r\n"), "{addr}: {info}");
        assert!(!info.contains("# Commandstats"), "{addr}: not by default");
        assert_eq!(field(&info, "total_error_replies"), 3, "{addr}: {info}");
        let latency = me.call("INFO latencystats").await;
        assert!(
            latency.contains("latency_percentiles_usec_set:p50="),
            "{addr}: {latency}"
        );
        let histogram = me.call("LATENCY HISTOGRAM set get").await;
        assert!(
            histogram.starts_with(
                "*2\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec\r\n"
            ),
            "{addr}: only SET ran: {histogram}"
        );
        assert_eq!(me.call("LATENCY LATEST").await, "*0\r\n");
        // The slow log, with every command slow enough for it.
        assert_eq!(
            me.call("CONFIG SET slowlog-log-slower-than 0").await,
            "+OK\r\n"
        );
        assert_eq!(me.call("SLOWLOG RESET").await, "+OK\r\n");
        assert_eq!(me.call("CLIENT SETNAME slow").await, "+OK\r\n");
        assert_eq!(me.call("SET rk 1").await, "+OK\r\n");
        let log = me.call("SLOWLOG GET -1").await;
        // This client's entries once it was named (other clients of the server, such as
        // the proxy's topology polls at a node, may be logged too): SETNAME and the SET,
        // newest first, each with the client's address and name.
        let peer = me.stream.local_addr().unwrap().to_string();
        let mine = format!("${}\r\n{peer}\r\n$4\r\nslow\r\n", peer.len());
        let set = format!("*3\r\n$3\r\nSET\r\n$2\r\nrk\r\n$1\r\n1\r\n{mine}");
        let setname = format!("$7\r\nSETNAME\r\n$4\r\nslow\r\n{mine}");
        assert_eq!(log.matches(&mine).count(), 2, "{addr}: {log}");
        let (at_set, at_setname) = (log.find(&set), log.find(&setname));
        assert!(
            at_set.is_some() && at_setname.is_some() && at_set < at_setname,
            "{addr}: {log}"
        );
        assert_eq!(
            me.call("CONFIG SET slowlog-log-slower-than -1").await,
            "+OK\r\n"
        );
        assert_eq!(me.call("SLOWLOG RESET").await, "+OK\r\n");
        assert_eq!(me.call("GET rk").await, "$1\r\n1\r\n");
        assert_eq!(me.call("SLOWLOG LEN").await, ":0\r\n", "{addr}: off");
        assert_eq!(
            me.call("CONFIG SET slowlog-log-slower-than 10000").await,
            "+OK\r\n"
        );
        // CLIENT PAUSE WRITE holds every client's writes, not its reads, until UNPAUSE;
        // as in Redis, that includes an EXEC whose queue holds a write, queued before.
        let (mut tx_write, mut tx_read) = (Raw::connect(&addr).await, Raw::connect(&addr).await);
        for (tx, cmd) in [(&mut tx_write, "SET {rk}t in-tx"), (&mut tx_read, "GET rk")] {
            assert_eq!(tx.call("MULTI").await, "+OK\r\n");
            assert_eq!(tx.call("GET rk").await, "+QUEUED\r\n");
            assert_eq!(tx.call(cmd).await, "+QUEUED\r\n");
        }
        assert_eq!(me.call("CLIENT PAUSE 60000 WRITE").await, "+OK\r\n");
        let mut writer = Raw::connect(&addr).await;
        let mut paused = tokio::spawn(async move { writer.call("SET rk paused").await });
        let paused_exec = tokio::spawn(async move { tx_write.call("EXEC").await });
        assert_eq!(
            me.call("GET rk").await,
            "$1\r\n1\r\n",
            "{addr}: reads go on"
        );
        assert_eq!(
            tx_read.call("EXEC").await,
            "*2\r\n$1\r\n1\r\n$1\r\n1\r\n",
            "{addr}: a transaction of reads goes on"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut paused)
                .await
                .is_err(),
            "{addr}: the write waits"
        );
        assert!(
            !paused_exec.is_finished(),
            "{addr}: the transaction with a write waits"
        );
        assert_eq!(me.call("GET {rk}t").await, "$-1\r\n", "{addr}: nothing ran");
        assert_eq!(me.call("CLIENT UNPAUSE").await, "+OK\r\n");
        assert_eq!(paused.await.unwrap(), "+OK\r\n");
        let exec = paused_exec.await.unwrap();
        assert!(
            exec.ends_with("+OK\r\n") && exec.starts_with("*2\r\n$"),
            "{addr}: {exec}"
        );
        assert_eq!(me.call("GET rk").await, "$6\r\npaused\r\n");
        assert_eq!(me.call("DEL {rk}t").await, ":1\r\n");
        // An unknown name is named first, wherever it is.
        assert_eq!(
            me.call("CONFIG SET appendonly yes nosuch 1").await,
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
        );
        // A name is the whole argument (a NUL in it names no parameter); the error
        // prints it up to the NUL, as Redis's %s does.
        me.send(&encode(&[b"CONFIG", b"SET", b"slowlog-max-len\0x", b"100"]))
            .await;
        assert_eq!(
            me.reply().await,
            b"-ERR Unknown option or number of arguments for CONFIG SET - 'slowlog-max-len'\r\n"
        );
        // A client that does not read its replies is closed too: its connection waits on
        // the socket, not on a command.
        let big = "x".repeat(64 * 1024);
        assert_eq!(me.call(&format!("SET rk {big}")).await, "+OK\r\n");
        let mut hog = Raw::connect(&addr).await;
        let hog_id = hog.call("CLIENT ID").await;
        let hog_id = hog_id.trim_start_matches(':').trim_end().to_string();
        hog.send(&encode(&[b"GET", b"rk"]).repeat(1000)).await;
        // 64 MB of replies do not fit in the sockets' buffers (a receive buffer grows only
        // as its owner reads): once the first reply waits to be read, the server is stuck
        // writing, or about to be.
        let mut peeked = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while hog.stream.peek(&mut peeked).await.unwrap() < peeked.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr}: replies to the hog"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(me.call(&format!("CLIENT KILL ID {hog_id}")).await, ":1\r\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while me.call(&format!("CLIENT LIST ID {hog_id}")).await != "$0\r\n\r\n" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr}: the hog is still served"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Spared by default; with SKIPME no, closed once it has its answer.
        let my_id = me.call("CLIENT ID").await;
        let my_id = my_id.trim_start_matches(':').trim_end().to_string();
        assert_eq!(me.call(&format!("CLIENT KILL ID {my_id}")).await, ":0\r\n");
        me.send(&encode(&[
            b"CLIENT",
            b"KILL",
            b"ID",
            my_id.as_bytes(),
            b"SKIPME",
            b"no",
        ]))
        .await;
        me.send(&encode(&[b"PING"])).await;
        assert_eq!(me.reply().await, b":1\r\n");
        let rest = me.rest().await;
        assert!(
            rest.is_empty(),
            "{addr}: closed after the reply, nothing behind it run: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
    // CLIENT REPLY OFF and SKIP drop replies, not commands: a write whose reply was dropped
    // is applied, and seen by what follows.
    for addr in [proxy.addr.to_string(), owner] {
        let mut raw = Raw::connect(&addr).await;
        let mut pipeline = Vec::new();
        for line in [
            "CLIENT REPLY OFF",
            "SET rk 1",
            "INCR rk",
            "GET rk",
            "NOSUCH",
            "CLIENT REPLY maybe",
            "CLIENT REPLY ON",
            "CLIENT REPLY SKIP",
            "APPEND rk x",
            "CLIENT REPLY maybe",
            "GET rk",
        ] {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            pipeline.extend(encode(&args));
        }
        raw.send(&pipeline).await;
        raw.expect_replies(&[
            b"+OK\r\n".to_vec(),
            b"-ERR syntax error\r\n".to_vec(),
            b"$2\r\n2x\r\n".to_vec(),
        ])
        .await;
        assert_eq!(raw.call("PING").await, "+PONG\r\n", "{addr}");
    }
}

/// Replies the proxy gives itself (PING, ECHO) are ready at once: a pipeline longer than
/// the proxy's window of them, sent in one write, used to stop after the first window's
/// replies, the rest parked in the proxy's buffer waiting for a read that never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pipeline_of_commands_the_proxy_answers_itself_is_answered_in_full() {
    let (c, proxy) = start().await;
    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    let mut bytes = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    for i in 0..1000 {
        if i % 2 == 0 {
            bytes.extend(encode(&[b"PING"]));
            want.push(b"+PONG\r\n".to_vec());
        } else {
            let s = i.to_string();
            bytes.extend(encode(&[b"ECHO", s.as_bytes()]));
            want.push(format!("${}\r\n{s}\r\n", s.len()).into_bytes());
        }
    }
    bytes.extend(encode(&[b"GET", b"absent"]));
    want.push(b"$-1\r\n".to_vec());
    raw.send(&bytes).await;
    raw.expect_replies(&want).await;
    proxy.stop();
    c.stop().await;
}

const WRITERS: usize = 4;
const KEYS: usize = 12;

/// What one writer was told: (key, token) acknowledged, and the errors it got.
type Outcome = (Vec<(String, String)>, Vec<String>);

/// Pipelined writers APPENDing unique tokens through the proxy, each recording what it
/// was told.
struct Writers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
}

fn start_writers(proxy: &Proxy) -> Writers {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let addr = proxy.addr.to_string();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut raw = Raw::connect(&addr).await;
            let mut acked: Vec<(String, String)> = Vec::new();
            let mut errors = Vec::new();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 64 {
                // A pipeline of 16 appends over several keys (and so groups).
                let mut batch = Vec::new();
                let mut bytes = Vec::new();
                for _ in 0..16 {
                    let key = format!("list:{}", (i * 7 + w) % KEYS);
                    let token = format!("w{w}-{i},");
                    bytes.extend(encode(&[b"APPEND", key.as_bytes(), token.as_bytes()]));
                    batch.push((key, token));
                    i += 1;
                }
                raw.send(&bytes).await;
                for (key, token) in batch {
                    let r = raw.reply().await;
                    if r.first() == Some(&b':') {
                        acked.push((key, token));
                    } else {
                        errors.push(String::from_utf8_lossy(&r).into_owned());
                    }
                }
            }
            (acked, errors)
        }));
    }
    Writers { stop, tasks }
}

impl Writers {
    /// Stops the writers and checks: no client saw an error, every key holds every
    /// acknowledged token exactly once and nothing else, each writer's tokens in the order
    /// it sent them.
    async fn check(self, proxy: &Proxy) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut acked = Vec::new();
        for t in self.tasks {
            let (a, errors) = t.await.unwrap();
            assert!(
                errors.is_empty(),
                "clients of the proxy saw errors: {errors:?}"
            );
            acked.extend(a);
        }
        assert!(acked.len() >= WRITERS * 64);
        let mut con = client(proxy).await;
        let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for k in 0..KEYS {
            let key = format!("list:{k}");
            let v: Option<String> = con.get(&key).await.unwrap();
            let tokens: Vec<String> = v
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| format!("{t},"))
                .collect();
            stored.insert(key, tokens);
        }
        for (key, token) in &acked {
            let n = stored[key].iter().filter(|t| *t == token).count();
            assert_eq!(n, 1, "{token} in {key} {n} times");
        }
        let total: usize = stored.values().map(Vec::len).sum();
        assert_eq!(total, acked.len(), "no token beyond the acknowledged ones");
        for tokens in stored.values() {
            for w in 0..WRITERS {
                let prefix = format!("w{w}-");
                let seq: Vec<usize> = tokens
                    .iter()
                    .filter_map(|t| t.strip_prefix(&prefix))
                    .map(|n| n.trim_end_matches(',').parse().unwrap())
                    .collect();
                assert!(
                    seq.windows(2).all(|p| p[0] < p[1]),
                    "writer {w} order: {seq:?}"
                );
            }
        }
    }
}

/// A client pipelining `SETBIT bits:<n> <i> 1` over fresh bits of keys spread over the
/// groups: applied once, each answers 0 (the bit was clear); applied twice, the second
/// would answer 1. Returns the acknowledged (key, bit)s.
fn start_bit_writer(
    proxy: &Proxy,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, u64)>> {
    let addr = proxy.addr.to_string();
    tokio::spawn(async move {
        let mut raw = Raw::connect(&addr).await;
        let mut acked = Vec::new();
        let mut i = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 256 {
            let mut batch = Vec::new();
            let mut bytes = Vec::new();
            for _ in 0..16 {
                let key = format!("bits:{}", i % 6);
                let bit = i / 6;
                bytes.extend(encode(&[
                    b"SETBIT",
                    key.as_bytes(),
                    bit.to_string().as_bytes(),
                    b"1",
                ]));
                batch.push((key, bit));
                i += 1;
            }
            raw.send(&bytes).await;
            for (key, bit) in batch {
                let r = raw.reply().await;
                assert_eq!(r, b":0\r\n", "SETBIT {key} {bit}: applied twice or failed");
                acked.push((key, bit));
            }
        }
        acked
    })
}

/// Waits until the writers have made progress (acknowledged appends are visible).
async fn writers_running(proxy: &Proxy) {
    let mut con = client(proxy).await;
    wait_until(Duration::from_secs(10), "writers appending", || {
        let mut con = con.clone();
        async move {
            let n: i64 = redis::cmd("STRLEN")
                .arg("list:0")
                .query_async(&mut con)
                .await
                .ok()?;
            (n > 100).then_some(())
        }
    })
    .await;
    let _: () = redis::cmd("PING").query_async(&mut con).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_kill_under_pipelined_appends_applies_each_once() {
    let (mut c, proxy) = start().await;
    let writers = start_writers(&proxy);
    let bits = start_bit_writer(&proxy, writers.stop.clone());
    writers_running(&proxy).await;
    let victim = c.leader_of(2).await;
    c.kill(victim).await;
    // The group elects a new leader; the proxy finds it.
    c.leader_of(2).await;
    writers_running(&proxy).await;
    c.restart(victim).await;
    writers.check(&proxy).await;
    // Every acknowledged bit is set, and no other.
    let acked = bits.await.unwrap();
    let mut con = client(&proxy).await;
    for k in 0..6 {
        let key = format!("bits:{k}");
        let n: i64 = redis::cmd("BITCOUNT")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        let want = acked.iter().filter(|(a, _)| *a == key).count() as i64;
        assert_eq!(n, want, "{key}");
    }
    for (key, bit) in acked.iter().step_by(97) {
        assert!(
            con.getbit::<_, bool>(key, *bit as usize).await.unwrap(),
            "{key} {bit}"
        );
    }
    proxy.stop();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_under_load_is_invisible_to_proxy_clients() {
    let (c, proxy) = start().await;
    let writers = start_writers(&proxy);
    writers_running(&proxy).await;
    // Move every slot of the written keys to group 3, then rebalance them back.
    let mut num = 0;
    for k in 0..KEYS {
        let slot = key_slot(format!("list:{k}").as_bytes());
        let args = vec!["MOVE".to_string(), slot.to_string(), "3".to_string()];
        if let redis::Value::Int(n) = c.cluster_cmd(&args).await {
            num = n as u64;
        }
    }
    c.settled(num).await;
    writers_running(&proxy).await;
    let r = c.cluster_cmd(&["REBALANCE".to_string()]).await;
    let redis::Value::Int(n) = r else {
        panic!("REBALANCE: {r:?}")
    };
    c.settled(n as u64).await;
    writers.check(&proxy).await;
    wait_until(
        Duration::from_secs(5),
        "the proxy saw the new configurations",
        || async { (proxy.shared.backends.topo.epoch() >= n as u64).then_some(()) },
    )
    .await;
    proxy.stop();
    c.stop().await;
}

/// Clients pipelining writes to one slot while it moves: the writes refused on the way
/// (TRYAGAIN, MOVED) are retried each on its own, and a retry that arrives later must not
/// let the writes sent behind it apply first, nor a read behind them miss it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writers_keep_their_order_while_their_slot_moves() {
    let (c, proxy) = start().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, stop) = (proxy.addr.to_string(), stop.clone());
            tokio::spawn(async move {
                let key = format!("{{hot}}:{w}");
                let mut raw = Raw::connect(&addr).await;
                let (mut sent, mut acked, mut errors) = (0u64, Vec::new(), Vec::new());
                let mut len = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // 40 appends, then a read that must see all of them.
                    let mut bytes = Vec::new();
                    for i in sent..sent + 40 {
                        let token = format!("{i},");
                        len += token.len();
                        bytes.extend(encode(&[b"APPEND", key.as_bytes(), token.as_bytes()]));
                    }
                    bytes.extend(encode(&[b"STRLEN", key.as_bytes()]));
                    raw.send(&bytes).await;
                    for i in sent..sent + 40 {
                        let r = raw.reply().await;
                        match r.first() {
                            Some(b':') => acked.push(i),
                            _ => errors.push(String::from_utf8_lossy(&r).into_owned()),
                        }
                    }
                    let r = raw.reply().await;
                    if r != format!(":{len}\r\n").into_bytes() {
                        errors.push(format!(
                            "STRLEN after {} appends: {} (want {len})",
                            sent + 40,
                            String::from_utf8_lossy(&r)
                        ));
                    }
                    sent += 40;
                }
                (key, acked, errors)
            })
        })
        .collect();
    let slot = key_slot(b"{hot}");
    let mut con = client(&proxy).await;
    let appended = |con: &redis::aio::MultiplexedConnection| {
        let mut con = con.clone();
        async move {
            let n: i64 = redis::cmd("STRLEN")
                .arg("{hot}:0")
                .query_async(&mut con)
                .await
                .unwrap_or(0);
            n
        }
    };
    for gid in [3, 1, 2, 3] {
        let before = appended(&con).await;
        let args = vec!["MOVE".to_string(), slot.to_string(), gid.to_string()];
        let redis::Value::Int(num) = c.cluster_cmd(&args).await else {
            panic!("MOVE failed")
        };
        c.settled(num as u64).await;
        // Writes went on across the move.
        wait_until(Duration::from_secs(10), "appends after the move", || {
            let con = con.clone();
            async move { (appended(&con).await > before + 200).then_some(()) }
        })
        .await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let (key, acked, errors) = w.await.unwrap();
        assert!(
            errors.is_empty(),
            "{key}: the writer saw errors: {errors:?}"
        );
        let v: String = con.get(&key).await.unwrap();
        let stored: Vec<u64> = v
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().unwrap())
            .collect();
        let out_of_order: Vec<_> = stored.windows(2).filter(|p| p[0] >= p[1]).collect();
        assert!(
            out_of_order.is_empty(),
            "{key}: applied out of order: {out_of_order:?}"
        );
        assert_eq!(
            stored, acked,
            "{key}: each acknowledged append once, nothing else"
        );
    }
    proxy.stop();
    c.stop().await;
}

/// SAVE, BGSAVE and LASTSAVE: a replica's Raft snapshot is its dump. At a node SAVE
/// answers once the node's snapshot holds everything it had applied; through the proxy
/// every group's leader saves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_bgsave_snapshot_the_replicas() {
    let (c, proxy) = start().await;
    let mut con = client(&proxy).await;
    let pairs: Vec<(String, i64)> = (0..300).map(|i| (format!("s:{i}"), i)).collect();
    let _: () = con.mset(&pairs).await.unwrap();
    let leader = c.leader_of(1).await;
    let mut r = Raw::connect(&c.peers[&leader].client_addr()).await;
    let metrics = |c: &TestCluster, id| c.node(id).group().raft().metrics().borrow().clone();
    let index = |l: Option<openraft::LogId<u64>>| l.map_or(0, |l| l.index);
    let persistence_field = |info: &str, name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {info}"))
            .trim()
            .parse()
            .unwrap()
    };
    let started = r.call("LASTSAVE").await;
    let started: u64 = started[1..].trim().parse().unwrap();
    let info = r.call("INFO persistence").await;
    let changes = persistence_field(&info, "rdb_changes_since_last_save");
    assert!(changes > 0, "{info}");
    assert_eq!(persistence_field(&info, "rdb_last_save_time"), started);
    let applied = index(metrics(&c, leader).last_applied);
    assert_eq!(r.call("SAVE").await, "+OK\r\n");
    assert!(index(metrics(&c, leader).snapshot) >= applied);
    let saved = r.call("LASTSAVE").await;
    assert!(saved[1..].trim().parse::<u64>().unwrap() >= started);
    let info = r.call("INFO persistence").await;
    assert!(persistence_field(&info, "rdb_changes_since_last_save") < changes);
    assert_eq!(
        r.call("BGSAVE SCHEDULE").await,
        "+Background saving started\r\n"
    );
    assert_eq!(r.call("BGSAVE NOW").await, "-ERR syntax error\r\n");
    // Through the proxy: each group's leader saves; LASTSAVE is the oldest of theirs.
    let mut p = Raw::connect(&proxy.addr.to_string()).await;
    let leaders = [
        c.leader_of(1).await,
        c.leader_of(2).await,
        c.leader_of(3).await,
    ];
    let applied: Vec<u64> = leaders
        .iter()
        .map(|id| index(metrics(&c, *id).last_applied))
        .collect();
    assert_eq!(p.call("SAVE").await, "+OK\r\n");
    for (id, applied) in leaders.iter().zip(applied) {
        assert!(index(metrics(&c, *id).snapshot) >= applied, "node {id}");
    }
    assert_eq!(p.call("BGSAVE").await, "+Background saving started\r\n");
    let lastsave = p.call("LASTSAVE").await;
    assert!(
        lastsave[1..].trim().parse::<u64>().unwrap() >= started,
        "{lastsave}"
    );
    proxy.stop();
    c.stop().await;
}

/// A read held at its slot's old owner while the slot moves, and a write pipelined behind
/// it once the proxy has learned the new owner: the write must not reach the new owner
/// first (it did, sent at once on the new routes, and the read, refused by the old owner
/// and retried at the new one, saw it). As on one Redis connection, the read answers the
/// value from before the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_retried_after_its_slot_moved_is_not_overtaken_by_a_write_behind_it() {
    let (mut c, proxy) = start().await;
    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    assert_eq!(raw.cmd(&[b"SET", b"{r}k", b"old"]).await, b"+OK\r\n");
    let slot = key_slot(b"{r}");
    let latest = |c: &TestCluster| {
        c.node(c.members(0)[0])
            .group()
            .reader()
            .cluster()
            .ctl
            .latest()
    };
    let from = latest(&c).owner(slot);
    let to = *c.data_gids().iter().find(|g| **g != from).unwrap();
    // The old owner's leader holds every client command, the proxy's GET among them.
    let held = c.leader_of(from).await;
    let mut node = c.client(held).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60000)
        .arg("ALL")
        .query_async(&mut node)
        .await
        .unwrap();
    raw.send(&encode(&[b"GET", b"{r}k"])).await;
    let args = vec!["MOVE".to_string(), slot.to_string(), to.to_string()];
    let redis::Value::Int(num) = c.cluster_cmd(&args).await else {
        panic!("MOVE failed")
    };
    c.settled(num as u64).await;
    // The proxy has the new routes: the write behind the GET would go to the new owner.
    let mut other = client(&proxy).await;
    wait_until(
        Duration::from_secs(30),
        "the proxy to learn the move",
        || {
            let mut other = other.clone();
            async move {
                let info: String = redis::cmd("INFO")
                    .arg("cluster")
                    .query_async(&mut other)
                    .await
                    .ok()?;
                let config: u64 = info
                    .lines()
                    .find_map(|l| l.strip_prefix("redraft_config:"))?
                    .trim()
                    .parse()
                    .ok()?;
                (config >= num as u64).then_some(())
            }
        },
    )
    .await;
    raw.send(&encode(&[b"SET", b"{r}k", b"new"])).await;
    // The held GET's connection drops: the proxy retries it at the slot's new owner.
    c.kill(held).await;
    assert_eq!(
        String::from_utf8_lossy(&raw.reply().await),
        "$3\r\nold\r\n",
        "the GET sent before the SET"
    );
    assert_eq!(raw.reply().await, b"+OK\r\n");
    let now: String = other.get("{r}k").await.unwrap();
    assert_eq!(now, "new");
    assert_eq!(latest(&c).owner(slot), to);
    proxy.stop();
    c.stop().await;
}

/// A pipeline runs in order as on one Redis connection, also around writes a node refuses
/// as it parses them (each was once left out of the client's order, so the requests
/// behind it that named it waited, retried, and lost their order), a GETEX without options
/// (which the node reads rather than writes) and commands that fan out to every group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_keeps_its_order_around_refused_writes_and_fan_outs() {
    let (c, proxy) = start().await;
    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    let syntax = b"-ERR syntax error\r\n".to_vec();
    let nil = b"$-1\r\n".to_vec();
    let ok = b"+OK\r\n".to_vec();
    let bulk = |v: &str| format!("${}\r\n{v}\r\n", v.len()).into_bytes();
    type Case<'a> = (&'a [&'a str], Vec<&'a [&'a str]>, Vec<Vec<u8>>, &'a str);
    let cases: Vec<Case> = vec![
        (
            &[],
            vec![
                &["SET", "b", "1", "FOO"],
                &["SET", "{t}a", "1", "FOO"],
                &["MGET", "b", "{t}a"],
                &["SET", "{t}a", "later"],
            ],
            vec![
                syntax.clone(),
                syntax.clone(),
                [b"*2\r\n".to_vec(), nil.clone(), nil.clone()].concat(),
                ok.clone(),
            ],
            "*1\r\n$4\r\n{t}a\r\n",
        ),
        (
            &["{t}a", "orig"],
            vec![
                &["SET", "b", "1", "FOO"],
                &["SET", "{t}a", "1", "FOO"],
                &["MGET", "b", "{t}a"],
                &["DEL", "{t}a"],
            ],
            vec![
                syntax.clone(),
                syntax.clone(),
                [b"*2\r\n".to_vec(), nil.clone(), bulk("orig")].concat(),
                b":1\r\n".to_vec(),
            ],
            "*0\r\n",
        ),
        (
            &[],
            vec![
                &["SET", "{t}c", "1", "FOO"],
                &["SET", "{t}n", "0"],
                &["DBSIZE"],
            ],
            vec![syntax.clone(), ok.clone(), b":1\r\n".to_vec()],
            "*1\r\n$4\r\n{t}n\r\n",
        ),
        (
            &[],
            vec![
                &["SET", "{t}c", "1", "FOO"],
                &["SET", "{t}n", "1"],
                &["FLUSHALL"],
            ],
            vec![syntax.clone(), ok.clone(), ok.clone()],
            "*0\r\n",
        ),
        (
            &["{g}x", "v"],
            vec![&["GETEX", "{g}x"], &["GET", "{g}x"], &["DEL", "{g}x"]],
            vec![bulk("v"), bulk("v"), b":1\r\n".to_vec()],
            "*0\r\n",
        ),
    ];
    // Each case a few times: the reordering was a race between retries.
    for round in 0..5 {
        for (i, (set, pipeline, want, keys)) in cases.iter().enumerate() {
            assert_eq!(raw.cmd(&[b"FLUSHALL"]).await, ok);
            if let [k, v] = set {
                assert_eq!(raw.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]).await, ok);
            }
            let bytes: Vec<u8> = pipeline
                .iter()
                .flat_map(|args| encode(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()))
                .collect();
            raw.send(&bytes).await;
            for (j, w) in want.iter().enumerate() {
                let got = raw.reply().await;
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(w),
                    "round {round}, case {i}, reply {j}"
                );
            }
            assert_eq!(
                String::from_utf8_lossy(&raw.cmd(&[b"KEYS", b"*"]).await),
                *keys,
                "round {round}, case {i}: the keys after it"
            );
        }
    }
    proxy.stop();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_redis_errors_and_nothing_behind_them_runs() {
    let (c, proxy) = start().await;
    let addr = proxy.addr.to_string();
    for (bytes, want) in [
        (
            &b"*1\r\n$x\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$999999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*99999999999\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ] {
        let mut raw = Raw::connect(&addr).await;
        // A good request, then the bad one, then a write that must never run.
        let mut req = encode(&[b"SET", b"before", b"1"]);
        req.extend_from_slice(bytes);
        req.extend(encode(&[b"SET", b"after", b"1"]));
        raw.send(&req).await;
        assert_eq!(raw.reply().await, b"+OK\r\n");
        assert_eq!(
            String::from_utf8_lossy(&raw.reply().await),
            want,
            "{bytes:?}"
        );
        assert!(
            raw.closed().await,
            "the proxy closes after a protocol error"
        );
    }
    let mut con = client(&proxy).await;
    let after: Option<String> = con.get("after").await.unwrap();
    assert_eq!(after, None, "nothing after a malformed request ran");

    // A client that stops sending (`printf … | nc`) still gets the replies to all it sent,
    // more than one window of them, in order across groups; then the proxy closes.
    let mut raw = Raw::connect(&addr).await;
    let mut req = Vec::new();
    for i in 0..500 {
        req.extend(encode(&[
            b"APPEND",
            format!("eof{}", i % 7).as_bytes(),
            b"x",
        ]));
    }
    raw.send(&req).await;
    raw.stream.shutdown().await.unwrap();
    for i in 0..500 {
        assert_eq!(
            raw.reply().await,
            format!(":{}\r\n", i / 7 + 1).into_bytes()
        );
    }
    assert!(raw.closed().await, "the proxy closes once all is answered");
    proxy.stop();
    c.stop().await;
}

/// The proxy writes the replies to one read together, but never holds a fast reply behind
/// a request to a group that cannot answer for longer than its short hold: the SET's `+OK`
/// comes at once, the GET's error at the end of the retry window, and the SET is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_not_held_behind_a_group_that_cannot_answer() {
    let mut c = TestCluster::sharded(3, 3, |_| {}).await;
    c.join_all().await;
    let window = Duration::from_secs(3);
    let proxy = start_proxy(&c, window).await;
    let mut num = 0;
    for (key, gid) in [("fast", 1), ("slow", 3)] {
        let args = vec![
            "MOVE".to_string(),
            key_slot(key.as_bytes()).to_string(),
            gid.to_string(),
        ];
        if let redis::Value::Int(n) = c.cluster_cmd(&args).await {
            num = n as u64;
        }
    }
    c.settled(num).await;
    // Group 3 loses its quorum: nothing of it can be read or written.
    let down: Vec<_> = c.members(3).into_iter().take(2).collect();
    for id in &down {
        c.kill(*id).await;
    }

    let mut raw = Raw::connect(&proxy.addr.to_string()).await;
    let mut req = encode(&[b"SET", b"fast", b"1"]);
    req.extend(encode(&[b"GET", b"slow"]));
    let sent = tokio::time::Instant::now();
    raw.send(&req).await;
    assert_eq!(raw.reply().await, b"+OK\r\n");
    let first = sent.elapsed();
    let second = raw.reply().await;
    assert!(
        second.starts_with(b"-"),
        "{:?}",
        String::from_utf8_lossy(&second)
    );
    let last = sent.elapsed();
    assert!(
        first < window / 2 && last >= window / 2,
        "+OK after {first:?}, the error after {last:?}"
    );

    for id in &down {
        c.restart(*id).await;
    }
    let mut con = client(&proxy).await;
    let fast: Option<String> = con.get("fast").await.unwrap();
    assert_eq!(fast.as_deref(), Some("1"));
    let slow: Option<String> = con.get("slow").await.unwrap();
    assert_eq!(slow, None);
    proxy.stop();
    c.stop().await;
}

/// WAIT counts the replicas that hold every acknowledged write: at a group's leader for
/// its group, at the proxy the fewest over the groups. It waits for more up to its timeout,
/// answers what it has when its client stops sending, and at the proxy never holds another
/// client's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_the_replicas_that_hold_the_acknowledged_writes() {
    let (mut c, proxy) = start().await;
    let p = proxy.addr.to_string();
    let mut a = Raw::connect(&p).await;
    // SETs of keys in every group, pipelined.
    let write_everywhere = |round: u32| {
        let mut out = Vec::new();
        for i in 0..60 {
            let (k, v) = (format!("wait:{i}"), round.to_string());
            out.extend(encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
        }
        out
    };
    let sets = write_everywhere(1);
    a.send(&sets).await;
    for _ in 0..60 {
        assert_eq!(a.reply().await, b"+OK\r\n");
    }
    assert_eq!(
        a.call("WAIT 2 10000").await,
        ":2\r\n",
        "every replica has them"
    );
    assert_eq!(
        a.call("WAIT x 0").await,
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(a.call("WAIT 1 -1").await, "-ERR timeout is negative\r\n");
    assert_eq!(
        a.call("WAIT 1").await,
        "-ERR wrong number of arguments for 'wait' command\r\n"
    );

    // At the nodes: a leader counts its followers; a follower refuses, as a Redis replica.
    let leader = c.leader_of(1).await;
    let follower = *c.members(1).iter().find(|&&id| id != leader).unwrap();
    let mut l = Raw::connect(&c.peers[&leader].client_addr()).await;
    assert_eq!(l.call("WAIT 2 10000").await, ":2\r\n");
    let mut f = Raw::connect(&c.peers[&follower].client_addr()).await;
    assert!(f
        .call("WAIT 1 0")
        .await
        .starts_with("-ERR WAIT cannot be used with replica instances."));

    // One follower of group 1 down, and writes after it: two replicas can no longer be had.
    c.kill(follower).await;
    let sets = write_everywhere(2);
    a.send(&sets).await;
    for _ in 0..60 {
        assert_eq!(a.reply().await, b"+OK\r\n");
    }
    assert_eq!(a.call("WAIT 1 0").await, ":1\r\n");
    assert_eq!(a.call("WAIT 2 300").await, ":1\r\n", "the timeout's count");
    assert_eq!(l.call("WAIT 2 300").await, ":1\r\n");
    // Its client hangs up: the node answers what it has (and then closes).
    l.send(&encode(&[b"WAIT", b"2", b"0"])).await;
    l.stream.shutdown().await.unwrap();
    assert_eq!(l.rest().await, b":1\r\n");

    // A WAIT that cannot be met holds only its own client: the proxy serves others on the
    // same backend connections meanwhile.
    let mut w = Raw::connect(&p).await;
    w.send(&encode(&[b"WAIT", b"2", b"0"])).await;
    let mut other = Raw::connect(&p).await;
    for i in 0..20 {
        assert_eq!(other.call(&format!("SET other:{i} x")).await, "+OK\r\n");
        assert_eq!(other.call(&format!("GET other:{i}")).await, "$1\r\nx\r\n");
    }
    // Once the follower is back and has caught up, the waiting client is answered.
    c.restart(follower).await;
    let reply = tokio::time::timeout(Duration::from_secs(60), w.reply())
        .await
        .expect("WAIT 2 0 answered once the follower caught up");
    assert_eq!(reply, b":2\r\n");
    assert_eq!(a.call("WAIT 2 0").await, ":2\r\n");
}

/// MONITOR streams every client's commands as Redis writes them, at the proxy and at a
/// node: admin commands left out, passwords redacted; RESET and QUIT end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_streams_every_clients_commands() {
    let (c, proxy) = start().await;
    let node = c.peers[&c.members(1)[0]].client_addr();
    for addr in [proxy.addr.to_string(), node] {
        let mut m = Raw::connect(&addr).await;
        assert_eq!(m.call("MONITOR").await, "+OK\r\n");
        let mut other = Raw::connect(&addr).await;
        let me = other.stream.local_addr().unwrap().to_string();
        assert_eq!(other.call("ECHO a\"b").await, "$3\r\na\"b\r\n");
        assert!(other.call("CONFIG GET maxclients").await.starts_with('*'));
        assert!(other
            .call("NOSUCH")
            .await
            .starts_with("-ERR unknown command"));
        assert_eq!(other.call("AUTH default secret").await, "+OK\r\n");
        assert_eq!(other.call("PING").await, "+PONG\r\n");
        let mut lines = Vec::new();
        for _ in 0..3 {
            lines.push(String::from_utf8(m.reply().await).unwrap());
        }
        let tail = |l: &str| {
            l.split_once(']')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default()
        };
        for l in &lines {
            assert!(
                l.starts_with('+') && l.contains(&format!(" [0 {me}] ")),
                "{addr}: {l}"
            );
        }
        assert_eq!(
            lines.iter().map(|l| tail(l)).collect::<Vec<_>>(),
            [
                " \"ECHO\" \"a\\\"b\"\r\n",
                " \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n",
                " \"PING\"\r\n"
            ],
            "{addr}: CONFIG and the unknown command are not shown"
        );
        assert_eq!(
            m.call("GET k").await,
            "-ERR the connection is in MONITOR mode: only QUIT and RESET are accepted\r\n"
        );
        // RESET ends MONITOR mode and makes the connection a fresh one, as in Redis 6.2+.
        assert_eq!(m.call("RESET").await, "+RESET\r\n");
        assert_eq!(other.call("PING").await, "+PONG\r\n");
        assert_eq!(
            m.call("ECHO back").await,
            "$4\r\nback\r\n",
            "nothing streamed"
        );
        m.call("HELLO 3").await;
        assert_eq!(m.call("CLIENT SETNAME me").await, "+OK\r\n");
        m.send(&encode(&[b"CLIENT", b"REPLY", b"OFF"])).await;
        assert_eq!(m.call("RESET").await, "+RESET\r\n", "replies on again");
        assert_eq!(m.call("CLIENT GETNAME").await, "$-1\r\n", "RESP2, no name");
        assert_eq!(m.call("MONITOR").await, "+OK\r\n");
        assert_eq!(m.call("QUIT").await, "+OK\r\n");
        assert_eq!(m.rest().await, b"");
    }
    wait_until(Duration::from_secs(5), "the monitor is gone", || async {
        (!proxy.shared.monitors.active()).then_some(())
    })
    .await;
}
