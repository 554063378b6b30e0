#!/usr/bin/env bash
# `make run`: the embedded installation (SQLite, local files, filesystem broker) with inference, line
# and training workers, and a private Redis when redis-server is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-steelqc.settings.local}"
PY=.venv/bin/python

$PY manage.py migrate --noinput
$PY manage.py ensure_demo_admin
$PY manage.py ensure_periodic_tasks

demo="${STEELQC_DEMO_DATA:-../shared/datasets/neu-cls}"
if [ -d "$demo" ]; then
  $PY manage.py import_dataset "$demo" --source demo --if-empty
else
  echo "No demo images: $demo does not exist (set STEELQC_DEMO_DATA to a folder-per-class image folder)."
fi

# A first model if there is none: queued now, trained by the worker below; images uploaded
# meanwhile wait as `pending` and are predicted as soon as it goes live.
$PY manage.py train_model --if-no-active || echo "No first model started (see the message above)."

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

# classify/, ?wait= and the API throttles use Redis when there is one. Unless
# STEELQC_EVENTS_REDIS_URL (or a Redis broker) names one already, start a private redis-server for
# this run when it is installed (scripts/private-redis.sh). Without it, classify/ passes frames and
# answers through files under var/classify and ?wait= uploads look at the database every 0.5 s.
if [ -z "${STEELQC_EVENTS_REDIS_URL:-}" ] && [[ "${CELERY_BROKER_URL:-}" != redis* ]] \
    && command -v redis-server >/dev/null 2>&1; then
  source scripts/private-redis.sh
  private_redis_start "${STEELQC_VAR_DIR:-$PWD/var}/redis" \
    || echo "The private Redis did not start (see ${STEELQC_VAR_DIR:-var}/redis/redis.log); going on without it." >&2
fi
if [ -n "${STEELQC_EVENTS_REDIS_URL:-}" ] || [[ "${CELERY_BROKER_URL:-}" == redis* ]]; then
  echo "classify/ and ?wait= go through Redis at ${STEELQC_EVENTS_REDIS_URL:-$CELERY_BROKER_URL}."
else
  echo "No Redis: classify/ goes through files under ${STEELQC_VAR_DIR:-var}/classify (install redis-server to use Redis)."
fi

# Inference, line (classify/) and training in separate worker processes, as in production: an
# upload (and its ?wait) is predicted while a model trains, and line frames never wait behind
# upload batches. Beat runs inside the inference worker.
$PY -m celery -A steelqc worker -Q inference --concurrency 1 -n inference@%h --beat --loglevel INFO \
  --schedule var/celerybeat-schedule &
pids+=($!)
$PY -m celery -A steelqc worker -Q line --concurrency 1 -n line@%h --loglevel INFO &
pids+=($!)
$PY -m celery -A steelqc worker -Q training --concurrency 1 -n training@%h --loglevel INFO &
pids+=($!)
$PY manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
# The line bridge (camera folders in, MQTT and OPC UA out) when it has frames to take.
if [ -n "${STEELQC_BRIDGE_FOLDERS:-}${STEELQC_MQTT_FRAME_SOURCES:-}" ]; then
  $PY manage.py line_bridge &
  pids+=($!)
  echo "The line bridge is running (docs/operations.md, \"The line bridge\")."
fi
echo "steelqc is serving on http://127.0.0.1:8000/ (log in at http://127.0.0.1:8000/accounts/login/; training: http://127.0.0.1:8000/training/). Ctrl-C stops it."

# If a worker or the web server stops, stop the rest too rather than run half a system.
wait -n "${pids[@]}"
echo "A steelqc process stopped; shutting down the rest." >&2
exit 1
