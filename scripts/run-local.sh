#!/usr/bin/env bash
# `make run`: the embedded installation (SQLite, local files, filesystem broker) with a worker.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-steelqc.settings.local}"
PY=.venv/bin/python

$PY manage.py migrate --noinput
$PY manage.py ensure_demo_admin

demo="${STEELQC_DEMO_DATA:-../shared/datasets/neu-cls}"
if [ -d "$demo" ]; then
  $PY manage.py import_dataset "$demo" --source demo --if-empty
else
  echo "No demo images: $demo does not exist (set STEELQC_DEMO_DATA to a folder-per-class image folder)."
fi

$PY -m celery -A steelqc worker -Q inference,training --concurrency 1 --beat --loglevel INFO \
  --schedule var/celerybeat-schedule &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

echo "steelqc is serving on http://127.0.0.1:8000/ (admin: http://127.0.0.1:8000/admin/). Ctrl-C stops it."
$PY manage.py runserver 127.0.0.1:8000
