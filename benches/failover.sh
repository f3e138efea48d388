#!/usr/bin/env bash
# Failover time with real processes: three `redraft node`s, kill -9 the leader, measure the
# time until another node accepts a write. Repeats; prints each time and the worst.
#
#   benches/failover.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
command -v redis-cli >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-tools >/dev/null; }
cargo build --release -q
work=$(mktemp -d)
declare -A pid
peers="1=127.0.0.1:7501,2=127.0.0.1:7502,3=127.0.0.1:7503"
start() { "${CARGO_TARGET_DIR:-target}/release/redraft" node --id "$1" --port $((7500 + $1)) --dir "$work/n$1" --peers "$peers" >>"$work/n$1.log" 2>&1 & pid[$1]=$!; }
cleanup() { for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for i in 1 2 3; do start $i; done

# The node that accepts a write now (a restarted node may briefly think it still leads).
leader() { for i in 1 2 3; do [ "$(redis-cli -p $((7500 + i)) SET probe x 2>/dev/null)" == OK ] && { echo $i; return; }; done; true; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

worst=0
for r in $(seq 1 "$ROUNDS"); do
  l=""; until [ -n "$l" ]; do l=$(leader); sleep 0.05; done
  for i in 1 2 3; do until redis-cli -p $((7500 + i)) PING >/dev/null 2>&1; do sleep 0.05; done; done
  redis-cli -p $((7500 + l)) SET before-$r x >/dev/null
  t0=$(ms)
  kill -9 "${pid[$l]}"; wait "${pid[$l]}" 2>/dev/null || true; exec 2>/dev/null
  while true; do
    for i in 1 2 3; do
      [ "$i" == "$l" ] && continue
      if [ "$(redis-cli -p $((7500 + i)) SET after-$r x 2>/dev/null)" == OK ]; then
        elected=$(redis-cli -p $((7500 + i)) INFO raft | tr -d '\r' | grep raft_term)
        break 2
      fi
    done
    sleep 0.01
  done
  dt=$(( $(ms) - t0 ))
  [ "$dt" -gt "$worst" ] && worst=$dt
  echo "round $r: leader $l killed; a new leader accepted a write after ${dt} ms ($elected)"
  start "$l"
done
echo "worst: ${worst} ms"
