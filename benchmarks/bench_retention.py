"""The retention sweep on a large image table (``make bench-retention``).

Creates a throw-away PostgreSQL database (``STEELQC_BENCH_RETENTION_DB``, default
``steelqc_bench_h2``), migrates it and fills it in the database itself (``INSERT ... SELECT`` over
``generate_series``) with ``--images`` image rows (default 1,000,000) over 120 days from four
sources, one prediction each; 4 % flagged for review (half of those reviewed, with a label and a
``Review`` row), 0.5 % labelled by an import; no stored files (deleting a missing local file is a
no-op, so the figures are the database's part). The default policy keeps 90 days, so about a
quarter of the rows are expired.

Then, through the real service code: ``EXPLAIN (ANALYZE, BUFFERS)`` of the sweep's batch query for
one source's own policy and for the default policy; the time of the page's next-run preview
(``retention_next_run``), of the dry run (``retention_report``: every expired row read once), and
of a real run deleting ``--delete`` images (rows, predictions, pending file rows) in batches of
500. Writes ``benchmarks/results/retention.json`` and the ``bench-retention`` section of
docs/benchmarks.md (``--no-docs`` to skip).

    .venv/bin/python benchmarks/bench_retention.py [--images 1000000] [--delete 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("STEELQC_BENCH_RETENTION_DB", "steelqc_bench_h2")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
os.environ["DATABASE_CONN_MAX_AGE"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steelqc.settings.local")
os.environ.setdefault("DEBUG", "false")
os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="bench-retention-media-")
os.environ["STEELQC_RETENTION_KEEP_DAYS"] = "90"

import psycopg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "retention.json"
DOCS = ROOT / "docs" / "benchmarks.md"
DAYS = 120
SOURCES = ("line1-top", "line1-bottom", "line2-top", "line2-bottom")


def log(message: str) -> None:
    print(f"[bench-retention {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _admin():
    return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)


def _bench():
    return psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}", autocommit=True)


def _u(k: int) -> str:
    return f"((hashint8extended(i, {k}) & 1048575)::float8 / 1048576)"


def create_and_migrate() -> float:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    began = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True)
    return time.perf_counter() - began


def load(*, images: int, now: datetime) -> float:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from inspections.models import DefectClass, ModelVersion

    reviewer = get_user_model().objects.create_user("bench-reviewer")
    version = ModelVersion.objects.create(number=1, status="active", artifact_path="models/v1",
                                          backbone="efficientnet_lite0", classes=[])
    crazing = DefectClass.objects.get(name="crazing").pk
    start = now - timedelta(days=DAYS)
    created = f"(%(start)s::timestamptz + (i::float8 / {images}) * {DAYS} * interval '1 day')"
    flagged, reviewed, imported = f"({_u(1)} < 0.04)", f"({_u(1)} < 0.02)", f"({_u(2)} < 0.005)"
    labelled = f"({reviewed} OR {imported})"
    source = "CASE " + " ".join(f"WHEN {_u(3)} < {(n + 1) / len(SOURCES):.3f} THEN '{name}'"
                                for n, name in enumerate(SOURCES[:-1])) + f" ELSE '{SOURCES[-1]}' END"
    began = time.perf_counter()
    with _bench() as conn:
        conn.execute(
            "INSERT INTO inspections_inspectionimage (id, file, sha256, width, height, format, mode, size_bytes,"
            " original_name, source, external_id, created_at, status, split, label_id, label_source, label_version,"
            " excluded, exclusion_reason, boxes_version)"
            " SELECT i, 'images/' || left(h, 2) || '/' || h || '.png', h, 200, 200, 'PNG', 'L', 38000 + mod(i, 5000),"
            f" '', {source}, '', {created}, 'predicted', 'unassigned',"
            f" CASE WHEN {labelled} THEN {crazing} END,"
            f" CASE WHEN {reviewed} THEN 'review' WHEN {imported} THEN 'import' ELSE '' END,"
            f" CASE WHEN {labelled} THEN 1 ELSE 0 END, false, '', 0"
            f" FROM (SELECT i, encode(sha256(int8send(i)), 'hex') AS h FROM generate_series(1, {images}) i) g",
            {"start": start})
        conn.execute(
            "INSERT INTO inspections_prediction (image_id, model_version_id, label_id, confidence, probabilities,"
            " needs_review, margin, ood_score, review_reasons, latency_ms, boxes, created_at)"
            f" SELECT i, {version.pk}, {crazing}, CASE WHEN {flagged} THEN 0.4 ELSE 0.97 END, '{{}}'::jsonb,"
            f" {flagged}, 0.5, 0.1, CASE WHEN {flagged} THEN '[\"low_confidence\"]'::jsonb ELSE '[]'::jsonb END,"
            f" 10, '[]'::jsonb, {created} FROM generate_series(1, {images}) i",
            {"start": start})
        conn.execute(
            "INSERT INTO inspections_review (image_id, decision, label_id, reason, reviewer_id, created_at)"
            f" SELECT i, 'label', {crazing}, '', {reviewer.pk}, {created} FROM generate_series(1, {images}) i"
            f" WHERE {reviewed}", {"start": start})
        for table in ("inspectionimage", "prediction", "review"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('inspections_{table}', 'id'),"
                         f" (SELECT max(id) FROM inspections_{table}))")
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def _explain(queryset) -> dict:
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        text = [row[0] for row in cursor.fetchall()]
    root = (plan[0] if isinstance(plan, list) else json.loads(plan)[0])
    scans = []

    def walk(node):
        if "Index" in node["Node Type"] or "Seq Scan" in node["Node Type"]:
            scans.append(f"{node['Node Type']} {node.get('Index Name') or node.get('Relation Name')}")
        for child in node.get("Plans", []):
            walk(child)

    walk(root["Plan"])
    return {"ms": round(root["Execution Time"], 2), "rows": root["Plan"]["Actual Rows"], "scans": scans,
            "plan": text}


def measure(*, delete: int, now: datetime) -> dict:
    from django.conf import settings
    from django.db import connection

    from inspections.line.pages.retention import NEXT_RUN_PREVIEW_LIMIT
    from inspections.line.services.retention_sweep import (
        Scope,
        _unneeded,
        expired_candidates,
        retention_next_run,
        retention_report,
        retention_sweep,
    )
    from inspections.models import InspectionImage, PendingFileDeletion, Prediction

    results: dict = {"keep_days": settings.STEELQC_RETENTION_KEEP_DAYS}
    batch = settings.STEELQC_RETENTION_SWEEP_BATCH
    own = Scope(source=SOURCES[0], keep_days=90)
    default = Scope(source="", keep_days=90, others=(SOURCES[0],))
    # What one batch of the sweep sends: the candidates' index walk, then the needs test by id.
    results["explain_own_policy"] = _explain(expired_candidates(scope=own, now=now).values_list("id", "created_at")[:batch])
    results["explain_default_policy"] = _explain(
        expired_candidates(scope=default, now=now).values_list("id", "created_at")[:batch])
    ids = list(expired_candidates(scope=default, now=now).values_list("id", flat=True)[:batch])
    results["explain_needs_by_id"] = _explain(_unneeded(ids).values("id", "source", "file", "sha256", "size_bytes"))
    began = time.perf_counter()
    preview = retention_next_run(now=now, limit=NEXT_RUN_PREVIEW_LIMIT)
    results["next_run_preview"] = {"s": round(time.perf_counter() - began, 2), "images": preview["images"],
                                   "more_left": preview["more_left"]}
    began = time.perf_counter()
    report = retention_report(now=now)
    results["dry_run_report"] = {
        "s": round(time.perf_counter() - began, 2),
        "per_source": {name: entry.as_dict() for name, entry in report.items()},
        "expired_deletable": sum(entry.deleted for entry in report.values()),
        "expired_kept": sum(sum(entry.kept.values()) for entry in report.values()),
    }
    before = (InspectionImage.objects.count(), Prediction.objects.count())
    began = time.perf_counter()
    run = retention_sweep(limit=delete, now=now)
    seconds = time.perf_counter() - began
    after = (InspectionImage.objects.count(), Prediction.objects.count())
    results["sweep"] = {"limit": delete, "batch": batch, "s": round(seconds, 2),
                        "images_deleted": run.images_deleted, "images_per_s": round(run.images_deleted / seconds),
                        "rows_before": before, "rows_after": after, "bytes_freed": run.bytes_freed,
                        "pending_file_rows_left": PendingFileDeletion.objects.count(), "more_left": run.more_left}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('image_source_created_at'))")
        results["index_size"] = cursor.fetchone()[0]
    return results


def write_docs(entry: dict) -> None:
    sweep, dry = entry["results"]["sweep"], entry["results"]["dry_run_report"]
    own, default = entry["results"]["explain_own_policy"], entry["results"]["explain_default_policy"]
    needs = entry["results"]["explain_needs_by_id"]
    lines = [
        "<!-- bench-retention:start -->",
        "### bench-retention: the retention sweep on a large image table",
        "",
        f"`{entry['command']}` at commit `{entry['commit']}`, {entry['when']}; machine: {entry['machine']}; "
        f"load before: `{entry['uptime_before']}`.",
        "",
        f"{entry['images']:,} image rows over {DAYS} days from {len(SOURCES)} sources, one prediction each, 4 % "
        f"flagged (half reviewed), 0.5 % import-labelled; default policy keep_days 90. Load "
        f"{entry['load_s']:.0f} s in the database. Index `image_source_created_at`: {entry['results']['index_size']}.",
        "",
        "| what | time | rows | plan (scans) |",
        "|---|---|---|---|",
        f"| a batch's candidates, a source's own policy (LIMIT {sweep['batch']}) | {own['ms']} ms | {own['rows']} | "
        f"{'; '.join(dict.fromkeys(own['scans']))} |",
        f"| a batch's candidates, the default policy (other sources) | {default['ms']} ms | {default['rows']} | "
        f"{'; '.join(dict.fromkeys(default['scans']))} |",
        f"| a batch's needs test by id (reviews, boxes, snapshots, flagged predictions) | {needs['ms']} ms | "
        f"{needs['rows']} | {'; '.join(dict.fromkeys(needs['scans']))} |",
        f"| next-run preview (Retention page, up to 5,000) | {entry['results']['next_run_preview']['s']} s | "
        f"{entry['results']['next_run_preview']['images']} | the same batches, without deleting |",
        f"| dry run (`apply_retention --dry-run`: every expired row once) | {dry['s']} s | "
        f"{dry['expired_deletable'] + dry['expired_kept']:,} expired | {dry['expired_deletable']:,} would go, "
        f"{dry['expired_kept']:,} kept (labelled, reviewed, queued) |",
        f"| real run, {sweep['limit']:,} images in batches of {sweep['batch']} | {sweep['s']} s | "
        f"{sweep['images_deleted']:,} | **{sweep['images_per_s']:,} images/s** (rows, predictions, pending-file rows) |",
        "",
        "No stored files in this run: deleting them adds one storage call per image after each commit (local "
        "unlink, or one S3 DELETE). Plans in `benchmarks/results/retention.json`.",
        "<!-- bench-retention:end -->",
    ]
    text = DOCS.read_text()
    section = "\n".join(lines)
    if "<!-- bench-retention:start -->" in text:
        head, rest = text.split("<!-- bench-retention:start -->", 1)
        text = head + section + rest.split("<!-- bench-retention:end -->", 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--delete", type=int, default=20_000)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    now = datetime.now(dt_timezone.utc)
    log(f"creating and migrating {BENCH_DB}")
    migrate_s = create_and_migrate()
    log(f"loading {args.images:,} images")
    load_s = load(images=args.images, now=now)
    log(f"loaded in {load_s:.0f} s; measuring")
    results = measure(delete=args.delete, now=now)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    entry = {"command": " ".join(["benchmarks/bench_retention.py", *sys.argv[1:]]), "commit": commit,
             "when": now.strftime("%Y-%m-%d %H:%M UTC"), "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
             "uptime_before": uptime, "images": args.images, "migrate_s": round(migrate_s, 1),
             "load_s": round(load_s, 1), "results": results}
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[f"{args.images}"] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    if not args.no_docs:
        write_docs(entry)
    log(json.dumps({k: v for k, v in results.items() if not k.startswith("explain")}, default=str))
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
