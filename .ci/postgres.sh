#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server with a database for the tests; prints the URL.
# Runs as root on Debian (CI); the server listens on localhost only.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q online; then
  pg_lsclusters -h | grep -q . || pg_createcluster "$version" main >&2
  pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='autoarch'\" | grep -q 1 || psql -q -c \"CREATE ROLE autoarch LOGIN PASSWORD 'autoarch'\"" >&2
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='autoarch_test'\" | grep -q 1 || createdb -O autoarch autoarch_test" >&2
echo "postgresql+psycopg2://autoarch:autoarch@127.0.0.1:5432/autoarch_test"
