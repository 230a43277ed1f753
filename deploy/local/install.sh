#!/usr/bin/env bash
# Installs the system packages the local stack needs, from Debian, when any is missing:
# redis-server, prometheus (with promtool), prometheus-alertmanager (with amtool), kcat,
# curl, openssl, a JDK 17, Maven, and Node.js with npm (the e2e tests run Grafana's panel
# code). As root it also installs what the container tests use (docker.io, debootstrap,
# docker-compose); without them those tests skip and say why.
#   usage: deploy/local/install.sh [--demo]   (--demo: what `make demo` needs, no test tools)
set -euo pipefail
demo=false
case "${1:-}" in
    --demo) demo=true ;;
    "") ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac
optional=()
if [ "$(id -u)" -eq 0 ] && [ "$demo" = false ]; then
    command -v dockerd >/dev/null || optional+=(docker.io)
    command -v debootstrap >/dev/null || optional+=(debootstrap)
    command -v docker-compose >/dev/null || optional+=(docker-compose)
fi
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
{ command -v prometheus-alertmanager && command -v amtool; } >/dev/null || missing+=(prometheus-alertmanager)
command -v kcat >/dev/null || missing+=(kcat)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# Node.js runs Grafana's panel code (@grafana/data) in the end-to-end tests
node_major() { echo 99; } # the demo runs no Node.js
if [ "$demo" = false ]; then
    { command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
    node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
fi
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && [ "$(node_major)" -ge 20 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >/dev/null
if [ ${#missing[@]} -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}" >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
    echo "install: apt-get install ${optional[*]} (for the container tests)" >&2
    # The tests never use a system Docker service: they start an engine of their own. So the
    # package's service is neither started now (a policy-rc.d that refuses, for the install
    # only, where none exists) nor at boot (disabled where systemd runs).
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=true
    fi
    apt-get install -y -q --no-install-recommends "${optional[@]}" >/dev/null \
        || echo "install: ${optional[*]} not installed; the container tests will skip" >&2
    if [ "$own_policy" = true ]; then rm -f "$policy"; fi
    if [[ " ${optional[*]} " == *" docker.io "* ]] && [ -d /run/systemd/system ] \
        && command -v systemctl >/dev/null; then
        systemctl disable docker.service docker.socket >/dev/null 2>&1 || true
    fi
fi
if [ "$(node_major)" -lt 20 ]; then
    echo "install: Node.js $(node --version 2>/dev/null || echo '(none)') is too old: the e2e tests' npm packages need Node.js 20 or later (tests/node/package.json)" >&2
    exit 1
fi
