# Shared settings and helpers of the local stack scripts. Sourced, never run.
# Every service binds to 127.0.0.1; logs, pids and data live under one state folder.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${ROI_STATE_DIR:-$ROOT/.state}
KAFKA_PORT=${ROI_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${ROI_KAFKA_CONTROLLER_PORT:-19093}
REDIS_PORT=${ROI_REDIS_PORT:-16379}
PROMETHEUS_PORT=${ROI_PROMETHEUS_PORT:-19090}
EXPORTER_PORT=${ROI_EXPORTER_PORT:-19464}
WORKER_PORT=${ROI_WORKER_PORT:-19465}

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# pid_alive NAME: true when NAME's pid file names a live process.
pid_alive() {
    local pidfile="$STATE_DIR/$1/$1.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# wait_until SECONDS WHAT CMD...: runs CMD every 0.5 s until it succeeds or time runs out.
wait_until() {
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "error: $what did not become ready within ${seconds}s"
            return 1
        fi
        sleep 0.5
    done
}

# stop_pid NAME: TERM, wait up to 30 s, then KILL; removes the pid file.
stop_pid() {
    local name=$1 pidfile="$STATE_DIR/$1/$1.pid" pid
    if ! pid_alive "$name"; then
        rm -f "$pidfile"
        say "$name: not running"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name: did not stop within 30s, killing"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    say "$name: stopped"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# refuse_taken NAME PORT VARIABLE: stop when something this project did not start (its pid
# file names no live process) listens on PORT: a server started there would fail to bind
# while the other one answered its readiness checks (and the demo's flush).
refuse_taken() {
    if port_open "$2" && ! pid_alive "$1"; then
        die "$1: 127.0.0.1:$2 is taken by a process this project did not start; set $3 to a free port"
    fi
}

# http_ok URL: true when URL answers 2xx.
http_ok() { curl -fsS -m 3 "$1" >/dev/null 2>&1; }
