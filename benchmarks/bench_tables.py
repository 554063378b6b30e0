"""The tables that grow with the line, at 10 million predictions (``make bench-tables``).

Creates a throw-away PostgreSQL database (``STEELQC_BENCH_TABLES_DB``, default
``steelqc_bench_h4``), migrates it, and fills it in the database itself (``INSERT ... SELECT``
over ``generate_series``: no row crosses the client, faster than COPY) with a line's history:

- ``--predictions`` rows of ``Prediction`` (default 10,000,000) over 35 days, three model
  versions (one per era, the last active) and every image of the two older eras predicted again
  by the active one; each with its class probabilities, review reasons, latency and an 848-byte
  descriptor (float16 x 424, as the default backbone stores it);
- the matching ``InspectionImage`` rows from six sources, 4 % flagged for review (low confidence,
  foreign, blank frames), most flagged images older than three days already reviewed (a
  ``Review`` row each), a few excluded or with a suspect label;
- ``LineMinute`` rows for the six sources, one per minute over the 35 days.

Secondary indexes and unique constraints are dropped for the load and built afterwards (the time
is recorded), then ``VACUUM ANALYZE``. Then the reads that matter are run the way the application
issues them, by calling the real selectors and services; an execute wrapper runs ``EXPLAIN
(ANALYZE, BUFFERS, FORMAT JSON)`` of every SQL statement they send before sending it. Recorded per
statement: the plan's shape, rows, time and buffers; per table: bytes per row and index sizes.

Writes ``benchmarks/results/tables.json`` (keyed by ``--label``) and the ``bench-tables`` section of
docs/benchmarks.md (``--no-docs`` to skip).

    .venv/bin/python benchmarks/bench_tables.py [--predictions 10000000] [--label NAME] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("STEELQC_BENCH_TABLES_DB") or os.environ.get("STEELQC_BENCH_DB") or "steelqc_bench_h4"
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ["DATABASE_CONN_MAX_AGE"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steelqc.settings.local")
os.environ.setdefault("DEBUG", "false")

import psycopg  # noqa: E402

RESULTS = Path(os.environ.get("STEELQC_BENCH_TABLES_RESULTS", ROOT / "benchmarks" / "results" / "tables.json"))
DAYS = 35
ERA_ENDS = (10, 22)  # v1 predicts days 0-10, v2 days 10-22, v3 (active) days 22-35
SOURCES = ("line1-top", "line1-bottom", "line2-top", "line2-bottom", "manual", "lab")
SOURCE_SHARES = (0.30, 0.30, 0.15, 0.15, 0.05, 0.05)
FLAGGED_SHARE = 0.04
POOL = 1024  # distinct random descriptors; random bytes do not compress, so sizes are real
EMBEDDING_BYTES = 848
CHUNK = 1_000_000
TABLES = ("inspections_inspectionimage", "inspections_prediction", "inspections_review", "inspections_lineminute")
DEFAULT_TIMEOUT_S = 300
NOTES = (Path(__file__).resolve().parent / "results" / "tables_notes.md").read_text() \
    if (Path(__file__).resolve().parent / "results" / "tables_notes.md").exists() else ""


def log(message: str) -> None:
    print(f"[bench-tables {time.strftime('%H:%M:%S')}] {message}", flush=True)


def admin_connection():
    return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)


def bench_connection():
    return psycopg.connect(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://"), autocommit=True)


# --- the data -------------------------------------------------------------------------------

def _u(i: str, k: int) -> str:
    """A deterministic pseudo-random number in [0, 1) per (row, stream)."""
    return f"((hashint8extended({i}, {k}) & 1048575)::float8 / 1048576)"


def _source_expr(u: str) -> str:
    whens, edge = [], 0.0
    for name, share in zip(SOURCES[:-1], SOURCE_SHARES[:-1]):
        edge += share
        whens.append(f"WHEN {u} < {edge:.4f} THEN '{name}'")
    return f"CASE {' '.join(whens)} ELSE '{SOURCES[-1]}' END"


def load(*, predictions: int, now: datetime) -> dict:
    """Fill the migrated database; returns the shape of what was loaded and how long it took."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from inspections.models import DefectClass, ModelVersion

    start = now - timedelta(days=DAYS)
    rescored_share = ERA_ENDS[1] / DAYS / 4  # a quarter of the older eras' images predicted again
    images = int(predictions / (1 + rescored_share))
    reviewer = get_user_model().objects.create_user("bench-reviewer")
    versions = []
    for number, status in ((1, "retired"), (2, "retired"), (3, "active")):
        versions.append(ModelVersion.objects.create(
            number=number, status=status, artifact_path=f"models/v{number}", backbone="efficientnet_lite0",
            classes=[], retirement="replaced" if status == "retired" else ""))
    classes = list(DefectClass.objects.order_by("id").values_list("id", "name"))
    class_ids = "ARRAY[" + ",".join(str(pk) for pk, _ in classes) + "]"
    class_names = "ARRAY[" + ",".join(f"'{name}'" for _, name in classes) + "]"
    v1, v2, v3 = (v.pk for v in versions)
    timings: dict[str, float] = {}
    with bench_connection() as conn:
        dropped = _drop_secondary_indexes(conn)
        conn.execute("SET session_replication_role = replica")  # no FK triggers: the rows are consistent by construction
        conn.execute("SET maintenance_work_mem = '512MB'")
        began = time.perf_counter()
        conn.execute("CREATE UNLOGGED TABLE bench_pool (k int PRIMARY KEY, e bytea)")
        conn.execute(
            f"INSERT INTO bench_pool SELECT k, (SELECT decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''),"
            f" 'hex') FROM generate_series(1, {EMBEDDING_BYTES}) WHERE k > 0) FROM generate_series(0, {POOL - 1}) k")
        day = "interval '1 day'"
        created = f"(%(start)s::timestamptz + (i::float8 / {images}) * {DAYS} * {day})"
        flagged = f"({_u('i', 1)} < {FLAGGED_SHARE})"
        recent = f"({created} > %(now)s::timestamptz - 3 * {day})"
        reviewed = f"(({flagged} AND {_u('i', 3)} < CASE WHEN {recent} THEN 0.3 ELSE 0.9 END) OR {_u('i', 3)} < 0.005)"
        excluded = f"(NOT {reviewed} AND {_u('i', 5)} < 0.001)"
        suspect = f"({reviewed} AND {_u('i', 6)} < 0.01)"
        label = f"({class_ids})[1 + floor({_u('i', 7)} * {len(classes)})::int]"
        for lo in range(1, images + 1, CHUNK):
            hi = min(images, lo + CHUNK - 1)
            conn.execute(
                "INSERT INTO inspections_inspectionimage (id, file, sha256, width, height, format, mode, size_bytes,"
                " original_name, source, external_id, created_at, status, split, label_id, label_source, label_version,"
                " excluded, exclusion_reason, suspect_suggestion_id, suspect_score, boxes_version)"
                f" SELECT i, 'images/' || left(h, 2) || '/' || h || '.png', h, 200, 200, 'PNG', 'L', 38000 + mod(i, 5000),"
                f" 'tile-' || i || '.png', {_source_expr(_u('i', 4))}, '', {created}, 'predicted', 'unassigned',"
                f" CASE WHEN {reviewed} THEN {label} END, CASE WHEN {reviewed} THEN 'review' ELSE '' END,"
                f" CASE WHEN {reviewed} THEN 1 ELSE 0 END, {excluded}, CASE WHEN {excluded} THEN 'not steel' ELSE '' END,"
                f" CASE WHEN {suspect} THEN ({class_ids})[1] END, CASE WHEN {suspect} THEN 0.9 END, 0"
                f" FROM (SELECT i, encode(sha256(int8send(i)), 'hex') AS h FROM generate_series({lo}, {hi}) i) s",
                {"start": start, "now": now})
            log(f"images {hi:,}/{images:,}")
        timings["images_s"] = time.perf_counter() - began

        began = time.perf_counter()
        era = f"(i::float8 / {images} * {DAYS})"
        version = f"CASE WHEN {era} < {ERA_ENDS[0]} THEN {v1} WHEN {era} < {ERA_ENDS[1]} THEN {v2} ELSE {v3} END"
        rescored_at = (f"(%(start)s::timestamptz + ({ERA_ENDS[1]} + {era} / {ERA_ENDS[1]} * ({DAYS - ERA_ENDS[1]}))"
                       f" * {day})")
        for lo in range(1, images + 1, CHUNK):
            hi = min(images, lo + CHUNK - 1)
            for kind, which, at, where in (
                ("era", version, f"{created} + interval '300 ms'", "TRUE"),
                ("rescored", str(v3), rescored_at, f"{era} < {ERA_ENDS[1]} AND mod(i, 4) = 0"),
            ):
                conn.execute(_prediction_insert(which=which, at=at, where=where, lo=lo, hi=hi, flagged=flagged,
                                                class_ids=class_ids, class_names=class_names, n=len(classes)),
                             {"start": start, "now": now})
            log(f"predictions for images {hi:,}/{images:,}")
        timings["predictions_s"] = time.perf_counter() - began

        began = time.perf_counter()
        era_of = version.replace("i::float8", "im.id::float8")
        conn.execute(
            "INSERT INTO inspections_review (image_id, decision, label_id, reason, previous_label_id, reviewer_id,"
            " prediction_id, created_at)"
            f" SELECT im.id, 'label', im.label_id, '', NULL, {reviewer.pk}, p.id, im.created_at + interval '1 hour'"
            " FROM inspections_inspectionimage im JOIN inspections_prediction p"
            f" ON p.image_id = im.id AND p.model_version_id = {era_of} WHERE im.label_source = 'review'")
        # As the roll-up keeps them: minutes for the last three days, hours before.
        for resolution, step, first, count in (
            ("hour", "1 hour", "date_trunc('hour', %(start)s::timestamptz)", (DAYS - 3) * 24),
            ("minute", "1 minute", "date_trunc('minute', %(now)s::timestamptz - interval '3 days')", 3 * 1440),
        ):
            per = 60 if resolution == "hour" else 1
            conn.execute(
                "INSERT INTO inspections_lineminute (source, resolution, minute, model_version_id, seen, kept, flagged,"
                " per_class, per_reason, kept_per_class, kept_per_reason, confidence_histogram, latency_ms_sum,"
                " latency_ms_max)"
                f" SELECT s, '{resolution}', {first} + m * interval '{step}', {v3}, {per} * 90000, {per} * 3000,"
                f" {per} * 2700, jsonb_build_object('crazing', {per} * 20000, 'inclusion', {per} * 30000,"
                f" 'patches', {per} * 40000), jsonb_build_object('low_confidence', {per} * 1500, 'foreign', {per} * 1200),"
                f" jsonb_build_object('crazing', {per} * 1000), jsonb_build_object('low_confidence', {per} * 1500),"
                f" '[0,0,0,10,50,200,500,2000,10000,77240]', {per} * 90000 * 12.5, 80"
                f" FROM unnest(ARRAY[{','.join(repr(s) for s in SOURCES)}]) s, generate_series(0, {count - 1}) m",
                {"start": start, "now": now})
        timings["reviews_and_line_minutes_s"] = time.perf_counter() - began

        on_images = [sql for sql in dropped if sql.startswith("ALTER TABLE inspections_inspectionimage ")
                     or " ON public.inspections_inspectionimage " in sql]
        began = time.perf_counter()
        for statement in dropped:
            if statement not in on_images:
                conn.execute(statement)
        timings["indexes_s"] = time.perf_counter() - began
        # The latest prediction's facts, by migration 0021's statements, before the image table's own
        # indexes are back (the fill rewrites every image row); VACUUM FULL gives the table back its
        # loaded size, as if the rows had been written with the facts.
        began = time.perf_counter()
        latest_prediction_fill(conn, images)
        timings["latest_prediction_fill_s"] = time.perf_counter() - began
        conn.execute("SET session_replication_role = origin")
        began = time.perf_counter()
        conn.execute("VACUUM FULL inspections_inspectionimage")
        timings["vacuum_full_images_s"] = time.perf_counter() - began
        began = time.perf_counter()
        for statement in on_images:
            conn.execute(statement)
        timings["image_indexes_s"] = time.perf_counter() - began
        conn.execute("DROP TABLE bench_pool")
        for table in ("inspections_inspectionimage", "inspections_prediction", "inspections_review"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        began = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - began
    return {"images": images, "predictions": _count("inspections_prediction"), "timings": timings,
            "versions": {"v1": v1, "v2": v2, "v3_active": v3}, "start": start.isoformat(), "now": now.isoformat()}


def latest_prediction_fill(conn, images: int) -> None:
    """The latest prediction's facts on each image, by migration 0021's own statements and batches
    (prediction_image_latest, which they walk, is back by now)."""
    import importlib

    migration = importlib.import_module("inspections.migrations.0021_latest_prediction_on_image")
    for low in range(1, images + 1, migration.BATCH):
        conn.execute(migration.FILL_SQL, [low, low + migration.BATCH])
        conn.execute(migration.SUSPECT_SQL, [low, low + migration.BATCH])
        if (low - 1) % 1_000_000 == 0:
            log(f"latest prediction on images {low:,}/{images:,}")


def _prediction_insert(*, which: str, at: str, where: str, lo: int, hi: int, flagged: str, class_ids: str,
                       class_names: str, n: int) -> str:
    top = f"(1 + floor({_u('i', 7)} * {n})::int)"
    confidence = f"CASE WHEN {flagged} THEN 0.35 + 0.35 * {_u('i', 8)} ELSE 0.85 + 0.149 * {_u('i', 8)} END"
    margin = f"CASE WHEN {flagged} THEN 0.3 * {_u('i', 9)} ELSE 0.7 + 0.29 * {_u('i', 9)} END"
    reasons = (f"CASE WHEN NOT {flagged} THEN '[]' WHEN {_u('i', 2)} < 0.5 THEN '[\"low_confidence\"]'"
               f" WHEN {_u('i', 2)} < 0.8 THEN '[\"foreign\"]' WHEN {_u('i', 2)} < 0.9 THEN '[\"blank_frame\"]'"
               " ELSE '[\"foreign\", \"low_confidence\"]' END::jsonb")
    probabilities = (f"(SELECT jsonb_object_agg(name, round((CASE WHEN k = top THEN c ELSE (1 - c) / {n - 1} END)::numeric, 6))"
                     f" FROM unnest({class_names}) WITH ORDINALITY AS names(name, k))")
    return (
        "INSERT INTO inspections_prediction (image_id, model_version_id, label_id, confidence, probabilities,"
        " needs_review, margin, ood_score, review_reasons, latency_ms, boxes, embedding, created_at)"
        f" SELECT i, {which}, ({class_ids})[top], c, {probabilities}, {flagged}, {margin},"
        f" CASE WHEN {flagged} THEN 1.5 ELSE 0.4 END * {_u('i', 10)}, {reasons}, 8 + 20 * {_u('i', 11)}, '[]',"
        f" pool.e, {at}"
        f" FROM (SELECT i, {top} AS top, {confidence} AS c FROM generate_series({lo}, {hi}) i) s"
        f" JOIN bench_pool pool ON pool.k = mod(i, {POOL}) WHERE {where} ORDER BY i"
    )


def _drop_secondary_indexes(conn) -> list[str]:
    """Drop every index but the primary keys of the loaded tables; returns the statements that
    build them again (unique constraints as constraints)."""
    rebuild: list[str] = []
    names = ", ".join(f"'{t}'" for t in TABLES)
    constraints = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        f" WHERE c.contype = 'u' AND c.conrelid::regclass::text IN ({names})").fetchall()
    for table, name, definition in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        f" WHERE i.indrelid::regclass::text IN ({names}) AND NOT i.indisprimary").fetchall()
    for name, definition in indexes:
        conn.execute(f"DROP INDEX {name}")
        rebuild.append(definition)
    return rebuild


def _count(table: str) -> int:
    with bench_connection() as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- sizes ----------------------------------------------------------------------------------

def table_sizes() -> dict:
    out = {}
    with bench_connection() as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT reltuples::bigint FROM pg_class WHERE oid = '{table}'::regclass").fetchone()[0]
            total, heap, toast, indexes = conn.execute(
                f"SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}'),"
                f" coalesce(pg_total_relation_size(reltoastrelid), 0), pg_indexes_size('{table}')"
                f" FROM pg_class WHERE oid = '{table}'::regclass").fetchone()
            per_index = dict(conn.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
                f" WHERE indrelid = '{table}'::regclass ORDER BY 2 DESC").fetchall())
            out[table] = {"rows": rows, "total_bytes": total, "heap_bytes": heap, "toast_bytes": toast,
                          "index_bytes": indexes, "bytes_per_row": total / rows if rows else None,
                          "indexes": per_index}
    return out


# --- the reads --------------------------------------------------------------------------------

class Explainer:
    """An execute wrapper: EXPLAIN (ANALYZE, BUFFERS) of each SELECT before it is sent."""

    def __init__(self, timeout_s: int) -> None:
        self.timeout_s = timeout_s
        self.statements: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            return execute(sql, params, many, context)
        cursor = context["cursor"].cursor  # the driver's cursor: not through this wrapper again
        entry = {"sql": sql if params is None else cursor.mogrify(sql, params)}
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            entry.update(_plan_facts(cursor.fetchone()[0][0]))
        except psycopg.errors.QueryCanceled:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            entry.update(_plan_facts(cursor.fetchone()[0][0]), timed_out_s=self.timeout_s)
            self.statements.append(entry)
            raise
        self.statements.append(entry)
        return execute(sql, params, many, context)


def _plan_facts(plan: dict) -> dict:
    root = plan["Plan"]
    facts = {"plan": plan, "shape": _shape(root), "estimated_rows": root.get("Plan Rows"),
             "estimated_cost": root.get("Total Cost")}
    if "Execution Time" in plan:
        facts.update(ms=round(plan["Execution Time"], 2), planning_ms=round(plan.get("Planning Time", 0), 2),
                     rows=root.get("Actual Rows"), shared_hit=root.get("Shared Hit Blocks"),
                     shared_read=root.get("Shared Read Blocks"))
    return facts


def _shape(node: dict, depth: int = 0) -> list[str]:
    """One line per plan node: type, relation, index, loops (what a reader scans the plan for)."""
    text = node["Node Type"]
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        text += f" on {node['Relation Name']}"
    if node.get("Subplan Name"):
        text = f"{node['Subplan Name']}: {text}"
    if "Actual Loops" in node:
        text += f" (rows {node.get('Actual Rows')}, loops {node['Actual Loops']})"
    lines = ["  " * depth + text]
    for child in node.get("Plans", []):
        lines.extend(_shape(child, depth + 1))
    return lines


def scenarios(*, versions: dict, now: datetime) -> list[tuple[str, str, object]]:
    """(name, what the application does, a callable doing it with the real code)."""
    from django.contrib import admin
    from django.core.paginator import Paginator
    from django.db.models import Count, Max

    from inspections.line.services import drift
    from inspections.line.services.stats import line_stats
    from inspections.models import InspectionImage, ModelVersion, Prediction
    from inspections.review import selectors as review_selectors
    from inspections.review.services import similarity

    active = ModelVersion.objects.get(pk=versions["v3_active"])
    admin_order = admin.site._registry[Prediction].ordering or Prediction._meta.ordering
    queue = {"reviewed": "unreviewed"}
    waiting = InspectionImage.objects.filter(label_source="").order_by("-id").values_list("id", flat=True).first()
    queued = review_selectors.image_list_for_review(filters=queue).values_list("id", flat=True)
    head = queued[10]  # near the top: the position is counted exactly
    tail = queued.reverse()[0]  # the last image of the queue: the position is past the window

    def page(queryset):
        return list(Paginator(queryset, 50).get_page(1).object_list)

    def queue_page(filters):  # as inspections.review.pages.review.review_queue reads it
        paginator = Paginator(review_selectors.image_list_for_review(filters=filters), 50)
        paginator.count = review_selectors.review_queue_counts(filters=filters)["left"]
        return list(paginator.get_page(1).object_list)

    return [
        ("queue_page", "review queue page 1 (/review/, 50 a page: the counts, which also size the pager, + page)",
         lambda: queue_page(queue)),
        ("queue_counts", "review queue counts (/review/counts/, the dashboard's backlog)",
         lambda: review_selectors.review_queue_counts(filters=queue)),
        ("queue_reason_foreign", "review queue filtered by reason foreign",
         lambda: page(review_selectors.image_list_for_review(filters={**queue, "review_reason": "foreign"}))),
        ("queue_source", "review queue filtered by source line2-top",
         lambda: page(review_selectors.image_list_for_review(filters={**queue, "source": "line2-top"}))),
        ("queue_predicted_label", "review queue filtered by predicted class crazing",
         lambda: page(review_selectors.image_list_for_review(filters={**queue, "predicted_label": "crazing"}))),
        ("queue_neighbours", "previous/next of one image in the queue (review page)",
         lambda: review_selectors.review_queue_neighbours(image_id=waiting, filters=queue)),
        ("queue_neighbours_head", "previous/next and position of the 11th image of the queue",
         lambda: review_selectors.review_queue_neighbours(image_id=head, filters=queue)),
        ("queue_neighbours_tail", "previous/next of the queue's last image",
         lambda: review_selectors.review_queue_neighbours(image_id=tail, filters=queue)),
        ("queue_needs_review", "review queue filtered by needs review (the flagged images)",
         lambda: page(review_selectors.image_list_for_review(filters={**queue, "needs_review": True}))),
        ("images_predicted_label", "GET images/?predicted_label=crazing page 1",
         lambda: page(review_selectors.image_list(filters={"predicted_label": "crazing"}))),
        ("images_model_version", "GET images/?model_version=v2 page 1 (an older version: images of days 10-22)",
         lambda: page(review_selectors.image_list(filters={"model_version": versions["v2"]}))),
        ("images_page", "GET images/ page 1 (newest first, latest prediction prefetched)",
         lambda: page(review_selectors.image_list())),
        ("images_needs_review", "GET images/?needs_review=true page 1",
         lambda: page(review_selectors.image_list(filters={"needs_review": True}))),
        ("images_review_reason", "GET images/?review_reason=foreign page 1",
         lambda: page(review_selectors.image_list(filters={"review_reason": "foreign"}))),
        ("image_predictions", "GET images/{id}/ (the image, its predictions, its reviews)",
         lambda: review_selectors.image_latest_prediction(image=review_selectors.image_detail(image_id=waiting))),
        ("prediction_trend", "dashboard prediction trend (30 days)",
         lambda: review_selectors.prediction_trend(days=30, now=now)),
        ("drift_report", "drift report (14 days, per day and source; dashboard and drift/)",
         lambda: drift.drift_report(days=14, now=now)),
        ("drift_window", "drift alert check: per-source figures over the last 24 h (periodic job)",
         lambda: drift.source_window_figures(version=active, since=now - timedelta(hours=24))),
        ("similar_state", "look-alike search: is the index current (count and last id of the version's descriptors)",
         lambda: similarity._embedded(active).aggregate(count=Count("id"), last=Max("id"))),
        ("similar_own", "look-alike search: the image's own descriptor",
         lambda: similarity._embedded(active).filter(image_id=waiting).values_list("embedding", flat=True).first()),
        ("similar_append", "look-alike search: descriptors newer than the index (append of 1,000)",
         lambda: list(similarity._embedded(active).filter(
             id__gt=similarity._embedded(active).order_by("-id").values_list("id", flat=True)[1000:1001].get())
             .order_by("id").values_list("id", "image_id", "embedding"))),
        ("novelty_waiting", "novelty groups: the active version's waiting foreign images",
         lambda: list(similarity._waiting_foreign(active))),
        ("admin_predictions", "admin: the prediction list (newest 100 and the count)",
         lambda: page(Prediction.objects.select_related("image", "model_version", "label").order_by(*admin_order))),
        ("line_stats_hour", "GET line-stats/ (last hour, every source)",
         lambda: line_stats(since=now - timedelta(hours=1))),
        ("line_stats_day_source", "GET line-stats/?source=line1-top&since=24 h ago",
         lambda: line_stats(source="line1-top", since=now - timedelta(hours=24))),
    ]


def run_reads(*, versions: dict, now: datetime, timeout_s: int, only: list[str] | None) -> list[dict]:
    import django

    django.setup()
    from django.db import connection

    out = []
    for name, what, call in scenarios(versions=versions, now=now):
        if only and name not in only:
            continue
        explainer = Explainer(timeout_s)
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = '{timeout_s}s'")
        began = time.perf_counter()
        error = None
        with connection.execute_wrapper(explainer):
            try:
                call()
            except Exception as exc:  # a timeout: recorded with the plan's estimate
                error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        total = time.perf_counter() - began
        statements = [s for s in explainer.statements if "inspections_" in s["sql"]]
        out.append({"name": name, "what": what, "statements": statements, "error": error,
                    "db_ms": round(sum(s.get("ms", 0) for s in statements), 1), "wall_s_with_explain": round(total, 2)})
        log(f"{name}: {len(statements)} statements, {out[-1]['db_ms']} ms in the database"
            + (f" ({error})" if error else ""))
    return out


# --- report -------------------------------------------------------------------------------------

def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"


def _slowest(read: dict) -> dict | None:
    return max(read["statements"], key=lambda s: s.get("ms", float("inf")), default=None)


def _ms(read: dict | None) -> str:
    if read is None:
        return ""
    slowest = _slowest(read)
    if slowest is not None and "timed_out_s" in slowest:
        return f"> {slowest['timed_out_s'] * 1000:,}"
    return f"{read['db_ms']:,.1f}"


def markdown(results: dict) -> str:
    runs = results["runs"]
    labels = list(runs)
    lines = ["## Tables that grow with the line (`make bench-tables`)", ""]
    for label, run in runs.items():
        loaded = run["loaded"]
        lines.append(
            f"- **{label}**: `{run['command']}`, {run['when']}, {run['machine']}, `{run['uptime']}`; PostgreSQL "
            f"{run['postgres']} with its default settings (shared_buffers {run['shared_buffers']}, work_mem "
            f"{run['work_mem']}); {loaded['predictions']:,} predictions, {loaded['images']:,} images; seconds: "
            + ", ".join(f"{k} {v:.0f}" for k, v in loaded["timings"].items()) + ".")
    last = runs[labels[-1]]
    lines += ["", f"Sizes ({labels[-1]}; `pg_total_relation_size`, bytes per row = total / rows):", "",
              "| table | rows | total | heap | indexes | bytes/row |", "|---|---:|---:|---:|---:|---:|"]
    for table, size in last["sizes"].items():
        if size["rows"]:
            lines.append(f"| {table} | {size['rows']:,} | {_mib(size['total_bytes'])} | {_mib(size['heap_bytes'])} | "
                         f"{_mib(size['index_bytes'])} | {size['bytes_per_row']:,.0f} |")
    for label in labels:
        lines += ["", f"Indexes of `inspections_prediction` ({label}): " + ", ".join(
            f"{name.replace('inspections_prediction_', '')} {_mib(size)}"
            for name, size in runs[label]["sizes"]["inspections_prediction"]["indexes"].items()) + "."]
    image_indexes = last["sizes"]["inspections_inspectionimage"]["indexes"]
    lines += ["", f"Indexes of `inspections_inspectionimage` ({labels[-1]}): " + ", ".join(
        f"{name.replace('inspections_inspectionimage_', '')} {_mib(size)}" for name, size in image_indexes.items()) + "."]
    lines += ["", "Reads, as the application issues them (ms in the database: the sum of `EXPLAIN ANALYZE`'s execution "
              "time over the read's statements); the plan is the slowest statement's, from the last run that made the "
              "read:", "",
              "| read | " + " | ".join(f"ms, {label}" for label in labels) + " | plan (slowest statement, last run) |",
              "|---|" + "---:|" * len(labels) + "---|"]
    # Every read any run made, in the order of the run that made the most; the plan from the last run that made it.
    fullest = max(runs.values(), key=lambda run: len(run["reads"]))["reads"]
    names = [r["name"] for r in fullest] + [r["name"] for run in runs.values() for r in run["reads"]
                                            if r["name"] not in {f["name"] for f in fullest}]
    for name in dict.fromkeys(names):
        found = {label: next((r for r in runs[label]["reads"] if r["name"] == name), None) for label in labels}
        read = next(r for r in reversed(list(found.values())) if r is not None)
        cells = [_ms(found[label]) for label in labels]
        slowest = _slowest(read)
        shape = " / ".join(line.strip() for line in slowest["shape"][:5]) if slowest else ""
        lines.append(f"| {read['what']} | " + " | ".join(cells) + f" | {shape} |")
    lines += ["", f"Plans of the review queue's reads ({labels[-1]}; every statement, `EXPLAIN (ANALYZE, BUFFERS)`: "
              "node, rows, loops; ms and shared blocks hit/read):", ""]
    for read in last["reads"]:
        if not read["name"].startswith("queue_"):
            continue
        lines += [f"- {read['what']} ({_ms(read)} ms):", "", "  ```"]
        for statement in read["statements"]:
            lines.append(f"  -- {statement.get('ms', '?')} ms, blocks {statement.get('shared_hit')}/"
                         f"{statement.get('shared_read')}")
            lines += ["  " + line for line in statement["shape"][:8]]
        lines += ["  ```", ""]
    return "\n".join(lines + ["", NOTES.strip(), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=int(os.environ.get("STEELQC_BENCH_TABLES_ROWS", 10_000_000)))
    parser.add_argument("--label", default=None, help="key of this run in tables.json (default: the row count)")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database, only migrate and read")
    parser.add_argument("--only", nargs="*", help="run only these reads")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds one statement may take")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true", help="only write the docs section from the results file")
    args = parser.parse_args()
    if args.docs_only:
        from benchmarks.stack import replace_doc_section

        log(f"wrote {replace_doc_section('bench-tables', markdown(json.loads(RESULTS.read_text())))}")
        return
    now = datetime.now(dt_timezone.utc).replace(microsecond=0)
    import django
    from django.core.management import call_command

    if not args.reuse:
        with admin_connection() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        django.setup()
        call_command("migrate", verbosity=0)
        log(f"loading {args.predictions:,} predictions into {BENCH_DB}")
        loaded = load(predictions=args.predictions, now=now)
        with bench_connection() as conn:
            conn.execute("CREATE TABLE bench_loaded (facts jsonb)")
            conn.execute("INSERT INTO bench_loaded VALUES (%s)", [json.dumps(loaded)])
    else:
        django.setup()
        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrate_s = time.perf_counter() - began
        log(f"migrated in {migrate_s:.1f} s")
        with bench_connection() as conn:
            # What autovacuum does after a migration that rewrote most image rows (its threshold is
            # 20 % of a table): index-only scans need the visibility map back.
            began = time.perf_counter()
            conn.execute("VACUUM ANALYZE inspections_inspectionimage")
            vacuum_s = time.perf_counter() - began
            conn.execute("ANALYZE")
            loaded = conn.execute("SELECT facts FROM bench_loaded").fetchone()[0]
        loaded["timings"] = {**loaded["timings"], "migrate_on_loaded_s": migrate_s, "vacuum_images_after_s": vacuum_s}
    now = datetime.fromisoformat(loaded["now"])
    log(f"loaded: {loaded['predictions']:,} predictions, {loaded['images']:,} images; reading")
    reads = run_reads(versions=loaded["versions"], now=now, timeout_s=args.timeout, only=args.only)
    with bench_connection() as conn:
        settings_now = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem')"))
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    run = {
        "command": " ".join(["benchmarks/bench_tables.py", *sys.argv[1:]]),
        "when": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "uptime": os.popen("uptime").read().strip(),  # nosec B605 B607 - a fixed command, no input
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "postgres": postgres,
        "shared_buffers": _blocks(settings_now["shared_buffers"]),
        "work_mem": settings_now["work_mem"],
        "migrations": _migrations(),
        "loaded": loaded,
        "sizes": table_sizes(),
        "reads": reads,
    }
    for read in reads:  # the full plan of the slowest statement only: the rest keep their shape and figures
        slowest = _slowest(read)
        for statement in read["statements"]:
            if statement is not slowest:
                statement.pop("plan", None)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    results["runs"][args.label or f"{loaded['predictions']:,} predictions"] = run
    RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(f"wrote {RESULTS}")
    if not args.no_docs:
        from benchmarks.stack import replace_doc_section

        log(f"wrote {replace_doc_section('bench-tables', markdown(results))}")


def _blocks(setting: str) -> str:
    if setting.endswith("8kB"):
        return f"{int(setting[:-3]) * 8 // 1024} MB"
    return setting


def _migrations() -> list[str]:
    from django.db.migrations.recorder import MigrationRecorder

    return list(MigrationRecorder.Migration.objects.filter(app="inspections").order_by("-id")
                .values_list("name", flat=True)[:3])


if __name__ == "__main__":
    main()
