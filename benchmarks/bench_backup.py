"""How long backup_installation, restore_installation --verify and restore_installation take, and
how big the backup is, for an installation of N stored images on the real PostgreSQL and local
files; each against a plain ``cp -r`` of the same media folder in the same run (the floor any
file-level backup pays).

The commands run as an operator runs them (``manage.py`` in a new process, so each time includes
Django's start-up, measured on its own as ``manage.py restore_installation --help``). Two scratch databases are created
and dropped again.

Writes benchmarks/results/backup.json.

    .venv/bin/python benchmarks/bench_backup.py [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "backup.json"
SERVER = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
DATABASES = ("steelqc_bench_backup_source", "steelqc_bench_backup_target")

FILL = """
import sys, django
django.setup()
import inspections.queueing
inspections.queueing._send = lambda *args, **kwargs: None  # no broker: only the stored rows and files matter
from inspections.catalog.services.images import image_upload
from tests.factories import image_bytes
for i in range(int(sys.argv[1])):
    image_upload(content=image_bytes(seed=i, size=(200, 200), fmt="BMP"), filename=f"{i}.bmp", uploaded_by=None)
"""


def environment(database: str, media: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.local", "MEDIA_ROOT": str(media),
            "DATABASE_URL": f"postgres://{SERVER['user']}@{SERVER['host']}:{SERVER['port']}/{database}",
            "STEELQC_CACHE_DIR": str(cache), "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12"}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return elapsed


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def databases(action: str) -> None:
    with psycopg.connect(**SERVER, autocommit=True) as admin:
        for name in DATABASES:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if action == "create":
                admin.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    python = sys.executable
    load_before = os.getloadavg()[0]
    databases("create")
    with tempfile.TemporaryDirectory(prefix="steelqc-bench-backup-") as scratch:
        scratch = Path(scratch)
        source = environment(DATABASES[0], scratch / "media", scratch / "cache")
        target = environment(DATABASES[1], scratch / "restored-media", scratch / "cache")
        try:
            timed([python, "manage.py", "migrate", "-v0"], source)
            timed([python, "-c", FILL, str(args.images)], source)
            startup = timed([python, "manage.py", "restore_installation", "--help"], source)
            copy = timed(["cp", "-r", str(scratch / "media"), str(scratch / "plain-copy")], source)
            backup = timed([python, "manage.py", "backup_installation", str(scratch / "backup")], source)
            verify = timed([python, "manage.py", "restore_installation", "--verify", str(scratch / "backup")], source)
            restore = timed([python, "manage.py", "restore_installation", str(scratch / "backup")], target)
            media_bytes = folder_bytes(scratch / "media")
            backup_bytes = folder_bytes(scratch / "backup")
            dump_bytes = (scratch / "backup" / "database.dump").stat().st_size
            restored_bytes = folder_bytes(scratch / "restored-media")
        finally:
            databases("drop")
            shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "when": datetime.now().isoformat(timespec="minutes"), "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "load_average_before": round(load_before, 1), "load_average_after": round(os.getloadavg()[0], 1),
        "images": args.images, "media_bytes": media_bytes, "backup_bytes": backup_bytes, "dump_bytes": dump_bytes,
        "dump_bytes_per_image": round(dump_bytes / args.images), "restored_media_bytes": restored_bytes,
        "seconds": {"django_startup": round(startup, 2), "plain_copy": round(copy, 2), "backup": round(backup, 2),
                    "verify": round(verify, 2), "restore": round(restore, 2)},
        "ratio_to_plain_copy_after_startup": {
            name: round((value - startup) / copy, 1) for name, value in
            (("backup", backup), ("verify", verify), ("restore", restore))
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
