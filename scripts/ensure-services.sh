#!/usr/bin/env bash
# Makes sure the real PostgreSQL, Redis and Mosquitto the tests use are up on 127.0.0.1, starting them if
# they are installed but stopped. Never falls back to anything else: exits non-zero saying what
# is missing.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it."
  if [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "ERROR: PostgreSQL is needed on 127.0.0.1:5432 (trust auth for user postgres) and could not be started." >&2; exit 1; }
fi

if ! redis_up; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it."
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "ERROR: Redis is needed on 127.0.0.1:6379 and could not be started." >&2; exit 1; }
fi
# The line bridge's tests start their own brokers; the shared one serves `make run` and the docs' examples.
mosquitto_up() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
if ! mosquitto_up; then
  echo "Mosquitto is not answering on 127.0.0.1:1883; starting it."
  if [ -x /usr/sbin/mosquitto ]; then
    # No configuration file: Mosquitto 2 then listens on the loopback interface only, port 1883.
    /usr/sbin/mosquitto -d || true
  fi
  for _ in $(seq 1 30); do mosquitto_up && break; sleep 1; done
  mosquitto_up || { echo "ERROR: Mosquitto (the MQTT broker) is needed on 127.0.0.1:1883 and could not be started (apt-get install mosquitto)." >&2; exit 1; }
fi
echo "PostgreSQL, Redis and Mosquitto are up on 127.0.0.1."
