#!/usr/bin/env bash
# Apache Kafka, one node in KRaft mode (broker + controller), on 127.0.0.1.
# The broker jars are resolved from Maven Central (kafka/pom.xml pins the version) and cached
# under the state folder; storage is formatted once. With KAFKA_BOOTSTRAP_SERVERS set, nothing
# is started and that cluster is used. Topics are never created on first use
# (auto.create.topics.enable=false).
# With ROI_KAFKA_TLS_DIR set (deploy/local/secure.sh sets it), clients get SASL_SSL instead
# of PLAINTEXT: SCRAM-SHA-512 (user ROI_KAFKA_SCRAM_USER, password in the folder's
# kafka.password) and a client certificate signed by the folder's CA (mTLS); the brokers'
# own traffic stays on a loopback listener (ROI_KAFKA_BROKER_PORT).
#   usage: deploy/local/kafka.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HERE="$ROOT/deploy/local/kafka"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")
DIR="$STATE_DIR/kafka"
LIB="${ROI_KAFKA_LIB_DIR:-$DIR/lib-$KAFKA_VERSION}"
TLS_DIR=${ROI_KAFKA_TLS_DIR:-}

resolve_jars() {
    [ -f "$LIB/.complete" ] && return 0
    say "kafka: resolving Apache Kafka $KAFKA_VERSION jars from Maven Central (once)"
    rm -rf "$LIB"
    mkdir -p "$DIR"
    mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIB" >"$DIR/maven.log" 2>&1 \
        || die "kafka: maven could not resolve the broker jars; see $DIR/maven.log"
    touch "$LIB/.complete"
}

listener_config() {
    if [ -z "$TLS_DIR" ]; then
        cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
PROPS
        return
    fi
    local broker_port=${ROI_KAFKA_BROKER_PORT:?ROI_KAFKA_BROKER_PORT is needed with ROI_KAFKA_TLS_DIR}
    cat <<PROPS
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,BROKER://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,BROKER://127.0.0.1:$broker_port
listener.security.protocol.map=CONTROLLER:PLAINTEXT,BROKER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=BROKER
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.sasl_ssl.ssl.client.auth=required
PROPS
}

write_config() {
    cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
$(listener_config)
log.dirs=$DIR/data
num.partitions=4
# Topics are created on purpose (roi-metrics channel add, the simulator, the worker's
# dead-letter topic), never by a first produce or fetch: a typo or garbage must not become a
# channel (docs/security.md).
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Records up to 2 MiB reach the worker, so one over the contract's 1 MiB is dead-lettered
# (too_large) instead of being refused by the broker unseen.
message.max.bytes=2097152
PROPS
}

# The JVM command line shared by the storage tool and the broker.
read -ra HEAP <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
JAVA=(java "${HEAP[@]}" "-Dlog4j2.configurationFile=$HERE/log4j2.xml" -cp "$LIB/*")

kafka_java() { "${JAVA[@]}" "$@"; }

format_once() {
    [ -f "$DIR/data/meta.properties" ] && return 0
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    # The command in a java @argfile (mode 600, deleted after): the SCRAM password, stored in
    # the cluster's metadata, never appears in the process list.
    local args="$DIR/format.args"
    (
        umask 077
        echo "kafka.tools.StorageTool format -t $cluster_id -c \"$DIR/server.properties\""
        if [ -n "$TLS_DIR" ]; then
            echo "--add-scram SCRAM-SHA-512=[name=${ROI_KAFKA_SCRAM_USER:-roi},password=$(cat "$TLS_DIR/kafka.password")]"
        fi
    ) >"$args"
    local status=0
    "${JAVA[@]}" "@$args" >"$DIR/format.log" 2>&1 || status=$?
    rm -f "$args"
    [ "$status" -eq 0 ] || die "kafka: formatting storage failed; see $DIR/format.log"
}

started() { grep -q "Kafka Server started" "$DIR/kafka.log" && port_open "$KAFKA_PORT"; }

start() {
    if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
        say "kafka: using existing cluster at $KAFKA_BOOTSTRAP_SERVERS"
        return 0
    fi
    if pid_alive kafka; then
        say "kafka: already running on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    command -v java >/dev/null || die "kafka: java not found; run deploy/local/install.sh"
    command -v mvn >/dev/null || die "kafka: mvn not found; run deploy/local/install.sh"
    refuse_taken kafka "$KAFKA_PORT" ROI_KAFKA_PORT
    refuse_taken kafka "$KAFKA_CONTROLLER_PORT" ROI_KAFKA_CONTROLLER_PORT
    mkdir -p "$DIR"
    resolve_jars
    write_config
    format_once
    : >"$DIR/kafka.log"
    setsid nohup "${JAVA[@]}" kafka.Kafka "$DIR/server.properties" \
        >>"$DIR/kafka.log" 2>&1 </dev/null &
    echo $! >"$DIR/kafka.pid"
    if ! wait_until 90 "kafka" started; then
        tail -n 20 "$DIR/kafka.log" >&2
        exit 1
    fi
    say "kafka: Apache Kafka $KAFKA_VERSION ready on 127.0.0.1:$KAFKA_PORT${TLS_DIR:+ (SASL_SSL, SCRAM-SHA-512, client certificates required)} (log: $DIR/kafka.log)"
}

status() {
    if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
        echo "kafka: external, $KAFKA_BOOTSTRAP_SERVERS"
    elif pid_alive kafka && port_open "$KAFKA_PORT"; then
        echo "kafka: running, 127.0.0.1:$KAFKA_PORT (Apache Kafka $KAFKA_VERSION, KRaft)"
    else
        echo "kafka: stopped"; return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] || stop_pid kafka ;;
    status) status ;;
    *) say "usage: $0 start|stop|status"; exit 2 ;;
esac
