#!/usr/bin/env bash
# tracehunt against rsigma, side by side (issue #22 item 4), on the same JSON-lines lanes with
# the same SigmaHQ rules (sigma/rules, rules-emerging-threats, rules-threat-hunting):
#   flat  all Mordor JSON files concatenated, repeated to >= 500,000 events (bench/run.sh's corpus)
#   evtx  the evtx crate's JSON (`evtx_dump -o jsonl`) of every EVTX-ATTACK-SAMPLES file, repeated
#         as many times as bench/run.sh repeats those files (68: 506,940 events)
# rsigma (crates.io, MIT) is built outside the repo's tree (RSIGMA_ROOT, default
# /tmp/tracehunt-rsigma) with its workspace's release settings (lto = "thin", codegen-units = 1,
# strip; published crates do not carry them, so they are given as CARGO_PROFILE_RELEASE_*), in
# the newest version whose rust-version this machine's Rust meets (what `cargo info` picks;
# RSIGMA_VERSION overrides). It runs with --logsource-routing, --event-logsource product=windows
# and a pipeline written by bench/rsigma_pipeline.py from tracehunt's own logsource map (channel
# and EventID conditions, 4688/Defender renames, the lane's field names), so both engines apply
# the same rules to the same events.
#
# Per lane: detections of both, per rule compared (rules whose counts differ are listed, with
# why where known), then for 1 and 2 threads: wall time, user+sys CPU seconds, events/s per core
# (events / wall / threads) and per CPU second (what machine load does not inflate), peak RSS;
# and each engine's rule-load time (a run over one event).
#   1 thread:  tracehunt hunt --threads 1;  rsigma engine eval (single-threaded)
#   2 threads: tracehunt hunt --threads 2;  rsigma engine daemon --input stdin (RAYON_NUM_THREADS=2)
#
# usage: bench/rsigma.sh [--lanes "flat evtx"] [--threads "1 2"]
#   env: CORPORA, BENCH_OUT (corpora, default bench/out), TRACEHUNT_BIN, RSIGMA_ROOT, RSIGMA_VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
OUT=${BENCH_OUT:-$ROOT/bench/out}
RSIGMA_ROOT=${RSIGMA_ROOT:-/tmp/tracehunt-rsigma}
LANES="flat evtx"
THREADS="1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --lanes) LANES=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 1;;
  esac
done
[ -d "$CORPORA/sigma/rules" ] || { echo "need $CORPORA" >&2; exit 1; }
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

# --- tools ----------------------------------------------------------------------------------
if [ -n "${TRACEHUNT_BIN:-}" ]; then BIN=$TRACEHUNT_BIN; else
  cargo build --release -q -p tracehunt; BIN=$ROOT/target/release/tracehunt; fi
install_crate() { # crate version -> installs into $RSIGMA_ROOT/bin, outside the repo's tree
  local crate=$1 version=$2
  if ! grep -q "^\"$crate $version " "$RSIGMA_ROOT/.crates.toml" 2>/dev/null; then
    CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
      CARGO_PROFILE_RELEASE_STRIP=true CARGO_TARGET_DIR="$RSIGMA_ROOT/target" \
      cargo install --quiet --locked --root "$RSIGMA_ROOT" --version "$version" "$crate" >&2
  fi
}
RSIGMA_VERSION=${RSIGMA_VERSION:-$(cargo info rsigma 2>/dev/null | awk '/^version:/ {print $2; exit}')}
EVTX_VERSION=$(awk '/^name = "evtx"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
install_crate rsigma "$RSIGMA_VERSION"
install_crate evtx "$EVTX_VERSION"     # evtx_dump: the lane's JSON, same crate version as ours
RSIGMA=$RSIGMA_ROOT/bin/rsigma
echo "tracehunt: $BIN"
echo "rsigma $RSIGMA_VERSION: $RSIGMA ($("$RSIGMA" --version 2>/dev/null | head -1)); evtx_dump $EVTX_VERSION"

# --- corpora ----------------------------------------------------------------------------------
BENCH_OUT=$OUT TRACEHUNT_BIN=$BIN bench/run.sh --build-only >/dev/null
FLAT=$OUT/jsonl-x1/mordor.jsonl
EVTXJ=$OUT/evtxjson-x1/evtx.jsonl
EVTX_COPIES=$(find "$OUT/evtx-x1" -mindepth 1 -maxdepth 1 -type d | wc -l)
if [ ! -f "$OUT/evtxjson-x1/.done" ]; then
  rm -rf "$OUT/evtxjson-x1"; mkdir -p "$OUT/evtxjson-x1"
  find "$CORPORA/evtx-attack-samples" -name '*.evtx' -print0 | sort -z |
    xargs -0 -n1 "$RSIGMA_ROOT/bin/evtx_dump" -t 1 -o jsonl 2>/dev/null |
    grep '^{' > "$EVTXJ.part" || true
  for _ in $(seq 1 "$EVTX_COPIES"); do cat "$EVTXJ.part"; done > "$EVTXJ"
  rm "$EVTXJ.part"; touch "$OUT/evtxjson-x1/.done"
fi
RULEDIR=$OUT/rsigma-rules      # rsigma takes one -r: the three folders as links in one
mkdir -p "$RULEDIR"
for d in rules rules-emerging-threats rules-threat-hunting; do ln -sfn "$CORPORA/sigma/$d" "$RULEDIR/$d"; done
RULES=(-r "$CORPORA/sigma/rules" -r "$CORPORA/sigma/rules-emerging-threats" -r "$CORPORA/sigma/rules-threat-hunting")
for lane in flat evtx; do
  python3 bench/rsigma_pipeline.py "$lane" crates/sigma/data "$RULEDIR" > "$OUT/rsigma-$lane.yml"
done

# --- runs -------------------------------------------------------------------------------------
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
timed() { # out-file time-file cmd... : stdout to out-file, /usr/bin/time figures to time-file
  local out=$1 tf=$2; shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" > "$out" 2> "$TMP/stderr" || { tail -5 "$TMP/stderr" >&2; }
}
run_th() { # lane-file threads out time
  timed "$3" "$4" "$BIN" hunt "$1" --threads "$2" -q -f jsonl "${RULES[@]}"
}
run_rs() { # lane pipeline-file threads out time
  local file=$1 pipe=$2 threads=$3
  local common=(-r "$RULEDIR" -p "$pipe" --logsource-routing --event-logsource product=windows)
  if [ "$threads" = 1 ]; then
    timed "$4" "$5" "$RSIGMA" engine eval "${common[@]}" -e "@$file"
  else
    timed "$4" "$5" env RAYON_NUM_THREADS="$threads" "$RSIGMA" engine daemon "${common[@]}" \
      --input stdin --api-addr 127.0.0.1:0 < "$file"
  fi
}
report() { # label events threads time-file
  python3 - "$@" <<'PY'
import sys
label, events, threads, tf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
wall, user, sys_, rss = open(tf).read().split()[-4:]
wall, cpu, rss = float(wall), float(user) + float(sys_), int(rss)
print(f"  {label:<24} {threads} thr  {wall:7.2f} s  {cpu:7.2f} s CPU  "
      f"{events / wall / threads:>9,.0f} ev/s/core  {events / cpu:>9,.0f} ev/CPU-s  {rss / 1024:6.1f} MB RSS")
PY
}
load() { # engine time-file: rule-load time = a run over one event
  awk -v e="$1" '{ w=$(NF-3); c=$(NF-2)+$(NF-1); r=$NF } END { printf "  %-24s rule load (one event): %.2f s wall, %.2f s CPU, %.1f MB RSS\n", e, w, c, r/1024 }' "$2"
}
for lane in $LANES; do
  case $lane in flat) F=$FLAT;; evtx) F=$EVTXJ;; *) echo "unknown lane $lane" >&2; exit 1;; esac
  EVENTS=$(wc -l < "$F")
  echo "== lane $lane: $F, $EVENTS events, $(( $(stat -c %s "$F") / 1000000 )) MB"
  # rule loading: one event
  head -1 "$F" > "$TMP/one.jsonl"
  run_th "$TMP/one.jsonl" 1 "$TMP/o" "$TMP/t"; load tracehunt "$TMP/t"
  run_rs "$TMP/one.jsonl" "$OUT/rsigma-$lane.yml" 1 "$TMP/o" "$TMP/t"; load rsigma "$TMP/t"
  for t in $THREADS; do
    run_th "$F" "$t" "$TMP/th-$t.jsonl" "$TMP/th-$t.time"
    run_rs "$F" "$OUT/rsigma-$lane.yml" "$t" "$TMP/rs-$t.jsonl" "$TMP/rs-$t.time"
    report tracehunt "$EVENTS" "$t" "$TMP/th-$t.time"
    report rsigma "$EVENTS" "$t" "$TMP/rs-$t.time"
  done
  first=${THREADS%% *}
  python3 bench/rsigma_compare.py "$TMP/th-$first.jsonl" "$TMP/rs-$first.jsonl" "$RULEDIR" "$OUT/rsigma-$lane.yml"
  python3 - "$TMP" "$THREADS" <<'PY'
import sys
tmp, threads = sys.argv[1], sys.argv[2].split()
for t in threads:
    th = float(open(f"{tmp}/th-{t}.time").read().split()[-4])
    rs = float(open(f"{tmp}/rs-{t}.time").read().split()[-4])
    thc = sum(map(float, open(f"{tmp}/th-{t}.time").read().split()[-3:-1]))
    rsc = sum(map(float, open(f"{tmp}/rs-{t}.time").read().split()[-3:-1]))
    print(f"  {t} thr: tracehunt {rs / th:.2f}x rsigma's events/s per core (wall), {rsc / thc:.2f}x per CPU second")
PY
done
