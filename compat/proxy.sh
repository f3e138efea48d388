#!/usr/bin/env bash
# Plain clients through the proxy of a release `redraft dev` (three groups): a scripted
# redis-cli session, redis-benchmark with zero errors, redis-py (compat/test_proxy.py), and
# random commands compared with a redis-server's replies (compat/test_differential.py).
# Needs redis-tools, redis-server and redis-py (installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d)
port=7599
"${CARGO_TARGET_DIR:-target}/release/redraft" dev --port $port --dir "$work/data" --base-port 7501 >"$work/dev.log" 2>&1 &
pid=$!
ref=7598
refc=7597
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; redis-cli -p $ref shutdown nosave >/dev/null 2>&1 || true; redis-cli -p $refc shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# Ready when the proxy has printed its address (it waits until it knows every slot).
for _ in $(seq 1 600); do
  grep -q "proxy on" "$work/dev.log" && break
  sleep 0.05
done
grep -q "proxy on" "$work/dev.log" || { echo "FAIL: proxy not ready"; cat "$work/dev.log"; exit 1; }

passed=0
failed=0
expect() { # expect WANT CMD...
  local want=$1; shift
  local got
  got=$(redis-cli -p $port "$@" 2>&1) || true
  if [ "$got" == "$want" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-cli $* → '$got', want '$want'"; fi
}
expect OK set hello world
expect world get hello
expect 11 append hello " again"
expect "world again" get hello
expect 1 incr counter
expect 11 incrby counter 10
expect 1 expire hello 100
expect 100 ttl hello
expect 1 del hello
expect "" get hello
expect OK mset a 1 b 2 c 3 d 4
expect $'1\n2\n3\n4' mget a b c d
expect 4 del a b c d
expect OK set "bin key" $'va\tlue'
expect $'va\tlue' get "bin key"
expect 2 dbsize
expect 2 wait 2 10000
got=$(redis-cli -p $port --scan | sort | tr '\n' ' ') || true
[ "$got" == "bin key counter " ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: --scan → '$got'"; }

# redis-cli --stat reads keys, memory, clients and counters from INFO (stdbuf: it
# printf()s into a pipe, and loops until killed).
got=$(timeout 2 stdbuf -oL redis-cli -p $port --stat -i 0.2 2>&1 | sed -n 3p) || true
if [[ "$got" =~ ^2\ +[0-9.]+[BKMGT]\ +[0-9]+\ +0\ +[0-9]+\ \(\+[0-9]+\)\ +[0-9]+ ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: --stat → '$got'"; fi
# redis-cli --memkeys asks MEMORY USAGE of every key it samples.
got=$(redis-cli -p $port --memkeys 2>&1) || true
if grep -q "Biggest string found '\"bin key\"'" <<<"$got" && ! grep -q Warning <<<"$got"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: --memkeys → $got"; fi
# redis-cli monitor shows another client's commands in Redis's format.
mon="$work/monitor.txt"
timeout 3 redis-cli -p $port monitor >"$mon" 2>&1 &
mpid=$!
for _ in $(seq 1 50); do grep -q OK "$mon" && break; sleep 0.1; done
redis-cli -p $port set "mon key" $'a\tb' >/dev/null
for _ in $(seq 1 50); do grep -q '"set"' "$mon" && break; sleep 0.1; done
kill $mpid 2>/dev/null || true
wait $mpid 2>/dev/null || true
if grep -qE '^[0-9]+\.[0-9]{6} \[0 127\.0\.0\.1:[0-9]+\] "set" "mon key" "a\\tb"$' "$mon"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: monitor → $(cat "$mon")"; fi
redis-cli -p $port del "mon key" >/dev/null
echo "redis-cli session: $passed passed, $failed failed ($SECONDS s)"
out=$(redis-benchmark -p $port -t ping,set,get,incr,mset -n 100000 -c 50 -q 2>&1 | tr '\r' '\n') || true
for t in PING_INLINE PING_MBULK SET GET INCR "MSET (10 keys)"; do
  if grep -q "^$t: .*requests per second" <<<"$out"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-benchmark $t: $out"; fi
done
if grep -qi "error" <<<"$out"; then failed=$((failed + 1)); echo "FAIL: redis-benchmark reported errors"; fi

# Deep pipelines: more requests in one write than the proxy keeps in flight per client
# (a stall here once held PING -P 100 to 833 requests/s, so a bound on time catches it).
out=$(timeout 60 redis-benchmark -p $port -t ping,get -n 200000 -c 10 -P 100 -q 2>&1 | tr '\r' '\n') || true
for t in PING_INLINE PING_MBULK GET; do
  if grep -q "^$t: .*requests per second" <<<"$out"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-benchmark -P 100 $t: $out"; fi
done
if grep -qi "error" <<<"$out"; then failed=$((failed + 1)); echo "FAIL: redis-benchmark -P 100 reported errors"; fi

echo "redis-benchmark done ($SECONDS s)"
if python3 compat/test_proxy.py $port; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: redis-py through the proxy"; fi
# COMMAND INFO and DOCS of every command, and the same random bitmap, string, keyspace,
# HyperLogLog and transaction commands to a redis-server (one database, as
# redraft has) and through the proxy.
redis-server --port $ref --save '' --appendonly no --databases 1 --daemonize yes --dir "$work" --logfile "$work/redis.log"
for _ in $(seq 1 100); do redis-cli -p $ref ping >/dev/null 2>&1 && break; sleep 0.05; done
for family in bitmaps strings keyspace hll transactions glob commands; do
  if python3 compat/test_differential.py $ref $port 1 3000 $family; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $family differential against redis-server"; fi
done
# Again in RESP3, in pipelines of up to 20 commands (and the hll family's PFCOUNT over
# several slots, which the proxy counts itself).
for family in bitmaps strings keyspace hll transactions; do
  if python3 compat/test_differential.py $ref $port 2 3000 $family resp3 pipeline=20 crossslot; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $family differential (RESP3, pipelined) against redis-server"; fi
done
# Random arguments to every string, bitmap, HyperLogLog and keyspace command: any argument
# may be a key, so the reference is a redis-server in cluster mode serving every slot
# (CROSSSLOT as the proxy answers it).
redis-server --port $refc --cluster-enabled yes --cluster-config-file "$work/nodes-$refc.conf" --save '' --appendonly no --daemonize yes --dir "$work" --logfile "$work/redis-cluster.log"
for _ in $(seq 1 100); do redis-cli -p $refc ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p $refc cluster addslotsrange 0 16383 >/dev/null
for _ in $(seq 1 100); do redis-cli -p $refc cluster info | grep -q cluster_state:ok && break; sleep 0.05; done
if python3 compat/test_differential.py $refc $port 1 3000 fuzz; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: fuzz differential against redis-server"; fi
if python3 compat/test_differential.py $refc $port 2 3000 fuzz resp3 pipeline=20; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: fuzz differential (RESP3, pipelined) against redis-server"; fi
# SHUTDOWN through the proxy stops `redraft dev` as Ctrl-C does, and it exits 0.
got=$(redis-cli -p $port shutdown 2>&1) || true
for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if [ -z "$got" ] && ! kill -0 $pid 2>/dev/null && wait $pid; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: SHUTDOWN → '$got', redraft dev still running or failed"; fi
echo "proxy compat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
