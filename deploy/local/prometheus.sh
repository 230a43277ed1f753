#!/usr/bin/env bash
# Prometheus (Debian's package) on 127.0.0.1, scraping the local exporter and worker with the
# project's rules. Its configuration is rendered from deploy/prometheus/prometheus.local.yml.
# ROI_PROMETHEUS_EVAL_INTERVAL shortens rule evaluation and ROI_ALERT_FOR_SCALE multiplies
# every alert's `for` (tests, demos): the rules are regenerated from thresholds.toml into the
# state directory, never edited.
#   usage: deploy/local/prometheus.sh start|stop|status|reload
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/prometheus"
URL="http://127.0.0.1:$PROMETHEUS_PORT"

ready() { http_ok "$URL/-/ready"; }
ours() { pid_alive prometheus && ready; }

# rules_dir: the rules as checked in, or rendered into the state folder when the alerts'
# `for` is scaled or the exporter (which serves the runbooks the rules link to) listens on
# another port than the checked-in 19464.
rules_dir() {
    local scale=${ROI_ALERT_FOR_SCALE:-1}
    if [ "$scale" = 1 ] && [ "$EXPORTER_PORT" = 19464 ]; then
        echo "$ROOT/deploy/prometheus/rules"
        return
    fi
    rm -rf "$DIR/rules" && mkdir -p "$DIR/rules"
    if [ "$scale" = 1 ]; then
        cp "$ROOT"/deploy/prometheus/rules/*.yml "$DIR/rules/"
    else
        "${ROI_PYTHON:-$ROOT/.venv/bin/python}" -m roi_metrics.codegen.rules --for-scale "$scale" \
            --out "$DIR/rules/roi.yml" || die "prometheus: cannot render rules with for-scale $scale"
        for other in "$ROOT"/deploy/prometheus/rules/*.yml; do
            [ "$(basename "$other")" = roi.yml ] || cp "$other" "$DIR/rules/"
        done
    fi
    sed -i "s|http://127.0.0.1:19464/runbooks|http://127.0.0.1:$EXPORTER_PORT/runbooks|g" \
        "$DIR"/rules/*.yml
    echo "$DIR/rules"
}

render_config() {
    local rules
    rules=$(rules_dir)
    sed -e "s/@EXPORTER_PORT@/$EXPORTER_PORT/g" -e "s/@WORKER_PORT@/$WORKER_PORT/g" \
        -e "s/@EVAL_INTERVAL@/${ROI_PROMETHEUS_EVAL_INTERVAL:-15s}/g" \
        -e "s/@SCRAPE_INTERVAL@/${ROI_PROMETHEUS_SCRAPE_INTERVAL:-15s}/g" \
        -e "s/@PROMETHEUS_PORT@/$PROMETHEUS_PORT/g" \
        -e "s:@RULES_DIR@:$rules:g" \
        -e "s/@ALERTMANAGER_TARGETS@/${ROI_ALERTMANAGER_PORT:+\"127.0.0.1:$ROI_ALERTMANAGER_PORT\"}/g" \
        "$ROOT/deploy/prometheus/prometheus.local.yml" >"$DIR/prometheus.yml"
    promtool check config "$DIR/prometheus.yml" >"$DIR/check.log" 2>&1 \
        || { cat "$DIR/check.log" >&2; die "prometheus: invalid configuration"; }
}

start() {
    if pid_alive prometheus && ready; then
        say "prometheus: already running on $URL"
        return 0
    fi
    command -v prometheus >/dev/null || die "prometheus: not found; run deploy/local/install.sh"
    refuse_taken prometheus "$PROMETHEUS_PORT" ROI_PROMETHEUS_PORT
    mkdir -p "$DIR/data"
    render_config
    setsid nohup prometheus --config.file="$DIR/prometheus.yml" \
        --storage.tsdb.path="$DIR/data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        --web.external-url="http://127.0.0.1:$PROMETHEUS_PORT" \
        --web.enable-lifecycle --web.console.templates=/dev/null \
        --web.console.libraries=/dev/null >"$DIR/prometheus.log" 2>&1 </dev/null &
    echo $! >"$DIR/prometheus.pid"
    wait_until 60 "prometheus" ours || { tail -n 20 "$DIR/prometheus.log" >&2; exit 1; }
    say "prometheus: ready on $URL (log: $DIR/prometheus.log)"
}

reload() {
    render_config
    curl -fsS -X POST "$URL/-/reload" >/dev/null || die "prometheus: reload failed"
}

status() {
    if ready; then echo "prometheus: running, $URL"; else echo "prometheus: stopped"; return 3; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop_pid prometheus ;;
    status) status ;;
    reload) reload ;;
    *) say "usage: $0 start|stop|status|reload"; exit 2 ;;
esac
