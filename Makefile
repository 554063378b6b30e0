# steelqc — the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test screenshots bench-ml bench-ood bench-serve bench-retrain bench-similar bench-novelty bench-loop bench-int8 bench-auth bench-line bench-mixed bench-bridge bench-detect bench-anomaly bench-tables worker beat web clean-local

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

## Install, migrate, create a demo admin, import demo images, serve on 127.0.0.1:8000 with a worker.
run: $(STAMP)
	@bash scripts/run-local.sh

## The whole test suite against the real PostgreSQL, Redis and a real Celery worker process.
test: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) -m pytest --durations=40 $(PYTEST_ARGS)

## Refresh the guide's screenshots (docs/screenshots) from the browser tests.
screenshots: $(STAMP)
	@bash scripts/ensure-services.sh
	STEELQC_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest tests/e2e -q

## mlcore benchmark on ../shared/datasets/neu-cls; figures go to docs/benchmarks.md.
bench-ml: $(STAMP)
	$(PY) benchmarks/bench_ml.py

## Foreign/novel detection methods side by side on frozen backbone features (the evidence for mlcore.ood).
bench-ood: $(STAMP)
	$(PY) benchmarks/bench_ood_methods.py

## Serving benchmark: gunicorn + inference worker on PostgreSQL/Redis, loaded via the API.
bench-serve: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_serve.py

## End-to-end retraining: empty installation, NEU import, train and promote through the API.
bench-retrain: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_retrain.py

## Look-alike search and grouping on 100,000 synthetic descriptors; figures go to docs/benchmarks.md.
bench-similar: $(STAMP)
	$(PY) benchmarks/bench_similar.py

## CPU per authenticated API request: old plain token vs hashed ApiToken vs session, on PostgreSQL.
bench-auth: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_auth.py

## The retention sweep at 1 million image rows (own throw-away database): EXPLAIN of its batch query, dry run, deletes/s.
bench-retention: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_retention.py $(BENCH_RETENTION_ARGS)

## The novelty loop through the API: held-out NEU classes, defect-free and other-line images, group labelling, retraining.
bench-novelty: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_novelty.py

## The learning loop as it will run: beat retrains on a schedule over many review rounds (good, careless, excluded class, new class, idle); gate decisions, evaluation-set scores.
bench-loop: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_loop.py $(BENCH_LOOP_ARGS)

## The int8 serving copy against fp32 on NEU test and foreign sets, accuracy and speed in the same run.
bench-int8: $(STAMP)
	$(PY) benchmarks/bench_int8.py

## A simulated line streaming tiles to classify/ on a fresh stack: tiles/s, what is kept and written, CPU per tier.
bench-line: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_line.py

## classify/ beside an upload backlog, one worker for both queues vs the line worker: 504 share, p50/p95, counts.
bench-mixed: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_mixed.py

## The line bridge on a fresh stack: files/s through camera folders, folder -> MQTT latency, broker and bridge restarts (lost/duplicated), CPU per frame.
bench-bridge: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_bridge.py

## The growing tables at 10 million predictions (own throw-away database): sizes, EXPLAIN ANALYZE of the app's reads.
bench-tables: $(STAMP)
	@bash scripts/ensure-services.sh
	$(PY) benchmarks/bench_tables.py $(BENCH_TABLES_ARGS)

## Detection head: mAP on NEU-DET and cr7-det test splits, training time, images/s with and without boxes.
bench-detect: $(STAMP)
	$(PY) benchmarks/bench_detect.py

## Anomaly models from good images only: PatchCore vs PaDiM on BSData, nearest-neighbour libraries, cr7-det tiles at 1k/5k/20k good images.
bench-anomaly: $(STAMP)
	$(PY) benchmarks/bench_anomaly.py $(BENCH_ANOMALY_ARGS)

## Production-style processes, one per terminal (settings from the environment).
web: $(STAMP)
	$(VENV)/bin/gunicorn --config gunicorn.conf.py steelqc.wsgi:application
worker: $(STAMP)
	$(PY) -m celery -A steelqc worker -Q inference,line,training --concurrency 1 --loglevel INFO
beat: $(STAMP)
	$(PY) -m celery -A steelqc beat --loglevel INFO

## Forget the local embedded installation (SQLite database, uploaded files, queued messages).
clean-local:
	rm -rf var
