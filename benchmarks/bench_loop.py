"""The learning loop measured as it will run: many rounds of continuous learning on NEU, on the
production-shaped stack, with beat starting every retraining by itself.

Set-up (the only part not done through the API): an empty installation (PostgreSQL, Redis DB,
gunicorn with production settings, an inference worker, a training worker and Celery beat, the
periodic jobs created by `manage.py ensure_periodic_tasks` with the continuous-learning check
every `--check-interval` seconds and `STEELQC_RETRAIN_MIN_NEW_LABELS` = one round's reviews of the
old classes), a seed set of five NEU classes imported, v1 trained with `POST training-runs/`,
per-class thresholds set on v1 with `PATCH model-versions/{id}/thresholds/`.

Then each round a simulated QA person uploads images the platform has not seen, waits for their
predictions and reviews them with `POST reviews/bulk/`; the scheduled check starts a training run
(never started by hand) and the gate promotes or refuses its candidate. The rounds follow a
known plan: good rounds (correct labels, more data); careless rounds (a reviewer mislabels a
share of one class's new images; the next round's reviewer corrects them); an exclusion round
(every image of one class excluded, so the candidate no longer knows it; included again the next
round); a round with nothing to review (no run may start); and from one round on a new class
(`POST classes/`) whose images arrive a few per round: it must stay *collecting* until it has
enough images, then go live.

Measured per round: images reviewed, the run and its gate decision with the gate's evidence,
accuracy and per-class recall of the active version (and of a refused candidate) on a fixed
evaluation set that is never uploaded (the versions' artefacts are downloaded through
`GET model-versions/{id}/artefacts/{name}/` and predicted here with mlcore), the new class's
`status` / `images_needed` from `GET classes/`, whether an upload with `?wait=10` made while the
run was training got its prediction, and whether v1's thresholds are still in force. Finally the
gate's recorded paired counts are decided again with `mlcore.gate.decide` under a grid of gate
rules, to choose the gate's defaults from the simulation.

    make bench-loop                                   # 14 rounds, figures into docs/benchmarks.md
    .venv/bin/python benchmarks/bench_loop.py --plan good,exclude,nothing --seed-per-class 20 \\
        --eval-per-class 8 --new-per-class 4 --out /tmp/loop-smoke.json --no-docs   # a quick try
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

os.environ.setdefault("STEELQC_BENCH_PORT", "8791")
os.environ.setdefault("STEELQC_BENCH_DB", "steelqc_bench_loop")
os.environ.setdefault("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    PORT, PY, ROOT, Client, fresh_installation, log, manage, replace_doc_section, start, start_web, start_worker,
    stop, wait_until_up,
)

DATASETS = ROOT.parent / "shared" / "datasets"
NEW_CLASS_SOURCE = "scratches"   # the NEU folder that arrives later as a new class ...
NEW_CLASS = "new_scratches"      # ... under a new name (the installation already ships "scratches")
CARELESS = (("inclusion", "pitted_surface"), ("rolled-in_scale", "crazing"))  # (class, wrong label), in turn
EXCLUDED_CLASS = "crazing"
THRESHOLDS = {"crazing": 0.8, "inclusion": 0.85}  # set on v1 by an ML admin
DEFAULT_PLAN = ("good,good,good,good,careless,good,nothing,good,good,exclude,good,careless,good,good")
HARMFUL = ("careless", "exclude")
TRAINING_DEFAULTS = {"finetune": "off", "head_epochs": 40, "head_patience": 6, "augmented_views": 2,
                     "time_budget_s": 120, "detection": "off", "serving_int8": False}
DOWNLOADED = ("model.keras", "classes.json", "config.json", "ood.npz", "serving.tflite", "serving_int8.tflite")
TERMINAL = ("succeeded", "failed", "cancelled")
JSON_HEADERS = {"Content-Type": "application/json"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the data ---------------------------------------------------------------------------------

@dataclass
class DataPlan:
    import_dir: Path
    evaluation: list[tuple[Path, str]]           # (file, true class): never uploaded, never trained on
    probes: list[Path]                           # uploaded one per training run, then excluded
    stream: dict[str, list[Path]]                # per class (platform name): the images rounds upload
    sizes: dict = field(default_factory=dict)


def plan_data(*, neu: Path, work: Path, seed: int, seed_per_class: int, eval_per_class: int,
              probes_per_class: int) -> DataPlan:
    """Byte-identical files (NEU has a pair) count as one image and stay on one side."""
    rng = random.Random(seed)
    import_dir = work / "import"
    shutil.rmtree(import_dir, ignore_errors=True)
    evaluation, probes, stream, sizes = [], [], {}, {}
    for class_dir in sorted(p for p in neu.iterdir() if p.is_dir()):
        unique = {}
        for path in sorted(class_dir.iterdir()):
            unique.setdefault(sha256(path), path)
        files = sorted(unique.values())
        rng.shuffle(files)
        name = NEW_CLASS if class_dir.name == NEW_CLASS_SOURCE else class_dir.name
        evaluation += [(p, name) for p in files[:eval_per_class]]
        rest = files[eval_per_class:]
        if class_dir.name != NEW_CLASS_SOURCE:
            (import_dir / name).mkdir(parents=True)
            for path in rest[:seed_per_class]:
                (import_dir / name / path.name).symlink_to(path.resolve())
            probes += rest[seed_per_class:seed_per_class + probes_per_class]
            rest = rest[seed_per_class + probes_per_class:]
        stream[name] = rest
        sizes[name] = {"unique": len(files), "evaluation": eval_per_class,
                       "seed": 0 if name == NEW_CLASS else seed_per_class, "stream": len(rest)}
    rng.shuffle(probes)
    return DataPlan(import_dir=import_dir, evaluation=evaluation, probes=probes, stream=stream, sizes=sizes)


# --- the API, as a QA person and an ML admin use it -------------------------------------------

def call(client, method: str, path: str, payload: dict | None = None, ok=(200, 201, 202)):
    body = None if payload is None else json.dumps(payload).encode()
    code, answer = client.request(method, f"/api/v1/{path}", body, JSON_HEADERS if body else None)
    if code not in ok:
        raise SystemExit(f"{method} {path} answered {code}: {json.dumps(answer)[:800]}")
    return answer


def listed(answer):
    return answer["results"] if isinstance(answer, dict) and "results" in answer else answer


def list_all(client, query: str) -> list[dict]:
    items, page = [], 1
    while True:
        answer = call(client, "GET", f"images/?{query}&page_size=200&page={page}")
        items += answer["results"]
        if not answer["next"]:
            return items
        page += 1


def upload(client, entries: list[tuple[Path, str]], *, source: str, batch: int = 10) -> list[tuple[dict, str]]:
    """Multi-file uploads; (image, true class) for each file, in order."""
    out = []
    for start_at in range(0, len(entries), batch):
        chunk = entries[start_at:start_at + batch]
        body, content_type = multipart_body(files=[("file", path.name, path.read_bytes()) for path, _ in chunk],
                                            fields={"source": source})
        code, answer = client.request("POST", "/api/v1/images/", body, {"Content-Type": content_type})
        if code not in (200, 201):
            raise SystemExit(f"upload answered {code}: {answer}")
        for (path, truth), result in zip(chunk, answer["results"]):
            if "error" in result or not result["created"]:
                raise SystemExit(f"{path.name} was not a new image: {result}")
            out.append((result["image"], truth))
    return out


def wait_for_predictions(client, source: str, expected: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        images = list_all(client, f"source={source}")
        if len(images) == expected and all(image["status"] in ("predicted", "failed") for image in images):
            return images
        time.sleep(1.0)
    raise SystemExit(f"the predictions of {source} did not arrive within {timeout:.0f} s")


def bulk(client, images: list[dict], decision: dict) -> int:
    """One bulk decision; every image must be decided."""
    if not images:
        return 0
    answer = call(client, "POST", "reviews/bulk/",
                  {"images": [{"id": i["id"], "label_version": i["label_version"]} for i in images], **decision})
    if answer["failed"]:
        raise SystemExit(f"bulk {decision} failed for some images: {answer['results']}")
    return answer["decided"]


def class_states(client) -> dict[str, dict]:
    return {c["name"]: {key: c.get(key) for key in ("status", "images_needed")}
            for c in listed(call(client, "GET", "classes/?page_size=200"))}


def active_version(client) -> dict | None:
    versions = listed(call(client, "GET", "model-versions/?page_size=200"))
    return next((v for v in versions if v["status"] == "active"), None)


def thresholds_in_force(client, version: dict) -> dict:
    """v1's thresholds as the active version has them now; a class it lacks counts as lost."""
    answer = call(client, "GET", f"model-versions/{version['id']}/thresholds/")
    now = {c["name"]: c["threshold"] for c in answer["classes"]}
    lost = sorted(name for name, value in THRESHOLDS.items() if abs(now.get(name, -1.0) - value) > 1e-9)
    return {"values": {name: now.get(name) for name in THRESHOLDS}, "lost": lost}


# --- the scheduled check ----------------------------------------------------------------------

class BeatWatch:
    """Knows when the continuous-learning check last ran (the inference worker's log), so that a
    round's decisions all land between two checks and a run never freezes half a round."""

    TASK = "start_training_if_due"

    def __init__(self, log_path: Path):
        self.log_path = log_path

    def checks_done(self) -> int:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if self.TASK in line and "succeeded" in line)

    def just_after_a_check(self, timeout: float) -> bool:
        seen, deadline = self.checks_done(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.checks_done() > seen:
                return True
            time.sleep(0.2)
        return False


def newest_run(client) -> dict | None:
    runs = listed(call(client, "GET", "training-runs/?page_size=5"))
    return max(runs, key=lambda r: r["id"]) if runs else None


def wait_for_new_run(client, after_id: int, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = newest_run(client)
        if run and run["id"] > after_id:
            return run
        time.sleep(1.0)
    return None


def follow_run(client, run_id: int, *, probe: Path | None, timeout: float) -> tuple[dict, dict | None]:
    """Poll the run to its end; once it is training, upload ``probe`` with ?wait=10."""
    began, answered = time.monotonic(), None
    while time.monotonic() - began < timeout:
        run = call(client, "GET", f"training-runs/{run_id}/")
        if run["status"] in TERMINAL:
            return run, answered
        if run["status"] == "running" and run["phase"] and probe is not None and answered is None:
            answered = probe_upload(client, probe, run_id)
        time.sleep(1.0)
    raise SystemExit(f"run {run_id} did not finish within {timeout:.0f} s")


def probe_upload(client, path: Path, run_id: int) -> dict:
    phase = call(client, "GET", f"training-runs/{run_id}/")["phase"]
    began = time.monotonic()
    code, image = client.upload(path.read_bytes(), path.name, source="probe", wait=10)
    seconds = time.monotonic() - began
    after = call(client, "GET", f"training-runs/{run_id}/")
    result = {"file": path.name, "code": code, "seconds": round(seconds, 2), "phase": phase,
              "status": image.get("status") if isinstance(image, dict) else None,
              "run_status_after": after["status"], "image": image.get("id") if isinstance(image, dict) else None,
              "label_version": image.get("label_version") if isinstance(image, dict) else None}
    result["answered"] = code in (200, 201) and result["status"] == "predicted" and after["status"] == "running"
    log(f"probe during run {run_id} ({phase}): {result['status']} in {seconds:.1f} s")
    return result


# --- the fixed evaluation set -----------------------------------------------------------------

class Evaluation:
    """Scores model versions on the evaluation files with their downloaded artefacts."""

    def __init__(self, client, token: str, files: list[tuple[Path, str]], folder: Path):
        self.client, self.token, self.files, self.folder = client, token, files, folder
        self.cache: dict[int, dict] = {}
        self.images = None

    def download(self, version_id: int) -> Path:
        folder = self.folder / f"version-{version_id}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        names = {a["name"] for a in listed(call(self.client, "GET", f"model-versions/{version_id}/artefacts/"))}
        for name in DOWNLOADED:
            if name not in names:
                continue
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
            connection.request("GET", f"/api/v1/model-versions/{version_id}/artefacts/{name}/",
                               headers={"Authorization": f"Token {self.token}"})
            response = connection.getresponse()
            if response.status != 200:
                raise SystemExit(f"artefact {name} of version {version_id} answered {response.status}")
            with (folder / name).open("wb") as handle:
                shutil.copyfileobj(response, handle)
            connection.close()
        return folder

    def score(self, version_id: int) -> dict:
        if version_id not in self.cache:
            from mlcore.inference import Classifier
            from mlcore.io import load_image

            if self.images is None:
                self.images = [load_image(path) for path, _ in self.files]
            classifier = Classifier.load(self.download(version_id))
            predicted = [result.label for result in classifier.predict(self.images)]
            truths = [truth for _, truth in self.files]
            recall = {}
            for name in sorted(set(truths)):
                rows = [p for p, t in zip(predicted, truths) if t == name]
                recall[name] = round(sum(p == name for p in rows) / len(rows), 4)
            self.cache[version_id] = {
                "accuracy": round(sum(p == t for p, t in zip(predicted, truths)) / len(truths), 4),
                "recall": recall, "images": len(truths), "runtime": classifier.runtime,
            }
        return self.cache[version_id]


# --- one round --------------------------------------------------------------------------------

@dataclass
class Loop:
    client: object
    data: DataPlan
    options: argparse.Namespace
    beat: BeatWatch
    evaluation: Evaluation
    last_run_id: int = 0
    careless_turn: int = 0
    to_correct: list[tuple[int, str]] = field(default_factory=list)     # (image id, true class)
    to_include: list[int] = field(default_factory=list)                 # image ids excluded last round
    to_label_on_include: list[tuple[int, str]] = field(default_factory=list)
    probes_to_exclude: list[dict] = field(default_factory=list)
    new_class_created: bool = False

    def take(self, name: str, count: int) -> list[tuple[Path, str]]:
        files, self.data.stream[name] = self.data.stream[name][:count], self.data.stream[name][count:]
        return [(path, name) for path in files]

    def round_uploads(self, number: int) -> list[tuple[Path, str]]:
        entries = []
        for name in sorted(self.data.stream):
            if name == NEW_CLASS:
                if number >= self.options.new_class_from:
                    entries += self.take(name, self.options.new_class_per_round)
            else:
                entries += self.take(name, self.options.new_per_class)
        random.Random(self.options.seed * 1000 + number).shuffle(entries)
        return entries

    def current(self, image_ids: list[int]) -> list[dict]:
        return [call(self.client, "GET", f"images/{image_id}/") for image_id in image_ids]

    def decide_round(self, number: int, kind: str, images: list[tuple[dict, str]]) -> tuple[list, dict]:
        """The round's decisions as (images, decision) pairs, read before the check so that they can
        all be sent right after one; and what the reviewer did, for the record."""
        rng = random.Random(self.options.seed * 7919 + number)
        labels: dict[str, list[dict]] = {}
        record = {"labelled": len(images), "mislabelled": 0, "excluded": 0, "included_again": 0, "corrected": 0}
        careless = CARELESS[self.careless_turn % len(CARELESS)] if kind == "careless" else None
        if careless:
            self.careless_turn += 1
            mine = [image for image, truth in images if truth == careless[0]]
            wrong = rng.sample(mine, round(self.options.careless_share * len(mine)))
            record.update(mislabelled=len(wrong), careless_class=careless[0], careless_label=careless[1],
                          careless_class_images=len(mine))
            self.to_correct = [(image["id"], careless[0]) for image in wrong]
        wrong_ids = {image["id"] for image in (wrong if careless else [])}
        excluded_now = []
        for image, truth in images:
            if kind == "exclude" and truth == EXCLUDED_CLASS:
                excluded_now.append(image)
                self.to_label_on_include.append((image["id"], truth))
                continue
            labels.setdefault(careless[1] if image["id"] in wrong_ids else truth, []).append(image)
        pairs = []
        # Work left from the round before goes first: it is counted by the same check.
        if self.probes_to_exclude:
            pairs.append((self.probes_to_exclude, {"exclude": True, "reason": "probe upload of the benchmark"}))
            self.probes_to_exclude = []
        if self.to_correct and not careless:
            fixes = self.current([image_id for image_id, _ in self.to_correct])
            truth_of = dict(self.to_correct)
            for name in sorted({truth_of[i["id"]] for i in fixes}):
                pairs.append(([i for i in fixes if truth_of[i["id"]] == name], {"label": name}))
            record["corrected"] = len(fixes)
            self.to_correct = []
        if self.to_include and kind != "exclude":
            again = self.current(self.to_include)
            pairs.append(([i for i in again if i["label"]], {"exclude": False}))
            unlabelled = dict(self.to_label_on_include)
            for name in sorted(set(unlabelled.values())):
                pairs.append(([i for i in again if not i["label"] and unlabelled.get(i["id"]) == name],
                              {"label": name}))
            record["included_again"] = len(again)
            self.to_include, self.to_label_on_include = [], []
        pairs += [(group, {"label": name}) for name, group in sorted(labels.items())]
        if kind == "exclude":
            everything = list_all(self.client, f"label={EXCLUDED_CLASS}&excluded=false") + excluded_now
            pairs.append((everything, {"exclude": True, "reason": f"benchmark: every {EXCLUDED_CLASS} image left out"}))
            record.update(excluded=len(everything), excluded_class=EXCLUDED_CLASS)
            self.to_include = [i["id"] for i in everything]
        return pairs, record

    def play(self, number: int, kind: str) -> dict:
        began = time.monotonic()
        log(f"=== round {number}: {kind}")
        row = {"round": number, "kind": kind, "harmful": kind in HARMFUL}
        before = active_version(self.client)
        if kind == "nothing":
            reviewed, record = 0, {"labelled": 0}
            row.update(uploaded=0, online=None)
        else:
            if number >= self.options.new_class_from and not self.new_class_created:
                call(self.client, "POST", "classes/", {"name": NEW_CLASS, "description":
                                                       "scratch marks, a defect type new to this line"})
                self.new_class_created = True
            source = f"round-{number:02d}"
            uploaded = upload(self.client, self.round_uploads(number), source=source)
            truth_of = {image["id"]: truth for image, truth in uploaded}
            images = wait_for_predictions(self.client, source, len(uploaded), self.options.timeout)
            row.update(uploaded=len(uploaded), online=online_figures(images, truth_of))
            pairs, record = self.decide_round(number, kind, [(i, truth_of[i["id"]]) for i in images])
            row["new_class_before"] = class_states(self.client).get(NEW_CLASS)
            if not self.beat.just_after_a_check(self.options.check_interval * 3):
                log("no continuous-learning check seen in the worker log; deciding anyway")
            reviewed = sum(bulk(self.client, group, decision) for group, decision in pairs)
        decided_at = datetime.now().astimezone()
        row.update(reviewed=reviewed, reviewer=record, new_class_after=class_states(self.client).get(NEW_CLASS))
        wait = self.options.check_interval * (3 if kind == "nothing" else 4) + (30 if kind == "nothing" else 60)
        run = wait_for_new_run(self.client, self.last_run_id, wait)
        row["run"] = None if run is None else self.finish_run(run, decided_at)
        after = active_version(self.client)
        row["active_before"] = before["number"] if before else None
        row["active"] = {"id": after["id"], "number": after["number"], "classes": after["classes"]}
        row["evaluation"] = self.evaluation.score(after["id"])
        if row["run"] and row["run"].get("candidate_id") and row["run"]["candidate_id"] != after["id"]:
            row["run"]["candidate_evaluation"] = self.evaluation.score(row["run"]["candidate_id"])
        row["thresholds"] = thresholds_in_force(self.client, after)
        row["seconds"] = round(time.monotonic() - began, 1)
        log(f"round {number}: reviewed {reviewed}, run {describe_run(row['run'])}, "
            f"active v{after['number']} accuracy {row['evaluation']['accuracy']}")
        return row

    def finish_run(self, run: dict, decided_at: datetime) -> dict:
        self.last_run_id = run["id"]
        probe = self.data.probes.pop() if self.data.probes else None
        run, answered = follow_run(self.client, run["id"], probe=probe, timeout=self.options.timeout)
        if answered and answered.get("image"):
            self.probes_to_exclude.append({"id": answered["image"], "label_version": answered["label_version"]})
        created = datetime.fromisoformat(run["created_at"].replace("Z", "+00:00"))
        out = {"id": run["id"], "status": run["status"], "trigger": run["trigger"], "error": run["error"][:400],
               "requested_after_the_round": created >= decided_at, "probe": answered,
               "request_to_end_s": seconds_between(run["created_at"], run["finished_at"]),
               "training_s": seconds_between(run["started_at"], run["finished_at"]),
               "left_out": [line.split(" ", 1)[1] for line in run.get("log", "").splitlines() if "collecting" in line]}
        if run["model_version"]:
            candidate = call(self.client, "GET", f"model-versions/{run['model_version']}/")
            gate = run["gate_decision"] or {}
            out.update(candidate_id=candidate["id"], candidate_number=candidate["number"],
                       candidate_classes=candidate["classes"], gate=gate_record(gate),
                       decision="promoted" if gate.get("promoted") else "refused")
        return out


def online_figures(images: list[dict], truth_of: dict[int, str]) -> dict:
    """How the active version did on the round's uploads before anyone looked at them."""
    predicted = [(i["prediction"] or {}, truth_of[i["id"]]) for i in images]
    return {"correct": round(sum(p.get("label") == t for p, t in predicted) / len(predicted), 4),
            "needs_review": round(sum(bool(p.get("needs_review")) for p, _ in predicted) / len(predicted), 4)}


def gate_record(gate: dict) -> dict:
    keep = ("passed", "promoted", "reasons", "compared_classes", "new_class_recall", "test_images", "rule",
            "champion_version", "candidate_version", "human_confirmed_test_labels")
    return {**{key: gate.get(key) for key in keep}, "checks": gate.get("checks") or [],
            "candidate": gate.get("candidate"), "champion": gate.get("champion")}


def seconds_between(start_at: str | None, end_at: str | None) -> float | None:
    if not start_at or not end_at:
        return None
    parse = (lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")))
    return round((parse(end_at) - parse(start_at)).total_seconds(), 1)


def describe_run(run: dict | None) -> str:
    if run is None:
        return "none"
    return f"{run['id']} {run['status']} {run.get('decision', '')}".strip()


# --- the gate's rule chosen from the rounds ---------------------------------------------------

def synthetic_gate_inputs(gate: dict, candidate_classes: list[str], champion_classes: list[str]) -> dict:
    """Labels and both versions' predictions that reproduce the recorded checks' counts: per
    shared class its test images with b / c disagreements and the recorded recalls, per new class
    its recall. Enough for ``mlcore.gate.decide`` to decide again under another rule."""
    def wrong(name: str, classes: list[str]) -> str:
        return next((c for c in classes if c != name), f"not-{name}")

    labels, candidate, champion = [], [], []
    for check in gate["checks"]:
        name, n = check["class"], check.get("test_images") or 0
        if check["check"] == "class_recall":
            b, c = check["worse_only_candidate"], check["better_only_candidate"]
            both = round(check["champion"] * n) - b
            rows = ([(name, name)] * both + [(wrong(name, candidate_classes), name)] * b
                    + [(name, wrong(name, champion_classes))] * c
                    + [(wrong(name, candidate_classes), wrong(name, champion_classes))] * (n - both - b - c))
        elif check["check"] == "new_class":
            right = round((check["candidate"] or 0) * n)
            rows = ([(name, champion_classes[0])] * right
                    + [(wrong(name, candidate_classes), champion_classes[0])] * (n - right))
        else:
            continue
        labels += [name] * len(rows)
        candidate += [ours for ours, _ in rows]
        champion += [theirs for _, theirs in rows]
    return {"labels": labels, "candidate_predictions": candidate, "candidate_classes": candidate_classes,
            "champion_predictions": champion, "champion_classes": champion_classes}


GRID = {
    "alpha": (0.01, 0.05, 0.1, 0.2),
    "class_alpha": (0.01, 0.05, 0.1, 0.2),
    "practical_margin": (0.0, 0.005, 0.01, 0.02),
    "class_practical_margin": (0.0, 0.02, 0.05),
    "max_recall_drop": (0.05, 0.1, 0.2),
    "max_recall_drop_images": (1, 2, 3),
}


def gate_grid(rows: list[dict], versions: dict[int, list[str]]) -> dict:
    """Every recorded gate decision decided again under each rule of ``GRID`` (other fields as
    recorded). The champion of each round stays the one the real run had: under another rule an
    earlier decision could have left a different version active, which this cannot replay."""
    from mlcore.gate import GateRule, decide

    cases = []
    for row in rows:
        run = row.get("run") or {}
        gate = run.get("gate")
        if not gate or gate.get("champion_version") is None:
            continue
        inputs = synthetic_gate_inputs(gate, run["candidate_classes"], versions[gate["champion_version"]])
        recorded = GateRule(**gate["rule"])
        replayed = decide(**inputs, rule=recorded).passed
        cases.append({"round": row["round"], "harmful": row["harmful"], "inputs": inputs,
                      "reproduced": replayed == gate["passed"], "recorded_rule": gate["rule"]})
    names = list(GRID)
    results = []
    for values in itertools.product(*(GRID[name] for name in names)):
        changes = dict(zip(names, values))
        passed = [decide(**case["inputs"], rule=GateRule(**{**case["recorded_rule"], **changes})).passed
                  for case in cases]
        good = [p for p, case in zip(passed, cases) if not case["harmful"]]
        harmful = [not p for p, case in zip(passed, cases) if case["harmful"]]
        results.append({**changes, "good_promoted": share(good), "harmful_refused": share(harmful)})
    meets = [r for r in results if (r["good_promoted"] or 0) >= 0.9 and r["harmful_refused"] == 1.0]
    outcomes = Counter((r["good_promoted"], r["harmful_refused"]) for r in results)
    defaults = grid_defaults()
    return {"cases": [{k: v for k, v in c.items() if k != "inputs"} for c in cases], "grid": GRID,
            "rules": len(results), "meeting_targets": len(meets), "meeting": meets[:20],
            "outcomes": [{"good_promoted": g, "harmful_refused": h, "rules": n} for (g, h), n in outcomes.most_common()],
            "defaults": next((r for r in results if all(r[k] == v for k, v in defaults.items())), None),
            "best": best_rules(results)}


def best_rules(results: list[dict]) -> list[dict]:
    """The rules that refuse most harmful candidates, then promote most good ones; fewest first."""
    defaults = grid_defaults()
    order = sorted(results, key=lambda r: (-(r["harmful_refused"] or 0), -(r["good_promoted"] or 0),
                                           sum(r[name] != value for name, value in defaults.items())))
    return order[:5]


def share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


# --- totals -----------------------------------------------------------------------------------

def totals(rows: list[dict]) -> dict:
    judged = [r for r in rows if r["round"] > 0 and (r.get("run") or {}).get("decision")]
    good = [r["run"]["decision"] == "promoted" for r in judged if not r["harmful"]]
    harmful = [r["run"]["decision"] == "refused" for r in judged if r["harmful"]]
    probes = [((r.get("run") or {}).get("probe") or {}).get("answered", False) for r in rows
              if r["round"] > 0 and r.get("run")]
    live, early, recall_after = None, [], []
    for r in rows:
        knows = NEW_CLASS in r["active"]["classes"]
        run = r.get("run") or {}
        if NEW_CLASS in (run.get("candidate_classes") or []) and (r.get("new_class_after") or {}).get("status") \
                not in (None, "active"):
            early.append(r["round"])
        if knows:
            live = live if live is not None else r["round"]
            recall_after.append(r["evaluation"]["recall"].get(NEW_CLASS))
    nothing = [r for r in rows if r["kind"] == "nothing"]
    return {
        "good_promoted": share(good), "good_runs": len(good),
        "harmful_refused": share(harmful), "harmful_runs": len(harmful),
        "nothing_rounds_without_run": share([r.get("run") is None for r in nothing]),
        "runs_started_by_schedule": share([r["run"]["trigger"] == "schedule" for r in rows
                                           if r["round"] > 0 and r.get("run")]),
        "runs_failed": sum(1 for r in rows if r["round"] > 0 and (r.get("run") or {}).get("status") == "failed"),
        "new_class_live_from_round": live, "new_class_trained_while_collecting": early,
        "new_class_min_recall_once_live": min(recall_after) if recall_after else None,
        "thresholds_lost": sorted({f"round {r['round']}: {name}" for r in rows for name in r["thresholds"]["lost"]}),
        "inference_answered_during_runs": share(probes), "probes": len(probes),
    }


# --- the whole loop ---------------------------------------------------------------------------

def stack_settings(options, min_new_labels: int) -> dict[str, str]:
    settings = {
        "STEELQC_BACKBONE": "efficientnet_lite0",
        "STEELQC_TRAINING_DEFAULTS": json.dumps(options.training_defaults),
        "STEELQC_RETRAIN_CHECK_INTERVAL_S": str(options.check_interval),
        "STEELQC_RETRAIN_MIN_NEW_LABELS": str(min_new_labels),
    }
    for item in options.gate:
        name, _, value = item.partition("=")
        settings[f"STEELQC_GATE_{name.strip().upper()}"] = value.strip()
    return settings


def run_loop(options, *, command: str) -> dict:
    work = ROOT / "var" / "bench-loop"
    work.mkdir(parents=True, exist_ok=True)
    data = plan_data(neu=options.data, work=work, seed=options.seed, seed_per_class=options.seed_per_class,
                     eval_per_class=options.eval_per_class, probes_per_class=options.probes_per_class)
    old_classes = [name for name in data.stream if name != NEW_CLASS]
    min_new_labels = options.new_per_class * len(old_classes)
    installation = fresh_installation(work, user="loop-bench", role="ml_admin", import_dir=data.import_dir)
    env = {**installation.env, **stack_settings(options, min_new_labels)}
    manage(env, "ensure_periodic_tasks")
    token = installation.token
    processes = [start_web(env, work), start_worker(env, work, queue="training"),
                 start_worker(env, work, queue="inference")]
    rows, started = [], time.monotonic()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git_commit(), "command": command,
              "options": options_record(options),
              "settings": stack_settings(options, min_new_labels), "sizes": data.sizes,
              "import_s": round(installation.import_s, 1), "rounds": rows}
    try:
        wait_until_up(token)
        client = Client(token)
        evaluation = Evaluation(client, token, data.evaluation, work / "versions")
        loop = Loop(client=client, data=data, options=options, beat=BeatWatch(work / "worker-inference.log"),
                    evaluation=evaluation)
        result["setup"] = first_version(loop)
        rows.append(result["setup"]["row"])
        processes.append(start(env, [PY, "-m", "celery", "-A", "steelqc", "beat", "--loglevel", "INFO",
                                     "--schedule", str(work / "celerybeat-schedule")], work / "beat.log"))
        for number, kind in enumerate(options.plan, start=1):
            rows.append(loop.play(number, kind))
            result["totals"] = totals(rows)
            save(options.out, result)
    finally:
        for process in reversed(processes):
            stop(process)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["gate_grid"] = gate_grid(rows, version_classes(rows))
    save(options.out, result)
    return result


def version_classes(rows: list[dict]) -> dict[int, list[str]]:
    """Version number -> its classes, for every version the rounds saw."""
    versions = {}
    for row in rows:
        versions[row["active"]["number"]] = row["active"]["classes"]
        if (row.get("run") or {}).get("candidate_number"):
            versions[row["run"]["candidate_number"]] = row["run"]["candidate_classes"]
    return versions


def first_version(loop: Loop) -> dict:
    """v1 from the seed set through the API, its thresholds set by an ML admin."""
    began = time.monotonic()
    run = call(loop.client, "POST", "training-runs/", {"parameters": {}})
    run, _ = follow_run(loop.client, run["id"], probe=None, timeout=loop.options.timeout)
    loop.last_run_id = run["id"]
    if run["status"] != "succeeded":
        raise SystemExit(f"v1's run ended {run['status']}: {run['error']}")
    version = active_version(loop.client)
    call(loop.client, "PATCH", f"model-versions/{version['id']}/thresholds/",
         {"thresholds": THRESHOLDS, "note": "set on v1 by the benchmark's ML admin"})
    row = {"round": 0, "kind": "v1", "harmful": False, "uploaded": 0, "reviewed": 0,
           "run": {"id": run["id"], "status": run["status"], "trigger": run["trigger"], "decision": "promoted",
                   "training_s": seconds_between(run["started_at"], run["finished_at"]), "probe": None},
           "active": {"id": version["id"], "number": version["number"], "classes": version["classes"]},
           "evaluation": loop.evaluation.score(version["id"]),
           "thresholds": thresholds_in_force(loop.client, version),
           "new_class_after": class_states(loop.client).get(NEW_CLASS), "seconds": round(time.monotonic() - began, 1)}
    log(f"v1 live: {version['classes']}, evaluation accuracy {row['evaluation']['accuracy']}")
    return {"row": row, "test_accuracy": version["metrics"].get("accuracy")}


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def options_record(options) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()}


def save(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")


# --- the report -------------------------------------------------------------------------------

def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def short(name: str) -> str:
    return {"crazing": "Cr", "inclusion": "In", "patches": "Pa", "pitted_surface": "PS", "rolled-in_scale": "RS",
            NEW_CLASS: "new"}.get(name, name)


def evidence(run: dict | None) -> str:
    if not run or not run.get("gate"):
        return "–"
    checks = run["gate"]["checks"]
    failed = [c for c in checks if not c["passed"]]
    if failed:
        return "; ".join(check_words(c) for c in failed)
    accuracy = next((c for c in checks if c["check"] == "accuracy"), None)
    return f"passed: {check_words(accuracy)}" if accuracy else "passed (first version)"


def check_words(check: dict) -> str:
    if check["check"] == "class_dropped":
        return f"{check['class']} dropped"
    where = check["class"] or check["check"]
    figures = f"{where} {number(check['candidate'])} vs {number(check['champion'])}"
    if check.get("worse_only_candidate") is not None:
        figures += f", b={check['worse_only_candidate']} c={check['better_only_candidate']}"
    if check.get("p_value") is not None:
        figures += f", p={check['p_value']:.3g}"
    return f"{check['check']}: {figures}"


def number(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def round_line(row: dict) -> str:
    run = row.get("run")
    evaluation = row["evaluation"]
    recalls = " ".join(f"{short(n)} {v:.2f}" for n, v in evaluation["recall"].items())
    new = row.get("new_class_after") or {}
    new_state = f"{new.get('status')} ({new.get('images_needed')})" if new.get("status") else "–"
    if row["kind"] == "v1":
        decision = "v1 (manual)"
    elif run is None:
        decision = "no run"
    else:
        decision = f"run {run['id']}: {run.get('decision') or run['status']}"
    probe = (run or {}).get("probe")
    probe_text = "–" if not probe else ("answered" if probe["answered"] else f"NOT answered ({probe['status']})")
    times = f"{run['training_s']:.0f} s" if run and run.get("training_s") else "–"
    return (f"| {row['round']} | {row['kind']} | {row['reviewed']} | {decision} | {evidence(run)} "
            f"| v{row['active']['number']} **{evaluation['accuracy']:.3f}** ({known_accuracy(row):.3f}) | {recalls} "
            f"| {new_state} | {times} "
            f"| {probe_text} | {'none' if not row['thresholds']['lost'] else ', '.join(row['thresholds']['lost'])} |")


def known_accuracy(row: dict) -> float:
    """Evaluation accuracy over the classes the active version knows (every class has as many
    evaluation images, so it is the mean of their recalls)."""
    recalls = [value for name, value in row["evaluation"]["recall"].items() if name in row["active"]["classes"]]
    return sum(recalls) / len(recalls)


def harmful_lines(rows: list[dict]) -> list[str]:
    """Per harmful round: what the reviewer did, the decision, the gate's sentences (its failing
    checks, and for a careless round the checks of the two classes involved), and how the candidate
    did on the evaluation set against the version it would have replaced."""
    lines = []
    for row in rows:
        run = row.get("run") or {}
        if not row["harmful"] or not run.get("gate"):
            continue
        reviewer, checks = row["reviewer"], run["gate"]["checks"]
        shown = [c for c in checks if not c["passed"]]
        if row["kind"] == "careless":
            what = (f"{reviewer['mislabelled']} of {reviewer['careless_class_images']} new "
                    f"{reviewer['careless_class']} images labelled {reviewer['careless_label']}")
            involved = (reviewer["careless_class"], reviewer["careless_label"])
            shown += [c for c in checks if c["passed"] and (c["check"] == "accuracy" or (
                c["check"] == "class_recall" and c["class"] in involved))]
        else:
            what = f"every {reviewer['excluded_class']} image excluded ({reviewer['excluded']} images)"
        candidate = run.get("candidate_evaluation") or row["evaluation"]
        lines.append(f"- round {row['round']} ({what}): **{run.get('decision')}**. The gate: "
                     + " ".join(f"“{c['sentence']}”" for c in shown)
                     + f" On the evaluation set the candidate scored {candidate['accuracy']:.3f} against "
                     f"{previous_accuracy(rows, row):.3f} for the version it would replace.")
    return lines


def smallest_p(run: dict) -> float | None:
    """The strongest evidence of harm the gate's paired tests found in a run (Holm-adjusted for classes)."""
    values = [c.get("p_adjusted", c["p_value"]) for c in (run.get("gate") or {}).get("checks", [])
              if c["check"] in ("accuracy", "class_recall") and c.get("p_value") is not None]
    return min(values) if values else None


def separation_lines(rows: list[dict]) -> list[str]:
    """Why a rule can or cannot tell the harmful candidates from the good ones: the smallest p-value
    each candidate's paired tests reached, and whether a class went missing (refused by any rule)."""
    lines = []
    for harmful, title in ((True, "harmful"), (False, "good")):
        parts = []
        for row in rows:
            run = row.get("run") or {}
            if row["round"] == 0 or row["harmful"] != harmful or not run.get("gate"):
                continue
            dropped = any(c["check"] == "class_dropped" for c in run["gate"]["checks"])
            p = smallest_p(run)
            parts.append(f"round {row['round']} " + ("class dropped" if dropped else f"p {p:.2g}" if p is not None
                                                     else "no paired test"))
        lines.append(f"- {title} candidates, smallest p-value of their paired tests: {', '.join(parts) or 'none'}")
    return lines


def missed_harm(rows: list[dict]) -> list[str]:
    """The harmful candidates that went live, and whether they really were worse on clean data."""
    promoted = [r for r in rows if r["harmful"] and (r.get("run") or {}).get("decision") == "promoted"]
    if not promoted:
        return []
    worse = [r["round"] for r in promoted if r["evaluation"]["accuracy"] < previous_accuracy(rows, r)]
    good_p = [smallest_p(r["run"]) for r in rows if r["round"] and not r["harmful"] and (r.get("run") or {}).get("gate")]
    alike = all(smallest_p(r["run"]) is not None and smallest_p(r["run"]) >= min((p for p in good_p if p is not None),
                                                                               default=1.0) for r in promoted)
    return [f"  - promoted although harmful by the plan: rounds {', '.join(str(r['round']) for r in promoted)}; "
            + (f"worse than the version they replaced on the evaluation set: rounds {', '.join(map(str, worse))}"
               if worse else "none of them scored below the version it replaced on the evaluation set")
            + ("; the gate's paired tests found no more evidence against them than against any good candidate, "
               "so no rule can refuse them without refusing good ones" if alike else "")]


def previous_accuracy(rows: list[dict], row: dict) -> float:
    index = rows.index(row)
    return rows[index - 1]["evaluation"]["accuracy"] if index else float("nan")


def write_report(result: dict) -> None:
    command = result.get("command", "make bench-loop")
    rows, t, grid = result["rounds"], result["totals"], result["gate_grid"]
    options = result["options"]
    defaults = grid["defaults"]
    best = grid["best"][0] if grid["best"] else None
    block = "\n".join([
        "## The learning loop (`make bench-loop`)",
        "",
        f"Command: `{command}` — {result['date']}, commit {result['commit']}, "
        f"{result['seconds'] / 60:.0f} min on the shared 2-core machine. Raw JSON: `benchmarks/results/loop.json`.",
        "",
        f"An empty installation on the production-shaped stack (PostgreSQL, Redis, gunicorn with production "
        f"settings, an inference worker, a training worker and Celery beat). Seed: {options['seed_per_class']} NEU "
        f"images of each of five classes imported; v1 trained with `POST training-runs/`; thresholds "
        f"{', '.join(f'{k} {v}' for k, v in THRESHOLDS.items())} set on v1. Then {len(rows) - 1} rounds through the "
        f"API only: each round a QA person uploads {options['new_per_class']} unseen images per old class (and, from "
        f"round {options['new_class_from']}, {options['new_class_per_round']} of `{NEW_CLASS}`, NEU's scratches "
        f"as a class made with `POST classes/`), waits for the predictions and reviews them with `POST reviews/bulk/`; "
        f"beat's continuous-learning check (every {options['check_interval']} s, "
        f"`STEELQC_RETRAIN_MIN_NEW_LABELS` = {result['settings']['STEELQC_RETRAIN_MIN_NEW_LABELS']}) starts the run. "
        f"Careless rounds: {pct(options['careless_share'])} of one class's new images given a wrong label (corrected "
        f"the next round); exclude: every `{EXCLUDED_CLASS}` image excluded (included again the next round). "
        f"Training: `efficientnet_lite0`, `STEELQC_TRAINING_DEFAULTS` = `{result['settings']['STEELQC_TRAINING_DEFAULTS']}`. "
        f"Evaluation set: {options['eval_per_class']} images per class (all six) never uploaded; the active version's "
        f"artefacts downloaded through the API and predicted with mlcore.",
        "",
        "| round | kind | reviewed | run (by beat) | gate's evidence | active version: evaluation accuracy "
        "(on the classes it knows) "
        "| evaluation recall per class | new class status (images needed) | training | ?wait=10 during the run "
        "| thresholds lost |",
        "|---|---|---:|---|---|---|---|---|---|---|---|",
        *[round_line(row) for row in rows],
        "",
        "Totals (targets in brackets):",
        "",
        f"- good candidates promoted: **{pct(t['good_promoted'])}** of {t['good_runs']} (≥ 90 %)",
        f"- harmful candidates refused: **{pct(t['harmful_refused'])}** of {t['harmful_runs']} (100 %)",
        *missed_harm(rows),
        f"- rounds with nothing to review that started no run: {pct(t['nothing_rounds_without_run'])}; runs started "
        f"by the schedule: {pct(t['runs_started_by_schedule'])}; runs failed: {t['runs_failed']}",
        f"- new class live from round {t['new_class_live_from_round'] or 'never (not live by the last round)'}; "
        f"trained while still collecting in rounds "
        f"{t['new_class_trained_while_collecting'] or 'none'}; lowest evaluation recall once live "
        f"**{t['new_class_min_recall_once_live']}** (≥ 0.95)",
        f"- thresholds lost: **{', '.join(t['thresholds_lost']) or 'none'}**",
        f"- inference answered during training runs: **{pct(t['inference_answered_during_runs'])}** of "
        f"{t['probes']} runs",
        "",
        "What the gate saw in the harmful rounds:",
        "",
        *harmful_lines(rows),
        "",
        "How far apart the good and the harmful candidates were, in the gate's own evidence:",
        "",
        *separation_lines(rows),
        "",
        f"The gate's rule, chosen from these rounds: each recorded decision was decided again with "
        f"`mlcore.gate.decide` on labels rebuilt from its checks' paired counts (b, c and support per class; "
        f"{sum(c['reproduced'] for c in grid['cases'])} of {len(grid['cases'])} recorded decisions reproduced "
        f"exactly) under {grid['rules']} rules (alpha, class_alpha, practical_margin, class_practical_margin, "
        f"max_recall_drop, max_recall_drop_images). {grid['meeting_targets']} meet both targets"
        f"{outcomes_sentence(grid)}. The defaults: "
        + (f"good promoted {pct(defaults['good_promoted'])}, harmful refused {pct(defaults['harmful_refused'])}."
           if defaults else "")
        + (f" Best: {', '.join(f'{k} {best[k]}' for k in GRID)} — good promoted {pct(best['good_promoted'])}, "
           f"harmful refused {pct(best['harmful_refused'])}." if best and not all_alike(grid) else ""),
        "",
        *([] if all_alike(grid) else [
            "| " + " | ".join(GRID) + " | good promoted | harmful refused |",
            "|" + "---:|" * (len(GRID) + 2),
            *[("| " + " | ".join(str(rule[name]) for name in GRID)
               + f" | {pct(rule['good_promoted'])} | {pct(rule['harmful_refused'])} |") for rule in grid["best"]],
            "",
        ]),
        "Under another rule an earlier decision could have left a different version active; the re-decisions keep "
        "each round's real champion, so they show what each rule would have decided on the same evidence.",
    ])
    log(f"wrote {replace_doc_section('bench-loop', block)}")


def all_alike(grid: dict) -> bool:
    return len(grid["outcomes"]) == 1


def outcomes_sentence(grid: dict) -> str:
    outcomes = grid["outcomes"]
    if len(outcomes) == 1:
        good, harmful = outcomes[0]["good_promoted"], outcomes[0]["harmful_refused"]
        return (f"; every rule decides every round alike (good promoted {pct(good)}, harmful refused {pct(harmful)}): "
                "the simulation gives no ground to move these settings from their defaults")
    return f"; the rules give {len(outcomes)} different outcomes"


def grid_defaults() -> dict:
    from mlcore.gate import GateRule

    rule = GateRule()
    return {name: getattr(rule, name) for name in GRID}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATASETS / "neu-cls")
    parser.add_argument("--plan", default=DEFAULT_PLAN,
                        help="comma-separated round kinds: good, careless, exclude, nothing (default: %(default)s)")
    parser.add_argument("--rounds", type=int, help="play this many rounds of the plan (repeating good rounds past it)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seed-per-class", type=int, default=60, help="images imported per class before v1")
    parser.add_argument("--eval-per-class", type=int, default=40, help="evaluation images per class, never uploaded")
    parser.add_argument("--probes-per-class", type=int, default=4, help="spare images for the ?wait probes")
    parser.add_argument("--new-per-class", type=int, default=10, help="new images per old class and round")
    parser.add_argument("--new-class-per-round", type=int, default=6)
    parser.add_argument("--new-class-from", type=int, default=3, help="round in which the new class appears")
    parser.add_argument("--careless-share", type=float, default=0.3)
    parser.add_argument("--check-interval", type=int, default=15, help="STEELQC_RETRAIN_CHECK_INTERVAL_S")
    parser.add_argument("--training-defaults", type=json.loads, default=TRAINING_DEFAULTS,
                        help="STEELQC_TRAINING_DEFAULTS as JSON (default: %(default)s)")
    parser.add_argument("--gate", action="append", default=[], metavar="FIELD=VALUE",
                        help="a gate rule field for the stack (STEELQC_GATE_<FIELD>)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loop.json")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone (trial runs)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the docs section from the results JSON (--out) without running the loop")
    options = parser.parse_args()
    plan = [kind.strip() for kind in options.plan.split(",") if kind.strip()]
    if options.rounds:
        plan = (plan + ["good"] * options.rounds)[:options.rounds]
    unknown = sorted(set(plan) - {"good", "careless", "exclude", "nothing"})
    if unknown:
        parser.error(f"unknown round kinds: {', '.join(unknown)}")
    options.plan = plan
    if options.report_only:  # the recorded rounds judged again (a changed GRID applies) and reported
        result = json.loads(options.out.read_text())
        result["totals"] = totals(result["rounds"])
        result["gate_grid"] = gate_grid(result["rounds"], version_classes(result["rounds"]))
        save(options.out, result)
        write_report(result)
        return
    result = run_loop(options, command="make bench-loop" if not sys.argv[1:]
                      else f"make bench-loop BENCH_LOOP_ARGS='{' '.join(sys.argv[1:])}'")
    log(json.dumps(result["totals"]))
    if not options.no_docs:
        write_report(result)
    log(f"wrote {options.out}")


if __name__ == "__main__":
    main()
