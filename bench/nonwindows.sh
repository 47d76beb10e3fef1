#!/usr/bin/env bash
# Whole-tool benchmark of the non-Windows readers (issue #21). Builds inputs from ../shared/corpora:
#   auditd.log      every raw auditd file of linux/auditd-laurel and linux/auditd-go-libaudit (the
#                   auditd-format .txt/.log files), concatenated, repeated to >= 500,000 records
#   cloudtrail.jsonl  the 295 Stratus Red Team CloudTrail records as JSON lines, repeated to 100,000
#   cloudtrail.jsonl.gz  the same, gzipped
#   zeek-dns.log    network/zeek-zed/tsv/dns.log (19,992 records) x 50, headers repeated
#   apache.log      web/apache-elastic-examples/apache_logs (8,000 lines) x 50
# then runs `tracehunt hunt` on each with --parse-only (the reader alone) and with all SigmaHQ rules,
# printing events/s, wall and CPU seconds and peak RSS (/usr/bin/time -v).
# Usage: bench/nonwindows.sh [--threads N]; TRACEHUNT_BIN=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
OUT=${BENCH_OUT:-$ROOT/bench/out}/nonwindows
THREADS=$(nproc)
[ "${1:-}" = "--threads" ] && THREADS=$2
[ -d "$CORPORA/linux" ] || { echo "need $CORPORA/linux" >&2; exit 1; }
if [ -n "${TRACEHUNT_BIN:-}" ]; then BIN=$TRACEHUNT_BIN; else
  cargo build --release -q -p tracehunt; BIN=$ROOT/target/release/tracehunt; fi
RULES=(--rules "$CORPORA/sigma/rules" --rules "$CORPORA/sigma/rules-emerging-threats" --rules "$CORPORA/sigma/rules-threat-hunting")

mkdir -p "$OUT"
if [ ! -f "$OUT/.done" ]; then
  # Raw auditd files only: lines starting with type= or node= (no laurel JSON, no .golden).
  find "$CORPORA/linux/auditd-laurel" "$CORPORA/linux/auditd-go-libaudit" -type f \( -name '*.txt' -o -name '*.log' \) |
    sort | while IFS= read -r f; do grep -qE '^(node=[^ ]+ )?type=[A-Z_]+ msg=audit\(' "$f" && grep -E '^(node=[^ ]+ )?type=' "$f"; done > "$OUT/one.audit" || true
  n=$(wc -l < "$OUT/one.audit"); reps=$(( (500000 + n - 1) / n ))
  for _ in $(seq 1 "$reps"); do cat "$OUT/one.audit"; done > "$OUT/auditd.log"; rm "$OUT/one.audit"
  python3 - "$CORPORA/cloud/cloudtrail-stratus" "$OUT/cloudtrail.jsonl" <<'PY'
import json, pathlib, sys
recs = []
for f in sorted(pathlib.Path(sys.argv[1]).rglob('*.json')):
    v = json.loads(f.read_text())
    recs.extend(v if isinstance(v, list) else v.get('Records', []))
with open(sys.argv[2], 'w') as out:
    for i in range(100000):
        out.write(json.dumps(recs[i % len(recs)]) + '\n')
PY
  gzip -kf "$OUT/cloudtrail.jsonl"
  for _ in $(seq 1 50); do cat "$CORPORA/network/zeek-zed/tsv/dns.log"; echo; done > "$OUT/zeek-dns.log"
  for _ in $(seq 1 50); do cat "$CORPORA/web/apache-elastic-examples/apache_logs"; done > "$OUT/apache.log"
  touch "$OUT/.done"
fi

measure() { # label, file, extra args...
  local label=$1 file=$2; shift 2
  local tmp; tmp=$(mktemp)
  /usr/bin/time -v "$BIN" hunt "$file" --threads "$THREADS" --format json --quiet --output "$tmp.json" "$@" 2> "$tmp.time" >/dev/null || true
  python3 - "$label" "$tmp.time" "$tmp.json" <<'PY'
import json, re, sys
label, tpath, jpath = sys.argv[1:4]
t = open(tpath).read()
wall = t.split('Elapsed (wall clock) time (h:mm:ss or m:ss):')[1].split()[0].split(':')
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
cpu = sum(float(m) for m in re.findall(r'(?:User|System) time \(seconds\): ([0-9.]+)', t))
rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', t).group(1))
s = json.load(open(jpath))['summary']
print(f"{label:<34} {s['events']:>9} ev {s['detections']:>7} det {s['records_skipped']:>5} skipped "
      f"{wall:7.2f} s {s['events']/wall:>10,.0f} ev/s {cpu:7.2f} s CPU {rss/1024:7.1f} MB RSS")
PY
  rm -f "$tmp" "$tmp.json" "$tmp.time"
}
echo "threads=$THREADS  inputs in $OUT"
for f in auditd.log cloudtrail.jsonl cloudtrail.jsonl.gz zeek-dns.log apache.log; do
  measure "$f parse-only" "$OUT/$f" --parse-only
  measure "$f all SigmaHQ rules" "$OUT/$f" "${RULES[@]}"
done
