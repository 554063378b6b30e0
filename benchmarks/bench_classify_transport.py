"""How classify/ hands image bytes to the inference worker: inside the broker message, or under a
short-lived Redis key with only the key in the message. Measures, through kombu's real Redis
transport (what Celery uses), the time from "web process has the bytes" to "worker has the
bytes" for a request of N 200x200 tiles, and the bytes each way puts through the broker.

    .venv/bin/python benchmarks/bench_classify_transport.py [--redis redis://127.0.0.1:6379/13] [--rounds 200]

Alternating rounds (A, B, A, B, ...) so machine load hits both alike; prints medians and ratio.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
import uuid

import numpy as np
import redis
from kombu import Connection
from PIL import Image


def tile(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:200, 0:200]
    pixels = np.clip(128 + 40 * np.sin(xs * 0.3 + rng.uniform(0, 6)) + rng.normal(0, 20, ys.shape), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()
    files = [tile(i) for i in range(args.files)]
    client = redis.Redis.from_url(args.redis)
    sizes: dict[str, int] = {}
    timings: dict[str, list[float]] = {"in-message": [], "redis-key": []}
    with Connection(args.redis) as connection:
        queue = connection.SimpleQueue(f"bench-classify-{uuid.uuid4().hex[:6]}")

        def in_message() -> None:
            body = {"items": [{"filename": f"{i}.png", "data": base64.b64encode(f).decode()} for i, f in enumerate(files)]}
            sizes["in-message"] = len(json.dumps(body))
            queue.put(body, serializer="json")
            message = queue.get(timeout=10)
            got = [base64.b64decode(item["data"]) for item in message.payload["items"]]
            message.ack()
            assert got == files

        def redis_key() -> None:
            request = uuid.uuid4().hex
            keys = [f"bench:classify:{request}:{i}" for i in range(len(files))]
            pipe = client.pipeline(transaction=False)
            for key, content in zip(keys, files):
                pipe.set(key, content, ex=70)
            pipe.execute()
            body = {"items": [{"filename": f"{i}.png", "key": key} for i, key in enumerate(keys)]}
            sizes["redis-key"] = len(json.dumps(body))
            queue.put(body, serializer="json")
            message = queue.get(timeout=10)
            pipe = client.pipeline(transaction=False)
            for item in message.payload["items"]:
                pipe.get(item["key"])
            pipe.delete(*[item["key"] for item in message.payload["items"]])
            got = pipe.execute()[:len(files)]
            message.ack()
            assert got == files

        for _ in range(10):  # warm-up
            in_message()
            redis_key()
        for _ in range(args.rounds):
            for name, run in (("in-message", in_message), ("redis-key", redis_key)):
                started = time.perf_counter()
                run()
                timings[name].append((time.perf_counter() - started) * 1000)
        queue.clear()
        queue.close()
    print(f"{args.files} tiles of 200x200 px PNG, {sum(map(len, files)) // args.files} bytes each, {args.rounds} rounds")
    for name, values in timings.items():
        print(f"{name:11s} median {statistics.median(values):7.2f} ms  p90 {np.percentile(values, 90):7.2f} ms  "
              f"JSON message body {sizes[name]:8d} bytes")
    ratio = statistics.median(timings["in-message"]) / statistics.median(timings["redis-key"])
    print(f"in-message / redis-key median time: {ratio:.2f}")


if __name__ == "__main__":
    main()
