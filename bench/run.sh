#!/usr/bin/env bash
# Whole-tool benchmark (issue #4). Builds a corpus from ../shared/corpora:
#   evtx/   every EVTX-ATTACK-SAMPLES file copied N times (default: enough for >= 500,000 events;
#           real copies: a hunt reads a hard-linked file once, so links would measure 7,455 events)
#   jsonl/  all Mordor JSON files concatenated into one JSONL file, repeated to >= 500,000 events
# then runs `tracehunt hunt` with all active SigmaHQ rules and with --parse-only (the reader
# with zero rules: the parse-only ceiling), and prints events/s, MB/s, wall time, peak RSS
# (/usr/bin/time -v) and the ratio to the ceiling.
#
# Usage: bench/run.sh [--threads N] [--scale K] [--build-only]
#   K multiplies the corpus size (default 1, or $BENCH_SCALE): BENCH_SCALE=4 bench/run.sh builds
#   and runs the 4x corpus (bench/out/evtx-x4, jsonl-x4) used for the flat-memory check.
#   --build-only builds the corpus and exits. Each line also shows user+sys CPU seconds, which
#   machine load does not inflate the way it does wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
OUT=${BENCH_OUT:-$ROOT/bench/out}
THREADS=$(nproc)
SCALE=${BENCH_SCALE:-1}
BUILD_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2;;
    --scale) SCALE=$2; shift 2;;
    --build-only) BUILD_ONLY=1; shift;;
    *) echo "unknown argument $1" >&2; exit 1;;
  esac
done
[ -d "$CORPORA/evtx-attack-samples" ] || { echo "need $CORPORA" >&2; exit 1; }
# TRACEHUNT_BIN=path measures another build (e.g. a previous commit's) with the same corpus.
if [ -n "${TRACEHUNT_BIN:-}" ]; then
  BIN=$TRACEHUNT_BIN
else
  cargo build --release -q -p tracehunt
  BIN=$ROOT/target/release/tracehunt
fi
RULES=(--rules "$CORPORA/sigma/rules" --rules "$CORPORA/sigma/rules-emerging-threats" --rules "$CORPORA/sigma/rules-threat-hunting")

# --- corpus -------------------------------------------------------------------------------
EVTX_EVENTS_PER_COPY=7455      # measured: 269 EVTX files in evtx-attack-samples
MORDOR_EVENTS_PER_COPY=48241   # measured: 54 Mordor files
EVTX_COPIES=$(( (500000 * SCALE + EVTX_EVENTS_PER_COPY - 1) / EVTX_EVENTS_PER_COPY ))
JSON_COPIES=$(( (500000 * SCALE + MORDOR_EVENTS_PER_COPY - 1) / MORDOR_EVENTS_PER_COPY ))
EDIR=$OUT/evtx-x$SCALE
JDIR=$OUT/jsonl-x$SCALE
if [ ! -f "$EDIR/.done-copies" ]; then
  rm -rf "$EDIR"; mkdir -p "$EDIR"
  for i in $(seq 1 $EVTX_COPIES); do
    mkdir -p "$EDIR/$i"
    find "$CORPORA/evtx-attack-samples" -name '*.evtx' -print0 | while IFS= read -r -d '' f; do
      n=$(echo "$f" | md5sum | cut -c1-12)
      cp --reflink=auto --sparse=always "$f" "$EDIR/$i/$n.evtx"
    done
  done
  touch "$EDIR/.done-copies"
fi
if [ ! -f "$JDIR/.done" ]; then
  rm -rf "$JDIR"; mkdir -p "$JDIR"
  find "$CORPORA/mordor/windows" -name '*.json' | sort | xargs cat | grep -v '^\s*$' > "$JDIR/one.jsonl.part"
  for i in $(seq 1 $JSON_COPIES); do cat "$JDIR/one.jsonl.part"; done > "$JDIR/mordor.jsonl"
  rm "$JDIR/one.jsonl.part"
  touch "$JDIR/.done"
fi

[ "$BUILD_ONLY" = 1 ] && { echo "corpus: $EDIR $JDIR"; exit 0; }

# --- runs ---------------------------------------------------------------------------------
measure() { # label, input dir, extra args...
  local label=$1 dir=$2; shift 2
  local tmp; tmp=$(mktemp)
  /usr/bin/time -v "$BIN" hunt "$dir" --threads "$THREADS" --format json --quiet --output "$tmp.json" "$@" 2> "$tmp.time" >/dev/null || true
  local wall rss events dets bytes cpu
  wall=$(grep 'Elapsed (wall clock)' "$tmp.time" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$tmp.time")
  rss=$(grep 'Maximum resident set size' "$tmp.time" | awk '{print $NF}')
  events=$(python3 -c "import json,sys; print(json.load(open('$tmp.json'))['summary']['events'])")
  dets=$(python3 -c "import json,sys; print(json.load(open('$tmp.json'))['summary']['detections'])")
  bytes=$(find -L "$dir" -type f -printf "%s\n" | awk "{s+=\$1} END {printf \"%d\", s}")
  python3 - "$label" "$wall" "$rss" "$events" "$dets" "$bytes" "$cpu" <<'PY'
import sys
label, wall, rss, events, dets, b, cpu = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
print(f"{label:<28} {events:>9} ev  {dets:>8} det  {wall:7.2f} s  {events/wall:>10,.0f} ev/s  {b/wall/1e6:7.1f} MB/s  {rss/1024:7.1f} MB RSS  {cpu:7.2f} s CPU")
PY
  echo "$wall" > "$tmp.wall"
  LAST_WALL=$wall
  rm -f "$tmp" "$tmp.json" "$tmp.time" "$tmp.wall"
}
echo "threads=$THREADS scale=$SCALE  (EVTX: $EVTX_COPIES copies of evtx-attack-samples; JSONL: $JSON_COPIES copies of Mordor)"
measure "evtx parse-only (ceiling)" "$EDIR" --parse-only; C1=$LAST_WALL
measure "evtx all SigmaHQ rules" "$EDIR" "${RULES[@]}"; W1=$LAST_WALL
measure "jsonl parse-only (ceiling)" "$JDIR" --parse-only; C2=$LAST_WALL
measure "jsonl all SigmaHQ rules" "$JDIR" "${RULES[@]}"; W2=$LAST_WALL
python3 -c "print(f'ratio to parse-only ceiling: EVTX {float($C1)/float($W1):.0%}, JSONL {float($C2)/float($W2):.0%}')"
# The same hunts recording into a new store (issue #14: the store must not make a hunt > 10 % slower).
if "$BIN" hunt --help | grep -q -- '--store'; then
  SDIR=$(mktemp -d)
  measure "evtx all rules + --store" "$EDIR" "${RULES[@]}" --store "$SDIR/evtx.db"; S1=$LAST_WALL
  measure "jsonl all rules + --store" "$JDIR" "${RULES[@]}" --store "$SDIR/jsonl.db"; S2=$LAST_WALL
  python3 -c "print(f'with --store vs without: EVTX {float($S1)/float($W1):.2f}x, JSONL {float($S2)/float($W2):.2f}x; store sizes: ' + '$(du -sh "$SDIR"/evtx.db* | awk '{print $1}' | paste -sd+), $(du -sh "$SDIR"/jsonl.db* | awk '{print $1}' | paste -sd+)')"
  rm -rf "$SDIR"
fi
# The issue's small-corpus target: evtx-attack-samples with all rules, start-up included.
measure "evtx-attack-samples (7,455)" "$CORPORA/evtx-attack-samples" "${RULES[@]}"
