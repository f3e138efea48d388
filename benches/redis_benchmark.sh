#!/usr/bin/env bash
# redraft (leader of a 3-replica group, every write fsync'd on a quorum) against a local
# redis-server (appendonly no; appendonly yes + appendfsync always) in the same run, with
# redis-benchmark. Prints req/s and the redraft/redis ratios. Not a test: figures only.
#
#   benches/redis_benchmark.sh [-n requests] [-c clients] [-x] [-g groups] [-r rounds] [-p "1 16"]
#
# -x goes through the proxy of `redraft dev`, with three groups unless -g says otherwise
# (one group is the like-for-like comparison with one redis-server: three groups on two
# cores add the sharding's cost, each group's entries batching a third of the writes).
# -p picks the pipeline depths (default both).
# -r runs every test that many times, the three servers in turn each round, and prints
# each server's median and the lowest and highest of the rounds' ratios: this 2-core
# machine is shared and noisy, and one round's ratio can be off by a tenth.
#
# -n is the request count of each -P 1 test; -P 16 tests send five times as many, so that
# they run for seconds, not the ~1 s (warm-up and noise included) that 200k pipelined
# SETs take.
set -euo pipefail
cd "$(dirname "$0")/.."
N=200000
C=50
PROXY=""
NGROUPS=3
ROUNDS=1
PIPES="1 16"
while getopts "n:c:xg:r:p:" o; do case $o in n) N=$OPTARG ;; c) C=$OPTARG ;; x) PROXY=1 ;; g) NGROUPS=$OPTARG ;; r) ROUNDS=$OPTARG ;; p) PIPES=$OPTARG ;; *) exit 2 ;; esac; done

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need redis-benchmark redis-tools
need redis-server redis-server

cargo build --release -q
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -n "$PROXY" ]; then
  "${CARGO_TARGET_DIR:-target}/release/redraft" dev --groups "$NGROUPS" --port 7199 --dir "$work/redraft" --base-port 7101 >"$work/dev.log" 2>&1 &
else
  "${CARGO_TARGET_DIR:-target}/release/redraft" dev --groups 1 --port 0 --dir "$work/redraft" --base-port 7101 >"$work/dev.log" 2>&1 &
fi
pids+=($!)
redis-server --port 7201 --save '' --appendonly no --dir "$work" --daemonize no >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/aof"
redis-server --port 7202 --save '' --appendonly yes --appendfsync always --dir "$work/aof" --daemonize no >/dev/null 2>&1 &
pids+=($!)

leader=""
if [ -n "$PROXY" ]; then
  for _ in $(seq 1 600); do grep -q "proxy on" "$work/dev.log" && leader=7199 && break; sleep 0.1; done
fi
for _ in $(seq 1 100); do
  [ -n "$leader" ] && break
  for p in 7101 7102 7103; do
    # The leader, once it has applied the configuration that gives its group the slots:
    # redis-benchmark stops at the first error reply (CLUSTERDOWN before that).
    if redis-cli -p $p INFO replication 2>/dev/null | grep -q "role:master" &&
      redis-cli -p $p INFO cluster 2>/dev/null | grep -q "redraft_slots_owned:16384"; then leader=$p; break 2; fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "no redraft leader"; cat "$work/dev.log"; exit 1; }
for p in 7201 7202; do until redis-cli -p $p PING >/dev/null 2>&1; do sleep 0.1; done; done

# rps PORT PIPELINE TESTS... → "name rps" lines
rps() {
  local port=$1 pipe=$2 out; shift 2
  out=$(redis-benchmark -p "$port" -c "$C" -n "$((pipe > 1 ? N * 5 : N))" -r 100000 -d 64 -P "$pipe" -q "$@" 2>&1 | tr '\r' '\n') || true
  if ! grep -q "requests per second" <<<"$out"; then
    echo "redis-benchmark on port $port failed: $(grep -v 'rps=' <<<"$out" | tail -3)" >&2
    exit 1
  fi
  grep "requests per second" <<<"$out" | sed -E 's/^([^:]+): ([0-9.]+) requests per second.*/\1 \2/'
}
run_all() { # PORT PIPELINE
  rps "$1" "$2" -t set,get,incr
  rps "$1" "$2" APPEND "appendkey__rand_int__" xxxxxxxx | sed 's/^APPEND.*\( [0-9.]*\)$/APPEND\1/'
}

printf "%-8s %-4s %12s %14s %16s %8s %8s %s\n" test P redraft redis-nopersist redis-fsync-always "÷nopers" "÷always" "(rounds: ÷always low-high)"
# The group leaders, whose INFO latencystats give the nodes' share of a command's latency.
leaders() {
  for p in $(seq 7101 7112); do
    redis-cli -p $p INFO replication 2>/dev/null | grep -q "role:master" &&
      redis-cli -p $p INFO cluster 2>/dev/null | grep -Eq "redraft_slots_owned:[1-9]" && echo $p
  done
  true
}
nodes=$(leaders | tr '\n' ' ')
resetstat() { for p in $leader $nodes; do redis-cli -p "$p" CONFIG RESETSTAT >/dev/null; done; }
# latency PORT LABEL → one line per command: its latency percentiles there (µs)
latency() {
  redis-cli -p "$1" INFO latencystats | tr -d '\r' | sed -nE "s/^latency_percentiles_usec_(set|get|incr|append):/\1 /p" |
    while read -r cmd ps; do printf "  %-16s %-7s %s\n" "$2" "$cmd" "${ps//,/ }"; done
}

for P in $PIPES; do
  : >"$work/rounds"
  resetstat
  for _ in $(seq 1 "$ROUNDS"); do
    # One server at a time: on 2 cores, concurrent runs would measure each other.
    run_all "$leader" "$P" >"$work/a"
    run_all 7201 "$P" >"$work/b"
    run_all 7202 "$P" >"$work/c"
    paste "$work/a" "$work/b" "$work/c" >>"$work/rounds"
  done
  python3 - "$P" "$work/rounds" <<'PY'
import statistics, sys
p, rows = sys.argv[1], {}
for line in open(sys.argv[2]):
    name, a, _, b, _, c = line.split()
    rows.setdefault(name, []).append((float(a), float(b), float(c)))
for name, rs in rows.items():
    a, b, c = (statistics.median(r[i] for r in rs) for i in range(3))
    ratios = [r[0] / r[2] for r in rs]
    spread = "%.2f-%.2f" % (min(ratios), max(ratios)) if len(rs) > 1 else ""
    print("%-8s %-4s %12.0f %14.0f %16.0f %8.2f %8.2f %s" % (name, p, a, b, c, a / b, a / c, spread))
PY
  # Where a command's time goes: its latency at the server benchmarked (the proxy with
  # -x) and at the group leaders, from parsing to reply (commit or read barrier included).
  echo "  latency percentiles, µs (INFO latencystats; a node's includes its Raft round):"
  if [ -n "$PROXY" ]; then latency "$leader" proxy; fi
  for p in $nodes; do latency "$p" "node $p"; done
done
