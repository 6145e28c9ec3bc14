#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis when they are not answering, for
# `make test` and CI on this project's machines. Elsewhere, set
# TEST_DATABASE_URL (tests) or DATABASE_URL/REDIS_URL (make run) instead.
set -euo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if [ -z "${TEST_DATABASE_URL:-}" ] && ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
  pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started" >&2; exit 1; }
fi

if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
fi
exit 0
