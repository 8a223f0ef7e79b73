#!/usr/bin/env bash
# Quick unary comparison: the bridge vs the thinnest Node bridge (thin-bridge.mjs),
# both in front of a minimal node:http2 echo upstream. Connect unary POST,
# 1 KiB proto body, wrk with 64 connections. The bridge under test is pinned to
# core 0; wrk and the upstream share core 1 (2-core machine).
# Prints requests/s and the bridge process's CPU time per request, which is
# steadier than requests/s on a shared VM.
# Needs: wrk (Debian package), bc; `npm run build` first.
#   bash bench/quick-unary.sh          DUR=20 CONC=16 KINDS=bridge bash bench/quick-unary.sh
set -euo pipefail
cd "$(dirname "$0")"
rm -f /tmp/up.port /tmp/b.port
taskset -c 1 node servers/echo-upstream.mjs > /tmp/up.port & UP=$!
while [ ! -s /tmp/up.port ]; do sleep 0.1; done; UPORT=$(cat /tmp/up.port)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for kind in ${KINDS:-thin bridge}; do
  if [ $kind = thin ]; then f=servers/thin-bridge.mjs; else f=servers/bridge-server.mjs; fi
  UPSTREAM=127.0.0.1:$UPORT taskset -c 0 node $f > /tmp/b.port & B=$!
  while [ ! -s /tmp/b.port ]; do sleep 0.1; done; BPORT=$(cat /tmp/b.port)
  taskset -c 1 wrk -t1 -c64 -d3s -s wrk/connect-unary.lua http://127.0.0.1:$BPORT >/dev/null 2>&1
  c0=$(cpu $B)
  out=$(taskset -c 1 wrk -t1 -c${CONC:-64} -d${DUR:-10}s -s wrk/connect-unary.lua http://127.0.0.1:$BPORT)
  c1=$(cpu $B)
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}'); reqs=$(echo "$out" | awk '/requests in/{print $1}')
  echo "== $kind rps=$rps cpu_ticks=$((c1-c0)) us/req=$(echo "scale=1; ($c1-$c0)*10000/$reqs" | bc) $(echo "$out" | grep -E 'Non-2xx')"
  kill $B; wait $B 2>/dev/null || true; rm -f /tmp/b.port
done
kill $UP
