#!/usr/bin/env bash
# The roi-metrics exporter on the local stack, in the background, with its log under the
# state folder. Waits until /readyz answers 200. Prometheus (deploy/local/prometheus.sh)
# scrapes it.
#   usage: deploy/local/exporter.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/exporter"
URL="http://127.0.0.1:$EXPORTER_PORT"

ready() { http_ok "$URL/readyz"; }

start() {
    if pid_alive exporter && ready; then
        say "exporter: already running, $URL/metrics"
        return 0
    fi
    [ -x "$ROOT/.venv/bin/roi-metrics" ] || die "exporter: not installed; run make install"
    mkdir -p "$DIR"
    cd "$ROOT"
    ROI_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}" \
        setsid nohup .venv/bin/roi-metrics exporter --port "$EXPORTER_PORT" \
        >"$DIR/exporter.log" 2>&1 </dev/null &
    echo $! >"$DIR/exporter.pid"
    wait_until 30 "exporter" ready || { tail -n 20 "$DIR/exporter.log" >&2; exit 1; }
    say "exporter: ready, $URL/metrics (log: $DIR/exporter.log)"
}

status() {
    if ready; then echo "exporter: running, $URL/metrics"; else echo "exporter: stopped"; return 3; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop_pid exporter ;;
    status) status ;;
    *) say "usage: $0 start|stop|status"; exit 2 ;;
esac
