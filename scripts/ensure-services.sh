#!/usr/bin/env bash
# Make PostgreSQL and Redis available for fieldops, then print `export` lines on stdout:
#
#   eval "$(scripts/ensure-services.sh)"
#
# Uses FIELDOPS__DATABASE__URL (default postgres://postgres@127.0.0.1:5432/fieldops) and
# FIELDOPS__REDIS__URL (default redis://127.0.0.1:6379) when they answer, creating the database
# if it is missing. Whichever does not answer is replaced by a PRIVATE instance under .run/
# (PostgreSQL on 127.0.0.1:55432 with trust auth, Redis on 127.0.0.1:56379 without
# persistence), installing the server from apt first if needed. Safe to run again: running
# private instances are reused. scripts/stop-services.sh stops them. Diagnostics go to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
PG_PORT=55432
REDIS_PORT=56379
DB_URL="${FIELDOPS__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/fieldops}"
REDIS_URL="${FIELDOPS__REDIS__URL:-redis://127.0.0.1:6379}"

log() { echo "ensure-services: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  log "installing $* from apt"
  if ((APT_UPDATED == 0)); then as_root apt-get update -qq >&2; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# postgres://user[:pw]@host[:port]/db[?query] -> PG_BASE (scheme..host:port), PG_DB, PG_QUERY, PG_HOST, PG_PORT_CFG
parse_pg_url() {
  local re='^(postgres(ql)?://(([^@/]*)@)?([^:/?]+)(:([0-9]+))?)(/([^?]*))?(\?.*)?$'
  [[ $1 =~ $re ]] || { log "cannot parse database URL"; exit 1; }
  PG_BASE="${BASH_REMATCH[1]}" PG_HOST="${BASH_REMATCH[5]}" PG_PORT_CFG="${BASH_REMATCH[7]:-5432}"
  PG_DB="${BASH_REMATCH[9]:-fieldops}" PG_QUERY="${BASH_REMATCH[10]:-}"
}

# redis://[user:pw@]host[:port][/db] -> R_HOST, R_PORT
parse_redis_url() {
  local re='^rediss?://([^@/]*@)?([^:/]+)(:([0-9]+))?(/.*)?$'
  [[ $1 =~ $re ]] || { log "cannot parse Redis URL"; exit 1; }
  R_HOST="${BASH_REMATCH[2]}" R_PORT="${BASH_REMATCH[4]:-6379}"
}

pg_answers() { # host port
  if command -v pg_isready >/dev/null; then pg_isready -q -h "$1" -p "$2" -t 3; else (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; fi
}

redis_answers() { # url host port
  if command -v redis-cli >/dev/null; then
    [[ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" == PONG ]]
  else
    (exec 3<>"/dev/tcp/$2/$3" && printf 'PING\r\n' >&3 && IFS= read -r -t 3 line <&3 && [[ $line == +PONG* ]]) 2>/dev/null
  fi
}

ensure_database() { # admin-url db
  command -v psql >/dev/null || apt_install postgresql-client
  if [[ -z "$(psql "$1" -tAc "select 1 from pg_database where datname = '$2'")" ]]; then
    log "creating database $2"
    psql "$1" -qc "create database \"$2\"" >&2
  fi
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [[ -z $dir || ! -x $dir/initdb ]]; then
    apt_install postgresql
    dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  echo "$dir"
}

start_private_pg() {
  local bin data="$RUN/pg" sock="$RUN/pg-socket" runas=()
  if pg_answers 127.0.0.1 "$PG_PORT"; then log "reusing private PostgreSQL on :$PG_PORT"; return; fi
  bin="$(pg_bin)"
  mkdir -p "$RUN/logs" "$sock" "$data"
  touch "$RUN/logs/postgres.log"
  if [[ $(id -u) -eq 0 ]]; then # initdb and postgres refuse to run as root
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    chown postgres: "$data" "$sock" "$RUN/logs/postgres.log"
    runas=(runuser -u postgres --)
  fi
  if [[ ! -s $data/PG_VERSION ]]; then
    log "initialising private PostgreSQL in $data"
    "${runas[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2 2>&1 \
      || "${runas[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >&2
  fi
  log "starting private PostgreSQL on 127.0.0.1:$PG_PORT (log .run/logs/postgres.log)"
  "${runas[@]}" "$bin/pg_ctl" -D "$data" -l "$RUN/logs/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2
}

start_private_redis() {
  local dir="$RUN/redis"
  if redis_answers "redis://127.0.0.1:$REDIS_PORT" 127.0.0.1 "$REDIS_PORT"; then
    log "reusing private Redis on :$REDIS_PORT"; return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$dir" "$RUN/logs"
  log "starting private Redis on 127.0.0.1:$REDIS_PORT (log .run/logs/redis.log)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$RUN/logs/redis.log" >&2
  for _ in $(seq 1 50); do
    redis_answers "redis://127.0.0.1:$REDIS_PORT" 127.0.0.1 "$REDIS_PORT" && return
    sleep 0.1
  done
  log "private Redis did not answer; see $RUN/logs/redis.log"; exit 1
}

parse_pg_url "$DB_URL"
parse_redis_url "$REDIS_URL"

if pg_answers "$PG_HOST" "$PG_PORT_CFG"; then
  log "PostgreSQL answers at $PG_HOST:$PG_PORT_CFG"
else
  log "no PostgreSQL at $PG_HOST:$PG_PORT_CFG; using a private one"
  start_private_pg
  PG_BASE="postgres://postgres@127.0.0.1:$PG_PORT" PG_QUERY=""
fi
ensure_database "$PG_BASE/postgres$PG_QUERY" "$PG_DB"
DB_URL="$PG_BASE/$PG_DB$PG_QUERY"

if redis_answers "$REDIS_URL" "$R_HOST" "$R_PORT"; then
  log "Redis answers at $R_HOST:$R_PORT"
else
  log "no Redis at $R_HOST:$R_PORT; using a private one"
  start_private_redis
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi

printf 'export FIELDOPS__DATABASE__URL=%q\n' "$DB_URL"
printf 'export FIELDOPS__REDIS__URL=%q\n' "$REDIS_URL"
