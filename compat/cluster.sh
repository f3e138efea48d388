#!/usr/bin/env bash
# Redis Cluster tools and clients straight at the nodes of a release `redraft dev`
# (three groups): redis-cli -c, redis-cli --cluster check, redis-benchmark --cluster,
# redis-py RedisCluster. Needs redis-tools and redis-py (installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d)
"${CARGO_TARGET_DIR:-target}/release/redraft" dev --port 0 --dir "$work/data" --base-port 7401 >"$work/dev.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

# Ready when every replica of every group has applied the first configuration: a node
# that has not answers CLUSTERDOWN, as a Redis Cluster node not yet given slots does.
ready=""
for _ in $(seq 1 400); do
  n=0
  for p in $(seq 7401 7409); do
    redis-cli -p $p info cluster 2>/dev/null | grep -q "redraft_slots_owned:[1-9]" && n=$((n + 1))
  done
  if [ $n -eq 9 ] && redis-cli -p 7401 cluster info 2>/dev/null | grep -q "cluster_state:ok"; then ready=1; break; fi
  sleep 0.05
done
[ -n "$ready" ] || { echo "FAIL: cluster not ready"; cat "$work/dev.log"; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# redis-cli -c follows MOVED from whichever node it starts at.
for i in $(seq 1 30); do
  port=$((7401 + i % 9))
  got=$(redis-cli -c -p $port set "key:$i" "v$i" 2>&1) || true
  [ "$got" == OK ] || { fail "redis-cli -c set key:$i via $port: $got"; continue; }
  [ "$(redis-cli -c -p $((7401 + (i + 4) % 9)) get "key:$i")" == "v$i" ] && ok || fail "redis-cli -c get key:$i"
done

# redis-cli exits non-zero when the check finds a problem: keep its report for fail().
# Asked again while a group elects a leader (the nodes' views differ for that long), as
# with Redis Cluster during a failover.
for _ in $(seq 1 20); do
  check=$(redis-cli --cluster check 127.0.0.1:7401 2>&1) && break
  sleep 0.25
done
grep -q "\[OK\] All nodes agree about slots configuration." <<<"$check" && ok || fail "cluster check: nodes disagree: $check"
grep -q "\[OK\] All 16384 slots covered." <<<"$check" && ok || fail "cluster check: slots not covered: $check"

out=$(redis-benchmark --cluster -p 7401 -t set,get -n 100000 -c 50 -q 2>&1 | tr '\r' '\n') || true
for t in SET GET; do
  grep -q "^$t: .*requests per second" <<<"$out" && ok || fail "redis-benchmark --cluster $t: $out"
done
grep -qi "error" <<<"$out" && fail "redis-benchmark --cluster reported errors: $out" || ok

if python3 compat/test_cluster.py 7401; then ok; else fail "redis-py RedisCluster (compat/test_cluster.py)"; fi

# redis-cli --cluster import moves a redis-server's keys into redraft: the source's MIGRATE
# sends each key to its slot's owner as SELECT 0 and RESTORE (the DUMP payload, the TTL).
src=7488
redis-server --port $src --save '' --appendonly no --daemonize yes --dir "$work" --logfile "$work/redis.log"
trap 'redis-cli -p $src shutdown nosave >/dev/null 2>&1 || true; kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do redis-cli -p $src ping >/dev/null 2>&1 && break; sleep 0.05; done
long=$(printf 'ab%.0s' $(seq 1 200))
{ for i in $(seq 1 500); do echo "SET imp:$i value-$i"; done
  echo "SET imp:ttl x EX 1000"; echo "SET imp:int 12345"; echo "SET imp:long $long"; } | redis-cli -p $src >/dev/null
out=$(redis-cli --cluster import 127.0.0.1:7401 --cluster-from 127.0.0.1:$src --cluster-copy 2>&1) || true
[ "$(grep -c "Migrating imp:.*OK" <<<"$out")" -eq 503 ] && ok || fail "redis-cli --cluster import: $out"
got=$(for k in imp:1 imp:250 imp:500 imp:int imp:long; do redis-cli -c -p 7405 get $k; done | tr '\n' ' ')
[ "$got" == "value-1 value-250 value-500 12345 $long " ] && ok || fail "imported values: $got"
ttl=$(redis-cli -c -p 7402 ttl imp:ttl)
[ "$ttl" -gt 900 ] && [ "$ttl" -le 1000 ] && ok || fail "imported TTL: $ttl"
keys=$(python3 -c "
import redis
r = redis.RedisCluster(host='127.0.0.1', port=7401)
print(sum(1 for _ in r.scan_iter(match='imp:*', count=1000, target_nodes=redis.RedisCluster.PRIMARIES)))")
[ "$keys" -eq 503 ] && ok || fail "imported keys: $keys of 503"
echo "cluster compat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
