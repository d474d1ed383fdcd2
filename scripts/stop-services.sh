#!/usr/bin/env bash
# Stop the PRIVATE PostgreSQL and Redis that scripts/ensure-services.sh started under .run/
# (and nothing else). Data stays in .run/pg; Redis keeps nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
log() { echo "stop-services: $*" >&2; }

if [[ -s $RUN/pg/postmaster.pid ]]; then
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  runas=()
  [[ $(id -u) -eq 0 ]] && runas=(runuser -u postgres --)
  log "stopping private PostgreSQL ($RUN/pg)"
  "${runas[@]}" "$bin/pg_ctl" -D "$RUN/pg" -m fast -w stop >&2 || log "pg_ctl stop failed"
else
  log "no private PostgreSQL running"
fi

pidfile="$RUN/redis/redis.pid"
if [[ -s $pidfile ]] && pid="$(cat "$pidfile")" && kill -0 "$pid" 2>/dev/null \
   && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]; then
  log "stopping private Redis (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
else
  log "no private Redis running"
fi
