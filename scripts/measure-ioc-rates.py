#!/usr/bin/env python3
"""Measures the rates behind tracehunt's IOC likelihood ratio (issue #18 item 4) and writes
crates/attribution/data/ioc-rates.json.

* false-hit rate per IOC type: the reference feeds (maltrail `apt_*.txt` trails and ESET's MISP
  events, both in ../shared/corpora/ioc) are matched against every event tracehunt reads in
  ../shared/corpora (Mordor JSON, EVTX samples, SigmaHQ regression EVTX, Linux, cloud, Zeek,
  web logs: benign or lab data, none an intrusion by a feed's actor), so every hit is a false
  hit. Per type: indicators loaded (`n`) and distinct indicators that hit an event (`hits`).
* multi-actor rate per feed format: actor-tied values and those listed under more than one
  actor, as `hunt --format json` reports them (`ioc.multi_actor`).

Usage (from the project root, after `cargo build --release -p tracehunt`):
    python3 scripts/measure-ioc-rates.py [--binary target/release/tracehunt] [--write]
Without --write it prints the JSON; with it, it rewrites the data file.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpora"))
OUT = os.path.join(ROOT, "crates", "attribution", "data", "ioc-rates.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "tracehunt"))
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    maltrail = os.path.join(CORPORA, "ioc", "maltrail")
    eset = os.path.join(CORPORA, "ioc", "eset-misp")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "hunt.json")
        cmd = [a.binary, "hunt", CORPORA, "--ioc", maltrail, "--ioc", eset,
               "--format", "json", "-q", "-o", out]
        subprocess.run(cmd, check=True, cwd=ROOT)
        with open(out, encoding="utf-8") as f:
            v = json.load(f)
    # Loaded indicators per (format, type), summed over the feed files.
    n = collections.defaultdict(lambda: collections.Counter())
    for feed in v["ioc"]["feeds"]:
        for t, k in feed["loaded"].items():
            n[feed["format"]][t] += k
    # Distinct indicators hit per (format, type).
    hit = collections.defaultdict(set)
    for h in v.get("ioc_hits", []):
        ioc = h["ioc"]
        for s in ioc["sources"]:
            hit[(s["format"], ioc["type"])].add(ioc["value"])
    by_feed = {}
    pooled = collections.Counter()
    pooled_hits = collections.Counter()
    for fmt, types in sorted(n.items()):
        by_feed[fmt] = {}
        for t, k in sorted(types.items()):
            h = len(hit[(fmt, t)])
            by_feed[fmt][t] = {"n": k, "hits": h}
            pooled[t] += k
            pooled_hits[t] += h
    false_hit = {t: {"n": pooled[t], "hits": pooled_hits[t]} for t in sorted(pooled)}
    multi = {f: {"n": m["values"], "hits": m["multi"]}
             for f, m in sorted(v["ioc"]["multi_actor"].items())}
    examples = sorted({(h["ioc"]["type"], h["ioc"]["value"], h["source"])
                       for h in v.get("ioc_hits", [])})
    data = {
        "measured_by": "python3 scripts/measure-ioc-rates.py --write (runs: tracehunt hunt "
                       "../shared/corpora --ioc ../shared/corpora/ioc/maltrail --ioc "
                       "../shared/corpora/ioc/eset-misp --format json)",
        "corpora": "every event tracehunt reads in ../shared/corpora (benign or lab data: "
                   "Mordor, EVTX-ATTACK-SAMPLES, SigmaHQ regression EVTX, samples-cc0, Linux, "
                   "cloud, Zeek, web logs); every IOC hit on them is a false hit",
        "feeds": "maltrail apt_*.txt (stamparm/maltrail 8adace159e, 129 files) and ESET "
                 "malware-ioc MISP events (eset/malware-ioc f9c1102, 57 files)",
        "events": v["summary"]["events"],
        "multi_actor": multi,
        "false_hit": false_hit,
        "by_feed": by_feed,
        "false_hit_examples": [{"type": t, "value": val, "log": os.path.relpath(src, ROOT)}
                               for t, val, src in examples[:50]],
    }
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if a.write:
        with open(OUT, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {OUT}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
