#!/usr/bin/env bash
# Peak RSS of one EVTX file at 0.2 GB and at 4.2 GB (issue #20 item 7: flat
# within +-10 %). Builds both files from the real EVTX-ATTACK-SAMPLES chunks
# (bench/big_evtx.py: ids renumbered, CRCs rewritten; 4.4 GB of disk in
# bench/out) and hunts each with all SigmaHQ rules and parse-only.
# usage: bench/evtx_flat.sh   (TRACEHUNT_BIN, CORPORA, THREADS override)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
BIN=${TRACEHUNT_BIN:-$ROOT/target/release/tracehunt}
THREADS=${THREADS:-2}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p tracehunt)
for spec in small:3200 large:64000; do
  name=${spec%%:*}; n=${spec##*:}
  f=$OUT/big-$name.evtx
  [ -s "$f" ] || python3 "$ROOT/bench/big_evtx.py" "$CORPORA/evtx-attack-samples" "$f" "$n"
done
rss() { /usr/bin/time -f '%M %e' "$@" 2>&1 >/dev/null | tail -1; }
declare -A KB
for mode in rules parse; do
  for name in small large; do
    f=$OUT/big-$name.evtx
    if [ $mode = rules ]; then
      r=$(rss "$BIN" hunt "$f" -t "$THREADS" -q -f jsonl -o /dev/null \
        -r "$CORPORA/sigma/rules" -r "$CORPORA/sigma/rules-threat-hunting" -r "$CORPORA/sigma/rules-emerging-threats")
    else
      r=$(rss "$BIN" hunt "$f" -t "$THREADS" -q --parse-only)
    fi
    set -- $r
    KB[$mode-$name]=$1
    printf '%-6s %-5s %6d MB of file  peak RSS %7d KB  %6.2f s\n' "$mode" "$name" \
      $(( $(stat -c %s "$f") / 1000000 )) "$1" "$2"
  done
  awk -v a="${KB[$mode-small]}" -v b="${KB[$mode-large]}" -v m=$mode \
    'BEGIN { printf "%-6s large/small peak RSS: %.3f\n", m, b / a }'
done
