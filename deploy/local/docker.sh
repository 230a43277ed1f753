#!/usr/bin/env bash
# A private Docker engine for the test suite, and the roi-metrics image built on it.
#
# dockerd (Debian's docker.io) runs as root with its own data, socket and containerd under the
# state folder, --bridge=none and no iptables rules: containers use the host network only,
# so nothing listens beyond what the services bind (127.0.0.1). No image registry is needed:
# the base image is made from Debian's packages (debootstrap, then `docker import`), the
# Python dependencies are wheels built on the host, and the build runs offline from them.
#
#   usage: deploy/local/docker.sh start|stop|status|base|build|prepare|env
#     start    start the engine (idempotent)            stop   stop it and its containers
#     base     make the base image (once per engine)    build  build roi-metrics:local on it
#     prepare  start + base + build                     env    print export DOCKER_HOST=...
# ROI_DEBIAN_MIRROR (default: the first Debian mirror in apt's sources) serves debootstrap.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR="$STATE_DIR/docker"
# containerd's sockets live in the exec root and a unix socket path has at most 107 bytes:
# a short folder of its own under /run, named after the state folder
RUN_DIR="/run/roi-docker-$(printf '%s' "$DIR" | sha1sum | cut -c1-10)"
SOCKET="unix://$RUN_DIR/docker.sock"
BASE_IMAGE=roi-metrics-base:bookworm
IMAGE=roi-metrics:local
# the engine's own client when Debian installed it (same API version), else any docker
DOCKER_CLI=$(command -v /usr/bin/docker || command -v docker || true)

cli() { DOCKER_BUILDKIT=0 "$DOCKER_CLI" -H "$SOCKET" "$@"; }

# locked STEP: one start, base or build at a time (make test starts them early in the
# background; the test suite asks again and waits for that run, then finds the work done)
locked() {
    mkdir -p "$DIR"
    exec 9>"$DIR/lock"
    flock 9
    "$@"
    flock -u 9
}

# source_hash: what the image is built from, so an unchanged tree is not built again
source_hash() {
    (
        cd "$ROOT"
        find service -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z \
            | xargs -0 sha256sum
        sha256sum Dockerfile .dockerignore pyproject.toml README.md
        cli image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true
    ) | sha256sum | cut -c1-16
}
answers() { [ -n "$DOCKER_CLI" ] && cli version >/dev/null 2>&1; }

start() {
    if answers; then
        say "docker: engine already running ($SOCKET)"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "docker: the engine needs root (dockerd runs as root here)"
    command -v dockerd >/dev/null || die "docker: dockerd not found; install Debian's docker.io (deploy/local/install.sh does as root)"
    [ -n "$DOCKER_CLI" ] || die "docker: no docker client found"
    mkdir -p "$DIR" "$RUN_DIR"
    dockerd --data-root "$DIR/root" --exec-root "$RUN_DIR/exec" --pidfile "$DIR/docker.pid" \
        --host "$SOCKET" --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
        --userland-proxy=false --log-level=warn >"$DIR/dockerd.log" 2>&1 &
    echo $! >"$DIR/docker.pid.wrapper"
    if ! wait_until 60 "docker engine" answers; then
        tail -n 5 "$DIR/dockerd.log" >&2
        stop >/dev/null 2>&1 || true
        exit 1
    fi
    say "docker: engine ready on $SOCKET (host network only; log: $DIR/dockerd.log)"
}

stop() {
    local pid
    pid=$(cat "$DIR/docker.pid" 2>/dev/null || cat "$DIR/docker.pid.wrapper" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$DIR/docker.pid" "$DIR/docker.pid.wrapper"
        say "docker: not running"
        return 0
    fi
    answers && cli ps -q | xargs -r "$DOCKER_CLI" -H "$SOCKET" rm -f >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    umount "$RUN_DIR/exec/netns/default" 2>/dev/null || true  # the host namespace's bind mount
    rm -f "$DIR/docker.pid" "$DIR/docker.pid.wrapper"
    say "docker: stopped"
}

mirror() {
    if [ -n "${ROI_DEBIAN_MIRROR:-}" ]; then
        echo "$ROI_DEBIAN_MIRROR"
        return
    fi
    grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* \
        2>/dev/null | head -n 1 | tr -d ' ' || true
}

base() {
    answers || die "docker: the engine is not running; deploy/local/docker.sh start"
    if cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "docker: base image $BASE_IMAGE already made"
        return 0
    fi
    command -v debootstrap >/dev/null || die "docker: debootstrap not found; install Debian's debootstrap"
    local root="$DIR/base-root" source
    source=$(mirror)
    source=${source:-http://deb.debian.org/debian}
    rm -rf "$root"
    say "docker: making $BASE_IMAGE from Debian bookworm ($source), about a minute"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$source" \
        >"$DIR/debootstrap.log" 2>&1 || { tail -n 5 "$DIR/debootstrap.log" >&2; die "docker: debootstrap failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale
    tar -C "$root" -c . | cli import --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    say "docker: base image $BASE_IMAGE made"
}

build() {
    answers || die "docker: the engine is not running; deploy/local/docker.sh start"
    local context="$DIR/context" python="$ROOT/.venv/bin/python" source
    source=$(source_hash)
    if [ "$(cli image inspect --format '{{index .Config.Labels "roi.source"}}' "$IMAGE" 2>/dev/null)" = "$source" ]; then
        say "docker: image $IMAGE is up to date"
        return 0
    fi
    [ -x "$python" ] || python=$(command -v python3)
    rm -rf "$context"
    mkdir -p "$context"
    cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/service" "$ROOT/.dockerignore" "$context/"
    say "docker: building wheels of roi-metrics and its dependencies"
    # the project and its build backend, so the image installs from them with no index
    "$python" -m pip wheel -q --disable-pip-version-check -w "$context/wheelhouse" \
        "$context" "setuptools>=77" || die "docker: pip wheel failed"
    say "docker: building $IMAGE on $BASE_IMAGE (offline)"
    cli build --network=host -q -f "$ROOT/Dockerfile" -t "$IMAGE" --label "roi.source=$source" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg PIP_OPTIONS="--no-index --find-links=/src/wheelhouse" \
        "$context" >"$DIR/build.log" 2>&1 || { tail -n 20 "$DIR/build.log" >&2; die "docker: build failed"; }
    rm -rf "$context"
    cli image prune -f >/dev/null 2>&1 || true  # the build stage left untagged
    say "docker: image $IMAGE built"
}

status() {
    if answers; then
        echo "docker: running, $SOCKET"
    else
        echo "docker: stopped"; return 3
    fi
}

case "${1:-}" in
    start) locked start ;;
    stop) stop ;;
    status) status ;;
    base) locked base ;;
    build) locked build ;;
    prepare) locked start; locked base; locked build ;;
    env) echo "export DOCKER_HOST=$SOCKET" ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) say "usage: $0 start|stop|status|base|build|prepare|env"; exit 2 ;;
esac
