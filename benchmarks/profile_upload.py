"""Where an upload's web-tier CPU goes: the production-shaped web tier alone (gunicorn with
gunicorn.conf.py, PostgreSQL, Redis broker, no inference worker and no model, so images stay
pending), loaded through the API with single-file and 10-file uploads.

Reports web CPU-ms per image for both, then records the single-file load again under the
sampling profiler ``py-spy`` (gunicorn started by py-spy, so no ptrace permission is needed)
and prints the functions holding most samples, inclusive and own.

    .venv/bin/python benchmarks/profile_upload.py [--images 400] [--out var/bench/upload-profile.txt]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    PORT, ROOT, Client, cpu_seconds, log, manage, reset_services, stack_env, start, stop, wait_until_up,
)


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


def load(token: str, images: list[bytes], *, clients: int, per_request: int) -> None:
    requests = [images[i:i + per_request] for i in range(0, len(images), per_request)]

    def run(mine):
        client = Client(token)
        for files in mine:
            body, content_type = multipart_body(files=[("file", f"{n}.bmp", c) for n, c in enumerate(files)])
            code, answer = client.request("POST", "/api/v1/images/", body, {"Content-Type": content_type})
            if code not in (200, 201):
                raise SystemExit(f"upload refused ({code}): {answer}")

    threads = [threading.Thread(target=run, args=(requests[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def web_cpu_ms_per_image(env, work, token, images, *, per_request: int, clients: int) -> float:
    web = start(env, [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                      "steelqc.wsgi:application"], work / "web-profile.log")
    try:
        wait_until_up(token)
        load(token, images[:20], clients=1, per_request=1)  # warm up imports and connections
        before = cpu_seconds(session_ids=[web.pid])
        load(token, images[20:], clients=clients, per_request=per_request)
        return 1000 * (cpu_seconds(session_ids=[web.pid]) - before) / len(images[20:])
    finally:
        stop(web)


def top_functions(raw: Path, limit: int = 25) -> str:
    """Inclusive and own sample shares per function from py-spy's collapsed-stack output."""
    inclusive, own, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";")[1:]]
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(limit)]
    lines += ["", "own:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(limit)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "upload-profile.txt")
    options = parser.parse_args()

    work = ROOT / "var" / "bench"
    env = {**stack_env(work), "GUNICORN_BIND": f"127.0.0.1:{PORT}", "GUNICORN_WORKERS": "1"}
    reset_services(work)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    token = manage(env, "create_api_token", "bench", "--role", "integrator", "--create").strip().split()[-1]

    images = synthetic_bmps(3 * options.images + 60, seed=int(time.time()))
    single = web_cpu_ms_per_image(env, work, token, images[:options.images + 20], per_request=1, clients=options.clients)
    log(f"web CPU-ms per image, single-file uploads: {single:.2f}")
    multi = web_cpu_ms_per_image(env, work, token, images[options.images + 20:2 * options.images + 40], per_request=10,
                                 clients=options.clients)
    log(f"web CPU-ms per image, 10-file uploads: {multi:.2f}")

    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        log("py-spy is not installed (pip install py-spy): no profile")
        return
    raw = options.out.with_suffix(".collapsed")
    web = start(env, [spy, "record", "--subprocesses", "--rate", "250", "--format", "raw", "--output", str(raw),
                      "--", str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                      "steelqc.wsgi:application"], work / "web-pyspy.log")
    try:
        wait_until_up(token)
        load(token, images[2 * options.images + 40:], clients=options.clients, per_request=1)
        web.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        web.wait(timeout=60)
    finally:
        stop(web)
        try:
            os.killpg(web.pid, signal.SIGTERM)  # gunicorn, left running by py-spy
        except ProcessLookupError:
            pass
    report = (f"web CPU-ms per image: single-file {single:.2f}, 10-file {multi:.2f}\n\n"
              + top_functions(raw))
    options.out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
