#!/usr/bin/env bash
# Runs every test of fieldops against real PostgreSQL and Redis:
#
#   scripts/test.sh            (extra arguments go to `cargo test`)
#
# Finds PostgreSQL and Redis at FIELDOPS__DATABASE__URL / FIELDOPS__REDIS__URL or starts private
# instances (scripts/ensure-services.sh), clears what earlier test runs left behind, then runs
# `cargo test --workspace`. Each test makes its own database (from a migrated template) and its
# own Redis key prefix, so tests run in parallel and never see each other's data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

eval "$(scripts/ensure-services.sh)"

# leftovers of earlier runs: per-test databases and Redis keys
admin_url="${FIELDOPS__DATABASE__URL%/*}/postgres"
for db in $(psql "$admin_url" -Atc "select datname from pg_database where datname like 'fieldops\_test\_%'"); do
  psql "$admin_url" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true
done
redis-cli -u "$FIELDOPS__REDIS__URL" --scan --pattern 'fieldops-test:*' 2>/dev/null | xargs -r -n 500 redis-cli -u "$FIELDOPS__REDIS__URL" del >/dev/null || true

export RUST_BACKTRACE="${RUST_BACKTRACE:-0}"
echo "test.sh: cargo test --workspace (PostgreSQL and Redis ready)" >&2
cargo test --workspace --locked "$@"
