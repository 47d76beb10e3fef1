#!/usr/bin/env bash
# Start-up benchmark (issue #22): how long tracehunt takes to be ready to scan with all SigmaHQ
# rules (the three folders bench/run.sh passes), cold and from a warm rule cache, and the full
# hunt against the parse-only ceiling on a triage-sized collection.
#
# Per mode, over N runs (default 7; median, min-max):
#   rules   the rule-load time the program measures itself (TRACEHUNT_DEBUG_RULE_CACHE's note:
#           reading and hashing the rule files, then decoding the cache or parsing + compiling)
#   wall    the whole `hunt` of an empty input (process start, ATT&CK knowledge base, rules, exit)
# Modes: parse-only (no rules: the process floor), no-cache (--no-rule-cache: compile, no cache
# I/O), cold (empty cache directory each run: compile + write), warm (cache hit).
# Then the triage collection (EVTX-ATTACK-SAMPLES + samples-cc0 + linux + cloud + web of
# ../shared/corpora, ~24,000 events): --parse-only, full hunt cold and warm, ratio to the ceiling.
#
# Usage: bench/startup.sh [--runs N] [--threads N]; TRACEHUNT_BIN=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPORA=${CORPORA:-$ROOT/../shared/corpora}
RUNS=7
THREADS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 1;;
  esac
done
[ -d "$CORPORA/sigma/rules" ] || { echo "need $CORPORA" >&2; exit 1; }
if [ -n "${TRACEHUNT_BIN:-}" ]; then BIN=$TRACEHUNT_BIN; else
  cargo build --release -q -p tracehunt; BIN=$ROOT/target/release/tracehunt; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$BIN" "$CORPORA" "$WORK" "$RUNS" "$THREADS" <<'PY'
import json, os, re, shutil, statistics, subprocess, sys, time
binary, corpora, work, runs, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rules = []
for d in ("rules", "rules-emerging-threats", "rules-threat-hunting"):
    rules += ["--rules", os.path.join(corpora, "sigma", d)]
empty = os.path.join(work, "empty.jsonl")
open(empty, "w").write("{}\n")
env = dict(os.environ, TRACEHUNT_DEBUG_RULE_CACHE="1")
env.pop("TRACEHUNT_RULE_CACHE", None)

def run(args, cache):
    e = dict(env, TRACEHUNT_RULE_CACHE=cache)
    t = time.perf_counter()
    p = subprocess.run([binary] + args + ["--threads", threads], env=e, capture_output=True, text=True)
    wall = time.perf_counter() - t
    m = re.search(r"rule cache: (\w+).* in ([0-9.]+) ms", p.stderr)
    return wall, (m.group(1), float(m.group(2))) if m else (None, None), p

def fmt(xs, unit="ms", scale=1e3):
    xs = [x * scale for x in xs]
    return f"{statistics.median(xs):8.1f} {unit} ({min(xs):.1f}-{max(xs):.1f})"

hunt_empty = ["hunt", empty, "-q", "-f", "json", "-o", os.devnull]
warm_dir = os.path.join(work, "warm")
run(hunt_empty + rules, warm_dir)  # fill the warm cache
print(f"{runs} runs each, {threads} threads; median (min-max)")
print(f"{'mode':<12} {'rules ready':>28} {'wall, empty input':>30}")
for mode in ("parse-only", "no-cache", "cold", "warm"):
    walls, loads = [], []
    for i in range(runs):
        if mode == "parse-only":
            w, (ev, ms), p = run(hunt_empty + ["--parse-only"], warm_dir)
        elif mode == "no-cache":
            w, (ev, ms), p = run(hunt_empty + rules + ["--no-rule-cache"], warm_dir)
        elif mode == "cold":
            d = os.path.join(work, f"cold{i}")
            w, (ev, ms), p = run(hunt_empty + rules, d)
            shutil.rmtree(d, ignore_errors=True)
        else:
            w, (ev, ms), p = run(hunt_empty + rules, warm_dir)
            assert ev == "hit", p.stderr
        walls.append(w)
        if ms is not None:
            loads.append(ms / 1e3)
    print(f"{mode:<12} {fmt(loads) if loads else '-':>28} {fmt(walls):>30}")

triage = [os.path.join(corpora, d) for d in ("evtx-attack-samples", "samples-cc0", "linux", "cloud", "web")]
out = os.path.join(work, "out.json")
def hunt(extra, cache):
    w, _, p = run(["hunt"] + triage + ["-q", "-f", "json", "-o", out, "--clobber"] + extra, cache)
    s = json.load(open(out))["summary"]
    return w, s["events"], s["detections"]
print("\ntriage collection: " + ", ".join(os.path.basename(t) for t in triage))
res = {}
for label, extra, cache in (("parse-only", ["--parse-only"], warm_dir), ("hunt, cold", rules, None), ("hunt, warm", rules, warm_dir)):
    walls = []
    for i in range(runs):
        c = cache or os.path.join(work, f"tcold{i}")
        w, ev, det = hunt(extra, c)
        if cache is None:
            shutil.rmtree(c, ignore_errors=True)
        walls.append(w)
    res[label] = statistics.median(walls)
    print(f"{label:<12} {ev:>7} events {det:>6} detections  wall {fmt(walls)}")
for label in ("hunt, cold", "hunt, warm"):
    print(f"ratio to the parse-only ceiling, {label}: {res['parse-only'] / res[label]:.2f}")
PY
