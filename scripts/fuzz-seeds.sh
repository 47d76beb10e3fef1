#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs for the cargo-fuzz targets
# (see fuzz/Cargo.toml). Sources: fuzz/corpus-seeds/ (ours), samples/evtx
# (CC0) and rules/builtin (ours) from this repository, and, when present,
# ../shared/corpora (SigmaHQ rules: DRL 1.1; Mordor: MIT; SigmaHQ
# regression data: DRL 1.1). Idempotent; never touches ../shared/corpora.
set -eu  # no pipefail: `head` closing a pipe early is expected here
cd "$(dirname "$0")/.."
corpora=../shared/corpora
out=fuzz/corpus
mkdir -p "$out"/{evtx_file,evtx_chunk,json_records,sigma_rules,sigma_condition}
for t in json_records sigma_rules sigma_condition; do
    cp fuzz/corpus-seeds/$t/* "$out/$t/"
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
for t in "$out"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
