"""Where an upload's web-tier CPU goes: the production-shaped web tier alone (gunicorn with
gunicorn.conf.py, PostgreSQL, Redis broker, no inference worker and no model, so images stay
pending), loaded through the API with single-file and 10-file uploads.

Three questions, one stack:

- CPU-ms per image in the web tier (gunicorn's processes), single-file and 10-file uploads;
  with ``--compare DIR`` the same is measured for another checkout (e.g. a worktree of the
  commit before a change) in alternating rounds, so before/after is a ratio within one run.
- Where it goes: the single-file load again under the sampling profiler ``py-spy`` (gunicorn
  started by py-spy, so no ptrace permission is needed); samples are attributed to components
  (authentication, role check, multipart parsing, image check, storage, INSERT, queueing,
  output, middleware, ...) by the innermost component frame on each stack.
- ``--configs 2x24,2x8,4x4,4x1`` (workers x threads, ``sync`` suffix for sync workers):
  throughput and CPU-ms per image of each gunicorn configuration under the same load, plus a
  mixed load (uploads beside clients that wait with ``?wait=`` and are never answered early,
  since no inference worker runs) to see whether waiters starve plain uploads.

    .venv/bin/python benchmarks/profile_upload.py [--images 400] [--rounds 3] [--compare DIR]
        [--configs 2x24,2x8,4x4] [--no-profile] [--out var/bench/upload-profile.txt]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    PORT, ROOT, Client, cpu_seconds, log, manage, reset_services, stack_env, stop, wait_until_up,
)

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def synthetic_bmps(count: int, *, seed: int) -> list[bytes]:
    """Distinct 200x200 grey BMPs (the NEU size)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8), "L").save(buffer, "BMP")
        out.append(buffer.getvalue())
    return out


class Images:
    """Hands out images never uploaded before (the same bytes would be a cheap duplicate)."""

    def __init__(self, seed: int):
        self.seed = seed

    def take(self, count: int) -> list[bytes]:
        self.seed += 1
        return synthetic_bmps(count, seed=self.seed)


def load(token: str, images: list[bytes], *, clients: int, per_request: int, wait: float = 0) -> float:
    """Uploads ``images`` from ``clients`` threads; returns the seconds it took."""
    requests = [images[i:i + per_request] for i in range(0, len(images), per_request)]
    query = f"?wait={wait}" if wait else ""
    failures = []

    def run(mine):
        client = Client(token)
        for files in mine:
            body, content_type = multipart_body(files=[("file", f"{n}.bmp", c) for n, c in enumerate(files)])
            code, answer = client.request("POST", f"/api/v1/images/{query}", body, {"Content-Type": content_type})
            if code not in (200, 201):
                failures.append(f"upload refused ({code}): {answer}")
                return

    threads = [threading.Thread(target=run, args=(requests[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(failures[0])
    return time.perf_counter() - started


def start_web(env: dict, work: Path, *, tree: Path = ROOT, prefix: list[str] = (), log_name: str = "web-profile.log",
              **gunicorn_env: str) -> subprocess.Popen:
    """gunicorn from ``tree`` (its own gunicorn.conf.py and code), bound to the benchmark port."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{PORT}", **gunicorn_env}
    return subprocess.Popen([*prefix, GUNICORN, "--config", str(tree / "gunicorn.conf.py"), "steelqc.wsgi:application"],
                            cwd=tree, env=env, stdout=(work / log_name).open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def web_cpu(env, work, token, images: Images, *, count: int, per_request: int, clients: int,
            tree: Path = ROOT, **gunicorn_env) -> dict:
    """CPU-ms per image in gunicorn's processes and images/s for ``count`` fresh images."""
    web = start_web(env, work, tree=tree, **gunicorn_env)
    try:
        wait_until_up(token)
        load(token, images.take(20), clients=1, per_request=1)  # warm up imports and connections
        batch = images.take(count)
        before = cpu_seconds(session_ids=[web.pid])
        seconds = load(token, batch, clients=clients, per_request=per_request)
        cpu = cpu_seconds(session_ids=[web.pid]) - before
        return {"cpu_ms_per_image": round(1000 * cpu / count, 2), "images_per_s": round(count / seconds, 1)}
    finally:
        stop(web)


# --- attributing profile samples to components ---------------------------------------------

def _middleware_name(path: str) -> str:
    return "middleware: " + "/".join(path.split("/")[-2:])


def _bare(function: str) -> str:
    """``Model.save`` -> ``save``; ``csrf_exempt.<locals>._view_wrapper`` -> ``_view_wrapper``."""
    return function.rsplit(".", 1)[-1]


# Component tests on (bare function name, file path as py-spy writes it: relative for installed
# packages). A sample belongs to the innermost frame that passes a SPECIFIC test; when none
# does, to the innermost frame that passes a GENERIC one (so a ``reverse()`` inside the output
# counts as output, not as URL resolving). Module imports win over both: first use, not per request.
SPECIFIC_RULES: list[tuple[str, object]] = [
    ("authentication (token lookup, user)", lambda f, p: f == "perform_authentication"
     or p.endswith(("inspections/api/authentication.py", "inspections/services/api_tokens.py"))),
    ("role check (groups query)", lambda f, p: f == "check_permissions"
     or p.endswith(("inspections/api/permissions.py", "inspections/roles.py"))),
    ("throttle", lambda f, p: f == "check_throttles"),
    ("multipart parsing", lambda f, p: p.endswith(("django/http/multipartparser.py", "rest_framework/parsers.py",
                                                   "django/core/files/uploadhandler.py", "inspections/api/parsers.py"))
     or (p.endswith("rest_framework/request.py") and f in ("_load_data_and_files", "_parse", "data"))),
    ("input and query serializers", lambda f, p: f in ("is_valid", "validated_data")),
    ("image check (Pillow open + decode, sha256)", lambda f, p: p.endswith("inspections/services/image_validation.py")),
    ("storage write", lambda f, p: p.endswith(("django/core/files/storage/base.py",
                                               "django/core/files/storage/filesystem.py"))),
    ("row INSERT", lambda f, p: f == "save" and p.endswith("django/db/models/base.py")),
    ("transaction (BEGIN, COMMIT)", lambda f, p: f in ("__enter__", "__exit__") and p.endswith("django/db/transaction.py")),
    ("queue publish (Celery, kombu, Redis)", lambda f, p: p.endswith("inspections/queueing.py")),
    ("?wait (Redis subscription, reads)", lambda f, p: f in ("prediction_wait", "images_await", "_after_wait")),
    ("output (serializer or hand-written)", lambda f, p: f in ("output", "_image_answer") and "inspections/api/" in p),
    ("JSON render", lambda f, p: p.endswith("rest_framework/renderers.py")),
]
GENERIC_RULES: list[tuple[str, object]] = [
    ("upload service, other", lambda f, p: p.endswith("inspections/services/images.py")),
    ("DRF dispatch (request wrapping, negotiation, finalize)", lambda f, p: p.startswith("rest_framework/")),
    ("upload view, other", lambda f, p: p.endswith("inspections/api/views.py")),
    ("Django URL resolving", lambda f, p: p.startswith("django/urls/")),
    ("Django handler (request, response, signals)", lambda f, p: p.startswith(("django/core/handlers/",
                                                                               "django/http/", "django/dispatch/",
                                                                               "django/db/__init__.py"))),
    ("middleware", lambda f, p: "middleware" in p or p.endswith(("steelqc/observability.py",
                                                                 "steelqc/security_headers.py",
                                                                 "inspections/auth_audit.py"))),
    ("gunicorn (HTTP parsing, sockets, threads)", lambda f, p: p.startswith("gunicorn/") or "/gunicorn/" in p),
]


def _frames(stack: str) -> list[tuple[str, str]]:
    """``[(function, file path)]`` root first, from py-spy's ``function (path:line)`` frames
    (the ``process ...`` elements that ``--subprocesses`` puts first are left out)."""
    out = []
    for frame in stack.split(";"):
        if frame.startswith("process "):
            continue
        function, _, where = frame.partition(" (")
        out.append((function, where.rsplit(":", 1)[0]))
    return out


def component_of(frames: list[tuple[str, str]]) -> str:
    if any(path.startswith("<frozen importlib") for _, path in frames):
        return "module imports (start-up, first use)"
    for rules in (SPECIFIC_RULES, GENERIC_RULES):
        for function, path in reversed(frames):
            for name, test in rules:
                if test(_bare(function), path):
                    return _middleware_name(path) if name == "middleware" else name
    return "other (outside a request)"


def profile_summary(raw: Path, limit: int = 25) -> dict:
    """Sample shares per component, and per function inclusive and own, from py-spy's raw output."""
    components, inclusive, own, total = collections.Counter(), collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = _frames(stack)
        n = int(count)
        total += n
        components[component_of(frames)] += n
        names = [f"{function} ({path.rsplit('/', 1)[-1]})" for function, path in frames]
        for name in set(names):
            inclusive[name] += n
        if names:
            own[names[-1]] += n
    share = (lambda counter, k: {f: round(n / max(total, 1), 4) for f, n in counter.most_common(k)})
    serving = total - components["module imports (start-up, first use)"]
    return {"samples": total, "components": share(components, 40), "inclusive": share(inclusive, limit),
            "own": share(own, limit),
            # Start-up imports are not per-request work: the shares of the rest are what an upload costs.
            "serving_shares": {f: round(n / max(serving, 1), 4) for f, n in components.most_common()
                               if f != "module imports (start-up, first use)"}}


def profile_single_uploads(env, work, token, images: Images, *, count: int, clients: int, raw: Path) -> dict:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    # --gil: only the thread holding the GIL is sampled, i.e. Python code running on a CPU, not
    # threads waiting for PostgreSQL, Redis or the next request.
    web = start_web(env, work, prefix=[spy, "record", "--subprocesses", "--gil", "--rate", "250", "--format", "raw",
                                       "--output", str(raw), "--"], log_name="web-pyspy.log")
    try:
        wait_until_up(token)
        load(token, images.take(20), clients=1, per_request=1)
        load(token, images.take(count), clients=clients, per_request=1)
        web.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        web.wait(timeout=60)
    finally:
        stop(web)
        try:
            os.killpg(web.pid, signal.SIGTERM)  # gunicorn, left running by py-spy
        except ProcessLookupError:
            pass
    return profile_summary(raw)


# --- gunicorn configurations ----------------------------------------------------------------

def parse_config(text: str) -> dict:
    """``2x24`` -> 2 gthread workers x 24 threads; ``4x1sync`` -> 4 sync workers."""
    sync = text.endswith("sync")
    workers, threads = text.removesuffix("sync").split("x")
    return {"GUNICORN_WORKERS": workers, "GUNICORN_THREADS": threads,
            "GUNICORN_WORKER_CLASS": "sync" if sync else "gthread"}


def mixed_load(env, work, token, images: Images, *, count: int, clients: int, waiters: int, wait: float,
               **gunicorn_env) -> dict:
    """``clients`` plain uploaders beside ``waiters`` clients uploading with ``?wait=`` (no
    inference worker runs, so each waits its full time): images/s of the plain uploads."""
    web = start_web(env, work, **gunicorn_env)
    stop_waiting = threading.Event()
    waited, refused = [], []
    plain = images.take(count)
    # Made before the load starts (not while it is measured); more than the load can use.
    per_waiter = [images.take(12) for _ in range(waiters)]

    def waiter(mine):
        client = Client(token)
        for content in mine:
            if stop_waiting.is_set():
                return
            code, _ = client.upload(content, "w.bmp", wait=wait)
            (waited if code in (200, 201) else refused).append(code)

    try:
        wait_until_up(token)
        load(token, images.take(20), clients=1, per_request=1)
        threads = [threading.Thread(target=waiter, args=(mine,)) for mine in per_waiter]
        for thread in threads:
            thread.start()
        time.sleep(wait / 2)  # the waiters hold their threads now
        seconds = load(token, plain, clients=clients, per_request=1)
        stop_waiting.set()
        for thread in threads:
            thread.join()
        return {"plain_images_per_s": round(count / seconds, 1), "waiting_uploads": len(waited),
                "waiting_refused_503": refused.count(503), "waiting_other_codes": len(refused) - refused.count(503)}
    finally:
        stop(web)


# --- the run --------------------------------------------------------------------------------

def compare_trees(env, work, token, images, options) -> dict:
    """Alternating rounds, this checkout against ``--compare``; ratios this/other per round."""
    rounds = {"this": {"single": [], "multi": []}, "other": {"single": [], "multi": []}}
    for number in range(options.rounds):
        for name, tree in (("this", ROOT), ("other", options.compare)) if number % 2 == 0 else (
                ("other", options.compare), ("this", ROOT)):
            for kind, per_request in (("single", 1), ("multi", 10)):
                result = web_cpu(env, work, token, images, count=options.images, per_request=per_request,
                                 clients=options.clients, tree=tree)
                rounds[name][kind].append(result["cpu_ms_per_image"])
                log(f"round {number + 1} {name} {kind}: {result}")
    out = {}
    for kind in ("single", "multi"):
        ratios = [a / b for a, b in zip(rounds["this"][kind], rounds["other"][kind])]
        out[kind] = {"this_ms": rounds["this"][kind], "other_ms": rounds["other"][kind],
                     "ratios": [round(r, 3) for r in ratios], "median_ratio": round(statistics.median(ratios), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="images per measurement")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, default=None, help="another checkout to measure against")
    parser.add_argument("--configs", default="", help="gunicorn configurations to compare, e.g. 2x24,2x8,4x4")
    parser.add_argument("--config-clients", type=int, default=16)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "upload-profile.json")
    options = parser.parse_args()

    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    env = {**stack_env(work), "GUNICORN_WORKERS": "1"}
    reset_services(work)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    token = manage(env, "create_api_token", "bench", "--role", "integrator", "--create").strip().split()[-1]
    images = Images(seed=int(time.time()))
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
                     "load_average_before": os.getloadavg(), "images": options.images, "clients": options.clients,
                     "gunicorn_workers": 1}

    if options.compare:
        results["compare"] = {"other": str(options.compare), **compare_trees(env, work, token, images, options)}
    else:
        for kind, per_request in (("single", 1), ("multi", 10)):
            results[kind] = web_cpu(env, work, token, images, count=options.images, per_request=per_request,
                                    clients=options.clients)
            log(f"{kind}: {results[kind]}")

    if options.configs:
        configs = {}
        for name in options.configs.split(","):
            gunicorn_env = parse_config(name)
            plain = web_cpu(env, work, token, images, count=options.images, per_request=1,
                            clients=options.config_clients, **gunicorn_env)
            multi = web_cpu(env, work, token, images, count=options.images, per_request=10,
                            clients=options.config_clients // 4 or 1, **gunicorn_env)
            mixed = mixed_load(env, work, token, images, count=options.images // 2, clients=4,
                               waiters=options.config_clients, wait=3, **gunicorn_env)
            configs[name] = {"single": plain, "multi": multi, "mixed": mixed}
            log(f"{name}: {configs[name]}")
        results["configs"] = configs

    if not options.no_profile:
        raw = options.out.with_suffix(".collapsed")
        results["profile"] = profile_single_uploads(env, work, token, images, count=options.images,
                                                    clients=options.clients, raw=raw)
        single_ms = (results.get("single") or {}).get("cpu_ms_per_image")
        if single_ms:
            results["profile"]["cpu_ms_per_upload"] = {
                f: round(share * single_ms, 2) for f, share in results["profile"]["serving_shares"].items()}
        log("components: " + json.dumps(results["profile"]["serving_shares"], indent=1))
    results["load_average_after"] = os.getloadavg()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
