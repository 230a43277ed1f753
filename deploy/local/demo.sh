#!/usr/bin/env bash
# `make demo`: Kafka, Redis, Prometheus, the worker, the exporter and the traffic simulator on
# 127.0.0.1, then live figures in this terminal (`roi-metrics top`) until Ctrl-C, which stops
# everything. The demo's figures start from zero (its Redis database is emptied first, and
# on the local Kafka its topics are deleted).
#
#   SCENARIO=degrade  the AI on `web` stops resolving after DEGRADE_AFTER seconds (default
#                     60); Prometheus evaluates rules every 5 s with every alert's `for`
#                     scaled by 0.1, so SupportChannelResolutionRateDrop fires in minutes.
#   RATE=20           events per second.
#   DEMO_SECONDS=N    stop by itself after N seconds (for scripted runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

SCENARIO=${SCENARIO:-normal}
case "$SCENARIO" in
    normal | degrade) ;;
    *) die "SCENARIO=$SCENARIO: use normal or degrade" ;;
esac
HERE="$ROOT/deploy/local"

stop_all() {
    trap - INT TERM EXIT
    say ""
    say "demo: stopping everything"
    "$HERE/roi.sh" simulator stop || true
    "$HERE/roi.sh" exporter stop || true
    "$HERE/roi.sh" worker stop || true
    "$HERE/stack.sh" down || true
}
trap stop_all INT TERM EXIT

if [ "$SCENARIO" = degrade ]; then
    export ROI_PROMETHEUS_EVAL_INTERVAL=5s ROI_PROMETHEUS_SCRAPE_INTERVAL=5s ROI_ALERT_FOR_SCALE=0.1
fi

# The demo's cost card: the shipped one, its channels gone live 200 (whatsapp), 150, 90, 45,
# 20 (email) and 10 (voice) days ago, so that they stand at different points of the [ramp]
# curve; the simulator plays each on it, whatsapp above it and email below (--follow-ramp).
ago() { date -u -d "-$1 days" +%F; }
demo_card() {
    local card="$STATE_DIR/demo/costs.toml"
    mkdir -p "$STATE_DIR/demo"
    sed -e "s/^go_live = \"2026-03-01\"/go_live = \"$(ago 200)\"/" "$ROOT/deploy/costs.toml" >"$card"
    grep -q "^go_live = \"$(ago 200)\"" "$card" || die "demo: deploy/costs.toml has no whatsapp go_live to move"
    cat >>"$card" <<TOML

# added by deploy/local/demo.sh
[channels.slack]
human_cost_per_resolution = "7.50"
go_live = "$(ago 150)"

[channels.discord]
human_cost_per_resolution = "4.00"
go_live = "$(ago 90)"

[channels.web]
human_cost_per_resolution = "6.50"
go_live = "$(ago 45)"

[channels.email]
human_cost_per_resolution = "8.00"
go_live = "$(ago 20)"

[channels.voice]
human_cost_per_resolution = "6.50"
go_live = "$(ago 10)"
TOML
    echo "$card"
}
ROI_COST_CARD=$(demo_card)
export ROI_COST_CARD
.venv/bin/roi-metrics config check "$ROI_COST_CARD" >/dev/null || die "demo: its cost card is invalid"
"$HERE/stack.sh" up
"$HERE/prometheus.sh" reload # apply this scenario's intervals to a Prometheus already running
# The demo's figures start from zero on the local stack only: its worker and exporter
# stopped, its topics deleted from the local Kafka (events and customer facts of an earlier
# demo would be read again), then its Redis database emptied. Nothing of this touches a
# server named by REDIS_URL or KAFKA_BOOTSTRAP_SERVERS.
"$HERE/roi.sh" worker stop >/dev/null 2>&1 || true
"$HERE/roi.sh" exporter stop >/dev/null 2>&1 || true
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ -z "${REDIS_URL:-}" ]; then
    # the local broker and the default names, whatever ROI_* variables say
    env -u ROI_TOPIC_PREFIX -u ROI_CUSTOMER_TOPIC -u ROI_DEAD_LETTER_TOPIC \
        -u ROI_KAFKA_SECURITY_PROTOCOL -u ROI_KAFKA_SASL_USERNAME -u ROI_KAFKA_SASL_PASSWORD \
        -u ROI_KAFKA_SSL_CAFILE -u ROI_KAFKA_SSL_CERTFILE -u ROI_KAFKA_SSL_KEYFILE \
        ROI_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT" \
        "$ROOT/.venv/bin/python" - <<'PY' || die "demo: cannot empty the demo's topics"
import asyncio, time
from aiokafka.admin import AIOKafkaAdminClient
from roi_metrics.settings import Settings

async def main() -> None:
    settings = Settings()
    assert settings.kafka_bootstrap_servers.startswith("127.0.0.1:") and settings.topic_prefix
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        ours = lambda names: [n for n in names if n.startswith(settings.topic_prefix)
                              or n in (settings.customer_topic, settings.dead_letter_topic)]
        found = ours(await admin.list_topics())
        if found:  # Kafka drops the group's offsets of a deleted topic with it
            await admin.delete_topics(found)
        deadline = time.monotonic() + 30
        while ours(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError("its topics are still being deleted after 30 s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()

try:
    asyncio.run(main())
except Exception as error:
    raise SystemExit(f"error: {type(error).__name__}: {error}") from None
PY
fi
if [ -z "${REDIS_URL:-}" ]; then
    redis-cli -p "$REDIS_PORT" -n 0 flushdb >/dev/null # the demo's own database
fi
"$HERE/roi.sh" worker start
"$HERE/roi.sh" exporter start
args=(--rate "${RATE:-20}" --backfill-days 7 --follow-ramp --add-channel voice --add-after 90)
if [ "$SCENARIO" = degrade ]; then
    args+=(--scenario degrade --degrade-channel web --degrade-after "${DEGRADE_AFTER:-60}")
fi
"$HERE/roi.sh" simulator start "${args[@]}"

cat >&2 <<TEXT

The demo runs ($SCENARIO). Where to look:
  figures      http://127.0.0.1:$EXPORTER_PORT/metrics   (worker: http://127.0.0.1:$WORKER_PORT/metrics)
  Prometheus   http://127.0.0.1:$PROMETHEUS_PORT/graph?g0.expr=window%3Asupport_program_roi_ratio%3Amax
  alerts       http://127.0.0.1:$PROMETHEUS_PORT/classic/alerts
  terminal     .venv/bin/roi-metrics top       (what follows), .venv/bin/roi-metrics report
  simulator    $STATE_DIR/simulator/simulator.log (the channel voice is plugged in after 90 s)
Ctrl-C stops everything.

TEXT
ROI_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}" \
    .venv/bin/roi-metrics top --interval 5 --duration "${DEMO_SECONDS:-0}" \
    --prometheus "http://127.0.0.1:$PROMETHEUS_PORT"
