#!/usr/bin/env bash
# The project's own processes on the local stack, in the background: the worker (consumes
# Kafka, writes Redis), the exporter (reads Redis, scraped by Prometheus) and the traffic
# simulator (publishes to Kafka; arguments after `start` go to `roi-metrics simulate`).
#
# The worker and the exporter run under a supervisor, as systemd or Kubernetes would run
# them: a bash loop in a process group of its own (`roi.sh NAME supervise`, started by
# `start`) that restarts the process whenever it exits without being asked to, kill -9
# included, after 1 s, 2 s, 4 s ... at most 30 s (back to 1 s once it has run for 60 s).
# Each restart writes one line to the log and the count to <state>/NAME/NAME.restarts.
# `stop` stops the supervisor and its process (TERM, up to 30 s, then KILL).
# Logs and pids under the state folder (NAME.pid: the supervisor, NAME.child.pid: the
# process); `start` waits until /readyz answers 200 (the simulator: until it has run for 3 s).
#   usage: deploy/local/roi.sh worker|exporter|simulator start|stop|status [simulate args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# absolute, so the supervisor (started from the project's folder) finds the same files
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$PWD/$STATE_DIR" ;; esac
export ROI_STATE_DIR="$STATE_DIR"

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
LOG="$DIR/$NAME.log"
PIDFILE="$DIR/$NAME.pid"
CHILD_PIDFILE="$DIR/$NAME.child.pid"
RESTARTS="$DIR/$NAME.restarts"
SELF="$ROOT/deploy/local/roi.sh"

ready() {
    if [ "$NAME" = simulator ]; then
        pid_alive simulator && [ $((SECONDS - LAUNCHED)) -ge 3 ]
    else
        http_ok "$URL/readyz"
    fi
}
LAUNCHED=$SECONDS

# command_line [simulate args]: sets CMD, the process NAME runs.
command_line() {
    local kafka="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
    local redis="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
    local roi="$ROOT/.venv/bin/roi-metrics"
    case "$NAME" in
        worker) CMD=(env ROI_WORKER_PORT="$PORT" ROI_DATA_DIR="$DIR/faust"
            ROI_KAFKA_BOOTSTRAP_SERVERS="$kafka" ROI_REDIS_URL="$redis" "$roi" worker) ;;
        exporter) CMD=(env ROI_REDIS_URL="$redis" "$roi" exporter --port "$PORT") ;;
        simulator) CMD=(env ROI_KAFKA_BOOTSTRAP_SERVERS="$kafka" "$roi" simulate "$@") ;;
    esac
}

# ours PID WHAT: true when PID is a live process (a zombie is not) whose command line has
# WHAT; a pid file left from before a reboot may name somebody else's process.
ours() {
    local stat args
    [ -n "$1" ] && read -r stat args < <(ps -o stat=,args= -p "$1" 2>/dev/null) || return 1
    [[ "$stat" != Z* && "$args" == *"$2"* ]]
}
running() { [ -n "$1" ] && ours "$1" ""; }
SUPERVISOR="roi.sh $NAME supervise"
PROCESS="roi-metrics $NAME"
supervisor_alive() { ours "$(cat "$PIDFILE" 2>/dev/null || true)" "$SUPERVISOR"; }

# The supervisor's loop; its stdout and stderr are the log, which the process inherits.
supervise() {
    local child="" stopping="" restarts=0 delay=1 started status ran how
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM INT
    command_line
    echo 0 >"$RESTARTS"
    while [ -z "$stopping" ]; do
        started=$SECONDS
        "${CMD[@]}" &
        child=$!
        echo "$child" >"$CHILD_PIDFILE"
        [ -z "$stopping" ] || kill -TERM "$child" 2>/dev/null || true # asked to stop meanwhile
        status=0
        wait "$child" || status=$?
        while kill -0 "$child" 2>/dev/null; do # a signal to the supervisor cut the wait short
            status=0
            wait "$child" || status=$?
        done
        child=""
        rm -f "$CHILD_PIDFILE"
        ran=$((SECONDS - started))
        if [ -n "$stopping" ]; then
            echo "supervisor: $NAME stopped on request (status $status after $ran s)"
            return 0
        fi
        [ "$ran" -lt 60 ] || delay=1
        restarts=$((restarts + 1))
        echo "$restarts" >"$RESTARTS"
        how=""
        [ "$status" -le 128 ] || how=" (SIG$(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
        echo "supervisor: $NAME exited with status $status$how after $ran s; restart $restarts in $delay s"
        sleep "$delay" &
        child=$!
        wait "$child" || true
        child=""
        delay=$((delay * 2 > 30 ? 30 : delay * 2))
    done
    echo "supervisor: $NAME stopped on request, before its next restart"
}

# Stops the supervisor and its process: TERM to the supervisor, which passes it on and
# restarts nothing (or to the process, when its supervisor is gone), up to 30 s, then KILL.
stop_supervised() {
    local supervisor child
    supervisor=$(cat "$PIDFILE" 2>/dev/null || true)
    child=$(cat "$CHILD_PIDFILE" 2>/dev/null || true)
    ours "$child" "$PROCESS" || child=""
    if ! ours "$supervisor" "$SUPERVISOR"; then
        # (NAME.pid of a process started before roi.sh supervised it names the process)
        if [ -z "$child" ] && ours "$supervisor" "$PROCESS"; then child=$supervisor; fi
        supervisor=""
    fi
    if [ -z "$supervisor$child" ]; then
        rm -f "$PIDFILE" "$CHILD_PIDFILE"
        say "$NAME: not running"
        return 0
    fi
    if [ -n "$supervisor" ]; then kill -TERM "$supervisor"; else kill -TERM "$child"; fi
    for _ in $(seq 1 60); do
        running "$supervisor" || running "$child" || break
        sleep 0.5
    done
    if running "$supervisor" || running "$child"; then
        say "$NAME: did not stop within 30s, killing"
        child=$(cat "$CHILD_PIDFILE" 2>/dev/null || echo "$child") # it may have been restarted
        # the supervisor leads its process group; its process is in it too
        [ -z "$supervisor" ] || kill -KILL -- "-$supervisor" 2>/dev/null || true
        [ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true
    fi
    rm -f "$PIDFILE" "$CHILD_PIDFILE"
    say "$NAME: stopped"
}

start_simulator() {
    if pid_alive simulator; then
        say "simulator: already running"
        return 0
    fi
    command_line "$@"
    setsid nohup "${CMD[@]}" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    wait_until "$READY_SECONDS" "$NAME" ready || { tail -n 20 "$LOG" >&2; exit 1; }
    say "simulator: running (log: $LOG)"
}

start() {
    [ -x "$ROOT/.venv/bin/roi-metrics" ] || die "$NAME: not installed; run make install"
    mkdir -p "$DIR"
    cd "$ROOT"
    LAUNCHED=$SECONDS
    if [ "$NAME" = simulator ]; then
        start_simulator "$@"
        return
    fi
    if supervisor_alive; then
        wait_until "$READY_SECONDS" "$NAME" ready || { tail -n 20 "$LOG" >&2; exit 1; }
        say "$NAME: already running, $URL/metrics"
        return 0
    fi
    stop_supervised 2>/dev/null # a process whose supervisor was killed would hold the port
    ! ready || die "$NAME: $URL answers already, from a process this script did not start"
    : >"$LOG"
    setsid nohup "$SELF" "$NAME" supervise >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    if ! wait_until "$READY_SECONDS" "$NAME" ready; then
        tail -n 20 "$LOG" >&2
        stop_supervised 2>/dev/null # no restart loop left behind
        exit 1
    fi
    say "$NAME: ready, $URL/metrics (supervised; log: $LOG)"
}

status() {
    local restarts
    if [ "$NAME" = simulator ]; then
        if pid_alive simulator; then echo "simulator: running"; else echo "simulator: stopped"; return 3; fi
        return 0
    fi
    restarts="restarts: $(cat "$RESTARTS" 2>/dev/null || echo 0)"
    if ! supervisor_alive && ours "$(cat "$CHILD_PIDFILE" 2>/dev/null || true)" "$PROCESS"; then
        echo "$NAME: running without its supervisor (killed?); \`$0 $NAME start\` replaces it"
        return 3
    elif ! supervisor_alive; then
        echo "$NAME: stopped (its last run: $restarts)"
        return 3
    elif ready; then
        echo "$NAME: running, $URL/metrics (supervised, $restarts)"
    else
        echo "$NAME: supervised but not ready, restarting or starting ($restarts)"
        return 3
    fi
}

case "$ACTION" in
    start) start "$@" ;;
    stop) if [ "$NAME" = simulator ]; then stop_pid simulator; else stop_supervised; fi ;;
    status) status ;;
    supervise) [ "$NAME" != simulator ] || die "the simulator is not supervised"; supervise ;;
    *) say "$USAGE"; exit 2 ;;
esac
