#!/usr/bin/env python3
"""kill -9 of the leader of a real three-process group while redis-py clients append.

Every acknowledged APPEND must survive, none may be applied twice, none that was refused
may appear. Writers never retry a token, so a duplicate could only come from the server.
Prints one line per check and a final "N passed, N failed".
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "redraft")
PORTS = {1: 7601, 2: 7602, 3: 7603}
PEERS = ",".join(f"{i}=127.0.0.1:{p}" for i, p in PORTS.items())
WRITERS = 6
# redis-py retries failed commands on a new connection by default; a retried APPEND could
# be applied twice by design of the client, which is not what this test is about.
NO_RETRY = dict(retry=Retry(NoBackoff(), 0), retry_on_error=[])
ROUNDS = 2


class Cluster:
    def __init__(self, work):
        self.work = work
        self.procs = {}

    def start(self, i):
        log = open(os.path.join(self.work, f"n{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [BIN, "node", "--id", str(i), "--port", str(PORTS[i]), "--dir",
             os.path.join(self.work, f"n{i}"), "--peers", PEERS],
            stdout=log, stderr=log)

    def kill9(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self):
        for p in self.procs.values():
            p.kill()
            p.wait()

    def leader(self, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, port in PORTS.items():
                try:
                    if redis.Redis(port=port, socket_timeout=2, **NO_RETRY).set("probe", "x"):
                        return i
                except redis.exceptions.RedisError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("no leader")


class Writer(threading.Thread):
    def __init__(self, w, stop):
        super().__init__(daemon=True)
        self.w, self.stop, self.acked, self.unknown = w, stop, set(), set()
        self.port = PORTS[1 + w % 3]

    def run(self):
        n = 0
        con = None
        while not self.stop.is_set():
            if con is None:
                con = redis.Redis(port=self.port, socket_timeout=10, socket_connect_timeout=1, **NO_RETRY)
            n += 1
            try:
                con.append(f"log{self.w}", f"{n},")
                self.acked.add(n)
            except redis.exceptions.ResponseError as e:
                # redis-py raises MovedError with the text after "MOVED" for a redirect.
                if isinstance(e, redis.exceptions.MovedError) or str(e).startswith("MOVED"):
                    # Redirected before proposing: not applied. Follow the redirect.
                    self.port = int(str(e).rsplit(":", 1)[1])
                else:
                    self.unknown.add(n)
                con = None
            except redis.exceptions.RedisError:
                self.unknown.add(n)
                con = None
                self.port = PORTS[1 + (list(PORTS.values()).index(self.port) + 1) % 3]
                time.sleep(0.01)


def main():
    subprocess.check_call(["cargo", "build", "--release", "-q"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="redraft-kill9-")
    cluster = Cluster(work)
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if ok:
            passed += 1
        else:
            failed += 1

    try:
        for i in PORTS:
            cluster.start(i)
        cluster.leader()
        stop = threading.Event()
        writers = [Writer(w, stop) for w in range(WRITERS)]
        for t in writers:
            t.start()

        def acked():
            return sum(len(t.acked) for t in writers)

        def wait_acked(n, timeout=60.0):
            deadline = time.time() + timeout
            while acked() < n and time.time() < deadline:
                time.sleep(0.02)
            return acked() >= n

        for r in range(ROUNDS):
            check(wait_acked(acked() + 300), f"round {r + 1}: 300 writes acknowledged")
            victim = cluster.leader()
            t0 = time.time()
            cluster.kill9(victim)
            new = cluster.leader()
            check(new != victim, f"round {r + 1}: node {victim} killed -9, node {new} leads "
                                 f"after {1000 * (time.time() - t0):.0f} ms")
            check(wait_acked(acked() + 300), f"round {r + 1}: 300 more writes on the new leader")
            cluster.start(victim)

        stop.set()
        for t in writers:
            t.join()
        con = redis.Redis(port=PORTS[cluster.leader()], socket_timeout=10)
        for t in writers:
            raw = (con.get(f"log{t.w}") or b"").decode()
            tokens = [int(x) for x in raw.split(",") if x]
            check(len(tokens) == len(set(tokens)), f"writer {t.w}: no append applied twice")
            check(tokens == sorted(tokens), f"writer {t.w}: appends in order")
            lost = t.acked - set(tokens)
            check(len(t.acked) > 0, f"writer {t.w}: made progress (follows MOVED to the leader)")
            check(not lost, f"writer {t.w}: all {len(t.acked)} acknowledged appends present"
                            + (f" (lost {sorted(lost)[:5]})" if lost else ""))
            bogus = set(tokens) - t.acked - t.unknown
            check(not bogus, f"writer {t.w}: nothing refused was applied")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
