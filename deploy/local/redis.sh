#!/usr/bin/env bash
# Redis (Debian's redis-server) on 127.0.0.1 with AOF on (appendfsync everysec) and
# maxmemory-policy noeviction: the figures are the only copy, so Redis must refuse writes
# when full rather than drop keys. ROI_REDIS_MAXMEMORY (e.g. 512mb) sets --maxmemory;
# unset, there is no limit. With REDIS_URL set, nothing is started and that server is used.
#   usage: deploy/local/redis.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/redis"

ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

start() {
    if [ -n "${REDIS_URL:-}" ]; then
        say "redis: using existing server (REDIS_URL is set)"
        return 0
    fi
    if pid_alive redis && ping; then
        say "redis: already running on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    command -v redis-server >/dev/null || die "redis: redis-server not found; run deploy/local/install.sh"
    mkdir -p "$DIR"
    local memory=()
    [ -z "${ROI_REDIS_MAXMEMORY:-}" ] || memory=(--maxmemory "$ROI_REDIS_MAXMEMORY")
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
        --dir "$DIR" --appendonly yes --appendfsync everysec --save "" \
        --maxmemory-policy noeviction "${memory[@]}" \
        || die "redis: redis-server failed to start; see $DIR/redis.log"
    wait_until 30 "redis" ping || { tail -n 20 "$DIR/redis.log" >&2; exit 1; }
    say "redis: ready on 127.0.0.1:$REDIS_PORT (AOF on, noeviction${ROI_REDIS_MAXMEMORY:+, maxmemory $ROI_REDIS_MAXMEMORY}; log: $DIR/redis.log)"
}

status() {
    if [ -n "${REDIS_URL:-}" ]; then
        echo "redis: external (REDIS_URL)"
    elif ping; then
        echo "redis: running, 127.0.0.1:$REDIS_PORT"
    else
        echo "redis: stopped"; return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) [ -n "${REDIS_URL:-}" ] || stop_pid redis ;;
    status) status ;;
    *) say "usage: $0 start|stop|status"; exit 2 ;;
esac
