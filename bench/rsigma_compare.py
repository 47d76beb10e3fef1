#!/usr/bin/env python3
"""Compare tracehunt's and rsigma's detections per rule (bench/rsigma.sh, issue #22 item 4).

usage: rsigma_compare.py TRACEHUNT_JSONL RSIGMA_JSONL RULE_DIR [PIPELINE_YML]

Both outputs are JSON lines with one detection per line (`rule_id`; tracehunt's correlation
hits and rsigma's correlation results are left out: the lanes compare base-rule detections).
Prints the totals, how many rules fire in both with equal counts, and every rule whose count
differs, with its title, logsource and the detection fields it uses, so each difference can
be explained (a field or logsource rsigma's pipeline cannot express, see rsigma_pipeline.py).
With the pipeline, the differences whose cause is known are labelled `why:` (checked on single
events with rsigma 0.23.0):
  * `null`/`fieldref` on a field the pipeline maps to several names (Image -> Image,
    NewProcessName; ParentImage -> ParentImage, ParentProcessName; LogonId -> LogonId,
    SubjectLogonId): rsigma expands `Image: null` to `Image: null or NewProcessName: null`,
    which every Sysmon event (no NewProcessName) satisfies, so a `not filter_null` drops all of
    its detections (one WmiPrvSE event: 1 match without the pipeline, 0 with it);
  * IntegrityLevel on process_creation: tracehunt derives it from 4688's MandatoryLabel SID
    (crates/sigma/data/windows-logsources.yml), a value conversion a field rename cannot express,
    so tracehunt also fires on the 4688 twin of each Sysmon event;
  * `Data` on the evtx-JSON lane: the evtx crate writes an event's unnamed EventData items as
    `"Data": {"#text": [...]}`; tracehunt reads them as Data's values, rsigma's `Data` is the
    object, so its `Data|contains` never matches (MSSQL 18456 with `[CLIENT: 10.0.2.17]`: rsigma
    fires although the rule's local-address filter applies; XPCmdshell, Ntdsutil: rsigma misses);
  * LogonProcessName: Windows pads it (`"NtLmSsp "`); tracehunt compares it without the padding
    (engine PADDED_FIELDS), rsigma exactly (Pass the Hash 2: 6 events against 4 on one copy).
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


def multi_mapped(pipeline_path):
    """Fields the pipeline maps to more than one name."""
    if not pipeline_path:
        return set()
    with open(pipeline_path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=Loader) or {}
    out = set()
    for t in doc.get("transformations") or []:
        for field, names in (t.get("mapping") or {}).items():
            if isinstance(names, list) and len(names) > 1:
                out.add(field)
    return out


def why(doc, multi, evtx_lane):
    """The known cause of a count difference, or ''."""
    det = doc.get("detection") or {}
    for v in det.values():
        for it in v if isinstance(v, list) else [v]:
            if not isinstance(it, dict):
                continue
            for k, val in it.items():
                field, *mods = str(k).split("|")
                if field in multi and (val is None or "fieldref" in mods):
                    return f"why: `{field}` {'fieldref' if 'fieldref' in mods else 'null'} over the pipeline's one-to-many mapping (rsigma artifact)"
    ls = doc.get("logsource") or {}
    used = {str(k).split("|")[0] for v in det.values() for it in (v if isinstance(v, list) else [v])
            if isinstance(it, dict) for k in it}
    if "Data" in used and evtx_lane:
        return "why: `Data` items are `Data.#text` in evtx-crate JSON (tracehunt reads the items, rsigma the object)"
    if "LogonProcessName" in used:
        return "why: LogonProcessName is padded (`NtLmSsp `); tracehunt compares it unpadded"
    if ls.get("category") == "process_creation" and "IntegrityLevel" in str(det):
        return "why: tracehunt derives IntegrityLevel from 4688's MandatoryLabel (not a rename)"
    return ""


def main():
    multi = multi_mapped(sys.argv[4] if len(sys.argv) > 4 else None)
    evtx_lane = len(sys.argv) > 4 and "evtx" in os.path.basename(sys.argv[4])
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
        reason = why(doc, multi, evtx_lane)
        if reason:
            print(f"      {reason}")


if __name__ == "__main__":
    main()
