#!/usr/bin/env python3
"""Write an rsigma processing pipeline that gives rsigma tracehunt's logsource semantics.

Used by bench/rsigma.sh (issue #22 item 4) so both engines evaluate the same rules against the
same events. Reads tracehunt's logsource map (crates/sigma/data/*-logsources.yml, schema in
crates/sigma/data/README.md) and the rules themselves (for the field names they use), and writes
a pySigma-style pipeline (rsigma 0.23 `rsigma-eval` pipeline schema: `field_name_mapping`,
`add_condition`, `rule_conditions: [{type: logsource, ...}]`) to stdout.

usage: rsigma_pipeline.py LANE DATA_DIR RULE_DIR...
  LANE  flat  Mordor / nxlog flat records (fields at the top level)
        evtx  the evtx crate's JSON (`evtx_dump -o jsonl`): Event.System.*, Event.EventData.*

What it expresses, per lane:
  * each Windows logsource -> add_condition EventID in [its EventIDs] (the union over its
    sources), or Channel in [its channels] when it names no EventIDs (services); tracehunt also
    requires the channel, so rsigma may match a category's EventID in another channel (the
    per-rule comparison shows it);
  * each logsource of another product (linux, cloud, network files) and each Windows logsource
    tracehunt does not map (`file_access`, `file_rename`: inactive there, TH010) -> a condition
    no Windows event meets (tracehunt never routes Windows events to them);
  * a source's `field_map` (4688: Image -> NewProcessName, Defender: Signature -> Threat Name)
    -> the Sigma field maps to both names for that logsource's rules;
  * the flat reader's aliases (Computer <- Hostname, Provider_Name <- SourceName, ...) and, for
    evtx, every rule field -> its path in the evtx JSON (System fields by their place,
    the others under Event.EventData).
Not expressible (differences the bench lists per rule): tracehunt's `derived` 4688 fields
(IntegrityLevel, User, hex PIDs), UserData fields in evtx JSON, EventID with Qualifiers.
"""
import os
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Where the evtx crate's JSON puts the System fields tracehunt names by leaf (shape.rs).
EVTX_SYSTEM = {
    "EventID": ["Event.System.EventID", "Event.System.EventID.#text"],
    "Channel": ["Event.System.Channel"],
    "Computer": ["Event.System.Computer"],
    "Level": ["Event.System.Level"],
    "Task": ["Event.System.Task"],
    "Opcode": ["Event.System.Opcode"],
    "Keywords": ["Event.System.Keywords"],
    "Version": ["Event.System.Version"],
    "EventRecordID": ["Event.System.EventRecordID"],
    "Provider_Name": ["Event.System.Provider.#attributes.Name"],
    "Provider_Guid": ["Event.System.Provider.#attributes.Guid"],
    "ProcessID": ["Event.System.Execution.#attributes.ProcessID"],
    "ThreadID": ["Event.System.Execution.#attributes.ThreadID"],
    "UserID": ["Event.System.Security.#attributes.UserID"],
}
# The flat reader's aliases (shape.rs, from_flat): tracehunt name <- Mordor name.
FLAT_ALIASES = {
    "Computer": "Hostname",
    "Provider_Name": "SourceName",
    "Provider_Guid": "ProviderGuid",
    "EventRecordID": "RecordNumber",
    "ProcessID": "ExecutionProcessID",
}
NEVER = "tracehunt-bench:no-windows-event-has-this-channel"


def rule_docs(dirs):
    for d in dirs:
        for root, _, files in os.walk(d, followlinks=True):
            for f in sorted(files):
                if f.endswith((".yml", ".yaml")):
                    try:
                        with open(os.path.join(root, f), encoding="utf-8") as fh:
                            for doc in yaml.load_all(fh, Loader=Loader):
                                if isinstance(doc, dict):
                                    yield doc
                    except (yaml.YAMLError, UnicodeDecodeError):
                        continue


def fields_of(detection, out):
    if isinstance(detection, dict):
        for k, v in detection.items():
            if k in ("condition", "timeframe"):
                continue
            if isinstance(v, dict):
                for key in v:
                    if isinstance(key, str) and key.split("|")[0]:
                        out.add(key.split("|")[0])
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        for key in item:
                            if isinstance(key, str) and key.split("|")[0]:
                                out.add(key.split("|")[0])


def logsource_cond(entry):
    c = {"type": "logsource"}
    for k in ("product", "category", "service"):
        if entry.get(k):
            c[k] = entry[k]
    return c


def main():
    lane, data, rule_dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    assert lane in ("flat", "evtx"), "LANE is flat or evtx"
    maps = {}
    for name in ("windows", "linux", "cloud", "network"):
        with open(os.path.join(data, f"{name}-logsources.yml"), encoding="utf-8") as fh:
            maps[name] = yaml.load(fh, Loader=Loader)["logsources"]
    fields, logsources = set(), set()
    for doc in rule_docs(rule_dirs):
        fields_of(doc.get("detection"), fields)
        ls = doc.get("logsource") or {}
        if isinstance(ls, dict):
            logsources.add(tuple(ls.get(k) for k in ("product", "category", "service")))

    def path(field):  # a tracehunt field name -> its names in this lane's JSON
        if lane == "flat":
            alias = FLAT_ALIASES.get(field)
            return [field, alias] if alias else [field]
        return EVTX_SYSTEM.get(field, [f"Event.EventData.{field}"])

    channel = "Channel" if lane == "flat" else "Event.System.Channel"
    event_id = "EventID" if lane == "flat" else "Event.System.EventID"
    items = []
    # 1. per-logsource renames (before the lane mapping, which then leaves mapped names alone)
    for e in maps["windows"]:
        renames = {}
        for s in e["sources"]:
            for sigma, ours in (s.get("field_map") or {}).items():
                renames.setdefault(sigma, set()).update([sigma, ours])
        if renames:
            mapping = {
                k: [p for name in sorted(v) for p in path(name)] for k, v in renames.items()
            }
            items.append({
                "id": f"renames_{e.get('category') or e.get('service')}",
                "type": "field_name_mapping",
                "mapping": mapping,
                "rule_conditions": [logsource_cond(e)],
            })
    # 2. the lane's field names
    mapping = {f: path(f) for f in sorted(fields) if path(f) != [f]}
    if mapping:
        items.append({"id": f"{lane}_fields", "type": "field_name_mapping", "mapping": mapping})
    # 3. logsource conditions, with the lane's final field names
    covered = set()
    for e in maps["windows"]:
        covered.add((e.get("product"), e.get("category"), e.get("service")))
        chans = sorted({c for s in e["sources"] for c in (s.get("channels") or [])})
        ids = [s.get("event_ids") for s in e["sources"]]
        cond = {}
        if ids and all(ids):
            # EventIDs only, as rsigma's own sysmon pipeline: a Channel condition beside them
            # made rsigma 0.23 about 10x slower per event (3,000 Mordor events: 4.2 against
            # 0.9 CPU-s), which would measure the pipeline, not the engine.
            cond[event_id] = sorted({i for x in ids for i in x})
        elif chans:
            cond[channel] = chans
        if cond:
            items.append({
                "id": f"logsource_{e.get('category') or e.get('service')}",
                "type": "add_condition",
                "conditions": cond,
                "rule_conditions": [logsource_cond(e)],
            })
    never = []
    for name in ("linux", "cloud", "network"):
        never += [logsource_cond(e) for e in maps[name]]
        covered.update((e.get("product"), e.get("category"), e.get("service")) for e in maps[name])
    for product, category, service in sorted(logsources, key=str):
        if (product, category, service) in covered or (category is None and service is None):
            continue  # mapped, or product-only (windows: every event; others: pruned by routing)
        never.append(logsource_cond({"product": product, "category": category, "service": service}))
    for i, c in enumerate(never):
        items.append({
            "id": f"not_windows_{i}",
            "type": "add_condition",
            "conditions": {channel: NEVER},
            "rule_conditions": [c],
        })
    yaml.safe_dump({"name": f"tracehunt_{lane}", "priority": 10, "transformations": items},
                   sys.stdout, sort_keys=False, allow_unicode=True, width=1000)


if __name__ == "__main__":
    main()
