#!/usr/bin/env bash
# Builds fieldops-bench (release) and runs one full measurement:
#   A. redis-benchmark XADD, B. PostgreSQL COPY, P. rule preview, S. directive fan-out (real services).
# Usage: load-tests/run.sh [--accounts N] [--cities N] [--agents-per-city N] [--redis-requests N]
#     [--json PATH] [--keep-db] [--drop-task-fks] [--no-preview | --preview-only] [--preview-runs N]
# Needs PostgreSQL and Redis (FIELDOPS__DATABASE__URL / FIELDOPS__REDIS__URL, default: local)
# and redis-benchmark on PATH. See load-tests/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

accounts=100000
cities=10
rest=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --accounts) accounts="$2"; shift 2 ;;
        --cities) cities="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) rest+=("$1"); shift ;;
    esac
done

command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (apt-get install redis-tools)" >&2; exit 1; }

SQLX_OFFLINE=true cargo build --release -p load-tests
# the services log warnings and errors only; RUST_LOG=dispatcher=info shows the materialise time
RUST_LOG="${RUST_LOG:-warn,sqlx::query=error}" \
    ./target/release/fieldops-bench --accounts "$accounts" --cities "$cities" ${rest[@]+"${rest[@]}"}
