#!/usr/bin/env python3
"""redis-py's RedisCluster straight at redraft's nodes, and the consistency of the cluster
views: CLUSTER SLOTS covers every slot exactly once, with ids and masters that match
CLUSTER NODES on every node.

    python3 compat/test_cluster.py <port of any node>
"""

import sys

import redis
from redis.cluster import RedisCluster

port = int(sys.argv[1])
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


rc = RedisCluster(host="127.0.0.1", port=port)
for i in range(1000):
    rc.set(f"rc:{i}", i)
check(all(int(rc.get(f"rc:{i}")) == i for i in range(1000)), "1000 keys over all slots")

p = rc.pipeline()
for i in range(200):
    p.incr(f"ctr:{i}")
    p.append(f"log:{i}", b"\x00\xffbin")
res = p.execute()
check(res[0::2] == [1] * 200 and res[1::2] == [5] * 200, "pipeline of 400 commands across slots")

# A transaction (MULTI/EXEC) at the node that owns its slot: runs whole, in one log entry.
p = rc.pipeline(transaction=True)
p.set("{tx}a", 1).incr("{tx}a").set("{tx}b", "x").get("{tx}a")
res = p.execute()
ok = res[1] == 2 and res[3] == b"2" and all(r in (True, b"OK") for r in res[0::2])
check(ok, f"MULTI/EXEC pipeline at the node: {res}")
check(rc.get("log:7") == b"\x00\xffbin", "binary values")

rc.mset({"{user}:a": "1", "{user}:b": "2"})
check(rc.mget("{user}:a", "{user}:b") == [b"1", b"2"], "hash tags keep MSET/MGET in one slot")
try:
    redis.Redis(port=port).execute_command("MSET", "x1", "1", "x2", "2")
    check(False, "MSET across slots is refused at a node")
except redis.ResponseError as e:
    # redis-py strips the CROSSSLOT code from the message it raises.
    check("don't hash to the same slot" in str(e), f"MSET across slots is refused at a node ({e})")

# Views.
nodes_by_port = {}
for line in redis.Redis(port=port).execute_command("CLUSTER", "NODES").decode().splitlines():
    f = line.split()
    nodes_by_port[int(f[1].split("@")[0].rsplit(":", 1)[1])] = f
covered = [0] * 16384
ids_ok = True
for start, end, master, *replicas in redis.Redis(port=port).execute_command("CLUSTER", "SLOTS"):
    for s in range(start, end + 1):
        covered[s] += 1
    for n in [master] + replicas:
        f = nodes_by_port.get(n[1])
        ids_ok &= f is not None and f[0] == n[2].decode()
    ids_ok &= "master" in nodes_by_port[master[1]][2]
check(covered == [1] * 16384, "CLUSTER SLOTS covers each slot exactly once")
check(ids_ok, "CLUSTER SLOTS ids and masters match CLUSTER NODES")
views = set()
for p in nodes_by_port:
    lines = redis.Redis(port=p).execute_command("CLUSTER", "NODES").decode().splitlines()
    views.add(tuple(sorted(l.replace("myself,", "") for l in lines)))
check(len(views) == 1, f"all {len(nodes_by_port)} nodes show the same CLUSTER NODES")
myid = redis.Redis(port=port).execute_command("CLUSTER", "MYID").decode()
check("myself" in nodes_by_port[port][2] and nodes_by_port[port][0] == myid, "CLUSTER MYID is myself")
print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failures")
sys.exit(1 if failures else 0)
