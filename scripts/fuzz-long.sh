#!/usr/bin/env bash
# Long fuzz runs for issue #6 ("each target >= 1 CPU-hour in total").
#
#   scripts/fuzz-long.sh SECONDS [TARGET...]
#
# Runs each target (default: all of `cargo fuzz list`) for SECONDS of wall
# time in one process, one after another, and appends one line per run to
# fuzz/runs.tsv (committed: the CPU-time ledger):
#   date  target  seconds  execs  cov  ft  corpus  crash(0/1)  commit  clock
# `seconds` is CPU time (user + sys of the fuzzer, from /usr/bin/time;
# clock=cpu), not wall time: on a loaded machine a 1500 s run may get only
# 900 CPU-seconds. Older rows measured wall time (clock=wall, an upper bound
# on their CPU time); --totals keeps the two apart.
# The totals per target: `scripts/fuzz-long.sh --totals`.
# Don't pause a running fuzzer (SIGSTOP, e.g. to benchmark) for longer than
# its -timeout (20 s): on resume libFuzzer reports the unit it was running as a
# timeout (seen: "timeout after 201 seconds" on an input that runs in 4 ms).
# Re-run such an artifact (`fuzz/target/*/release/<target> <file>`) before
# believing it.
# To free the cores (e.g. to benchmark): `touch fuzz/PAUSE`, then stop the
# running fuzzer with SIGINT (`pkill -INT -f -- '-artifact_prefix=.*/fuzz/artifacts/'`). Its
# row is logged with crash=0 (libFuzzer's "run interrupted" is not a finding)
# and the script waits while fuzz/PAUSE exists before starting the next run.
# A crash leaves its input in fuzz/artifacts/<target>/ and the log in
# fuzz/logs/<target>-<date>.log; turn it into a regression test named after
# what broke.
set -euo pipefail
cd "$(dirname "$0")/.."
ledger=fuzz/runs.tsv
[ -f "$ledger" ] || printf 'date\ttarget\tseconds\texecs\tcov\tft\tcorpus\tcrash\tcommit\tclock\n' >"$ledger"

if [ "${1:-}" = "--totals" ]; then
    awk -F'\t' 'NR>1 {if ($10 == "cpu") s[$2]+=$3; else w[$2]+=$3; e[$2]+=$4; c[$2]=$5; x[$2]+=$8}
        END {printf "%-16s %8s %9s %12s %8s %7s\n", "target", "cpu_min", "wall_min", "execs", "last_cov", "crashes";
             for (t in e) printf "%-16s %8.1f %9.1f %12d %8s %7d\n", t, s[t]/60, w[t]/60, e[t], c[t], x[t]}' "$ledger" | sort
    exit 0
fi

secs=${1:?usage: fuzz-long.sh SECONDS [TARGET...]}
shift
while [ -e fuzz/PAUSE ]; do sleep 10; done
[ -d fuzz/corpus ] || scripts/fuzz-seeds.sh
mkdir -p fuzz/logs
cd fuzz
cargo +nightly fuzz build -O >/dev/null 2>&1 || cargo +nightly fuzz build -O
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for t in "${targets[@]}"; do
    while [ -e PAUSE ]; do sleep 10; done
    mkdir -p "corpus/$t"
    log="logs/$t-$(date -u +%Y%m%dT%H%M%S).log"
    crash=0
    /usr/bin/time -o "$log.time" -f '%U %S' cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -max_len=140000 \
        -print_final_stats=1 >"$log" 2>&1 || crash=1
    # Stopped by SIGINT on purpose (see the header): no finding.
    if [ $crash = 1 ] && grep -q 'libFuzzer: run interrupted' "$log" \
        && ! grep -qE '^==[0-9]+== ERROR|^SUMMARY: ' "$log"; then
        crash=0
    fi
    # The last line: /usr/bin/time adds "Command exited with non-zero status N"
    # above it when the fuzzer stopped on a finding.
    took=$(tail -n 1 "$log.time" | awk '{printf "%d", $1 + $2}')
    execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tcpu\n' "$(date -u +%FT%TZ)" "$t" "$took" \
        "${execs:-0}" "${cov:-}" "${ft:-}" "${corp:-}" "$crash" \
        "$(git rev-parse --short HEAD)" >>"../$ledger"
    echo "fuzz $t: ${took}s execs=${execs:-?} cov=${cov:-?} crash=$crash ($log)"
done
