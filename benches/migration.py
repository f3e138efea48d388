#!/usr/bin/env python3
"""Slot migration under load: move one slot holding many keys between two groups of a
release `redraft dev --groups 2` while a client keeps writing to a slot that does not
move, and print the migration time and that client's p99 latency before, during and
after the move.

    python3 benches/migration.py [--keys 100000] [--value-size 64] [--processes]

With --processes every replica is its own `redraft node` process, as deployed, rather than
a task of `redraft dev` sharing one runtime's two workers with the others: the kernel then
schedules the unaffected group's threads apart from the busy ones.

Needs redis-py (compat/requirements.txt) and a release build (the script builds it).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import multiprocessing
import time

import redis

BASE = 7701  # group 1: 7701-7703, group 2: 7704-7706, controller: 7707-7709


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    k = key.encode()
    s = k.find(b"{")
    if s != -1:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % 16384


def tag_in(slots, avoid=()):
    i = 0
    while True:
        t = "{t%d}" % i
        if key_slot(t) in slots and key_slot(t) not in avoid:
            return t
        i += 1


def leader_of(ports):
    while True:
        for p in ports:
            try:
                info = redis.Redis(port=p).info("replication")
                if info.get("role") == "master":
                    return p
            except redis.RedisError:
                pass
        time.sleep(0.05)


_conns = {}


def cluster_info(port):
    if port not in _conns:
        _conns[port] = redis.Redis(port=port)
    return _conns[port].info("cluster")


POLL = 0.005  # how often the move's progress is polled


def observe(groups, seconds):
    """Polls the groups as the move is watched, for `seconds`: the phases before and after
    the move then carry the same observer load as the move itself."""
    end = time.time() + seconds
    while time.time() < end:
        for g in groups:
            cluster_info(g)
        time.sleep(POLL)


def p99(xs):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000


def load(port, prefix, value, stop, into):
    con = redis.Redis(port=port)
    samples = []
    i = 0
    while not stop.is_set():
        s = time.perf_counter()
        con.set("%s%d" % (prefix, i % 1000), value)
        samples.append((time.time(), time.perf_counter() - s))
        i += 1
    into.send(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-size", type=int, default=64)
    ap.add_argument("--phase-seconds", type=float, default=3.0)
    ap.add_argument("--processes", action="store_true",
                    help="one `redraft node` process per replica instead of `redraft dev`")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat on a fresh cluster and print the median (a p99 over one "
                         "move's few hundred requests is noisy)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=root, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    binary = os.path.join(target, "release", "redraft")
    results = [once(args, binary) for _ in range(args.runs)]
    if args.runs > 1:
        med = lambda xs: sorted(xs)[len(xs) // 2]
        times, ratios = [r[0] for r in results], [r[1] for r in results]
        print("%d runs: move %.0f ms median (%.0f-%.0f), during/before p99 ratio %.2f median "
              "(%.2f-%.2f)" % (args.runs, med(times), min(times), max(times), med(ratios),
                               min(ratios), max(ratios)))


def once(args, binary):
    """One cluster, one move: (settled after ms, during/before p99 ratio)."""
    _conns.clear()
    work = tempfile.mkdtemp()
    if args.processes:
        procs = start_processes(binary, work)
    else:
        procs = [subprocess.Popen(
            [binary, "dev", "--groups", "2", "--base-port", str(BASE), "--dir", work + "/data"],
            stdout=open(work + "/dev.log", "w"), stderr=subprocess.STDOUT, env=dict(os.environ))]
    try:
        return run(args, work)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        if os.environ.get("BENCH_LOG"):
            print("".join(l for l in open(work + "/dev.log") if "chunk" in l or "migration" in l or "installed" in l))
        shutil.rmtree(work, ignore_errors=True)


def start_processes(binary, work):
    """The layout `redraft dev --groups 2` makes, as nine processes: nodes 1-3 are group 1,
    4-6 group 2, 7-9 the controller; then both groups join (group 1 gets slots 0-8191)."""
    addr = lambda i: "127.0.0.1:%d" % (BASE + i - 1)
    members = {g: [(i, addr(i)) for i in ids]
               for g, ids in {1: (1, 2, 3), 2: (4, 5, 6), 0: (7, 8, 9)}.items()}
    peers = {g: ",".join("%d=%s" % m for m in ms) for g, ms in members.items()}
    log = open(work + "/dev.log", "w")
    procs = []
    for g, ms in members.items():
        for i, _ in ms:
            cmd = [binary, "node", "--id", str(i), "--group", str(g), "--port", str(BASE + i - 1),
                   "--dir", "%s/node%d" % (work, i), "--peers", peers[g]]
            if g != 0:
                cmd += ["--controller", peers[0]]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    join = ["CLUSTER", "JOIN"]
    for g in (1, 2):
        join += [str(g)] + ["%d=%s" % m for m in members[g]]
    deadline = time.time() + 60
    while True:
        try:
            redis.Redis(port=BASE + 6).execute_command(*join)
            return procs
        except redis.exceptions.RedisError as e:
            if time.time() > deadline:
                raise RuntimeError("joining the groups failed: %s" % e)
            time.sleep(0.1)


def run(args, work):
    g1 = leader_of([BASE, BASE + 1, BASE + 2])
    g2 = leader_of([BASE + 3, BASE + 4, BASE + 5])
    ctl = redis.Redis(port=BASE + 6)
    while int(cluster_info(g1).get("redraft_config", 0)) < 1:
        time.sleep(0.05)
    slots1 = set(range(0, 8192))  # group 1 holds the lower half after the first join
    moving = tag_in(slots1)
    steady = tag_in(slots1, avoid={key_slot(moving)})
    slot = key_slot(moving)
    c1 = redis.Redis(port=g1)
    assert c1.get(moving + ":probe") is None  # owned by group 1, or this raises MOVED

    t = time.time()
    value = b"v" * args.value_size
    pipe = c1.pipeline(transaction=False)
    for i in range(args.keys):
        pipe.set("%s:%d" % (moving, i), value)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    print("loaded %d keys of %d bytes into slot %d in %.1f s" %
          (args.keys, args.value_size, slot, time.time() - t))

    # The steady client runs in its own process: a thread would wait for the GIL while
    # this one polls the groups, and that wait would count as latency during the move.
    stop = multiprocessing.Event()
    out, into = multiprocessing.Pipe(duplex=False)
    th = multiprocessing.Process(target=load, args=(g1, "%s:" % steady, value, stop, into))
    th.start()
    observe((g2, g1), args.phase_seconds)
    before_end = time.time()
    num = ctl.execute_command("CLUSTER", "MOVE", str(slot), "2")
    start = time.time()
    served = None
    while True:
        i2 = cluster_info(g2)
        i1 = cluster_info(g1)
        if served is None and int(i2.get("redraft_config", 0)) >= num and int(
                i2.get("redraft_slots_pulling", 1)) == 0:
            served = time.time()
        if (int(i2.get("redraft_config", 0)) >= num and int(i2.get("redraft_slots_pulling", 1)) == 0
                and int(i2.get("redraft_slots_unacked", 1)) == 0
                and int(i1.get("redraft_config", 0)) >= num
                and int(i1.get("redraft_slots_offloading", 1)) == 0):
            break
        time.sleep(POLL)
    end = time.time()
    observe((g2, g1), args.phase_seconds)
    stop.set()
    samples = out.recv()  # (start time, latency)
    th.join()

    moved = redis.Redis(port=g2).dbsize()
    before = [l for (s, l) in samples if s < before_end]
    during = [l for (s, l) in samples if start <= s <= end]
    after = [l for (s, l) in samples if s > end]
    print("migration of slot %d (%d keys) to group 2: serving there after %.0f ms, "
          "settled (old copy dropped) after %.0f ms; group 2 now holds %d keys" %
          (slot, args.keys, (served - start) * 1000, (end - start) * 1000, moved))
    print("unaffected SET p99: before %.2f ms (%d), during %.2f ms (%d), after %.2f ms (%d)" %
          (p99(before), len(before), p99(during), len(during), p99(after), len(after)))
    print("during/before p99 ratio: %.2f" % (p99(during) / p99(before)))
    if moved < args.keys:
        print("FAIL: keys missing after the move", file=sys.stderr)
        sys.exit(1)
    return (end - start) * 1000, p99(during) / p99(before)


if __name__ == "__main__":
    main()
