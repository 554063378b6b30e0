"""Line bridge benchmark: camera folders in, MQTT out, on a fresh production-shaped stack
(PostgreSQL, Redis, the line worker, a private Mosquitto with persistence, ``manage.py
line_bridge`` with production settings).

A writer in this process drops unique NEU tiles (and a few foreign crops) into the sources'
folders the safe way (written under a temporary name, renamed into place; the bridge runs with
``STEELQC_BRIDGE_SETTLE_S=0``), and a persistent-session QoS 1 subscriber records every result on
``steelqc/+/result``. Measured:

- files/s through the folder inlet with 1, 2 and 4 sources, each given a backlog at once, and the
  CPU-ms per frame per tier (bridge, line worker, PostgreSQL backends, Redis, Mosquitto);
- folder -> MQTT result latency p50/p95 at a steady paced rate (rename to the subscriber's receipt);
- a broker restart (SIGTERM, down for a few seconds, started again) and a bridge restart (SIGTERM,
  and SIGKILL) in the middle of a paced stream: results lost and results received twice, and
  frames classified twice (the line counts against the files dropped).

    make bench-bridge             # or: .venv/bin/python benchmarks/bench_bridge.py --help
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

# Its own port, database and Redis DB by default, so it can run beside the other benchmarks.
os.environ.setdefault("STEELQC_BENCH_PORT", "8770")
os.environ.setdefault("STEELQC_BENCH_DB", "steelqc_bench_bridge")
os.environ.setdefault("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/12")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

import paho.mqtt.client as paho  # noqa: E402
import psycopg  # noqa: E402

from benchmarks.bench_line import CpuMeter, _proc_cpu, make_tiles  # noqa: E402
from benchmarks.bench_mixed import ensure_quick_model  # noqa: E402
from benchmarks.bench_serve import percentile  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    BENCH_DB, PY, ROOT, fresh_installation, log, replace_doc_section, start, start_worker, stop,
)
from tests.mosquitto import PrivateBroker  # noqa: E402

MARK = "bench-bridge"
DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results" / "bridge.json"
SOURCES = ("cam-1", "cam-2", "cam-3", "cam-4")


class ResultWatcher:
    """Every result the broker delivers: sha256 -> receipt times (epoch s)."""

    def __init__(self, port: int):
        self.received: dict[str, list[float]] = {}
        self.redelivered: dict[str, int] = {}
        self.lock = threading.Lock()
        ready = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{uuid.uuid4().hex[:6]}",
                             clean_session=False)
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.on_connect = lambda c, *a: c.subscribe("steelqc/+/result", qos=1)
        client.on_subscribe = lambda *a: ready.set()
        client.on_message = self._message
        client.connect("127.0.0.1", port)
        client.loop_start()
        if not ready.wait(10):
            raise SystemExit("the subscriber could not subscribe")
        self.client = client

    def _message(self, client, userdata, message) -> None:
        sha = json.loads(message.payload)["sha256"]
        with self.lock:
            self.received.setdefault(sha, []).append(time.time())
            # A broker sends a message again with DUP set when its subscriber's acknowledgement did
            # not reach it (QoS 1, its restart); a publisher's DUP is never passed on, so a repeat
            # without it was published twice.
            if message.dup:
                self.redelivered[sha] = self.redelivered.get(sha, 0) + 1

    def have(self, shas) -> int:
        with self.lock:
            return sum(1 for sha in shas if sha in self.received)

    def wait_for(self, shas, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.have(shas) == len(shas):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Writer:
    """Drops tiles into source folders, each under a temporary name then renamed into place."""

    def __init__(self, folders: dict[str, Path], tiles: list[tuple[str, bytes, str]]):
        self.folders, self.tiles, self.next = folders, tiles, 0
        self.dropped: dict[str, float] = {}  # sha256 -> rename time

    def drop(self, source: str) -> str:
        name, content, _ = self.tiles[self.next]
        self.next += 1
        sha = hashlib.sha256(content).hexdigest()
        folder = self.folders[source]
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(content)
        os.rename(temporary, folder / name)
        self.dropped[sha] = time.time()
        return sha

    def paced(self, *, sources: list[str], rate: float, seconds: float, events: dict[float, callable]) -> list[str]:
        """Drop ``rate`` files per second round-robin over ``sources`` for ``seconds``; at each
        time (s from the start) in ``events`` call its function (a restart) without pausing."""
        shas, began, index = [], time.monotonic(), 0
        pending = sorted(events.items())
        threads = []
        while (elapsed := time.monotonic() - began) < seconds:
            while pending and pending[0][0] <= elapsed:
                threads.append(threading.Thread(target=pending.pop(0)[1]))
                threads[-1].start()
            shas.append(self.drop(sources[index % len(sources)]))
            index += 1
            time.sleep(max(0.0, began + index / rate - time.monotonic()))
        for thread in threads:
            thread.join()
        return shas


def line_seen(sources) -> int:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}") as conn:
        return int(conn.execute("SELECT coalesce(sum(seen), 0) FROM inspections_lineminute WHERE source = ANY(%s)",
                                [list(sources)]).fetchone()[0])


class Bridge:
    def __init__(self, env: dict, work: Path):
        self.env, self.work, self.process, self.starts = env, work, None, 0

    def start(self) -> None:
        self.starts += 1
        self.process = start(self.env, [PY, "manage.py", "line_bridge"], self.work / f"bridge-{self.starts}.log")

    def stop(self, sig: int = signal.SIGTERM) -> float:
        began = time.monotonic()
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=60)
        return time.monotonic() - began


def restart_phase(name: str, *, writer: Writer, watcher: ResultWatcher, sources: list[str], rate: float,
                  seconds: float, events: dict, settle_timeout: float) -> dict:
    seen_before = line_seen(SOURCES)
    log(f"{name}: {rate:g} files/s over {len(sources)} sources for {seconds:g} s")
    shas = writer.paced(sources=sources, rate=rate, seconds=seconds, events=events)
    complete = watcher.wait_for(shas, settle_timeout)
    time.sleep(2)  # a late repeat would show here
    receipts = [len(watcher.received.get(sha, [])) for sha in shas]
    latencies = [(watcher.received[sha][0] - writer.dropped[sha]) * 1000 for sha in shas if sha in watcher.received]
    duplicated = sum(n - 1 for n in receipts if n > 1)
    redelivered = sum(watcher.redelivered.get(sha, 0) for sha in shas)
    return {"files": len(shas), "results_received": sum(receipts), "lost": sum(1 for n in receipts if n == 0),
            "duplicated": duplicated, "redelivered_by_broker": redelivered,
            "published_twice": duplicated - redelivered, "complete_within_timeout": complete,
            "classified_twice": line_seen(SOURCES) - seen_before - len(shas),
            "latency_ms": {"p50": round(percentile(latencies, 50)), "p95": round(percentile(latencies, 95)),
                           "max": round(max(latencies)) if latencies else None}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATASETS / "neu-cls")
    parser.add_argument("--foreign-data", type=Path, default=DATASETS / "cr7-det" / "images")
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "mixed-model")
    parser.add_argument("--backlog", type=int, default=240, help="files dropped at once per throughput phase")
    parser.add_argument("--sources", default="1,2,4", help="source counts of the throughput phases")
    parser.add_argument("--rate", type=float, default=4.0, help="files/s of the paced phases")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each paced phase")
    parser.add_argument("--down-s", type=float, default=6.0, help="how long the broker / bridge is away")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the docs section from benchmarks/results/bridge.json, measure nothing")
    options = parser.parse_args()
    if options.report_only:
        write_report(json.loads(RESULTS.read_text()))
        return
    load_before = os.getloadavg()
    counts = [int(n) for n in options.sources.split(",")]
    ensure_quick_model(options.model, options.data)
    pool = len(SOURCES) + options.backlog * len(counts) + int(options.rate * options.seconds * 4) + 200
    log(f"making {pool} unique tiles")
    tiles = make_tiles(neu=options.data, cr7=options.foreign_data, count=pool, foreign_share=0.03, seed=29)
    work = ROOT / "var" / "bench-bridge"
    installation = fresh_installation(work, user="bridge-bench", role="integrator", model_dir=options.model)
    folders = {source: work / "in" / source for source in SOURCES}
    for folder in folders.values():
        if folder.parent.exists() and folder.exists():
            for path in folder.rglob("*"):
                if path.is_file():
                    path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    broker = PrivateBroker(work / "mosquitto")
    broker.start()
    env = {**installation.env, "STEELQC_BRIDGE_FOLDERS": ",".join(f"{s}={f}" for s, f in folders.items()),
           "STEELQC_BRIDGE_SETTLE_S": "0", "STEELQC_MQTT_URL": broker.url, "STEELQC_MQTT_CLIENT_ID": "bench-bridge"}
    worker = start_worker(installation.env, work, queue="line")
    bridge = Bridge(env, work)
    bridge.start()
    watcher = ResultWatcher(broker.port)
    writer = Writer(folders, tiles)
    results: dict = {}
    try:
        log("warm-up: one file per source (the line worker loads the model)")
        if not watcher.wait_for([writer.drop(source) for source in SOURCES], timeout=300):
            raise SystemExit("no results in 300 s; see var/bench-bridge/*.log")
        results["throughput"] = []
        for n in counts:
            sources = list(SOURCES[:n])
            meter = CpuMeter(web=bridge.process.pid, workers=[worker.pid])
            mosquitto_before = _proc_cpu(broker.process.pid)[1]
            meter.start()
            began = time.time()
            shas = [writer.drop(sources[i % n]) for i in range(options.backlog)]
            if not watcher.wait_for(shas, timeout=600):
                raise SystemExit(f"the {n}-source backlog was not through in 600 s")
            wall = max(watcher.received[sha][0] for sha in shas) - began
            cpu = meter.finish()
            cpu["mosquitto"] = _proc_cpu(broker.process.pid)[1] - mosquitto_before
            cpu["bridge"] = cpu.pop("gunicorn")  # the meter's first session is the bridge process here
            per_frame = {tier: round(1000 * seconds / len(shas), 2) for tier, seconds in cpu.items()}
            per_frame["total"] = round(sum(per_frame.values()), 2)
            results["throughput"].append({"sources": n, "files": len(shas), "wall_s": round(wall, 2),
                                          "files_per_s": round(len(shas) / wall, 1), "cpu_ms_per_frame": per_frame})
            log(f"{n} source(s): {results['throughput'][-1]}")
        paced = dict(writer=writer, watcher=watcher, sources=list(SOURCES[:2]), rate=options.rate,
                     seconds=options.seconds, settle_timeout=120)
        results["steady"] = restart_phase("steady", events={}, **paced)

        def broker_restart():
            broker.stop()
            time.sleep(options.down_s)
            broker.start()

        results["broker_restart"] = restart_phase("broker restart", events={options.seconds / 3: broker_restart},
                                                  **paced)
        stop_times = {}

        def bridge_restart(sig: int):
            def restart():
                stop_times[sig] = round(bridge.stop(sig), 2)
                time.sleep(options.down_s)
                bridge.start()
            return restart

        results["bridge_restart"] = restart_phase("bridge restart (SIGTERM)",
                                                  events={options.seconds / 3: bridge_restart(signal.SIGTERM)},
                                                  **paced)
        results["bridge_restart"]["stop_s"] = stop_times.get(signal.SIGTERM)
        results["bridge_kill"] = restart_phase("bridge killed (SIGKILL)",
                                               events={options.seconds / 3: bridge_restart(signal.SIGKILL)}, **paced)
    finally:
        watcher.close()
        if bridge.process.poll() is None:
            bridge.stop()
        stop(worker)
        broker.stop()
    results.update({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "settings": {"STEELQC_BRIDGE_SETTLE_S": 0, "STEELQC_BRIDGE_POLL_S": 0.5, "STEELQC_BRIDGE_BATCH": 8,
                     "line_workers": 1},
    })
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_report(results)
    log(f"wrote {RESULTS}")


def write_report(results: dict) -> None:
    load = results["load_average"]
    rows = "\n".join(
        f"| {row['sources']} | {row['files']} | {row['wall_s']} | **{row['files_per_s']}** | "
        f"{row['cpu_ms_per_frame']['bridge']} / {row['cpu_ms_per_frame']['worker']} / "
        f"{row['cpu_ms_per_frame']['postgres']} / {row['cpu_ms_per_frame']['redis']} / "
        f"{row['cpu_ms_per_frame']['mosquitto']} | {row['cpu_ms_per_frame']['total']} |"
        for row in results["throughput"])
    phases = [("steady stream", results["steady"]), ("broker restart (SIGTERM, down "
               f"{results['options']['down_s']:g} s)", results["broker_restart"]),
              (f"bridge restart (SIGTERM, stopped in {results['bridge_restart'].get('stop_s')} s, down "
               f"{results['options']['down_s']:g} s)", results["bridge_restart"]),
              (f"bridge killed (SIGKILL, down {results['options']['down_s']:g} s)", results["bridge_kill"])]
    phase_rows = "\n".join(
        f"| {name} | {p['files']} | {p['results_received']} | **{p['lost']}** | **{p['duplicated']}** | "
        f"{p['redelivered_by_broker']} | **{p['published_twice']}** | {p['classified_twice']} | {p['latency_ms']['p50']} | {p['latency_ms']['p95']} | {p['latency_ms']['max']} |"
        for name, p in phases)
    options = results["options"]
    block = f"""## The line bridge: camera folders in, MQTT out (`make bench-bridge`)

Command: `make bench-bridge` — run on {results['machine']}, {results['date']}. Raw JSON:
`benchmarks/results/bridge.json`. The machine's 2 cores were shared with other work (1-minute load
average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after): absolute rates are lower bounds.

Fresh stack on loopback: PostgreSQL, Redis, one line worker (the model `{Path(options['model']).name}`:
EfficientNet-Lite0 at 192 px trained on NEU), a private Mosquitto with persistence, and
`manage.py line_bridge` with production settings watching {len(SOURCES)} folders
(`STEELQC_BRIDGE_SETTLE_S=0`: the writer renames finished files into place; polling every 0.5 s;
up to 8 files per classify request). The tiles are unique NEU tiles and their mirror images with 3 %
foreign crops of another line's images; a persistent QoS 1 subscriber receives every result.

**Throughput**: a backlog of {options['backlog']} files dropped at once, from the first drop to the
last result received; CPU-ms per frame by tier (bridge / line worker / PostgreSQL / Redis / Mosquitto):

| sources | files | s | files/s | CPU-ms per frame | total |
|---|---:|---:|---:|---|---:|
{rows}

**Latency and restarts**: {options['rate']:g} files/s paced over 2 sources for {options['seconds']:g} s per
row; the restart happens a third of the way in, the stream goes on meanwhile. Latency = the file
renamed into the folder → its result received by the subscriber (includes up to one 0.5 s poll).
"Classified twice" compares the line counts with the files dropped.

| phase | files | results received | lost | received twice | of which the broker's redelivery (DUP) | published twice by the bridge | classified twice | p50 ms | p95 ms | max ms |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{phase_rows}

"Received twice" splits by the MQTT DUP flag: a broker that restarts sends again, with DUP set,
what it had sent its subscriber without seeing the acknowledgement (QoS 1 is at least once between
broker and subscriber; a subscriber recognises the repeat by `sha256`), while a publisher's DUP is
never passed on, so a repeat without it would mean the bridge published a result twice.

A broker restart holds results in the bridge's outbox (and the broker's persisted session holds them
for the subscriber) until both are back; a bridge restart finishes the batch it was waiting for under
the same idempotency key, so the line worker's answer is used once and nothing is counted twice. The
restart rows' maximum latency is the outage itself."""
    replace_doc_section(MARK, block)


if __name__ == "__main__":
    main()
