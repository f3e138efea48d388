#!/usr/bin/env bash
# redis-benchmark --cluster against a release `redraft dev` (three groups of three
# fsync'ing replicas, quorum commits) and, in the same run, a local Redis Cluster of three
# masters and three replicas without persistence. Prints requests/s and the ratio.
#   benches/cluster_benchmark.sh [-n requests] [-c clients] [-P pipeline]
#
# With --cluster (a thread per node), redis-benchmark measures a run in steps of 250 ms,
# its throughput tick: 200k and 1M requests to the Redis Cluster here both read ~795k/s
# (0.252 s and 1.252 s) while 5M read 1.05M/s for GETs and 460k/s for SETs. So runs
# last seconds by default, and the time each took is printed: a figure may be off by up
# to 0.25 s over that time.
set -euo pipefail
cd "$(dirname "$0")/.."
N=3000000 C=50 P=16
while getopts "n:c:P:" o; do case $o in n) N=$OPTARG ;; c) C=$OPTARG ;; P) P=$OPTARG ;; *) exit 2 ;; esac; done
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need redis-benchmark redis-tools
need redis-server redis-server
cargo build --release -q
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"${CARGO_TARGET_DIR:-target}/release/redraft" dev --port 0 --dir "$work/redraft" --base-port 7901 >"$work/dev.log" 2>&1 &
pids+=($!)
for p in 7951 7952 7953 7954 7955 7956; do
  mkdir -p "$work/r$p"
  redis-server --port $p --cluster-enabled yes --cluster-config-file "$work/r$p/nodes.conf" \
    --save '' --appendonly no --dir "$work/r$p" --daemonize no >/dev/null 2>&1 &
  pids+=($!)
done
for p in 7951 7952 7953 7954 7955 7956; do until redis-cli -p $p PING >/dev/null 2>&1; do sleep 0.05; done; done
redis-cli --cluster create 127.0.0.1:7951 127.0.0.1:7952 127.0.0.1:7953 127.0.0.1:7954 \
  127.0.0.1:7955 127.0.0.1:7956 --cluster-replicas 1 --cluster-yes >/dev/null
for port in 7951 7901; do
  until redis-cli -p $port cluster info 2>/dev/null | grep -q cluster_state:ok; do sleep 0.1; done
done
for p in 7901 7904 7907; do
  until redis-cli -p $p info cluster 2>/dev/null | grep -q "redraft_slots_owned:[1-9]"; do sleep 0.05; done
done
sleep 1

rps() { # rps PORT TEST
  local out
  out=$(redis-benchmark --cluster -p "$1" -c "$C" -n "$N" -r 100000 -d 64 -P "$P" -t "$2" -q 2>&1 |
    tr '\r' '\n') || true
  if ! grep -qE "^${2^^}: [0-9.]+ requests per second" <<<"$out"; then
    # redis-benchmark stops at the first error reply; and it knows only the masters it
    # started with, so a leader change (MOVED to a new master) also stops it.
    echo "redis-benchmark on port $1 failed: $(grep -vE 'rps=|^Master|^Cluster has|WARNING|^ *$' <<<"$out" | tail -3)" >&2
    exit 1
  fi
  grep -E "^${2^^}: [0-9.]+ requests per second" <<<"$out" | tail -1 |
    sed -E 's/^[A-Z]+: ([0-9.]+) requests per second.*/\1/'
}
printf "%-6s %3s %12s %14s %7s %14s\n" test P redraft redis-cluster ratio "seconds (r, rc)"
for t in set get; do
  a=$(rps 7901 $t); b=$(rps 7951 $t)
  printf "%-6s %3s %12.0f %14.0f %7.2f %7.2f %6.2f\n" "${t^^}" "$P" "$a" "$b" "$(echo "$a / $b" | bc -l)" \
    "$(echo "$N / $a" | bc -l)" "$(echo "$N / $b" | bc -l)"
done
