#!/usr/bin/env bash
# Redis (Debian's redis-server) on 127.0.0.1 with AOF on (appendfsync everysec) and
# maxmemory-policy noeviction: the figures are the only copy, so Redis must refuse writes
# when full rather than drop keys. ROI_REDIS_MAXMEMORY (e.g. 512mb) sets --maxmemory;
# unset, there is no limit. With REDIS_URL set, nothing is started and that server is used.
# With ROI_REDIS_TLS_DIR set (deploy/local/secure.sh sets it), Redis speaks TLS only (no
# plaintext port), its default user is off and one ACL user (ROI_REDIS_USER, password in the
# folder's redis.password) may touch the roi:* keys and nothing dangerous.
#   usage: deploy/local/redis.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/redis"

TLS_DIR=${ROI_REDIS_TLS_DIR:-}
USER_NAME=${ROI_REDIS_USER:-roi}

cli() {
    if [ -n "$TLS_DIR" ]; then
        REDISCLI_AUTH=$(cat "$TLS_DIR/redis.password") redis-cli --tls --cacert "$TLS_DIR/ca.pem" \
            --user "$USER_NAME" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    fi
}

ping() { [ "$(cli ping 2>/dev/null)" = "PONG" ]; }

# ours: the server answering on the port is the one whose pid this project wrote.
ours() {
    pid_alive redis || return 1
    [ "$(cli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$(cat "$DIR/redis.pid")" ]
}

# LISTEN: the listening options, plaintext or TLS only with the ACL file of one user.
listen_options() {
    if [ -z "$TLS_DIR" ]; then
        LISTEN=(--port "$REDIS_PORT")
        return
    fi
    (
        umask 077
        {
            echo "user default off"
            # the service's keys only, no pub/sub channels; what it runs (reads, writes, its Lua
            # scripts, INFO for the eviction check) and nothing dangerous (FLUSHALL, CONFIG,
            # DEBUG, FUNCTION...); the password as its SHA-256, never in clear in this file
            echo "user $USER_NAME on #$(tr -d '\n' <"$TLS_DIR/redis.password" | sha256sum | cut -d' ' -f1) resetchannels ~roi:* +@read +@write +@keyspace +@scripting +@connection +@transaction -@dangerous -function +info"
        } >"$DIR/users.acl"
    )
    LISTEN=(--port 0 --tls-port "$REDIS_PORT" --tls-cert-file "$TLS_DIR/server.crt"
        --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem"
        --tls-auth-clients optional --aclfile "$DIR/users.acl")
}

start() {
    if [ -n "${REDIS_URL:-}" ]; then
        say "redis: using existing server (REDIS_URL is set)"
        return 0
    fi
    if ours; then
        say "redis: already running on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    command -v redis-server >/dev/null || die "redis: redis-server not found; run deploy/local/install.sh"
    refuse_taken redis "$REDIS_PORT" ROI_REDIS_PORT
    mkdir -p "$DIR"
    local memory=()
    [ -z "${ROI_REDIS_MAXMEMORY:-}" ] || memory=(--maxmemory "$ROI_REDIS_MAXMEMORY")
    listen_options
    redis-server --bind 127.0.0.1 "${LISTEN[@]}" --protected-mode yes \
        --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
        --dir "$DIR" --appendonly yes --appendfsync everysec --save "" \
        --maxmemory-policy noeviction "${memory[@]}" \
        || die "redis: redis-server failed to start; see $DIR/redis.log"
    wait_until 30 "redis" ours || { tail -n 20 "$DIR/redis.log" >&2; exit 1; }
    say "redis: ready on 127.0.0.1:$REDIS_PORT (${TLS_DIR:+TLS only, ACL user $USER_NAME, }AOF on, noeviction${ROI_REDIS_MAXMEMORY:+, maxmemory $ROI_REDIS_MAXMEMORY}; log: $DIR/redis.log)"
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
