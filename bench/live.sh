#!/usr/bin/env bash
# Alert latency of `tracehunt watch` with all SigmaHQ rules (rules,
# rules-emerging-threats, rules-threat-hunting): an event appended to a
# followed file, and events POSTed to the HTTP endpoint (one POST per 10 ms),
# at a steady 1,000 and 10,000 events/s, >= 10,000 events each; p50/p90/p99
# latency from append/POST to the detection on stdout, lost events, peak RSS.
# TRACEHUNT_BIN=... measures another build; EVENTS=... changes the count.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPORA="${CORPORA:-../shared/corpora}"
BIN="${TRACEHUNT_BIN:-target/release/tracehunt}"
[ -x "$BIN" ] || cargo build --release -p tracehunt
EVENTS="${EVENTS:-20000}"
RULES=("$CORPORA/sigma/rules" "$CORPORA/sigma/rules-emerging-threats" "$CORPORA/sigma/rules-threat-hunting")
echo "# tracehunt watch alert latency, $(nproc) cores, $(date -u +%F)"
for mode in file http; do
  for rate in 1000 10000; do
    n=$EVENTS
    [ "$rate" -eq 1000 ] && n=$(( EVENTS / 2 ))
    python3 bench/live_latency.py --bin "$BIN" --mode "$mode" --rate "$rate" --events "$n" "${RULES[@]}"
  done
done
