#!/usr/bin/env python3
"""Compare tracehunt's and rsigma's detections per rule (bench/rsigma.sh, issue #22 item 4).

usage: rsigma_compare.py TRACEHUNT_JSONL RSIGMA_JSONL RULE_DIR

Both outputs are JSON lines with one detection per line (`rule_id`; tracehunt's correlation
hits and rsigma's correlation results are left out: the lanes compare base-rule detections).
Prints the totals, how many rules fire in both with equal counts, and every rule whose count
differs, with its title, logsource and the detection fields it uses, so each difference can
be explained (a field or logsource rsigma's pipeline cannot express, see rsigma_pipeline.py).
"""
import collections
import json
import os
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def counts(path, key):
    c = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "correlation" in d or d.get("type") == "correlation" or d.get("rule_type") == "correlation":
                continue
            rid = key(d)
            if rid:
                c[rid] += 1
    return c


def rule_index(rule_dir):
    idx = {}
    for root, _, files in os.walk(rule_dir, followlinks=True):
        for f in files:
            if not f.endswith((".yml", ".yaml")):
                continue
            try:
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    for doc in yaml.load_all(fh, Loader=Loader):
                        if isinstance(doc, dict) and doc.get("id"):
                            idx[str(doc["id"])] = doc
            except (yaml.YAMLError, UnicodeDecodeError):
                pass
    return idx


def main():
    th = counts(sys.argv[1], lambda d: d.get("rule_id"))
    rs = counts(sys.argv[2], lambda d: d.get("rule_id"))
    rules = rule_index(sys.argv[3])
    both = set(th) & set(rs)
    same = [r for r in both if th[r] == rs[r]]
    print(f"  detections: tracehunt {sum(th.values()):,} ({len(th)} rules), "
          f"rsigma {sum(rs.values()):,} ({len(rs)} rules); "
          f"{len(same)} of {len(both)} rules firing in both have equal counts")
    diff = sorted(set(th) | set(rs), key=lambda r: -abs(th[r] - rs[r]))
    for r in diff:
        if th[r] == rs[r]:
            continue
        doc = rules.get(r, {})
        ls = doc.get("logsource") or {}
        ls = "/".join(str(ls[k]) for k in ("product", "category", "service") if ls.get(k))
        fields = set()
        for k, v in (doc.get("detection") or {}).items():
            items = v if isinstance(v, list) else [v]
            for it in items:
                if isinstance(it, dict):
                    fields.update(str(x).split("|")[0] for x in it)
        print(f"    {r}  tracehunt {th[r]:>5}  rsigma {rs[r]:>5}  [{ls}] "
              f"{str(doc.get('title', '?'))[:60]}  fields: {','.join(sorted(fields))[:100]}")


if __name__ == "__main__":
    main()
