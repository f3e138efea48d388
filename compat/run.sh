#!/usr/bin/env bash
# Real clients against a real release `redraft dev`: redis-cli and redis-benchmark.
# Needs redis-tools (installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d)
"${CARGO_TARGET_DIR:-target}/release/redraft" dev --groups 1 --port 0 --dir "$work/data" --base-port 7301 >"$work/dev.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

leader=""
for _ in $(seq 1 400); do
  for p in 7301 7302 7303; do
    # The leader, once it has applied the configuration that gives its group the slots.
    if redis-cli -p $p INFO replication 2>/dev/null | grep -q "role:master" &&
      redis-cli -p $p INFO cluster 2>/dev/null | grep -q "redraft_slots_owned:16384"; then leader=$p; break 2; fi
  done
  sleep 0.05
done
[ -n "$leader" ] || { echo "FAIL: no leader"; cat "$work/dev.log"; exit 1; }

passed=0
failed=0
expect() { # expect WANT CMD...
  local want=$1; shift
  local got
  got=$(redis-cli -p "$leader" "$@" 2>&1) || true
  if [ "$got" == "$want" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-cli $* → '$got', want '$want'"; fi
}
expect OK set hello world
expect world get hello
expect 11 append hello " again"
expect 1 incr counter
expect 1 expire hello 100
expect 100 ttl hello
expect 1 del hello
expect "" get hello
expect OK set "bin key" $'va\tlue'
expect $'va\tlue' get "bin key"
follower=$(( leader == 7301 ? 7302 : 7301 ))
got=$(redis-cli -p "$follower" set k v 2>&1) || true
if [[ "$got" == MOVED* ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: follower answered '$got'"; fi
got=$(redis-cli -c -p "$follower" set k v 2>&1) || true
if [ "$got" == OK ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-cli -c via follower: '$got'"; fi

out=$(redis-benchmark -p "$leader" -t ping,set,get,incr -n 20000 -c 20 -q 2>&1 | tr '\r' '\n') || true
for t in PING_INLINE PING_MBULK SET GET INCR; do
  if grep -q "^$t: .*requests per second" <<<"$out"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-benchmark $t"; fi
done
if grep -qi "error" <<<"$out"; then failed=$((failed + 1)); echo "FAIL: redis-benchmark reported errors"; fi
echo "compat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
