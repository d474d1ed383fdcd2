#!/usr/bin/env bash
# The one-command demo: services, real district data, the three fieldops services, demo data,
# simulated field agents, and a live directive table. Ctrl-C stops everything it started.
#
#   scripts/demo.sh
#
# Environment (all optional): FIELDOPS__DATABASE__URL, FIELDOPS__REDIS__URL (see
# ensure-services.sh), FIELDOPS__AUTH__TOKEN_SECRET (random per run by default),
# FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD (default demo-admin-password),
# DEMO_CITIES (comma-separated city ids, default all), DEMO_SIMULATE=0 to run no simulator,
# DEMO_HQ_PORT / DEMO_AGENT_PORT / DEMO_DISPATCHER_PORT (default 8080 / 8081 / 8082).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="$ROOT/.run/logs"
BIN="$ROOT/target/release"
CITIES="${DEMO_CITIES:-all}"
HQ_PORT="${DEMO_HQ_PORT:-8080}" AGENT_PORT="${DEMO_AGENT_PORT:-8081}" DISPATCHER_PORT="${DEMO_DISPATCHER_PORT:-8082}"
HQ="http://127.0.0.1:$HQ_PORT"
AGENT_API="http://127.0.0.1:$AGENT_PORT"
SERVICES=("dispatcher:$DISPATCHER_PORT" "hq-console:$HQ_PORT" "city-agent-api:$AGENT_PORT")

log() { echo "demo: $*" >&2; }

PIDS=()
cleanup() {
  local status=$? pid
  trap - INT TERM EXIT
  if ((${#PIDS[@]} > 0)); then
    log "stopping ${#PIDS[@]} process(es)"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
      for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM for 20 s; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
      wait "$pid" 2>/dev/null || true
    done
  fi
  log "stopped (PostgreSQL/Redis keep running; scripts/stop-services.sh stops private ones)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. PostgreSQL and Redis.
eval "$(scripts/ensure-services.sh)"

# 2. Binaries (cargo shows its own progress).
log "building release binaries"
cargo build --release -p hq-console -p dispatcher -p city-agent-api -p fieldops-demo --bins

# 3. District boundaries (fetched and decoded once, cached in .cache/geo).
FIELDOPS_DEMO_BIN="$BIN/fieldops-demo" scripts/fetch-geo.sh

# 4. The services.
export FIELDOPS__AUTH__TOKEN_SECRET="${FIELDOPS__AUTH__TOKEN_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export FIELDOPS__AUTH__BOOTSTRAP_ADMIN_USERNAME="${FIELDOPS__AUTH__BOOTSTRAP_ADMIN_USERNAME:-admin}"
export FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD="${FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD:-demo-admin-password}"
ADMIN="$FIELDOPS__AUTH__BOOTSTRAP_ADMIN_USERNAME"
ADMIN_PW="$FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD"
mkdir -p "$LOGS"
for svc in "${SERVICES[@]}"; do
  name="${svc%%:*}" port="${svc#*:}"
  if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/health/live" 2>/dev/null; then
    log "port $port already answers: stop whatever runs there first"; exit 1
  fi
  log "starting $name on :$port (log .run/logs/$name.log)"
  FIELDOPS__HTTP__PORT="$port" "$BIN/$name" >"$LOGS/$name.log" 2>&1 &
  PIDS+=("$!")
done

log "waiting for /health/ready (up to 120 s)"
deadline=$((SECONDS + 120))
i=0
for svc in "${SERVICES[@]}"; do
  name="${svc%%:*}" port="${svc#*:}" pid="${PIDS[$i]}"
  i=$((i + 1))
  until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      log "$name (:$port) is not ready$(kill -0 "$pid" 2>/dev/null || echo ': it exited'); last lines of its log:"
      tail -n 40 "$LOGS/$name.log" >&2
      exit 1
    fi
    sleep 1
  done
  log "$name ready"
done

# 5. Demo data, then simulated agents.
"$BIN/fieldops-demo" seed --hq "$HQ" --admin-user "$ADMIN" --admin-password "$ADMIN_PW" --cities "$CITIES"
if [[ "${DEMO_SIMULATE:-1}" != 0 ]]; then
  log "starting the field simulator (log .run/logs/simulate.log)"
  "$BIN/fieldops-demo" simulate --agent-api "$AGENT_API" --cities "$CITIES" >"$LOGS/simulate.log" 2>&1 &
  PIDS+=("$!")
fi

cat <<MSG

  fieldops demo is running
    HQ console        $HQ              (admin: $ADMIN / $ADMIN_PW; strategist, coo / demo-password)
    Swagger UI        $HQ/swagger-ui/
    city agent app    $AGENT_API              (sh-manager, sh-agent-01 … / demo-password)
    logs              .run/logs/

  Live directive table below; Ctrl-C stops the demo.

MSG
sleep 3
# In the background plus `wait`, so a SIGTERM/SIGINT sent to this script alone is handled at once.
"$BIN/fieldops-demo" summary --hq "$HQ" --admin-user "$ADMIN" --admin-password "$ADMIN_PW" &
PIDS+=("$!")
wait "$!"
