#!/usr/bin/env bash
# A secured Kafka and Redis on 127.0.0.1, as production runs them, to try the service against
# (and for the test suite): Kafka with SASL_SSL, SCRAM-SHA-512 and client certificates
# required (mTLS); Redis with TLS only, its default user off and one ACL user limited to the
# roi:* keys. A CA, the servers' certificate (127.0.0.1, localhost) and a client's are made
# with openssl; the passwords are random. All of it lives in the state folder's secure/
# (mode 700); `env` prints the client settings, secrets included, as export lines:
#   eval "$(deploy/local/secure.sh env)"
#   usage: deploy/local/secure.sh start|stop|status|env
# Ports: ROI_SECURE_KAFKA_PORT (29092), ROI_SECURE_KAFKA_BROKER_PORT (29094),
# ROI_SECURE_KAFKA_CONTROLLER_PORT (29093), ROI_SECURE_REDIS_PORT (26379). The broker's jars
# are the local stack's (ROI_KAFKA_LIB_DIR to use others).
set -euo pipefail
HERE=$(dirname "${BASH_SOURCE[0]}")
source "$HERE/common.sh"

DIR="$STATE_DIR/secure"
TLS="$DIR/tls"
KAFKA_SECURE_PORT=${ROI_SECURE_KAFKA_PORT:-29092}
KAFKA_BROKER_PORT=${ROI_SECURE_KAFKA_BROKER_PORT:-29094}
KAFKA_SECURE_CONTROLLER_PORT=${ROI_SECURE_KAFKA_CONTROLLER_PORT:-29093}
REDIS_SECURE_PORT=${ROI_SECURE_REDIS_PORT:-26379}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/local/kafka/pom.xml")

# make_tls: the CA, the servers' and the client's certificates and the passwords, once.
make_tls() {
    [ -f "$TLS/.complete" ] && return 0
    command -v openssl >/dev/null || die "secure: openssl not found; run deploy/local/install.sh"
    rm -rf "$TLS" "$DIR/kafka/data"  # the broker's SCRAM users are made with the passwords
    mkdir -p "$TLS"
    chmod 700 "$DIR" "$TLS"
    (
        cd "$TLS"
        umask 077
        local quiet=(-days 30 -sha256)
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "${quiet[@]}" \
            -subj "/CN=roi-metrics local CA" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=localhost" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.crt -extfile server.ext "${quiet[@]}" >/dev/null 2>&1
        cat server.key server.crt >server.pem  # Kafka's PEM key store: key, then certificate
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
            -subj "/CN=roi-metrics" >/dev/null 2>&1
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out client.crt -extfile client.ext "${quiet[@]}" >/dev/null 2>&1
        openssl rand -hex 24 >kafka.password
        openssl rand -hex 24 >redis.password
        rm -f ./*.csr ./*.ext ./*.srl
        chmod 644 ca.pem server.crt client.crt
    ) || die "secure: openssl could not make the certificates"
    touch "$TLS/.complete"
}

# the local stack's scripts, on this folder and these ports, in their secured mode
as_secure() {
    ROI_STATE_DIR="$DIR" ROI_KAFKA_PORT="$KAFKA_SECURE_PORT" \
        ROI_KAFKA_CONTROLLER_PORT="$KAFKA_SECURE_CONTROLLER_PORT" \
        ROI_KAFKA_BROKER_PORT="$KAFKA_BROKER_PORT" ROI_KAFKA_TLS_DIR="$TLS" \
        ROI_KAFKA_LIB_DIR="${ROI_KAFKA_LIB_DIR:-$STATE_DIR/kafka/lib-$KAFKA_VERSION}" \
        ROI_REDIS_PORT="$REDIS_SECURE_PORT" ROI_REDIS_TLS_DIR="$TLS" \
        KAFKA_BOOTSTRAP_SERVERS="" REDIS_URL="" "$@"
}

client_env() {
    local kafka_password redis_password
    kafka_password=$(cat "$TLS/kafka.password")
    redis_password=$(cat "$TLS/redis.password")
    # export lines, quoted for a shell (printf %q: a state folder may hold spaces), so that
    # eval "$(secure.sh env)" reaches the commands it runs
    printf 'export %s=%q\n' \
        ROI_KAFKA_BOOTSTRAP_SERVERS "127.0.0.1:$KAFKA_SECURE_PORT" \
        ROI_KAFKA_SECURITY_PROTOCOL SASL_SSL \
        ROI_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
        ROI_KAFKA_SASL_USERNAME roi \
        ROI_KAFKA_SASL_PASSWORD "$kafka_password" \
        ROI_KAFKA_SSL_CAFILE "$TLS/ca.pem" \
        ROI_KAFKA_SSL_CERTFILE "$TLS/client.crt" \
        ROI_KAFKA_SSL_KEYFILE "$TLS/client.key" \
        ROI_REDIS_URL "rediss://roi:$redis_password@127.0.0.1:$REDIS_SECURE_PORT/0" \
        ROI_REDIS_SSL_CAFILE "$TLS/ca.pem"
}

case "${1:-}" in
    start)
        make_tls
        as_secure "$HERE/kafka.sh" start
        as_secure "$HERE/redis.sh" start ;;
    stop)
        as_secure "$HERE/redis.sh" stop
        as_secure "$HERE/kafka.sh" stop ;;
    status)
        rc=0
        as_secure "$HERE/kafka.sh" status || rc=3
        as_secure "$HERE/redis.sh" status || rc=3
        exit $rc ;;
    env)
        [ -f "$TLS/.complete" ] || die "secure: not started yet (deploy/local/secure.sh start)"
        client_env ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) say "usage: $0 start|stop|status|env"; exit 2 ;;
esac
