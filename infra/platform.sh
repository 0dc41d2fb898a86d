#!/usr/bin/env bash
# The whole platform as local processes: infrastructure, the five services, demo data.
# Usage: infra/platform.sh up|down|status       Every action is idempotent.
#        infra/platform.sh run <service> <command...>   a command with that service's settings
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MF_STATE_DIR:-$ROOT/.local}
LOGS=$STATE/logs
RUN=$STATE/run
PG_PORT=${MF_PG_PORT:-15432}
PG_HOME=${MF_PG_HOME:-/var/tmp/memberflow-pg-$PG_PORT}
export MF_KAFKA_BOOTSTRAP=${MF_KAFKA_BOOTSTRAP:-127.0.0.1:${MF_KAFKA_PORT:-19092}}
export MF_REDIS_URL=${MF_REDIS_URL:-redis://127.0.0.1:${MF_REDIS_PORT:-16379}/0}
SERVICES=(member:8001 points:8002 tier:8003 campaign:8004 analytics:8005)

log() { printf '[platform] %s\n' "$*"; }
die() { printf '[platform] error: %s\n' "$*" >&2; exit 1; }

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

ensure_database() {
  local name=$1
  local psql=(runuser -u postgres -- psql -h "$PG_HOME" -p "$PG_PORT" -U postgres -tAq)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $name" >/dev/null
  fi
}

ready() { curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }

service_env() {
  local name=$1
  export MF_SERVICE_NAME="$name-svc"
  export MF_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/memberflow_$name"
}

start_service() {
  local name=$1 port=$2 svc="$1-svc"
  if running "$svc"; then log "$svc: already running on :$port"; return 0; fi
  ensure_database "memberflow_$name"
  log "$svc: starting on :$port"
  (service_env "$name"; MF_HTTP_PORT=$port \
    setsid nohup "$ROOT/.venv/bin/$svc" >>"$LOGS/$svc.log" 2>&1 </dev/null &
   echo $! >"$RUN/$svc.pid")
}

run_with_service_env() {
  local name=${1%-svc}
  [[ " ${SERVICES[*]} " == *" $name:"* ]] || die "unknown service '$1'"
  shift
  service_env "$name"
  exec "$@"
}

wait_ready() {
  local svc=$1 port=$2 deadline=$((SECONDS + 90))
  until ready "$port"; do
    running "$svc" || die "$svc exited during start-up (see $LOGS/$svc.log)"
    ((SECONDS < deadline)) || die "$svc not ready after 90s (see $LOGS/$svc.log)"
    sleep 0.3
  done
}

up() {
  "$ROOT/infra/infra.sh" up
  mkdir -p "$RUN" "$LOGS"
  for entry in "${SERVICES[@]}"; do start_service "${entry%%:*}" "${entry##*:}"; done
  for entry in "${SERVICES[@]}"; do wait_ready "${entry%%:*}-svc" "${entry##*:}"; done
  log "all services ready"
  if [ ! -f "$STATE/demo-loaded" ] || [ "${MF_DEMO_RELOAD:-0}" = 1 ]; then
    # A reload is another batch of members (ids and join dates of its own); the first is "demo".
    [ -f "$STATE/demo-loaded" ] && export MF_DEMO_BATCH=${MF_DEMO_BATCH:-demo$(date +%s)}
    log "loading demo data (published through Kafka as an order system would)"
    "$ROOT/.venv/bin/python" -m demo.load || die "demo data failed to load (services keep running; see above)"
    touch "$STATE/demo-loaded"
  else
    log "demo data already loaded (MF_DEMO_RELOAD=1 to load another batch)"
  fi
  cat <<EOT

memberflow is running:
  member-svc     http://127.0.0.1:8001/docs
  points-svc     http://127.0.0.1:8002/docs
  tier-svc       http://127.0.0.1:8003/docs
  campaign-svc   http://127.0.0.1:8004/docs
  analytics-svc  http://127.0.0.1:8005/docs
  ops dashboard  http://127.0.0.1:8005/dashboard
  tokens for trying the APIs: .venv/bin/python -m demo.token ops   (or storefront, or member:self <member-id>)
  logs           $LOGS        stop everything: make down
EOT
}

down() {
  for entry in "${SERVICES[@]}"; do
    local svc="${entry%%:*}-svc"
    if running "$svc"; then
      log "$svc: stopping"
      kill "$(cat "$RUN/$svc.pid")"
    fi
  done
  for entry in "${SERVICES[@]}"; do
    local svc="${entry%%:*}-svc" deadline=$((SECONDS + 30))
    while running "$svc"; do
      ((SECONDS < deadline)) || { kill -9 "$(cat "$RUN/$svc.pid")"; break; }
      sleep 0.2
    done
    rm -f "$RUN/$svc.pid"
  done
  "$ROOT/infra/infra.sh" down
}

status() {
  "$ROOT/infra/infra.sh" status
  for entry in "${SERVICES[@]}"; do
    local svc="${entry%%:*}-svc" port=${entry##*:}
    if running "$svc" && ready "$port"; then echo "$svc  ready :$port"
    elif running "$svc"; then echo "$svc  starting :$port"
    else echo "$svc  down"; fi
  done
}

mkdir -p "$LOGS"
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  run) shift; [ $# -ge 2 ] || die "usage: $0 run <service> <command...>"; run_with_service_env "$@" ;;
  *) echo "usage: $0 up|down|status|run <service> <command...>" >&2; exit 2 ;;
esac
