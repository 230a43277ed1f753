#!/usr/bin/env bash
# Installs the system packages the local stack needs, from Debian, when any is missing:
# redis-server, prometheus (with promtool), prometheus-alertmanager (with amtool), kcat,
# curl, openssl, a JDK 17 and Maven. As root it also installs what the container tests use
# (docker.io, debootstrap, docker-compose); without them those tests skip and say why.
set -euo pipefail
optional=()
if [ "$(id -u)" -eq 0 ]; then
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
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

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
    # the tests never use a system Docker service: they start an engine of their own
    apt-get install -y -q --no-install-recommends "${optional[@]}" >/dev/null \
        || echo "install: ${optional[*]} not installed; the container tests will skip" >&2
fi
