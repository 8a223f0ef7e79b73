#!/usr/bin/env bash
# Does a loaded schema cost the binary path anything? Two bridges run side by
# side on core 0 — "plain" (no schema) and "schema" (a descriptor set of proto/
# loaded) — in front of one echo upstream, and are driven at the same time by
# two wrk instances (Connect unary POST, 1 KiB proto body, -c32 each, core 1).
# Both see the same machine at the same moment, which matters on a shared VM.
# Each round prints the bridges' CPU time per request and their ratio; then
# the median ratio (schema / plain; 1.00 = no cost).
# Needs wrk, bc, and `npm run build`.   ROUNDS=8 DUR=5 [CONTROL=1] bash bench/schema-overhead.sh
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true; rm -rf "$work"' EXIT
../node_modules/.bin/buf build .. -o "$work/schema.binpb"
echo_upstream=servers/echo-upstream.mjs
lua=wrk/bridge.lua
export KIND=unary-proto BODY_BYTES=1024
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
waitfile() { while [ ! -s "$1" ]; do sleep 0.1; done; }
taskset -c 1 node "$echo_upstream" > "$work/up" 2>/dev/null & pids+=($!)
waitfile "$work/up"
start() { # name schema-file
  SCHEMA=$2 UPSTREAM=127.0.0.1:$(cat "$work/up") taskset -c 0 node servers/schema-bridge-server.mjs > "$work/$1.port" & pids+=($!)
  echo $! > "$work/$1.pid"
  waitfile "$work/$1.port"
}
start plain ""
# CONTROL=1: neither bridge loads a schema (an A/A run: the noise floor and any seat bias).
start schema "$( [ -n "${CONTROL:-}" ] || echo "$work/schema.binpb")"
url() { echo http://127.0.0.1:$(cat "$work/$1.port"); }
for name in plain schema; do taskset -c 1 wrk -t1 -c32 -d2s -s "$lua" "$(url $name)" >/dev/null 2>&1; done
for round in $(seq ${ROUNDS:-8}); do
  p0=$(cpu $(cat "$work/plain.pid")); s0=$(cpu $(cat "$work/schema.pid"))
  taskset -c 1 wrk -t1 -c32 -d${DUR:-5}s -s "$lua" "$(url plain)" > "$work/plain.out" &
  w1=$!
  taskset -c 1 wrk -t1 -c32 -d${DUR:-5}s -s "$lua" "$(url schema)" > "$work/schema.out" &
  w2=$!
  wait $w1 $w2
  p1=$(cpu $(cat "$work/plain.pid")); s1=$(cpu $(cat "$work/schema.pid"))
  if grep -q Non-2xx "$work/plain.out" "$work/schema.out"; then echo "round $round: non-2xx responses, discarded"; continue; fi
  pr=$(awk '/requests in/{print $1}' "$work/plain.out"); sr=$(awk '/requests in/{print $1}' "$work/schema.out")
  pu=$(echo "scale=1; ($p1-$p0)*10000/$pr" | bc); su=$(echo "scale=1; ($s1-$s0)*10000/$sr" | bc)
  ratio=$(echo "scale=3; $su/$pu" | bc)
  echo "round $round: plain ${pu} us/req ($pr reqs)  schema ${su} us/req ($sr reqs)  ratio $ratio"
  echo "$ratio" >> "$work/ratios"
done
sort -n "$work/ratios" | awk '{a[NR]=$1} END{printf "median ratio schema/plain over %d rounds: %.3f (min %.3f, max %.3f)\n", NR, (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2, a[1], a[NR]}'
