#!/usr/bin/env bash
# The project's own processes on the local stack, in the background: the worker (consumes
# Kafka, writes Redis), the exporter (reads Redis, scraped by Prometheus) and the traffic
# simulator (publishes to Kafka; arguments after `start` go to `roi-metrics simulate`).
# Logs and pids under the state folder; `start` waits until /readyz answers 200 (the
# simulator: until it has run for 3 s).
#   usage: deploy/local/roi.sh worker|exporter|simulator start|stop|status [simulate args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $0 worker|exporter|simulator start|stop|status [simulate args]"
NAME=${1:-}
ACTION=${2:-}
shift 2 || true
case "$NAME" in
    worker) PORT=$WORKER_PORT; READY_SECONDS=90 ;;
    exporter) PORT=$EXPORTER_PORT; READY_SECONDS=30 ;;
    simulator) PORT=""; READY_SECONDS=10 ;;
    *) say "$USAGE"; exit 2 ;;
esac
DIR="$STATE_DIR/$NAME"
URL="http://127.0.0.1:$PORT"

ready() {
    if [ "$NAME" = simulator ]; then
        pid_alive simulator && [ $((SECONDS - LAUNCHED)) -ge 3 ]
    else
        http_ok "$URL/readyz"
    fi
}
LAUNCHED=$SECONDS

launch() {
    local kafka="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
    local redis="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
    if [ "$NAME" = worker ]; then
        ROI_WORKER_PORT="$PORT" ROI_DATA_DIR="$DIR/faust" ROI_KAFKA_BOOTSTRAP_SERVERS="$kafka" \
            ROI_REDIS_URL="$redis" setsid nohup .venv/bin/roi-metrics worker \
            >"$DIR/$NAME.log" 2>&1 </dev/null &
    elif [ "$NAME" = simulator ]; then
        ROI_KAFKA_BOOTSTRAP_SERVERS="$kafka" setsid nohup .venv/bin/roi-metrics simulate "$@" \
            >"$DIR/$NAME.log" 2>&1 </dev/null &
    else
        ROI_REDIS_URL="$redis" setsid nohup .venv/bin/roi-metrics exporter --port "$PORT" \
            >"$DIR/$NAME.log" 2>&1 </dev/null &
    fi
    echo $! >"$DIR/$NAME.pid"
}

start() {
    if pid_alive "$NAME" && { [ "$NAME" = simulator ] || ready; }; then
        say "$NAME: already running, $URL/metrics"
        return 0
    fi
    [ -x "$ROOT/.venv/bin/roi-metrics" ] || die "$NAME: not installed; run make install"
    mkdir -p "$DIR"
    cd "$ROOT"
    LAUNCHED=$SECONDS
    launch "$@"
    wait_until "$READY_SECONDS" "$NAME" ready || { tail -n 20 "$DIR/$NAME.log" >&2; exit 1; }
    if [ "$NAME" = simulator ]; then
        say "simulator: running (log: $DIR/$NAME.log)"
    else
        say "$NAME: ready, $URL/metrics (log: $DIR/$NAME.log)"
    fi
}

status() {
    if [ "$NAME" = simulator ]; then
        if pid_alive simulator; then echo "simulator: running"; else echo "simulator: stopped"; return 3; fi
    elif ready; then
        echo "$NAME: running, $URL/metrics"
    else
        echo "$NAME: stopped"
        return 3
    fi
}

case "$ACTION" in
    start) start "$@" ;;
    stop) stop_pid "$NAME" ;;
    status) status ;;
    *) say "$USAGE"; exit 2 ;;
esac
