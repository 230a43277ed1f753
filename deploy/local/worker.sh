#!/usr/bin/env bash
# The roi-metrics worker on the local stack, in the background, with its log under the
# state folder. Waits until /readyz answers 200.
#   usage: deploy/local/worker.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/worker"
URL="http://127.0.0.1:$WORKER_PORT"

ready() { http_ok "$URL/readyz"; }

start() {
    if pid_alive worker && ready; then
        say "worker: already running, $URL/metrics"
        return 0
    fi
    [ -x "$ROOT/.venv/bin/roi-metrics" ] || die "worker: not installed; run make install"
    mkdir -p "$DIR"
    cd "$ROOT"
    ROI_WORKER_PORT="$WORKER_PORT" ROI_DATA_DIR="$DIR/faust" \
        ROI_KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}" \
        ROI_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}" \
        setsid nohup .venv/bin/roi-metrics worker >"$DIR/worker.log" 2>&1 </dev/null &
    echo $! >"$DIR/worker.pid"
    wait_until 90 "worker" ready || { tail -n 20 "$DIR/worker.log" >&2; exit 1; }
    say "worker: ready, $URL/metrics (log: $DIR/worker.log)"
}

status() {
    if ready; then echo "worker: running, $URL/metrics"; else echo "worker: stopped"; return 3; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop_pid worker ;;
    status) status ;;
    *) say "usage: $0 start|stop|status"; exit 2 ;;
esac
