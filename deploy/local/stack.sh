#!/usr/bin/env bash
# The whole local stack: Kafka, Redis, Prometheus.
#   usage: deploy/local/stack.sh up|down|status [kafka|redis|prometheus|redis-cluster ...]
# (redis-cluster, three masters and three replicas, only when named)
set -euo pipefail
HERE=$(dirname "${BASH_SOURCE[0]}")
action=${1:-}
shift || true
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(kafka redis prometheus)

case "$action" in
    up) for s in "${services[@]}"; do "$HERE/$s.sh" start; done ;;
    down) for ((i = ${#services[@]} - 1; i >= 0; i--)); do "$HERE/${services[$i]}.sh" stop; done ;;
    status)
        rc=0
        for s in "${services[@]}"; do "$HERE/$s.sh" status || rc=3; done
        exit $rc ;;
    *) echo "usage: $0 up|down|status [kafka|redis|prometheus|redis-cluster ...]" >&2; exit 2 ;;
esac
