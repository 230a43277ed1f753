#!/usr/bin/env bash
# A Redis Cluster of Debian's redis-server on 127.0.0.1: three masters and three replicas,
# ports ROI_REDIS_CLUSTER_PORT (17001) to +5, AOF on (everysec), noeviction, a 2-second node
# timeout so a replica takes over quickly when its master dies. Not part of the default stack:
# `deploy/local/stack.sh up redis-cluster` starts it. Point the worker and the exporter at
# any node: ROI_REDIS_URL=redis://127.0.0.1:17001/0 (a cluster has database 0 only). Its data
# stays in $ROI_STATE_DIR/redis-cluster between stop and start (`make clean` deletes it).
#   usage: deploy/local/redis-cluster.sh start|stop|status|masters
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/redis-cluster"
FIRST=${ROI_REDIS_CLUSTER_PORT:-17001}
if ! [[ $FIRST =~ ^[0-9]+$ ]] || ((FIRST < 1024 || FIRST > 65530)); then
    say "ROI_REDIS_CLUSTER_PORT must be a port from 1024 to 65530 (the cluster takes it and the next 5), not '$FIRST'"
    exit 2
fi
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((FIRST + i))); done

cli() { redis-cli -h 127.0.0.1 -p "$@"; }
# alive PORT: the pid file names a live redis-server of that port (not a recycled pid)
alive() {
    local pidfile="$DIR/$1/redis.pid"
    [ -f "$pidfile" ] || return 1
    { tr '\0' ' ' <"/proc/$(cat "$pidfile")/cmdline"; } 2>/dev/null | grep -q "redis-server 127.0.0.1:$1"
}
alive_ports() { local port; for port in "${PORTS[@]}"; do alive "$port" && echo "$port"; done; return 0; }
# cluster_ok: at least one node runs and every running node says the cluster is ok
cluster_ok() {
    local port up=0
    for port in $(alive_ports); do
        cli "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
        up=1
    done
    [ "$up" = 1 ]
}
slots_assigned() { cli "${PORTS[0]}" cluster info 2>/dev/null | sed -n 's/^cluster_slots_assigned:\([0-9]*\).*/\1/p'; }

start_node() {
    local port=$1
    mkdir -p "$DIR/$port"
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
        --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" \
        --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 \
        --daemonize yes --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" \
        --dir "$DIR/$port" --appendonly yes --appendfsync everysec --save "" \
        --maxmemory-policy noeviction \
        || die "redis-cluster: node $port failed to start; see $DIR/$port/redis.log"
}

start() {
    command -v redis-server >/dev/null || die "redis-cluster: redis-server not found; run deploy/local/install.sh"
    local port
    for port in "${PORTS[@]}"; do
        alive "$port" || start_node "$port"
    done
    for port in "${PORTS[@]}"; do
        wait_until 30 "redis-cluster node $port" cli "$port" ping \
            || { tail -n 5 "$DIR/$port/redis.log" >&2; exit 1; }
    done
    if [ "$(slots_assigned)" = 0 ]; then  # new nodes (or a create that never finished)
        local nodes=()
        for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
        redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log" 2>&1 \
            || { tail -n 20 "$DIR/create.log" >&2; die "redis-cluster: could not create the cluster (wipe $DIR to start afresh)"; }
    fi
    wait_until 60 "redis-cluster" cluster_ok || exit 1
    say "redis-cluster: ready on 127.0.0.1:${PORTS[0]}-${PORTS[5]} (3 masters, 3 replicas, AOF on, noeviction; logs: $DIR/<port>/redis.log)"
}

# stop: replicas first, then masters (a master's SIGTERM waits up to 10 s for lagging
# replicas); the data stays in $DIR for the next start
stop() {
    local port pid stopped=0 role
    for role in slave master; do
        local pids=()
        for port in $(alive_ports); do
            [ "$(cli "$port" role 2>/dev/null | head -n 1)" = "$role" ] || [ "$role" = master ] || continue
            pid=$(cat "$DIR/$port/redis.pid")
            kill "$pid" 2>/dev/null && pids+=("$pid") && stopped=$((stopped + 1))
        done
        for pid in "${pids[@]}"; do
            for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        done
    done
    if [ "$stopped" -gt 0 ]; then say "redis-cluster: stopped"; else say "redis-cluster: not running"; fi
}

status() {
    local up
    up=$(alive_ports | wc -l)
    if [ "$up" -gt 0 ] && cluster_ok; then
        echo "redis-cluster: running, $up of 6 nodes up on 127.0.0.1:${PORTS[0]}-${PORTS[5]}"
    else
        echo "redis-cluster: stopped ($up of 6 nodes up)"; return 3
    fi
}

# masters: "port pid" of each live master, one per line (the failover test kills one)
masters() {
    local port
    for port in $(alive_ports); do
        cli "$port" role 2>/dev/null | head -n 1 | grep -qx master && echo "$port $(cat "$DIR/$port/redis.pid")"
    done
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    masters) masters ;;
    -h | --help | help) say "usage: $0 start|stop|status|masters"; exit 0 ;;
    *) say "usage: $0 start|stop|status|masters"; exit 2 ;;
esac
