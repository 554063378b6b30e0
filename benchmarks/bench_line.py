"""Line benchmark: a simulated strip line streaming 200-px tiles to ``POST classify/`` for a fixed
time, on a fresh production-shaped stack (gunicorn.conf.py, line worker(s), PostgreSQL,
Redis on loopback), with the default retention policy (1 % sample, caps from settings).

The tiles are unique (no two byte-identical, as on a real line): the NEU images in their four
mirror variants, and a few percent of foreign ones, 200x200 crops of another line's images
(``cr7-det``). A separate client process runs several closed-loop clients (each sends its next
multi-file request when the last one was answered), so the rate is the highest the stack holds.

Reports tiles/s classified, the share kept and flagged, image rows, prediction rows and files
written per 1,000 tiles, bytes written per 1,000 tiles (database size and storage deltas), CPU-ms
per tile per tier (gunicorn, line worker, the benchmark database's PostgreSQL backends,
Redis) and the p50/p95 answer time, then sizes a 1,500 tiles/s line side on paper.

    make bench-line             # or: .venv/bin/python benchmarks/bench_line.py --help
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg
import redis

# Its own port, database and Redis DB by default, so it can run beside the other benchmarks.
os.environ.setdefault("STEELQC_BENCH_PORT", "8767")
os.environ.setdefault("STEELQC_BENCH_DB", "steelqc_bench_line")
os.environ.setdefault("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/10")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.bench_serve import ensure_model, percentile  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    BENCH_DB, BROKER, ROOT, Client, fresh_installation, log, replace_doc_section, start_web, start_worker, stop,
    wait_until_up,
)

MARK = "bench-line"
DATASETS = ROOT.parent / "shared" / "datasets"
SOURCE = "line-bench"
TILE = 200
TARGET_TILES_PER_S = 1500  # one side of a strip line
RESULTS = ROOT / "benchmarks" / "results" / "line.json"


# --- tiles ----------------------------------------------------------------------------------

def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_tiles(*, neu: Path, cr7: Path, count: int, foreign_share: float, seed: int) -> list[tuple[str, bytes, str]]:
    """``count`` unique PNG tiles, (name, bytes, kind), shuffled: NEU images and their mirror
    images, and ``foreign_share`` of them 200x200 crops of cr7-det images (grayscale)."""
    from PIL import Image, ImageOps

    rng = random.Random(seed)
    neu_files = sorted(neu.rglob("*.bmp"))
    cr7_files = sorted(cr7.rglob("*.jpg"))
    if not neu_files or not cr7_files:
        raise SystemExit(f"no tiles: {len(neu_files)} NEU images under {neu}, {len(cr7_files)} cr7-det under {cr7}")
    foreign = round(count * foreign_share)
    mirrors = [lambda im: im, ImageOps.mirror, ImageOps.flip, lambda im: ImageOps.flip(ImageOps.mirror(im))]
    tiles, seen = [], set()

    def add(name: str, content: bytes, kind: str) -> None:
        digest = hashlib.sha256(content).hexdigest()
        if digest not in seen:
            seen.add(digest)
            tiles.append((name, content, kind))

    order = [(variant, path) for variant in range(len(mirrors)) for path in rng.sample(neu_files, len(neu_files))]
    for variant, path in order:
        if len(tiles) >= count - foreign:
            break
        with Image.open(path) as image:
            add(f"{path.stem}-m{variant}.png", _png(mirrors[variant](image.convert("L"))), "neu")
    if len(tiles) < count - foreign:
        raise SystemExit(f"only {len(tiles)} unique NEU tiles; ask for fewer (--pool)")
    while len(tiles) < count:
        path = rng.choice(cr7_files)
        with Image.open(path) as image:
            gray = image.convert("L")
            x, y = rng.randrange(0, gray.width - TILE + 1), rng.randrange(0, gray.height - TILE + 1)
            add(f"{path.stem}-{x}-{y}.png", _png(gray.crop((x, y, x + TILE, y + TILE))), "foreign")
    rng.shuffle(tiles)
    return tiles


# --- the line client (its own process) ------------------------------------------------------

def line_client(token: str, tiles: list[tuple[str, bytes, str]], *, clients: int, files: int, seconds: float,
                timeout: float, out: Path) -> None:
    """Closed-loop clients sending ``files`` tiles per request for ``seconds``; writes what each
    request got to ``out`` (JSON lines)."""
    lock = threading.Lock()
    cursor = [0]
    records: list[dict] = []
    stop_at = time.monotonic() + seconds

    def take() -> list[tuple[str, bytes, str]]:
        with lock:
            start = cursor[0]
            cursor[0] += files
        return [tiles[i % len(tiles)] for i in range(start, start + files)]

    def run() -> None:
        client = Client(token)
        while time.monotonic() < stop_at:
            batch = take()
            body, content_type = multipart_body(files=[("file", name, content) for name, content, _ in batch],
                                                fields={"source": SOURCE})
            sent = time.monotonic()
            try:
                code, answer = client.request("POST", f"/api/v1/classify/?timeout={timeout:g}", body,
                                              {"Content-Type": content_type})
            except OSError as error:
                code, answer = 0, {"error": {"code": type(error).__name__}}
            record = {"sent": sent, "elapsed": time.monotonic() - sent, "code": code, "kinds": [k for _, _, k in batch]}
            if code == 200:
                record["results"] = [{"kept": r.get("kept"), "error": (r.get("error") or {}).get("code"),
                                      "reasons": (r.get("prediction") or {}).get("review_reasons")}
                                     for r in answer["results"]]
            else:
                record["error"] = ((answer or {}).get("error") or {}).get("code")
            with lock:
                records.append(record)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.write_text("\n".join(json.dumps(r) for r in records) + "\n")


# --- what the stack wrote and spent ---------------------------------------------------------

def db_facts() -> dict:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}") as conn:
        count = lambda table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: E731
        return {
            "images": count("inspections_inspectionimage"), "predictions": count("inspections_prediction"),
            "line_minutes": count("inspections_lineminute"),
            "db_bytes": int(conn.execute("SELECT pg_database_size(%s)", [BENCH_DB]).fetchone()[0]),
        }


def storage_facts(media: Path) -> dict:
    files = [p for p in media.rglob("*") if p.is_file()] if media.exists() else []
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    """(session id, user+system CPU seconds) of one process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[3]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds per tier, sampled twice a second so short-lived processes are seen: the web
    server's and the workers' process sessions, the PostgreSQL backends serving the benchmark
    database (pg_stat_activity), and the Redis server (shared with whatever else uses it)."""

    def __init__(self, *, web: int, workers: list[int]) -> None:
        self.sessions = {"gunicorn": {web}, "worker": set(workers)}
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._redis_pid = int(redis.Redis.from_url(BROKER).info("server")["process_id"])

    def _postgres_pids(self) -> set[int]:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}", autocommit=True) as conn:
            return {int(r[0]) for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [BENCH_DB])}

    def sample(self) -> None:
        tiers: dict[int, str] = {self._redis_pid: "redis"}
        tiers.update({pid: "postgres" for pid in self._postgres_pids()})
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                facts = _proc_cpu(int(entry.name))
                if facts:
                    for tier, sessions in self.sessions.items():
                        if facts[0] in sessions:
                            tiers[int(entry.name)] = tier
        for pid, tier in tiers.items():
            facts = _proc_cpu(pid)
            if facts is None:
                continue
            # A process first seen during the run started during it (or just before): from zero.
            self.first.setdefault(pid, (tier, facts[1] if not self._thread.is_alive() else 0.0))
            self.last[pid] = facts[1]

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def finish(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.sample()
        totals: dict[str, float] = {"gunicorn": 0.0, "worker": 0.0, "postgres": 0.0, "redis": 0.0}
        for pid, (tier, first) in self.first.items():
            totals[tier] += self.last[pid] - first
        return totals


# --- the run --------------------------------------------------------------------------------

def summarise(records: list[dict], *, seconds: float) -> dict:
    answered = [r for r in records if r["code"] == 200]
    results = [x for r in answered for x in r["results"]]
    classified = [x for x in results if not x["error"]]
    kinds = [k for r in answered for k, x in zip(r["kinds"], r["results"]) if not x["error"]]
    flagged = [bool(x["reasons"]) for x in classified]
    elapsed = [r["elapsed"] * 1000 for r in answered]
    foreign_flags = [f for f, k in zip(flagged, kinds) if k == "foreign"]
    neu_flags = [f for f, k in zip(flagged, kinds) if k == "neu"]
    codes: dict[str, int] = {}
    for r in records:
        if r["code"] != 200:
            key = f"{r['code']} {r.get('error')}"
            codes[key] = codes.get(key, 0) + 1
    return {
        "requests": len(records), "answered": len(answered), "refused_or_failed": codes,
        "tiles_classified": len(classified), "tile_errors": len(results) - len(classified),
        "tiles_per_s": round(len(classified) / seconds, 2),
        "kept": sum(bool(x["kept"]) for x in classified),
        "kept_share": round(sum(bool(x["kept"]) for x in classified) / max(len(classified), 1), 4),
        "flagged_share": round(sum(flagged) / max(len(flagged), 1), 4),
        "flagged_share_neu": round(sum(neu_flags) / max(len(neu_flags), 1), 4),
        "flagged_share_foreign": round(sum(foreign_flags) / max(len(foreign_flags), 1), 4),
        "foreign_share_sent": round(len(foreign_flags) / max(len(kinds), 1), 4),
        "kept_unflagged": sum(bool(x["kept"]) and not f for x, f in zip(classified, flagged)),
        "answer_ms": {"p50": round(percentile(elapsed, 50), 1), "p95": round(percentile(elapsed, 95), 1),
                      "mean": round(statistics.fmean(elapsed), 1) if elapsed else None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATASETS / "neu-cls")
    parser.add_argument("--foreign-data", type=Path, default=DATASETS / "cr7-det" / "images")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "model")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--files", type=int, default=16, help="tiles per classify/ request")
    parser.add_argument("--foreign-share", type=float, default=0.03)
    parser.add_argument("--pool", type=int, default=2500, help="unique tiles made before the run")
    parser.add_argument("--timeout", type=float, default=30, help="classify/ ?timeout= seconds")
    parser.add_argument("--line-workers", type=int, default=1, help="worker processes serving the line queue")
    parser.add_argument("--gunicorn-workers", type=int, default=None, help="default: gunicorn.conf.py's")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the docs section from benchmarks/results/line.json, measure nothing")
    options = parser.parse_args()
    if options.report_only:
        write_report(json.loads(RESULTS.read_text()))
        return
    load_before = os.getloadavg()

    ensure_model(options.model, options.data)
    log(f"making {options.pool} unique tiles")
    tiles = make_tiles(neu=options.data, cr7=options.foreign_data, count=options.pool,
                       foreign_share=options.foreign_share, seed=17)
    work = ROOT / "var" / "bench-line"
    installation = fresh_installation(work, user="line-bench", role="integrator", model_dir=options.model)
    env, token = installation.env, installation.token
    web = start_web(env, work, workers=options.gunicorn_workers)
    workers = [start_worker(env, work, queue="line", name=f"line{i + 1}") for i in range(options.line_workers)]
    records_path = work / "client.jsonl"
    try:
        wait_until_up(token)
        warm_up(token, options)
        before = {**db_facts(), **{f"storage_{k}": v for k, v in storage_facts(work / "media").items()}}
        meter = CpuMeter(web=web.pid, workers=[w.pid for w in workers])
        meter.start()
        log(f"line: {options.clients} clients x {options.files} tiles per request for {options.seconds:g} s")
        began = time.monotonic()
        client = multiprocessing.get_context("fork").Process(
            target=line_client, args=(token, tiles),
            kwargs={"clients": options.clients, "files": options.files, "seconds": options.seconds,
                    "timeout": options.timeout, "out": records_path})
        client.start()
        client.join()
        wall_s = time.monotonic() - began
        cpu = meter.finish()
        time.sleep(1)  # the last line counts and kept files of answered requests are written before the answer
        after = {**db_facts(), **{f"storage_{k}": v for k, v in storage_facts(work / "media").items()}}
    finally:
        stop(web)
        for worker in workers:
            stop(worker)
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    summary = summarise(records, seconds=wall_s)
    tiles_done = max(summary["tiles_classified"], 1)
    per_1000 = lambda value: round(1000 * value / tiles_done, 2)  # noqa: E731
    written = {
        "image_rows": per_1000(after["images"] - before["images"]),
        "prediction_rows": per_1000(after["predictions"] - before["predictions"]),
        "files": per_1000(after["storage_files"] - before["storage_files"]),
        "line_minute_rows": per_1000(after["line_minutes"] - before["line_minutes"]),
        "db_bytes": per_1000(after["db_bytes"] - before["db_bytes"]),
        "storage_bytes": per_1000(after["storage_bytes"] - before["storage_bytes"]),
    }
    written["bytes"] = round(written["db_bytes"] + written["storage_bytes"], 1)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "policy": {"sample_rate": float(env.get("STEELQC_RETENTION_SAMPLE_RATE", 0.01)), "source": "settings default"},
        "wall_s": round(wall_s, 1), **summary,
        "written_per_1000_tiles": written,
        "cpu_ms_per_tile": {tier: round(1000 * seconds / tiles_done, 2) for tier, seconds in cpu.items()},
        "counts": {"before": before, "after": after},
    }
    results["cpu_ms_per_tile"]["total"] = round(sum(results["cpu_ms_per_tile"].values()), 2)
    out = RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(json.dumps({k: results[k] for k in ("tiles_per_s", "kept_share", "flagged_share", "answer_ms",
                                              "written_per_1000_tiles", "cpu_ms_per_tile")}))
    write_report(results)
    log(f"wrote {out}")


def warm_up(token: str, options) -> None:
    """The worker loads TensorFlow and the model on its first request: wait until one is answered.
    The warm-up tiles go to their own source and are not counted."""
    from PIL import Image

    path = sorted(options.data.rglob("*.bmp"))[0]
    with Image.open(path) as image:
        content = _png(image.convert("L").rotate(90))
    body, content_type = multipart_body(files=[("file", "warm-up.png", content)], fields={"source": "warm-up"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        code, answer = Client(token).request("POST", "/api/v1/classify/?timeout=30", body,
                                             {"Content-Type": content_type})
        if code == 200:
            return
        log(f"warm-up: {code} {answer}")
    raise SystemExit("the line worker never answered classify/")


# --- the report -----------------------------------------------------------------------------

def sizing(results: dict) -> list[str]:
    """Cores and hosts for one 1,500 tiles/s line side, and storage per day, from the per-tile figures."""
    cpu = results["cpu_ms_per_tile"]
    written = results["written_per_1000_tiles"]
    per_day = TARGET_TILES_PER_S * 86_400
    cores = {tier: TARGET_TILES_PER_S * cpu[tier] / 1000 for tier in ("gunicorn", "worker", "postgres", "redis")}
    total = sum(cores.values())
    hosts = -(-total / (16 * 0.7) // 1)  # 16-core hosts run at 70 %
    flagged, sample = results["flagged_share"], results["policy"]["sample_rate"]
    kept_bytes_per_tile = (written["storage_bytes"] + written["db_bytes"]) / 1000
    kept_per_1000 = max(written["image_rows"], 1e-9)
    bytes_per_kept = kept_bytes_per_tile * 1000 / kept_per_1000
    cap_day = 5000  # STEELQC_RETENTION_MAX_PER_DAY default
    kept_day_uncapped = per_day * (flagged + (1 - flagged) * sample)
    kept_day_capped = per_day * flagged + min(per_day * (1 - flagged) * sample, cap_day)
    return [
        f"**On paper: one line side at {TARGET_TILES_PER_S:,} tiles/s** ({per_day / 1e6:.0f} million tiles a day), "
        "from the per-tile figures above:",
        "",
        "| tier | CPU-ms per tile | cores at 1,500 tiles/s |",
        "|---|---|---|",
        *[f"| {tier} | {cpu[tier]:.2f} | {cores[tier]:.1f} |" for tier in cores],
        f"| **total** | {sum(cpu[t] for t in cores):.2f} | **{total:.0f}** |",
        "",
        f"That is about **{hosts:.0f} hosts of 16 cores** at 70 % per side (measured on this machine's cores; "
        "inference dominates, so a GPU or a faster serving copy for the worker tier changes the host count most; "
        "the web tier scales with more gunicorn processes behind a balancer, PostgreSQL and Redis stay one "
        "server each at these rates).",
        "",
        f"Storage per day under the default policy (everything flagged kept, {sample:.0%} of the rest sampled, at "
        f"most {cap_day:,} sampled per source per day): at the measured flagged share of {flagged:.1%}, "
        f"{kept_day_capped / 1e6:.2f} million images a day are kept "
        f"({kept_day_uncapped / 1e6:.2f} million without the day cap), at {bytes_per_kept / 1e3:.0f} kB written per "
        f"kept image (file, rows, indexes) about **{kept_day_capped * bytes_per_kept / 1e9:,.0f} GB a day**, "
        f"or {per_day * 0.03 * bytes_per_kept / 1e9:,.0f} GB at 3 % flagged (+ one count row per source and minute "
        "and model version, 1,440 a day per source whatever the rate). The flagged share drives it: every point "
        f"of flagged share at 1,500 tiles/s is {per_day * 0.01 / 1e6:.2f} million images a day. The per-kept-image "
        "bytes come from a small run (tens of kept images, the first pages of empty tables and indexes included), "
        "so they are an upper bound.",
    ]


def write_report(results: dict) -> None:
    written, cpu, answer = results["written_per_1000_tiles"], results["cpu_ms_per_tile"], results["answer_ms"]
    options = results["options"]
    sample = results["policy"]["sample_rate"]
    policy_rows = 1000 * (results["flagged_share"] + (1 - results["flagged_share"]) * sample)
    rows_at_3 = 1000 * (0.03 + 0.97 * sample)
    exact = abs(written["image_rows"] - 1000 * results["kept"] / max(results["tiles_classified"], 1)) < 0.01
    load = results["load_average"]
    lines = [
        "## Line rate: `classify/` under a simulated line (`make bench-line`)",
        "",
        f"Command: `make bench-line` — {results['date']}, {results['machine']}, load average "
        f"{load['before'][0]:.2f} before / {load['after'][0]:.2f} after (the machine is shared; prefer the ratios). "
        "Raw JSON: `benchmarks/results/line.json`.",
        "",
        f"A fresh stack (gunicorn.conf.py, {options.get('line_workers', options.get('inference_workers'))} line worker, PostgreSQL, Redis on "
        f"loopback), the default retention policy ({results['policy']['sample_rate']:.0%} sample, settings caps). "
        f"A separate client process runs {options['clients']} closed-loop clients, each sending "
        f"{options['files']} unique 200x200 PNG tiles per `POST classify/?timeout={options['timeout']:g}` for "
        f"{options['seconds']:g} s: NEU images and their mirror images, and {results['foreign_share_sent']:.1%} "
        "200x200 crops of another line's images (cr7-det). The NEU tiles are the model's own training images, so "
        "their flagged share is a lower bound for a real line.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| tiles classified | **{results['tiles_per_s']:.1f} tiles/s** ({results['tiles_classified']:,} in "
        f"{results['wall_s']:.0f} s; {results['answered']} of {results['requests']} requests answered"
        + (f"; other answers: {results['refused_or_failed']}" if results["refused_or_failed"] else "") + ") |",
        f"| flagged (any review reason) | {results['flagged_share']:.1%} (NEU tiles {results['flagged_share_neu']:.1%}, "
        f"foreign tiles {results['flagged_share_foreign']:.1%}) |",
        f"| kept | {results['kept_share']:.1%} ({results['kept']:,} tiles; {results['kept_unflagged']} of them sampled "
        "without a reason) |",
        f"| image rows / prediction rows / files per 1,000 tiles | **{written['image_rows']:.1f} / "
        f"{written['prediction_rows']:.1f} / {written['files']:.1f}**: "
        + (f"exactly the kept tiles ({results['kept'] - results['kept_unflagged']} flagged + "
           f"{results['kept_unflagged']} sampled), nothing beyond the policy" if exact else "NOT the kept tiles")
        + f" (expected from the policy at this flagged share: {policy_rows:.1f}). The target, ≤ 50 per 1,000 with "
        f"a 1 % sample and ~3 % flagged: the same policy writes {rows_at_3:.1f} "
        f"({'met' if rows_at_3 <= 50 and exact else 'missed'}); this run's flagged share was "
        f"{results['flagged_share']:.1%}, above 3 % |",
        f"| count rows (`LineMinute`) | {results['counts']['after']['line_minutes'] - results['counts']['before']['line_minutes']}"
        " new: one per source, minute and model version, whatever the rate |",
        f"| bytes written per 1,000 tiles | **{written['bytes'] / 1e6:.2f} MB** (database "
        f"{written['db_bytes'] / 1e6:.2f} MB: pg_database_size, tables and indexes; storage "
        f"{written['storage_bytes'] / 1e6:.2f} MB) |",
        f"| CPU-ms per tile | gunicorn {cpu['gunicorn']:.2f}, line worker {cpu['worker']:.2f}, PostgreSQL "
        f"(this database's backends) {cpu['postgres']:.2f}, Redis {cpu['redis']:.2f} (the whole server, shared "
        f"with others' work); total **{cpu['total']:.2f}**, i.e. {1000 / cpu['total']:.0f} tiles per CPU-second: "
        "the figure that carries to a quiet machine |",
        f"| `classify/` answer time per request of {options['files']} tiles | p50 **{answer['p50']:.0f} ms**, p95 "
        f"**{answer['p95']:.0f} ms**: closed loop, so mostly waiting behind the other clients' requests; one "
        f"request's own service time is {options['files'] / max(results['tiles_per_s'], 1e-9) * 1000:.0f} ms "
        f"({options['files']} tiles at {results['tiles_per_s']:.1f} tiles/s) |",
        "",
        *sizing(results),
    ]
    log(f"wrote {replace_doc_section(MARK, chr(10).join(lines))}")


if __name__ == "__main__":
    main()
