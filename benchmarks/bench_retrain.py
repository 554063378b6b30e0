"""End-to-end retraining check: an empty installation, the NEU images imported, a model trained
and promoted through the REST API — what an ML admin does on day one.

Reports the import time, the wall time from `POST /api/v1/training-runs/` to the version going
live, the phases the run went through, and the active version's test metrics.

    make bench-retrain          # or: .venv/bin/python benchmarks/bench_retrain.py --help
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.stack import (  # noqa: E402
    ROOT, Client, fresh_installation, log, replace_doc_section, start_web, start_worker, stop, wait_until_up,
)


def follow_run(client: Client, run_id: int, timeout: float) -> tuple[dict, list[tuple[float, str, float]]]:
    """Poll the run until it ends; returns its final state and (seconds, phase, progress) changes."""
    started, timeline, last = time.monotonic(), [], None
    while time.monotonic() - started < timeout:
        code, run = client.request("GET", f"/api/v1/training-runs/{run_id}/")
        if code != 200:
            raise SystemExit(f"GET training-runs/{run_id}/ answered {code}: {run}")
        if run["phase"] != last:
            last = run["phase"]
            timeline.append((round(time.monotonic() - started, 1), run["phase"], round(run["progress"], 3)))
            log(f"{timeline[-1]}")
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run, timeline
        time.sleep(1.0)
    raise SystemExit(f"run {run_id} did not finish within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "neu-cls")
    parser.add_argument("--timeout", type=float, default=1800)
    options = parser.parse_args()
    if not options.data.is_dir():
        raise SystemExit(f"no dataset at {options.data}")

    work = ROOT / "var" / "bench-retrain"
    installation = fresh_installation(work, user="admin-bench", role="ml_admin", import_dir=options.data)
    env, token, import_s = installation.env, installation.token, installation.import_s

    web = start_web(env, work)
    workers = [start_worker(env, work, queue="training"), start_worker(env, work, queue="inference")]
    try:
        wait_until_up(token)
        client = Client(token)
        requested = time.time()
        code, run = client.request("POST", "/api/v1/training-runs/", json.dumps({"parameters": {}}).encode(),
                                   {"Content-Type": "application/json"})
        if code != 202:
            raise SystemExit(f"POST training-runs/ answered {code}: {run}")
        log(f"run {run['id']} queued on snapshot {run['snapshot']}")
        run, timeline = follow_run(client, run["id"], options.timeout)
        if run["status"] != "succeeded":
            raise SystemExit(f"run ended {run['status']}: {run['error']}")
        code, version = client.request("GET", f"/api/v1/model-versions/{run['model_version']}/")
    finally:
        stop(web)
        for worker in workers:
            stop(worker)

    promoted_at = datetime.fromisoformat(version["promoted_at"].replace("Z", "+00:00")).timestamp()
    metrics = version["metrics"]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "import_s": round(import_s, 1),
        "run": run["id"],
        "parameters": run["parameters"],
        "status": run["status"],
        "version": version["number"],
        "version_status": version["status"],
        "backbone": version["backbone"],
        "weight_source": version["weight_source"],
        "request_to_promotion_s": round(promoted_at - requested, 1),
        "timeline": timeline,
        "test_accuracy": metrics.get("accuracy"),
        "test_macro_f1": metrics.get("macro_f1"),
        "test_images": (run["gate_decision"] or {}).get("test_images"),
        "gate_reasons": (run["gate_decision"] or {}).get("reasons"),
    }
    out = ROOT / "benchmarks" / "results" / "retrain.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    write_report(results)
    log(f"wrote {out}")


def write_report(results: dict) -> None:
    timeline = results["timeline"]
    first_seen: dict[str, float] = {}
    for seconds, phase, _ in timeline:
        first_seen.setdefault((phase or "queued").split()[0], seconds)
    phases = ", ".join(f"{phase} at {seconds:.0f} s" for phase, seconds in first_seen.items())
    weights = results["weight_source"]
    block = "\n".join([
        "## End-to-end retraining (`make bench-retrain`)",
        "",
        f"Command: `make bench-retrain` — {results['date']}. Raw JSON: `benchmarks/results/retrain.json`.",
        "",
        "An empty installation on the production-shaped stack (PostgreSQL, Redis, gunicorn, one training and one "
        "inference worker on loopback): `import_dataset` of the NEU folder, then `POST /api/v1/training-runs/` "
        "with default parameters by an `ml_admin` token, followed through `GET /api/v1/training-runs/{id}/`.",
        "",
        "| step | result |",
        "|---|---|",
        f"| import of 1,440 NEU files | {results['import_s']:.1f} s (1,439 images; one byte-identical pair) |",
        f"| request → version live (promoted) | **{results['request_to_promotion_s']:.0f} s** |",
        f"| phases seen | {phases} |",
        f"| version | v{results['version']} `{results['backbone']}`, weights {weights.get('kind')} "
        f"`{weights.get('file')}` |",
        f"| test split (frozen snapshot) | {results['test_images']} images: accuracy **{results['test_accuracy']:.4f}**, "
        f"macro-F1 {results['test_macro_f1']:.4f} |",
        f"| gate | {'; '.join(results['gate_reasons'] or [])} |",
        "",
        "Training shares the machine's 2 cores with the web server and the inference worker.",
    ])
    log(f"wrote {replace_doc_section('bench-retrain', block)}")


if __name__ == "__main__":
    main()
