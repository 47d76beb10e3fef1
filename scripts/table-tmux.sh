#!/usr/bin/env bash
# The hunt table as a terminal shows it (issue #19): runs
# `BIN hunt samples/evtx --max-rows 20` in a detached tmux session of COLS
# columns (its own tmux server, stopped at the end) and prints the whole
# screen with its escape codes and wrapped lines joined (`capture-pane -e -J`),
# so a row that wrapped shows as one line longer than COLS.
# Usage: scripts/table-tmux.sh BIN COLS   (from the repository root)
set -euo pipefail
bin=$1
cols=${2:-120}
sock="tracehunt-table-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT
tmux -L "$sock" -f /dev/null new-session -d -s t -x "$cols" -y 50 \
    "env -u COLUMNS -u NO_COLOR '$bin' hunt samples/evtx --max-rows 20; tmux -L '$sock' wait-for -S done; sleep 60"
timeout 60 tmux -L "$sock" wait-for done
tmux -L "$sock" capture-pane -p -e -J -S - -t t
