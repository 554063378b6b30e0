"""Mixed-load benchmark: line clients calling ``POST classify/`` while other clients upload batches
through ``POST images/``, on a fresh production-shaped stack (gunicorn.conf.py, PostgreSQL, Redis
on loopback), in two worker layouts measured in the same run:

* ``shared``: one worker process serving both the inference queue (upload batches) and the line
  queue (``classify/``), as a small installation might run it;
* ``lanes``: the production layout: the line queue served by its own worker process beside the
  inference worker (compose's line-worker, ``make run``'s line worker).

Uploads arrive faster than the inference worker predicts them (a backlog grows, as after a shift
of bulk uploads). Each classify client sends one unique tile per request with an
``Idempotency-Key`` and, on a 504, retries once with the same key, as docs/api.md says. Reported
per layout: the share of classify requests answered 504 ``classify_timeout`` (first attempts),
answer time p50/p95, uploads accepted, and the frames the line counts say were seen against the
unique frames sent (more would be double counting).

    make bench-mixed            # or: .venv/bin/python benchmarks/bench_mixed.py --help
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

# Its own port, database and Redis DB by default, so it can run beside the other benchmarks.
os.environ.setdefault("STEELQC_BENCH_PORT", "8768")
os.environ.setdefault("STEELQC_BENCH_DB", "steelqc_bench_mixed")
os.environ.setdefault("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/9")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.bench_line import make_tiles  # noqa: E402
from benchmarks.bench_serve import percentile  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    PY, ROOT, Client, fresh_installation, log, replace_doc_section, start, start_web, stop, wait_until_up,
)

MARK = "bench-mixed"
DATASETS = ROOT.parent / "shared" / "datasets"
SOURCE = "mixed-line"
RESULTS = ROOT / "benchmarks" / "results" / "mixed.json"
LAYOUTS = {"shared": [("all", "inference,line")], "lanes": [("inference", "inference"), ("line", "line")]}


def ensure_quick_model(model_dir: Path, data: Path) -> None:
    """A ResNet50-family model trained without fine-tuning (minutes on 2 cores): what is measured
    here is queueing, and its serving cost per image is the production model's."""
    if (model_dir / "model.keras").is_file():
        return
    log(f"training a model without fine-tuning on {data} into {model_dir} (once; reused by later runs)")
    subprocess.run([PY, "-m", "mlcore", "train", "--data", str(data), "--out", str(model_dir), "--no-finetune",
                    "--augmented-views", "1", "--no-detection", "--serving", "fp32", "--quiet"],
                   cwd=ROOT, check=True)


# --- the clients (a separate process) -------------------------------------------------------

def load(token: str, line_tiles: list[bytes], upload_tiles: list[bytes], *, seconds: float, classify_clients: int,
         upload_clients: int, upload_files: int, upload_interval: float, timeout: float, out: Path) -> None:
    lock = threading.Lock()
    cursors = {"line": 0, "upload": 0}
    records: list[dict] = []
    stop_at = time.monotonic() + seconds

    def take(kind: str, pool: list[bytes], count: int) -> list[tuple[int, bytes]]:
        with lock:
            start = cursors[kind]
            cursors[kind] += count
        return [(i, pool[i % len(pool)]) for i in range(start, start + count)]

    def classify_client() -> None:
        client = Client(token)
        while time.monotonic() < stop_at:
            [(index, content)] = take("line", line_tiles, 1)
            body, content_type = multipart_body(files=[("file", f"frame-{index}.png", content)],
                                                fields={"source": SOURCE})
            headers = {"Content-Type": content_type, "Idempotency-Key": uuid.uuid4().hex}
            attempts = []
            for _ in range(2):  # the first try, and one retry with the same key after a 504
                sent = time.monotonic()
                try:
                    code, answer = client.request("POST", f"/api/v1/classify/?timeout={timeout:g}", body, headers)
                except OSError as error:
                    code, answer = 0, {"error": {"code": type(error).__name__}}
                attempts.append({"code": code, "elapsed": time.monotonic() - sent,
                                 "error": ((answer or {}).get("error") or {}).get("code") if code != 200 else None})
                if code != 504:
                    break
            with lock:
                records.append({"kind": "classify", "frame": index, "attempts": attempts})

    def upload_client() -> None:
        client = Client(token)
        while time.monotonic() < stop_at:
            began = time.monotonic()
            batch = take("upload", upload_tiles, upload_files)
            body, content_type = multipart_body(files=[("file", f"upload-{i}.png", c) for i, c in batch],
                                                fields={"source": "bulk"})
            try:
                code, _ = client.request("POST", "/api/v1/images/", body, {"Content-Type": content_type})
            except OSError:
                code = 0
            with lock:
                records.append({"kind": "upload", "code": code, "files": len(batch),
                                "elapsed": time.monotonic() - began})
            time.sleep(max(0.0, upload_interval - (time.monotonic() - began)))

    threads = [threading.Thread(target=classify_client) for _ in range(classify_clients)]
    threads += [threading.Thread(target=upload_client) for _ in range(upload_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.write_text("\n".join(json.dumps(record) for record in records) + "\n")


# --- one layout -----------------------------------------------------------------------------

def line_seen(token: str) -> tuple[int, int]:
    """(seen, dropped) in the line counts of the benchmark's source over the last hour."""
    code, answer = Client(token).request("GET", f"/api/v1/line-stats/?source={SOURCE}")
    if code != 200:
        raise SystemExit(f"line-stats/ answered {code}: {answer}")
    return (sum(bucket["seen"] for bucket in answer["buckets"]), sum(bucket["dropped"] for bucket in answer["buckets"]))


def warm_up(token: str, tile: bytes) -> None:
    """Each worker loads TensorFlow and the model on its first task: wait until classify/ and an
    upload with ?wait= are answered (their tiles go to a source that is not counted)."""
    body, content_type = multipart_body(files=[("file", "warm-up.png", tile)], fields={"source": "warm-up"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        code, _ = Client(token).request("POST", "/api/v1/classify/?timeout=30", body, {"Content-Type": content_type})
        if code == 200:
            break
    Client(token).request("POST", "/api/v1/images/?wait=30", body, {"Content-Type": content_type})


def run_layout(name: str, options, tiles: list[bytes], *, timeout: float) -> dict:
    work = ROOT / "var" / "bench-mixed"
    installation = fresh_installation(work, user="mixed-bench", role="integrator", model_dir=options.model)
    env, token = installation.env, installation.token
    web = start_web(env, work)
    workers = [start(env, [PY, "-m", "celery", "-A", "steelqc", "worker", "-Q", queues, "--concurrency", "1",
                           "-n", f"{node}@%h", "--loglevel", "INFO"], work / f"worker-{name}-{node}.log")
               for node, queues in LAYOUTS[name]]
    records_path = work / f"client-{name}.jsonl"
    line_tiles, upload_tiles = tiles[:options.line_pool], tiles[options.line_pool:]
    try:
        wait_until_up(token)
        warm_up(token, tiles[-1])
        log(f"{name}: {options.classify_clients} classify clients and {options.upload_clients} upload clients "
            f"({options.upload_files} files every {options.upload_interval:g} s) for {options.seconds:g} s")
        client = multiprocessing.get_context("fork").Process(
            target=load, args=(token, line_tiles, upload_tiles),
            kwargs={"seconds": options.seconds, "classify_clients": options.classify_clients,
                    "upload_clients": options.upload_clients, "upload_files": options.upload_files,
                    "upload_interval": options.upload_interval, "timeout": timeout, "out": records_path})
        client.start()
        client.join()
        # Requests still in a queue are finished (or dropped) by the workers; wait until the counts settle.
        settled, last, give_up = time.monotonic(), None, time.monotonic() + 120
        while time.monotonic() - settled < 5 and time.monotonic() < give_up:
            now = line_seen(token)
            if now != last:
                last, settled = now, time.monotonic()
            time.sleep(1)
        seen, dropped = last
    finally:
        stop(web)
        for worker in workers:
            stop(worker)
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    return summarise(records, seen=seen, dropped=dropped, seconds=options.seconds)


def summarise(records: list[dict], *, seen: int, dropped: int, seconds: float) -> dict:
    classify = [r for r in records if r["kind"] == "classify"]
    uploads = [r for r in records if r["kind"] == "upload"]
    first = [r["attempts"][0] for r in classify]
    answered = [a for a in first if a["code"] == 200]
    finally_answered = [r for r in classify if r["attempts"][-1]["code"] == 200]
    times = sorted(a["elapsed"] * 1000 for a in answered)
    return {
        "classify_requests": len(classify),
        "classify_timeout_share": sum(a["error"] == "classify_timeout" for a in first) / max(len(first), 1),
        "classify_other_errors": sorted({a["error"] or str(a["code"]) for a in first if a["code"] not in (200, 504)}),
        "classify_p50_ms": percentile(times, 50) if times else None,
        "classify_p95_ms": percentile(times, 95) if times else None,
        "classify_answered_after_retry": len(finally_answered),
        "frames_sent": len({r["frame"] for r in classify}),
        "frames_counted_seen": seen,
        "frames_counted_dropped": dropped,
        "uploads_accepted_images": sum(r["files"] for r in uploads if r["code"] in (200, 201)),
        "uploads_refused": sum(r["code"] not in (200, 201) for r in uploads),
        "upload_images_per_s": sum(r["files"] for r in uploads if r["code"] in (200, 201)) / seconds,
    }


# --- the report -----------------------------------------------------------------------------

def write_report(results: dict) -> None:
    options = results["options"]
    rows = []
    labels = (("shared", f"one worker for both queues, `?timeout={options['timeout']:g}`"),
              ("lanes", f"line worker + inference worker, `?timeout={options['timeout']:g}`"),
              ("retries", f"line worker + inference worker, `?timeout={options['short_timeout']:g}`"))
    for name, label in labels:
        r = results["layouts"][name]
        rows.append(
            f"| {label} | {r['classify_requests']} | **{r['classify_timeout_share']:.0%}** | "
            f"{r['classify_p50_ms']:.0f} / {r['classify_p95_ms']:.0f} ms | {r['frames_sent']} / "
            f"{r['frames_counted_seen']} / {r['frames_counted_dropped']} | {r['upload_images_per_s']:.1f} |"
            if r["classify_p50_ms"] is not None else
            f"| {label} | {r['classify_requests']} | **{r['classify_timeout_share']:.0%}** | – | {r['frames_sent']} / "
            f"{r['frames_counted_seen']} / {r['frames_counted_dropped']} | {r['upload_images_per_s']:.1f} |")
    block = "\n".join([
        "## Line traffic beside uploads (`make bench-mixed`)",
        "",
        f"Measured {results['measured_at']} on this machine ({os.cpu_count()} cores, load before "
        f"{results['load_before']}); `.venv/bin/python benchmarks/bench_mixed.py` (`make bench-mixed`), raw figures "
        "in `benchmarks/results/mixed.json`. A fresh production-shaped stack per layout (gunicorn.conf.py, "
        f"PostgreSQL, Redis); {options['classify_clients']} classify clients (one unique tile per request, "
        f"`?timeout={options['timeout']:g}`, an `Idempotency-Key`, one retry with it after a 504) and "
        f"{options['upload_clients']} upload clients ({options['upload_files']} unique images every "
        f"{options['upload_interval']:g} s each, more than the inference worker predicts) for "
        f"{options['seconds']:g} s; model: ResNet50-family, fp32 TFLite serving.",
        "",
        "| worker layout | classify requests | `classify_timeout` (first try) | answer p50 / p95 | frames sent / "
        "counted seen / counted dropped | uploads accepted (images/s) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "The last row forces deadlines shorter than some answers take: the first tries that answered 504 were "
        f"retried with their key ({results['layouts']['retries']['classify_answered_after_retry']} of "
        f"{results['layouts']['retries']['classify_requests']} requests answered in the end), and the line counts "
        "still hold each frame once: a retry is answered from the first request's result, not classified again. "
        "Before the line queue existed, `classify/` waited in the inference queue's first-in-first-out order behind "
        "upload batches (the security and load review measured 56 % `classify_timeout` with 16 mixed clients); a "
        "worker serving both queues now alternates between them, and a line worker of its own answers several "
        "times as many requests, faster.",
    ])
    replace_doc_section(MARK, block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATASETS / "neu-cls")
    parser.add_argument("--foreign-data", type=Path, default=DATASETS / "cr7-det" / "images")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "mixed-model")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--classify-clients", type=int, default=8)
    parser.add_argument("--upload-clients", type=int, default=8)
    parser.add_argument("--upload-files", type=int, default=8)
    parser.add_argument("--upload-interval", type=float, default=2.0, help="seconds between one client's uploads")
    parser.add_argument("--timeout", type=float, default=10, help="classify/ ?timeout= seconds")
    parser.add_argument("--short-timeout", type=float, default=1,
                        help="?timeout= of the third run, short enough to force 504s and retries")
    parser.add_argument("--line-pool", type=int, default=1200, help="unique tiles for classify/")
    parser.add_argument("--upload-pool", type=int, default=2400, help="unique tiles for uploads")
    parser.add_argument("--report-only", action="store_true", help="rewrite the docs from the last results")
    options = parser.parse_args()
    if options.report_only:
        write_report(json.loads(RESULTS.read_text()))
        return
    load_before = os.getloadavg()
    ensure_quick_model(options.model, options.data)
    log(f"making {options.line_pool + options.upload_pool} unique tiles")
    tiles = [content for _, content, _ in make_tiles(neu=options.data, cr7=options.foreign_data,
                                                     count=options.line_pool + options.upload_pool,
                                                     foreign_share=0.03, seed=23)]
    layouts = {}
    for name in ("shared", "lanes"):
        layouts[name] = run_layout(name, options, tiles, timeout=options.timeout)
        log(f"{name}: {json.dumps(layouts[name])}")
    # Deadlines shorter than some answers take: 504s, retries with the key, late finishes.
    layouts["retries"] = run_layout("lanes", options, tiles, timeout=options.short_timeout)
    log(f"retries: {json.dumps(layouts['retries'])}")
    results = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "load_before": [round(x, 2) for x in load_before],
               "options": {key: value for key, value in vars(options).items() if not isinstance(value, Path)},
               "layouts": layouts}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results)


if __name__ == "__main__":
    main()
