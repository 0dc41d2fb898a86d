#!/usr/bin/env bash
# Real local infrastructure without Docker: Apache Kafka (KRaft, jars from Maven Central),
# PostgreSQL and Redis (Debian packages), on private ports and data dirs.
# Usage: infra/infra.sh up|down|status|restart-kafka|restart-postgres|ensure-chromium
# Every action is idempotent.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MF_STATE_DIR:-$ROOT/.local}
LOGS=$STATE/logs
# Default ports sit below Linux's ephemeral range (32768-60999): a restarted broker or
# database must bind its port again while client connections hold local ports.
KAFKA_PORT=${MF_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${MF_KAFKA_CONTROLLER_PORT:-19093}
PG_PORT=${MF_PG_PORT:-15432}
REDIS_PORT=${MF_REDIS_PORT:-16379}
# Fixed so that a restarted broker matches the meta.properties it formatted.
KAFKA_CLUSTER_ID=bWVtYmVyZmxvdy1rYWZrYQ
PG_BIN=${MF_PG_BIN:-/usr/lib/postgresql/15/bin}
# initdb refuses root and the postgres user must be able to enter the data dir,
# which a checkout under /root would not allow; so the cluster lives under /var/tmp.
PG_HOME=${MF_PG_HOME:-/var/tmp/memberflow-pg-$PG_PORT}

log() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || die "$what not ready after ${limit}s (see $LOGS)"
    sleep 0.2
  done
}

need_apt() { # need_apt <binary-path> <package...>
  local binary=$1; shift
  [ -x "$binary" ] && return 0
  log "installing $* from Debian packages"
  if [ ! -f "$STATE/.apt-updated" ]; then
    apt-get update -qq >/dev/null
    mkdir -p "$STATE" && touch "$STATE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  [ -x "$binary" ] || die "$binary still missing after installing $*"
}

# ---------- PostgreSQL ----------
pg_as() { runuser -u postgres -- "$@"; }

pg_up() {
  need_apt "$PG_BIN/initdb" postgresql
  mkdir -p "$PG_HOME" && chown postgres:postgres "$PG_HOME"
  if [ ! -f "$PG_HOME/data/PG_VERSION" ]; then
    log "postgres: initdb in $PG_HOME/data"
    pg_as "$PG_BIN/initdb" -D "$PG_HOME/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PG_HOME/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_HOME'
max_connections = 300
shared_buffers = 256MB
max_wal_size = 2GB
CONF
  fi
  if pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" status >/dev/null 2>&1; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -l "$PG_HOME/postgres.log" -w -t 60 start >/dev/null
  fi
  ln -sf "$PG_HOME/postgres.log" "$LOGS/postgres.log"
  wait_for postgres 30 pg_as "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

pg_down() {
  [ -x "$PG_BIN/pg_ctl" ] && [ -d "$PG_HOME/data" ] || return 0
  if pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" status >/dev/null 2>&1; then
    log "postgres: stopping"
    pg_as "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -m fast -w stop >/dev/null
  fi
}

pg_status() {
  if port_open "$PG_PORT"; then echo "postgres  up    127.0.0.1:$PG_PORT  data $PG_HOME/data"
  else echo "postgres  down  127.0.0.1:$PG_PORT"; fi
}

# ---------- Redis ----------
REDIS_PIDFILE=$STATE/redis/redis.pid

redis_up() {
  need_apt /usr/bin/redis-server redis-server
  mkdir -p "$STATE/redis"
  if port_open "$REDIS_PORT"; then log "redis: already running on 127.0.0.1:$REDIS_PORT"; return 0; fi
  log "redis: starting on 127.0.0.1:$REDIS_PORT"
  /usr/bin/redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$STATE/redis" --pidfile "$REDIS_PIDFILE" --logfile "$LOGS/redis.log" \
    --save '' --appendonly no
  wait_for redis 20 redis_ping
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_down() {
  if port_open "$REDIS_PORT"; then
    log "redis: stopping"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_for "redis shutdown" 20 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT) 2>/dev/null"
  fi
}

redis_status() {
  if port_open "$REDIS_PORT"; then echo "redis     up    127.0.0.1:$REDIS_PORT"
  else echo "redis     down  127.0.0.1:$REDIS_PORT"; fi
}

# ---------- Kafka ----------
KAFKA_HOME=$STATE/kafka
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_PIDFILE=$KAFKA_HOME/kafka.pid

kafka_libs() {
  local pom=$ROOT/infra/kafka/pom.xml stamp=$KAFKA_LIBS/.pom.sha256
  local want; want=$(sha256sum "$pom" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  command -v mvn >/dev/null || need_apt /usr/bin/mvn maven
  log "kafka: resolving the broker classpath from Maven Central"
  rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"  # never two versions of one jar
  mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_LIBS" >"$LOGS/maven.log" 2>&1 || die "maven failed (see $LOGS/maven.log)"
  echo "$want" >"$stamp"
}

kafka_running() { [ -f "$KAFKA_PIDFILE" ] && kill -0 "$(cat "$KAFKA_PIDFILE")" 2>/dev/null; }

kafka_started() { grep -q "Kafka Server started" "$LOGS/kafka.log" 2>/dev/null && port_open "$KAFKA_PORT"; }

kafka_up() {
  command -v java >/dev/null || need_apt /usr/bin/java openjdk-17-jre-headless
  kafka_libs
  if kafka_running; then log "kafka: already running on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process"
  mkdir -p "$KAFKA_HOME/data"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$KAFKA_HOME/data#g" "$ROOT/infra/kafka/server.properties.template" \
      >"$KAFKA_HOME/server.properties"
  local cp="$KAFKA_LIBS/*"
  local jvm=(-server -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
             -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
             -Djava.awt.headless=true
             "-Dlog4j2.configurationFile=$ROOT/infra/kafka/log4j2.properties")
  java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format --cluster-id="$KAFKA_CLUSTER_ID" \
    -c "$KAFKA_HOME/server.properties" --ignore-formatted >>"$LOGS/kafka-format.log" 2>&1 \
    || die "kafka storage format failed (see $LOGS/kafka-format.log)"
  log "kafka: starting on 127.0.0.1:$KAFKA_PORT"
  : >"$LOGS/kafka.log"
  setsid nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$KAFKA_HOME/server.properties" \
    >>"$LOGS/kafka.log" 2>&1 </dev/null &
  echo $! >"$KAFKA_PIDFILE"
  wait_for kafka 120 kafka_started_or_dead
}

kafka_started_or_dead() {
  kafka_running || die "kafka exited during start-up (see $LOGS/kafka.log)"
  kafka_started
}

kafka_down() {
  kafka_running || { rm -f "$KAFKA_PIDFILE"; return 0; }
  local pid; pid=$(cat "$KAFKA_PIDFILE")
  log "kafka: stopping (pid $pid)"
  kill "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then log "kafka: still alive after 60s, killing"; kill -9 "$pid"; fi
    sleep 0.2
  done
  rm -f "$KAFKA_PIDFILE"
}

kafka_status() {
  if kafka_running && port_open "$KAFKA_PORT"; then echo "kafka     up    127.0.0.1:$KAFKA_PORT  pid $(cat "$KAFKA_PIDFILE")"
  else echo "kafka     down  127.0.0.1:$KAFKA_PORT"; fi
}

# ---------- main ----------
mkdir -p "$LOGS"
case "${1:-}" in
  up)     pg_up; redis_up; kafka_up; log "ready; logs in $LOGS" ;;
  down)   kafka_down; redis_down; pg_down ;;
  status) pg_status; redis_status; kafka_status ;;
  restart-kafka)    kafka_down; kafka_up ;;
  restart-postgres) pg_down; pg_up ;;
  ensure-chromium) need_apt /usr/bin/chromium chromium ;;  # the dashboard's browser test
  *) echo "usage: $0 up|down|status|restart-kafka|restart-postgres|ensure-chromium" >&2; exit 2 ;;
esac
