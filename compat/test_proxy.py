#!/usr/bin/env python3
"""redis-py's plain client through the proxy: one address, as if it were one Redis.

    python3 compat/test_proxy.py <proxy port>
"""

import sys

import redis

port = int(sys.argv[1])
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


r = redis.Redis(host="127.0.0.1", port=port)
check(r.ping(), "PING")
for i in range(1000):
    r.set(f"py:{i}", i)
check(all(int(r.get(f"py:{i}")) == i for i in range(1000)), "1000 keys over every group")

# Pipelines keep their order, across groups.
p = r.pipeline(transaction=False)
for i in range(500):
    p.incr(f"ctr:{i % 10}")
    p.get(f"ctr:{i % 10}")
out = p.execute()
ok = all(int(out[2 * i]) == int(out[2 * i + 1]) == i // 10 + 1 for i in range(500))
check(ok, "a 1000-command pipeline replies in order")

# redis-py's default pipeline is a transaction (MULTI/EXEC): keys of one slot (hash tags).
p = r.pipeline()
p.set("{acct}:a", 100).decrby("{acct}:a", 30).incrby("{acct}:b", 30).get("{acct}:a")
check(p.execute() == [True, 70, 30, b"70"], "MULTI/EXEC pipeline (redis-py's default)")
p = r.pipeline()
p.set("{acct}:s", "x").incr("{acct}:s").append("{acct}:s", "y")
out = p.execute(raise_on_error=False)
ok = isinstance(out[1], redis.ResponseError) and r.get("{acct}:s") == b"xy"
check(ok, "a failing command in a transaction rolls nothing back")
try:
    r.pipeline().set("tx:one", 1).set("tx:two", 2).execute()
    check(False, "a transaction over two slots is refused")
except redis.ResponseError as e:
    ok = "same slot" in str(e) and r.exists("tx:one", "tx:two") == 0
    check(ok, f"a transaction over two slots is refused, nothing applied: {e}")

# WATCH: redis-py's transaction() helper retries until EXEC runs; a watched key written
# by another client makes EXEC abort (WatchError).
def add_one(pipe):
    v = int(pipe.get("{acct}:n") or 0)
    pipe.multi()
    pipe.set("{acct}:n", v + 1)
for _ in range(5):
    r.transaction(add_one, "{acct}:n")
check(r.get("{acct}:n") == b"5", "WATCH: redis-py's transaction() helper")
p = r.pipeline()
p.watch("{acct}:n")
r.set("{acct}:n", "theirs")
p.multi()
p.set("{acct}:n", "mine")
try:
    p.execute()
    check(False, "WATCH: a changed key aborts EXEC")
except redis.WatchError:
    check(r.get("{acct}:n") == b"theirs", "WATCH: transaction() and a changed key aborting EXEC")

# Binary keys and values, NUL bytes included.
blob = bytes(range(256)) * 40
r.set(b"bin\x00key\xff", blob)
check(r.get(b"bin\x00key\xff") == blob, "binary key and a 10 KiB binary value")

# DUMP and RESTORE with redis-py's own methods: a binary value, its TTL, REPLACE.
r.delete("restored")
payload = r.dump(b"bin\x00key\xff")
r.restore("restored", 60000, payload)
check(r.get("restored") == blob and 0 < r.pttl("restored") <= 60000, "DUMP and RESTORE a binary value")
r.restore("restored", 0, r.dump("py:7"), replace=True)
check(r.get("restored") == b"7" and r.ttl("restored") == -1, "RESTORE REPLACE an integer's payload")

# ACL as a server without ACL configuration shows it, and SAVE/LASTSAVE.
check(r.acl_whoami() in (b"default", "default") and len(r.acl_genpass()) == 64, "ACL WHOAMI, ACL GENPASS")
check(r.save() and r.lastsave().year >= 2024, "SAVE, LASTSAVE")

# Multi-key commands across slots, split and merged by the proxy.
r.mset({f"m:{i}": f"v{i}" for i in range(100)})
vals = r.mget([f"m:{i}" for i in range(100)] + ["m:none"])
check(vals == [f"v{i}".encode() for i in range(100)] + [None], "cross-slot MSET/MGET")
check(r.exists(*[f"m:{i}" for i in range(100)]) == 100, "cross-slot EXISTS")
check(r.delete(*[f"m:{i}" for i in range(50)]) == 50, "cross-slot DEL")
n = r.dbsize()
r.set("one-more", 1)
check(r.dbsize() == n + 1 and n >= 1000 + 10 + 1 + 50, f"DBSIZE sums every group ({n})")
scanned = set(r.scan_iter(match="py:*", count=100))
check(scanned == {f"py:{i}".encode() for i in range(1000)}, "SCAN over every group")

# Errors are Redis's.
try:
    r.rename("{a}x", "{b}y")
    check(False, "RENAME across slots refused")
except redis.ResponseError as e:
    check("hash to the same slot" in str(e), f"RENAME across slots: {type(e).__name__} {e}")
try:
    r.execute_command("NOSUCH", "x")
    check(False, "unknown command refused")
except redis.ResponseError as e:
    check(str(e).startswith("unknown command 'NOSUCH'"), "unknown command text")

# Command statistics and the slow log, as redis-py's own parsers read them.
r.config_resetstat()
for i in range(10):
    r.set(f"st:{i}", i)
stats = r.info("commandstats").get("cmdstat_set", {})
check(stats.get("calls") == 10 and stats.get("failed_calls") == 0, f"INFO commandstats: {stats}")
latency = r.info("latencystats").get("latency_percentiles_usec_set", {})
check(0 < latency.get("p50", 0) <= latency.get("p99.9", 0), f"INFO latencystats: {latency}")
r.config_set("slowlog-log-slower-than", 0)
r.slowlog_reset()
r.set("slow", "x")
entries = r.slowlog_get(1)
command = entries[0].get("command") if entries else None
check(command in (b"SET slow x", "SET slow x"), f"SLOWLOG GET: {entries}")
r.config_set("slowlog-log-slower-than", 10000)

# Bitmaps: redis-py's bit commands, and its BITFIELD builder.
r.delete("bits")
for day in (0, 3, 3, 9):
    r.setbit("bits", day, 1)
ok = r.bitcount("bits") == 3 and r.getbit("bits", 9) == 1 and r.bitpos("bits", 0) == 1
check(ok and r.get("bits") == b"\x90\x40", "SETBIT/GETBIT/BITCOUNT/BITPOS")
r.mset({"{bit}a": b"\xf0", "{bit}b": b"\x3c"})
ok = r.bitop("XOR", "{bit}x", "{bit}a", "{bit}b") == 1 and r.get("{bit}x") == b"\xcc"
check(ok, "BITOP within a slot")
out = r.bitfield("bf").overflow("SAT").incrby("u4", 0, 20).set("i4", 4, -3).get("u8", 0).execute()
check(out == [15, 0, 253], f"BITFIELD: {out}")
check(r.bitfield_ro("bf", "i4", 4) == [-3], "BITFIELD_RO")

# HyperLogLog: a sketch of 10k elements goes dense and counts within Redis's error; the
# same elements in a redis-server would give the very same count (compat/test_differential.py).
r.delete("{hll}a", "{hll}b")
pipe = r.pipeline(transaction=False)
for i in range(0, 10000, 500):
    pipe.pfadd("{hll}a", *("user:%d" % j for j in range(i, i + 500)))
pipe.execute()
n = r.pfcount("{hll}a")
check(abs(n - 10000) < 10000 * 0.02 and r.execute_command("PFDEBUG", "ENCODING", "{hll}a") == b"dense", f"PFADD/PFCOUNT of 10k: {n}")
r.pfadd("{hll}b", *("user:%d" % j for j in range(5000, 15000)))
r.pfmerge("{hll}u", "{hll}a", "{hll}b")
n = r.pfcount("{hll}u")
check(abs(n - 15000) < 15000 * 0.02 and r.pfcount("{hll}a", "{hll}b") == n, f"PFMERGE: {n}")

# RESP3 through the proxy.
r3 = redis.Redis(host="127.0.0.1", port=port, protocol=3)
r3.set("r3", "v")
check(r3.get("r3") == b"v", "RESP3 client")

print(f"proxy (redis-py): {0 if failures else 1} run, {len(failures)} failures")
sys.exit(1 if failures else 0)
