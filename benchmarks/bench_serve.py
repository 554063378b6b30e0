"""Serving benchmark: the production-shaped stack on loopback, loaded through the REST API.

Starts PostgreSQL/Redis-backed steelqc with production settings (gunicorn + one inference
worker), registers the default model trained on the NEU images, then uploads NEU images from
this separate process with 1, 4 and 16 concurrent clients. Reports end-to-end images/s (upload
accepted -> prediction in the database), p50/p95 latency, a single client using ``?wait``, and,
measured in the same run, the raw batched throughput of the same model, so the ratio shows what
the platform costs on top of the model.

    make bench-serve            # or: .venv/bin/python benchmarks/bench_serve.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    BENCH_DB, PY, ROOT, Client, cpu_seconds, fresh_installation, log, replace_doc_section, start_web, start_worker,
    stop, wait_until_up,
)

MARK = "bench-serve"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- measurements ---------------------------------------------------------------------------

def raw_throughput(model_dir: Path, images: list[Path], *, batch: int, seconds: float = 8.0) -> float:
    """Images/s of Classifier.predict on decoded NEU images, measured in this process."""
    from mlcore.inference import Classifier
    from mlcore.io import load_image

    classifier = Classifier.load(model_dir, batch_size=batch)
    arrays = [load_image(p) for p in images[:max(batch, 32)]]
    chunk = arrays[:batch]
    classifier.predict(chunk)  # trace and warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        classifier.predict(chunk)
        done += len(chunk)
    return done / (time.perf_counter() - started)


def db_predictions(source: str) -> list[tuple[float, float]]:
    """(image created, prediction created) epoch seconds for the images of one load level."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}") as conn:
        rows = conn.execute(
            "SELECT extract(epoch from i.created_at), extract(epoch from p.created_at) "
            "FROM inspections_prediction p JOIN inspections_inspectionimage i ON i.id = p.image_id "
            "WHERE i.source = %s", [source],
        ).fetchall()
    return [(float(a), float(b)) for a, b in rows]


def db_transactions() -> int:
    """Committed transactions of the benchmark database so far (every autocommit query is one)."""
    time.sleep(1.2)  # backends publish their counters about once a second
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}") as conn:
        return int(conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [BENCH_DB]).fetchone()[0])


def load_level(token: str, images: list[Path], clients: int, *, web_session: int, worker_sessions: list[int],
               files_per_request: int = 1, wait: float = 0, label: str = "") -> dict:
    source = f"bench-{label or clients}-clients"
    slices = [images[i::clients] for i in range(clients)]
    accepted, failures, late, answered_with_prediction = [], [], [], [0]
    lock = threading.Lock()

    def run(paths: list[Path]) -> None:
        client = Client(token)
        for start in range(0, len(paths), files_per_request):
            chunk = paths[start:start + files_per_request]
            sent = time.time()
            if files_per_request == 1:
                code, body = client.upload(chunk[0].read_bytes(), chunk[0].name, source=source, wait=wait)
                predicted = int(bool(code == 201 and body and body.get("prediction")))
            else:
                body, content_type = multipart_body(files=[("file", p.name, p.read_bytes()) for p in chunk],
                                                    fields={"source": source})
                code, body = client.request("POST", "/api/v1/images/", body, {"Content-Type": content_type})
                predicted = sum(bool(r.get("image", {}).get("prediction")) for r in (body or {}).get("results", []))
            elapsed = time.time() - sent
            with lock:
                for path in chunk:
                    (accepted if code == 201 else failures).append((path.name, code, elapsed))
                answered_with_prediction[0] += predicted
                if wait and elapsed > wait + 1.0:  # past its deadline (+1 s for the upload itself)
                    late.append(elapsed)

    def cpu() -> dict:
        return {"web": cpu_seconds(session_ids=[web_session]), "worker": cpu_seconds(session_ids=worker_sessions),
                "postgres_redis": cpu_seconds(names=("postgres", "redis-server"))}

    transactions_before = db_transactions()
    cpu_before = cpu()
    started = time.time()
    threads = [threading.Thread(target=run, args=(s,)) for s in slices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    uploads_done = time.time()
    deadline = time.monotonic() + 600
    while True:
        rows = db_predictions(source)
        if len(rows) >= len(accepted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    finished = max((p for _, p in rows), default=time.time())
    latencies = [(p - c) * 1000 for c, p in rows]
    cpu_after = cpu()
    cpu_ms_per_image = {k: round(1000 * (cpu_after[k] - cpu_before[k]) / max(len(rows), 1), 1) for k in cpu_after}
    cpu_total_s = sum(cpu_after[k] - cpu_before[k] for k in cpu_after)
    transactions = db_transactions() - transactions_before
    return {
        "label": label or f"{clients} clients", "clients": clients, "files_per_request": files_per_request,
        "wait_s": wait, "inference_workers": len(worker_sessions),
        "images": len(images), "accepted": len(accepted), "refused": len(failures),
        "refused_codes": sorted({code for _, code, _ in failures}),
        "answered_with_prediction": answered_with_prediction[0], "past_deadline": len(late),
        "db_transactions_per_image": round(transactions / max(len(images), 1), 1),
        "images_per_cpu_s": round(len(rows) / cpu_total_s, 1) if cpu_total_s else None,
        "request_p50_ms": round(percentile([a[2] * 1000 for a in accepted], 50), 1),
        "request_max_ms": round(max((a[2] * 1000 for a in accepted), default=0.0), 1),
        "predicted": len(rows), "upload_phase_s": round(uploads_done - started, 2),
        "end_to_end_images_per_s": round(len(rows) / (finished - started), 2),
        "upload_request_p50_ms": round(percentile([a[2] * 1000 for a in accepted], 50), 1),  # per request
        "latency_p50_ms": round(percentile(latencies, 50), 1),
        "latency_p95_ms": round(percentile(latencies, 95), 1),
        "cpu_ms_per_image": cpu_ms_per_image,
    }


def wait_mode(token: str, images: list[Path]) -> dict:
    client = Client(token)
    round_trips, with_prediction = [], 0
    for path in images:
        started = time.perf_counter()
        code, body = client.upload(path.read_bytes(), path.name, source="bench-wait", wait=10)
        round_trips.append((time.perf_counter() - started) * 1000)
        with_prediction += bool(code == 201 and body.get("prediction"))
    return {
        "images": len(images), "with_prediction": with_prediction,
        "round_trip_p50_ms": round(percentile(round_trips, 50), 1),
        "round_trip_p95_ms": round(percentile(round_trips, 95), 1),
        "round_trip_mean_ms": round(statistics.fmean(round_trips), 1),
    }


# --- report ---------------------------------------------------------------------------------

def gunicorn_summary(workers: int | None) -> str:
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    return f"gunicorn.conf.py: {workers or namespace['workers']} {namespace['worker_class']} workers x {namespace['threads']} threads"


def ceiling_note(results: dict, raw32: float) -> str:
    """What the measured CPU costs allow on this machine, whatever the software does."""
    level = results["levels"][-1]
    cpu = level["cpu_ms_per_image"]
    per_image = cpu["web"] + cpu["worker"] + cpu["postgres_redis"]
    cores = int(results["machine"].split()[0])
    ceiling = 1000 * cores / per_image if per_image else float("nan")
    return (
        f"Why the ratio is what it is: at {level['clients']} clients every image cost {cpu['web']:.1f} CPU-ms in "
        f"the web tier (multipart parsing, full decode check, hashing, storage, row, queueing, JSON answer), "
        f"{cpu['worker']:.1f} CPU-ms in the inference worker and {cpu['postgres_redis']:.1f} in PostgreSQL and "
        f"Redis: {per_image:.1f} CPU-ms in all. With {cores} cores shared by all of them (and by the load "
        f"generator) that caps the stack at about {ceiling:.0f} images/s, {ceiling / raw32:.0%} of the raw "
        "batched model, before any waiting; the raw figure itself uses both cores for the model alone. "
        "On a deployment where web and inference workers have their own cores (the compose services), "
        "the inference side is bounded by the worker's CPU-ms per image instead."
    )


def _row(level: dict, raw32: float) -> str:
    cpu = level["cpu_ms_per_image"]
    return (
        f"| {level['label']} | {level['predicted']}/{level['images']} | {level['end_to_end_images_per_s']:.1f} | "
        f"{level['end_to_end_images_per_s'] / raw32:.0%} | {level['latency_p50_ms']:.0f} | {level['latency_p95_ms']:.0f} | "
        f"{level['request_p50_ms']:.0f} | {cpu['web']:.1f} / {cpu['worker']:.1f} / {cpu['postgres_redis']:.1f} | "
        f"{level['images_per_cpu_s']} | {level['db_transactions_per_image']} |"
    )


def sizing(results: dict) -> list[str]:
    """Cores per tier for a line of N images/s, from this run's CPU-ms per image."""
    single, multi = results["levels"][-1], results["multi_file"]
    web_single, web_multi = single["cpu_ms_per_image"]["web"], multi["cpu_ms_per_image"]["web"]
    worker = single["cpu_ms_per_image"]["worker"]
    store = single["cpu_ms_per_image"]["postgres_redis"]
    lines = [
        "### Sizing",
        "",
        f"From the CPU-ms per image measured above (single-file uploads at {single['clients']} clients; "
        "10-file uploads for the web tier's cheap path), a line of N images/s needs about, per tier:",
        "",
        "| tier | CPU-ms per image | cores for 100 images/s | cores for N images/s |",
        "|---|---:|---:|---|",
        f"| web (gunicorn), single-file uploads | {web_single:.1f} | {web_single / 10:.1f} | N × {web_single:.1f} / 1000 |",
        f"| web (gunicorn), 10-file uploads | {web_multi:.1f} | {web_multi / 10:.1f} | N × {web_multi:.1f} / 1000 |",
        f"| inference workers | {worker:.1f} | {worker / 10:.1f} | N × {worker:.1f} / 1000 |",
        f"| PostgreSQL + Redis | {store:.1f} | {store / 10:.1f} | N × {store:.1f} / 1000 |",
        "",
        "Add about 30 % headroom per tier. The inference tier is the largest: it scales by running more "
        "`inference-worker` processes (one model copy each, batches claimed with `SKIP LOCKED`, so they never "
        "share an image) — `docker compose up --scale inference-worker=N` on one host, or the same service on "
        "other hosts. There, run only `inference-worker` from the same image with `DATABASE_URL`, "
        "`CELERY_BROKER_URL` (and `STEELQC_EVENTS_REDIS_URL` if set) and the `AWS_*` storage variables pointing "
        "at the main host's PostgreSQL, Redis and object store (publish their ports or use a private network; "
        "drop `db`, `redis`, `objects`, `web`, `beat` from that host's compose file). The web tier scales the "
        "same way behind a load balancer (`GUNICORN_WORKERS` per host, one per core).",
        "",
        f"First shared bottleneck: PostgreSQL writes. Each image is one INSERT at upload and, per batch, one "
        f"claim, one bulk INSERT of predictions and one UPDATE; this run measured {single['db_transactions_per_image']} "
        f"committed transactions per image and {store:.1f} CPU-ms per image in PostgreSQL and Redis together, so "
        f"one PostgreSQL core carries on the order of {1000 / max(store, 0.1):.0f} images/s before it saturates. "
        "Redis (one broker message per single-file upload, one per 10-file upload, one publish per predicted "
        "image) is far below that. File storage is one write per upload and one read per prediction: on a "
        "local disk it is not the limit; with an object store, its request latency adds to each upload but "
        "not to CPU.",
    ]
    return lines


def write_report(results: dict, command: str) -> None:
    out = ROOT / "benchmarks" / "results" / "serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    raw32, raw1 = results["raw_images_per_s"]["batch_32"], results["raw_images_per_s"]["batch_1"]
    load = results["load_average"]
    last, multi, wait_many, wait = results["levels"][-1], results["multi_file"], results["wait_many"], results["wait"]
    two = results["two_workers"]
    lines = [
        "## Serving (`make bench-serve`)",
        "",
        f"Command: `{command}` — run on {results['machine']}, {results['date']}. Raw JSON: "
        "`benchmarks/results/serve.json`. The machine was shared with other work during the run "
        f"(1-minute load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after): absolute "
        "figures are lower bounds; compare the ratios within the run.",
        "",
        f"Stack on loopback: PostgreSQL, Redis, gunicorn ({results['gunicorn']}, production settings), "
        f"inference workers (prefork, concurrency 1, micro-batches up to {results['batch_size']}), model "
        f"`{results['model']['backbone']}` trained on the NEU images (test accuracy "
        f"{results['model']['test_accuracy']:.4f}). Clients upload distinct NEU BMPs from a separate process; "
        "end-to-end = upload accepted → prediction row in the database.",
        "",
        "Raw model throughput, same model, measured in the same run before the stack started:",
        "",
        "| model copy | batch 32 images/s | batch 1 images/s |",
        "|---|---:|---:|",
        f"| fp32 (`model.keras`) | {raw32:.1f} | {raw1:.1f} |",
        "",
        "| load | predicted/images | end-to-end images/s | ratio to raw batch-32 | p50 latency ms | p95 latency ms "
        "| request p50 ms | CPU ms per image: web / worker / PostgreSQL+Redis | images per CPU-second (all tiers) "
        "| DB transactions per image |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    lines += [_row(level, raw32) for level in [*results["levels"], multi, wait_many, two]]
    lost = wait_many["accepted"] - wait_many["predicted"]
    ratio = two["end_to_end_images_per_s"] / max(last["end_to_end_images_per_s"], 0.01)
    lines += [
        "",
        f"16 clients with `?wait=10`: {wait_many['accepted']} accepted, {wait_many['refused']} refused "
        f"(codes {wait_many['refused_codes'] or 'none'}), {lost} lost, {wait_many['past_deadline']} answered past "
        f"their deadline (longest request {wait_many['request_max_ms']:.0f} ms), "
        f"{wait_many['answered_with_prediction']} answered with the prediction; "
        f"{wait_many['db_transactions_per_image']} database transactions per image against "
        f"{last['db_transactions_per_image']} without waiting: a waiter reads the database once before sleeping "
        "on its Redis subscription and once to answer.",
        "",
        f"Single client with `?wait=10` ({wait['images']} sequential uploads, {wait['with_prediction']} answered with "
        f"the prediction): round trip **p50 {wait['round_trip_p50_ms']:.0f} ms**, p95 {wait['round_trip_p95_ms']:.0f} ms.",
        "",
        f"Two inference worker processes against one, same machine, same load ({last['clients']} clients): "
        f"{two['end_to_end_images_per_s']:.1f} against {last['end_to_end_images_per_s']:.1f} images/s "
        f"(ratio {ratio:.2f}; {two['end_to_end_images_per_s'] / 2:.1f} images/s per worker process against "
        f"{last['end_to_end_images_per_s']:.1f}); images per CPU-second {two['images_per_cpu_s']} against "
        f"{last['images_per_cpu_s']}. On {results['machine']} a second process adds no cores: TensorFlow already "
        "spreads one batch over both, and the two processes compete with the web tier, PostgreSQL and the load "
        "generator for the same CPUs, while each batch gets smaller. More worker processes pay off only with "
        "cores of their own (another host, or a larger one).",
        "",
        "Targets (2 cores, same run): end-to-end at 16 clients ≥ 60 % of the raw batched fp32 figure "
        f"({last['end_to_end_images_per_s'] / raw32:.0%}: {'met' if last['end_to_end_images_per_s'] >= 0.6 * raw32 else 'missed'}) "
        f"and ≥ 120 images/s ({'met' if last['end_to_end_images_per_s'] >= 120 else 'missed'}); web tier ≤ 4 CPU-ms "
        f"per image single-file ({last['cpu_ms_per_image']['web']:.1f}: "
        f"{'met' if last['cpu_ms_per_image']['web'] <= 4 else 'missed'}), ≤ 2 for 10-file uploads "
        f"({multi['cpu_ms_per_image']['web']:.1f}: {'met' if multi['cpu_ms_per_image']['web'] <= 2 else 'missed'}); "
        f"`?wait` single client p50 ≤ 50 ms ({'met' if wait['round_trip_p50_ms'] <= 50 else 'missed'}); 16 clients "
        f"with `?wait=10`: none past its deadline ({'met' if not wait_many['past_deadline'] else 'missed'}), none lost "
        f"({'met' if lost == 0 else 'missed'}).",
        "",
        ceiling_note(results, raw32),
        "",
        *sizing(results),
    ]
    doc = replace_doc_section(MARK, "\n".join(lines))
    log(f"wrote {doc} and {out}")


def warm_up(token: str, paths: list[Path], source: str, timeout: float = 300) -> None:
    """Upload ``paths`` and wait until all are predicted (a worker's first batch loads TensorFlow)."""
    for path in paths:
        code, body = Client(token).upload(path.read_bytes(), path.name, source=source)
        if code != 201:
            raise SystemExit(f"warm-up upload refused ({code}): {body}")
    deadline = time.monotonic() + timeout
    while len(db_predictions(source)) < len(paths):
        if time.monotonic() > deadline:
            raise SystemExit(f"warm-up uploads got no prediction in {timeout:.0f} s")
        time.sleep(0.5)


def _distinct(paths: list[Path]) -> list[Path]:
    """One file per content: a byte-identical copy would be answered as the existing image."""
    import hashlib

    seen, kept = set(), []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(path)
    return kept


def ensure_model(model_dir: Path, data: Path) -> None:
    if (model_dir / "model.keras").is_file():
        return
    log(f"training the default model on {data} into {model_dir} (once; reused by later runs)")
    subprocess.run([PY, "-m", "mlcore", "train", "--data", str(data), "--out", str(model_dir)], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "neu-cls")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "model")
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--images", default="60,200,360", help="images per level, in order")
    parser.add_argument("--wait-images", type=int, default=50)
    parser.add_argument("--multi-images", type=int, default=200, help="images sent as 10-file uploads")
    parser.add_argument("--wait-many-images", type=int, default=160, help="images for 16 clients with ?wait=10")
    parser.add_argument("--gunicorn-workers", type=int, default=None, help="default: gunicorn.conf.py's")
    options = parser.parse_args()
    load_before = os.getloadavg()

    images = _distinct(sorted(options.data.rglob("*.bmp")))
    if len(images) < 100:
        raise SystemExit(f"no NEU images under {options.data}")
    ensure_model(options.model, options.data)
    metrics = json.loads((options.model / "metrics.json").read_text())
    config = json.loads((options.model / "config.json").read_text())

    log("raw model throughput")
    # One row per model copy; a faster serving copy adds its own rows here.
    raw = {"batch_32": raw_throughput(options.model, images, batch=32),
           "batch_1": raw_throughput(options.model, images, batch=1, seconds=4)}
    log(f"raw: {raw}")

    work = ROOT / "var" / "bench"
    installation = fresh_installation(work, user="bench", role="integrator", model_dir=options.model)
    env, token = installation.env, installation.token

    web = start_web(env, work, workers=options.gunicorn_workers)
    workers = [start_worker(env, work, queue="inference", name="inference1")]
    counts = [int(n) for n in options.images.split(",")]
    levels = [int(n) for n in options.levels.split(",")]
    pool = images[:-8]
    # Interleave classes so every level sees all six.
    pool = [p for group in zip(*[pool[i::6] for i in range(6)]) for p in group]
    offset = 0

    def take(count: int) -> list[Path]:
        nonlocal offset
        chunk = pool[offset:offset + count]
        offset += count
        return chunk

    def measure(label: str, count: int, clients: int, **kwargs) -> dict:
        log(f"{label}: {clients} client(s), {count} images")
        result = load_level(token, take(count), clients, web_session=web.pid, worker_sessions=[w.pid for w in workers],
                            label=label, **kwargs)
        log(json.dumps(result))
        return result

    try:
        wait_until_up(token)
        # The worker loads TensorFlow and the model on its first task: warm it up and check
        # that it really answered before measuring anything.
        warm_up(token, images[-8:], "bench-warmup")
        results_levels = [measure(f"{clients} clients", count, clients) for clients, count in zip(levels, counts)]
        multi = measure("10-file uploads", options.multi_images, 4, files_per_request=10)
        wait_many = measure("16 clients ?wait=10", options.wait_many_images, 16, wait=10)
        log("single client with ?wait")
        wait = wait_mode(token, take(options.wait_images))
        log(json.dumps(wait))
        # Scale-out on the same machine: a second inference worker process, same load as the last level.
        workers.append(start_worker(env, work, queue="inference", name="inference2"))
        warm_up(token, take(8), "bench-warmup-2")  # the new process loads TensorFlow and the model on its first batch
        two_workers = measure(f"{levels[-1]} clients, 2 inference workers", counts[-1], levels[-1])
    finally:
        stop(web)
        for worker in workers:
            stop(worker)

    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "model": {"backbone": config["backbone"]["name"], "test_accuracy": metrics.get("accuracy", 0.0)},
        "batch_size": int(env.get("STEELQC_INFERENCE_BATCH_SIZE", 32)),
        "gunicorn": gunicorn_summary(options.gunicorn_workers),
        "raw_images_per_s": {k: round(v, 2) for k, v in raw.items()},
        "levels": results_levels, "multi_file": multi, "wait_many": wait_many, "wait": wait,
        "two_workers": two_workers,
    }
    write_report(results, "make bench-serve")


if __name__ == "__main__":
    main()
