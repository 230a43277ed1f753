#!/bin/sh
# Writes alertmanager.yml with the webhook URL from ALERT_WEBHOOK_URL, then, given a
# command, runs it with --config.file pointing at the result. POSIX sh: it runs inside the
# prom/alertmanager image (busybox) and on a Debian host.
#   usage: ALERT_WEBHOOK_URL=https://... render.sh [OUT] [-- alertmanager args...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/alertmanager.yml}
[ "$#" -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
case "${ALERT_WEBHOOK_URL:-}" in
    *"'"*) echo "alertmanager: ALERT_WEBHOOK_URL must not contain a quote ('); percent-encode it" >&2; exit 2 ;;
    http://* | https://*) ;;
    "") echo "alertmanager: set ALERT_WEBHOOK_URL to the http(s) URL that receives alerts" >&2; exit 2 ;;
    *) echo "alertmanager: ALERT_WEBHOOK_URL must start with http:// or https://" >&2; exit 2 ;;
esac
# Plain text substitution (no regex, so & and \ in the URL stay as they are).
awk -v token="@ALERT_WEBHOOK_URL@" '
    BEGIN { url = ENVIRON["ALERT_WEBHOOK_URL"] }
    { line = $0; result = ""
      while ((i = index(line, token)) > 0) {
          result = result substr(line, 1, i - 1) url
          line = substr(line, i + length(token))
      }
      print result line }
' "$here/alertmanager.yml" >"$out"
chmod 600 "$out"
[ "$#" -gt 0 ] && exec "$@" --config.file="$out"
exit 0
