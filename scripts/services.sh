#!/usr/bin/env bash
# Start PostgreSQL and Redis on loopback if they are not answering, installing them from
# Debian's packages when missing. Idempotent; needs root on a machine without systemd.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

if pg_up && redis_up; then
  exit 0
fi

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main
  [ -f "$conf/postgresql.conf" ] || pg_createcluster "$version" main
  if ! grep -q '^# callsync: loopback trust' "$conf/pg_hba.conf"; then
    cat > "$conf/pg_hba.conf" <<'HBA'
# callsync: loopback trust
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
host    all   all   ::1/128        trust
HBA
  fi
  mkdir -p "$conf/conf.d"
  printf "listen_addresses = '127.0.0.1'\nport = 5432\n" > "$conf/conf.d/00-callsync.conf"
  chown -R postgres:postgres "$conf"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
fi

if ! redis_up; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/callsync.log
  for _ in $(seq 1 60); do redis_up && break; sleep 0.2; done
fi

pg_up || { echo "services: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "services: Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
echo "services: PostgreSQL and Redis are up"
