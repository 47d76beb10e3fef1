#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs for the cargo-fuzz targets
# (see fuzz/Cargo.toml). Sources: fuzz/corpus-seeds/ (ours), samples/evtx
# (CC0), rules/builtin, crates/ioc/tests/fixtures and crates/sigma/data (ours)
# from this repository, and, when present, ../shared/corpora (SigmaHQ rules:
# DRL 1.1; Mordor: MIT; SigmaHQ regression data: DRL 1.1; ESET MISP events:
# BSD-2; ATT&CK v18.1 bundle: ATT&CK Terms of Use, small slices only, made
# with jq when it is installed). Idempotent; never touches ../shared/corpora.
set -eu  # no pipefail: `head` closing a pipe early is expected here
cd "$(dirname "$0")/.."
corpora=../shared/corpora
out=fuzz/corpus
targets="evtx_file evtx_chunk evtx_record_json json_records sigma_rules sigma_condition stix_pattern misp_event ioc_csv stix_bundle attack_kb logsource_map wire_event text_logs"
for t in $targets; do
    mkdir -p "$out/$t"
    if [ -d "fuzz/corpus-seeds/$t" ] && [ -n "$(ls "fuzz/corpus-seeds/$t")" ]; then
        cp fuzz/corpus-seeds/$t/* "$out/$t/"
    fi
done

# EVTX: whole sample files, and chunk 0 of each for evtx_chunk.
i=0
find samples/evtx -name '*.evtx' -print0 | sort -z | while IFS= read -r -d '' f; do
    i=$((i + 1))
    cp "$f" "$out/evtx_file/sample$i.evtx"
    dd if="$f" of="$out/evtx_chunk/sample$i.chunk" bs=4096 skip=1 count=16 status=none
    head -c 30000 "$f" > "$out/evtx_file/sample$i-cut.evtx"
done

# Sigma: the built-in pack, plus the 300 smallest SigmaHQ rules and their conditions.
find rules/builtin -name "*.yml" -exec cp {} "$out/sigma_rules/" \;
if [ -d "$corpora/sigma/rules" ]; then
    find "$corpora/sigma/rules" "$corpora/sigma/unsupported" "$corpora/sigma/deprecated" \
        -name '*.yml' -printf '%s\t%p\n' 2>/dev/null | sort -n | head -300 | cut -f2 |
        while IFS= read -r f; do cp "$f" "$out/sigma_rules/sigmahq-$(basename "$f")"; done
    grep -rhoP '^\s*condition:\s*\K.+' "$corpora/sigma/rules" 2>/dev/null | sort -u | head -500 |
        awk -v d="$out/sigma_condition" '{ f = sprintf("%s/sigmahq-%04d.txt", d, NR); printf "%s", $0 > f; close(f) }'
fi

# JSON: a few lines of Mordor files (flat shape), SigmaHQ regression JSON (evtx-JSON shape).
if [ -d "$corpora/mordor/windows" ]; then
    n=0
    find "$corpora/mordor/windows" -name '*.json' -print0 | sort -z | head -zn 8 |
        while IFS= read -r -d '' f; do
            n=$((n + 1))
            { printf '\000'; head -n 5 "$f"; } > "$out/json_records/mordor$n.jsonl"
        done
fi
if [ -d "$corpora/sigma/regression_data" ]; then
    n=0
    find "$corpora/sigma/regression_data" -name '*.json' -size -8k -print0 | sort -z | head -zn 8 |
        while IFS= read -r -d '' f; do
            n=$((n + 1))
            { printf '\000'; cat "$f"; } > "$out/json_records/regression$n.json"
        done
fi
# The evtx crate's JSON of records (SigmaHQ regression JSON, compacted as the crate renders it).
if [ -d "$corpora/sigma/regression_data" ]; then
    n=0
    find "$corpora/sigma/regression_data" -name '*.json' -size -8k -print0 | sort -z | head -zn 16 |
        while IFS= read -r -d '' f; do
            n=$((n + 1))
            python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d[0] if isinstance(d,list) else d; sys.stdout.write(json.dumps(d,separators=(",",":"),ensure_ascii=False))' "$f" \
                > "$out/evtx_record_json/regression$n.json" 2>/dev/null || rm -f "$out/evtx_record_json/regression$n.json"
        done
fi
# Wire events (tracehunt publish) also reach the JSON reader.
for f in fuzz/corpus-seeds/wire_event/*; do
    { printf '\000'; cat "$f"; } > "$out/json_records/wire-$(basename "$f")"
done
# IOC feeds: our test fixtures, the ten smallest ESET MISP events, the
# fixture bundle's patterns one per file, and a CSV made of a MISP event.
cp crates/ioc/tests/fixtures/iocs.csv "$out/ioc_csv/fixture.csv"
cp crates/ioc/tests/fixtures/stix21-indicators.json "$out/stix_bundle/fixture.json"
grep -oE '"pattern": *"([^"\\]|\\.)*"' crates/ioc/tests/fixtures/stix21-indicators.json |
    sed -E 's/^"pattern": *"//; s/"$//; s/\\\\/\\/g' |
    awk -v d="$out/stix_pattern" '{ f = sprintf("%s/fixture-%02d.txt", d, NR); printf "%s", $0 > f; close(f) }'
if [ -d "$corpora/ioc/eset-misp" ]; then
    find "$corpora/ioc/eset-misp" -name '*.json' -printf '%s\t%p\n' | sort -n | head -10 | cut -f2 |
        while IFS= read -r f; do cp "$f" "$out/misp_event/eset-$(basename "$f")"; done
    if command -v jq >/dev/null; then
        f=$(find "$corpora/ioc/eset-misp" -name '*.json' -printf '%s\t%p\n' | sort -n | sed -n 11p | cut -f2)
        jq -r '[.. | objects | select(has("type") and has("value") and (.value|type=="string"))] | .[:60][] | [.type, .value] | @csv' \
            "$f" >"$out/ioc_csv/eset-misp.csv" 2>/dev/null || rm -f "$out/ioc_csv/eset-misp.csv"
    fi
fi

# Logsource mapping: the built-in map and its first 60 lines.
cp crates/sigma/data/windows-logsources.yml "$out/logsource_map/builtin.yml"
head -n 60 crates/sigma/data/windows-logsources.yml >"$out/logsource_map/builtin-head.yml"

# ATT&CK: small slices of the 40 MB bundle (never the whole file): per group,
# the group, 12 of its `uses` relationships and their targets, a campaign
# with 4 relationships, and revoked techniques with their revoked-by links;
# descriptions and non-ATT&CK references dropped. One jq pass, ~10 KB each.
bundle="$corpora/attack/enterprise-attack-18.1.json"
if [ -f "$bundle" ] && command -v jq >/dev/null; then
    jq -c '
    def slim: del(.description, .x_mitre_contributors, .x_mitre_detection, .object_marking_refs,
                  .created_by_ref, .x_mitre_platforms, .x_mitre_data_sources, .x_mitre_domains,
                  .x_mitre_attack_spec_version, .x_mitre_modified_by_ref)
        | if .external_references then .external_references |=
            map(select(.source_name == "mitre-attack") | {source_name, external_id}) else . end;
    .objects as $o | .id as $bid | .spec_version as $sv
    | ($o | map(select(.type == "campaign" and .revoked != true))) as $camps
    | ($o | map(select(.type == "attack-pattern" and .revoked == true)) | .[:3]) as $rev
    | ($rev | map(.id)) as $revids
    | ($o | map(select(.type == "relationship" and .relationship_type == "revoked-by"
                        and (.source_ref as $s | $revids | index($s))))) as $rrels
    | range(0; 6) as $k
    | ["G0009", "G0007", "G0016", "G0032", "G0010", "G0034"][$k] as $g
    | ($o | map(select(.type == "intrusion-set" and any(.external_references[]?; .external_id == $g)))) as $grp
    | ($grp[0].id) as $gid
    | ($o | map(select(.type == "relationship" and .source_ref == $gid)) | .[:12]) as $rels
    | ($rels | map(.target_ref)) as $tgts
    | ($o | map(select(.id as $i | $tgts | index($i)))) as $targets
    | ($camps[$k:$k+1]) as $camp
    | ($o | map(select(.type == "relationship" and .source_ref == $camp[0].id)) | .[:4]) as $crels
    | {type: "bundle", id: $bid, spec_version: $sv,
       objects: ($grp + $rels + $targets + $camp + $crels + $rev + $rrels | map(slim))}' \
        "$bundle" 2>/dev/null |
        awk -v d="$out/attack_kb" '{ f = sprintf("%s/attack-slice-%d.json", d, NR); print > f; close(f) }' ||
        echo "attack_kb: jq slicing failed; hand-written seeds only" >&2
fi


# Text logs (issue #21): the first 4 KiB of each non-Windows text sample, behind a
# selector byte 5 (no header: the file's own first line decides the format).
if [ -d "$corpora/linux" ]; then
    find "$corpora/linux" "$corpora/network" "$corpora/web" -type f \
        \( -name '*.log' -o -name '*.txt' -o -name 'messages' \) 2>/dev/null | sort | head -60 |
        while IFS= read -r f; do
            { printf '\005'; head -c 4096 "$f"; } > "$out/text_logs/$(echo "$f" | md5sum | cut -c1-12)"
        done
fi

for t in "$out"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
