#!/usr/bin/env bash
# Installs the system packages the local stack needs, from Debian, when any is missing:
# redis-server, prometheus (with promtool), prometheus-alertmanager (with amtool), kcat,
# curl, a JDK 17 and Maven.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
{ command -v prometheus-alertmanager && command -v amtool; } >/dev/null || missing+=(prometheus-alertmanager)
command -v kcat >/dev/null || missing+=(kcat)
command -v curl >/dev/null || missing+=(curl)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "install: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >/dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
