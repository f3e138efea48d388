#!/usr/bin/env bash
# The long nemesis run: N seeded runs of S seconds each, each history checked for
# linearizability. Odd runs use in-process nodes and every fault kind (leader, follower and
# controller-leader kills, leaders cut off, slot moves); even runs use `redraft node`
# processes killed with kill -9 (SIGKILL) and restarted, with slot moves. Clients go through
# the proxy and straight to the nodes. Prints a line per run and `N passed, N failed`.
#
#   compat/nemesis.sh [--runs N] [--seconds S] [--seed FIRST]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=20
secs=60
seed=$(date +%s%N)
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--seed FIRST]"; exit 2 ;;
  esac
done
cargo test --release --test cluster --no-run -q 2>/dev/null || { echo "build failed"; exit 1; }
passed=0
failed=0
for i in $(seq 1 "$runs"); do
  s=$((seed + i))
  log=$(mktemp)
  procs=$(( i % 2 == 0 ? 1 : 0 ))
  if REDRAFT_NEMESIS_RUNS=1 REDRAFT_NEMESIS_SECONDS=$secs REDRAFT_NEMESIS_SEED=$s REDRAFT_NEMESIS_PROCESSES=$procs \
    cargo test --release --test cluster nemesis_long -q -- --ignored --nocapture >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "run $i: ok   $(grep -m1 -o 'seed .*anomalies.*' "$log")"
  else
    failed=$((failed + 1))
    echo "run $i: FAIL seed $s (log kept in $log)"
    grep -m1 -A3 "panicked" "$log"
    continue
  fi
  rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
