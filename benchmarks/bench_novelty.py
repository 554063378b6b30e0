"""The novelty loop end to end, through the REST API: does a defect type the model was never
trained on reach people, can they label it in a few group decisions, and does the next version
learn it without forgetting the rest?

For each held-out NEU class, on an empty installation of the production-shaped stack
(PostgreSQL, Redis, gunicorn, a training and an inference worker on loopback):

1. import the NEU folder without the held-out class and without a "line" share of each other
   class (15 %, images the model never sees in training), train v1 through the API;
2. upload, mixed and shuffled, as one camera line would: every image of the held-out class,
   defect-free ball-screw surfaces (`bsdata/no_defect`), another line's defects (`cr7-det`)
   and the NEU line share;
3. report, per kind, the share that reaches the queue with reason `foreign` (and with any
   reason, and auto-accepted);
4. a simulated QA person works through `GET novelty-groups/`, labelling each group by the
   majority true class of its members with one `POST reviews/bulk/` (the held-out class as a
   new class created with `POST classes/`, defect-free as `no_defect`, the other line's images
   excluded as "not this line's material", NEU images with their class), then corrects the
   members the majority decision got wrong and labels the rest of the queue one by one;
5. retrain through the API; report the gate's decision, the new class's recall on its test
   images and each old class's recall against v1 on the same frozen test split.

    make bench-novelty          # or: .venv/bin/python benchmarks/bench_novelty.py --held-out crazing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("STEELQC_BENCH_PORT", "8766")
os.environ.setdefault("STEELQC_BENCH_DB", "steelqc_bench_novelty")
os.environ.setdefault("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/8")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from benchmarks.api_client import multipart_body  # noqa: E402
from benchmarks.bench_retrain import follow_run  # noqa: E402
from benchmarks.stack import (  # noqa: E402
    ROOT, Client, fresh_installation, log, replace_doc_section, start_web, start_worker, stop, wait_until_up,
)

DATASETS = ROOT.parent / "shared" / "datasets"
IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
LINE_SHARE = 0.15
SOURCE = "line-1"
EXCLUDE_REASON = "another line's material"

# What a QA person decides for each kind of image; the held-out class gets its own new class.
KIND_NEU, KIND_HELD_OUT, KIND_NO_DEFECT, KIND_OTHER_LINE = "neu_line", "held_out", "no_defect", "other_line"


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_data(*, neu: Path, held_out: str, work: Path, seed: int, no_defect: int, other_line: int) -> tuple[Path, list[dict]]:
    """The import folder (symlinks, nothing copied) and the shuffled list of line uploads."""
    import_dir = work / "import"
    shutil.rmtree(import_dir, ignore_errors=True)
    rng = random.Random(seed)
    uploads: list[dict] = []
    imported_hashes: set[str] = set()
    for class_dir in sorted(p for p in neu.iterdir() if p.is_dir()):
        files = images_in(class_dir)
        if class_dir.name == held_out:
            uploads += [{"path": p, "kind": KIND_HELD_OUT, "truth": class_dir.name} for p in files]
            continue
        shuffled = files[:]
        rng.shuffle(shuffled)
        cut = round(len(files) * LINE_SHARE)
        (import_dir / class_dir.name).mkdir(parents=True)
        for path in shuffled[cut:]:
            (import_dir / class_dir.name / path.name).symlink_to(path.resolve())
            imported_hashes.add(sha256(path))
        # A byte-identical twin of an imported file would come back as the imported image.
        uploads += [{"path": p, "kind": KIND_NEU, "truth": class_dir.name} for p in shuffled[:cut]
                    if sha256(p) not in imported_hashes]
    defect_free = images_in(DATASETS / "bsdata" / "no_defect")
    uploads += [{"path": p, "kind": KIND_NO_DEFECT, "truth": "no_defect"}
                for p in rng.sample(defect_free, min(no_defect, len(defect_free)))]
    cr7 = sorted(p for p in (DATASETS / "cr7-det" / "images").iterdir() if p.is_dir())
    per_class = max(1, other_line // len(cr7))
    for class_dir in cr7:
        files = images_in(class_dir)
        uploads += [{"path": p, "kind": KIND_OTHER_LINE, "truth": f"cr7:{class_dir.name}"}
                    for p in rng.sample(files, min(per_class, len(files)))]
    rng.shuffle(uploads)
    return import_dir, uploads


def upload_all(client, uploads: list[dict], *, batch: int) -> dict[int, dict]:
    """Multi-file uploads of ``batch`` files; returns image id -> upload entry (new images only)."""
    by_id: dict[int, dict] = {}
    for start in range(0, len(uploads), batch):
        chunk = uploads[start:start + batch]
        body, content_type = multipart_body(
            files=[("file", f"{i:05d}{entry['path'].suffix}", entry["path"].read_bytes())
                   for i, entry in enumerate(chunk, start)],
            fields={"source": SOURCE},
        )
        code, answer = client.request("POST", "/api/v1/images/", body, {"Content-Type": content_type})
        if code not in (200, 201):
            raise SystemExit(f"upload answered {code}: {answer}")
        results = answer["results"] if "results" in answer else [{"created": code == 201, "image": answer}]
        for entry, result in zip(chunk, results):
            if "error" in result:
                log(f"refused {entry['path'].name}: {result['error']}")
            elif result["created"]:
                by_id[result["image"]["id"]] = entry
    return by_id


def list_images(client, query: str) -> list[dict]:
    images, page = [], 1
    while True:
        code, answer = client.request("GET", f"/api/v1/images/?{query}&page_size=200&page={page}")
        if code == 404 and page > 1:
            return images
        if code != 200:
            raise SystemExit(f"GET images/?{query} answered {code}: {answer}")
        images += answer["results"]
        if not answer["next"]:
            return images
        page += 1


def wait_for_predictions(client, expected: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        images = list_images(client, f"source={SOURCE}")
        done = [image for image in images if image["status"] in ("predicted", "failed")]
        if len(done) >= expected:
            return images
        time.sleep(2)
    raise SystemExit(f"predictions did not arrive within {timeout}s")


def share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def flagging(images: list[dict], by_id: dict[int, dict]) -> dict:
    """Per kind: images, share flagged foreign, share needing review for any reason, auto-accepted."""
    out = {}
    for kind in (KIND_HELD_OUT, KIND_NO_DEFECT, KIND_OTHER_LINE, KIND_NEU):
        mine = [image for image in images if by_id.get(image["id"], {}).get("kind") == kind and image["prediction"]]
        reasons = [set(image["prediction"]["review_reasons"]) for image in mine]
        out[kind] = {
            "images": len(mine),
            "foreign": share(["foreign" in r for r in reasons]),
            "any_reason": share([bool(r) for r in reasons]),
            "auto_accepted": share([not r for r in reasons]),
            "predicted_as": dict(Counter(image["prediction"]["label"] for image in mine).most_common(4)),
        }
    return out


class QaPerson:
    """Labels what the queue shows by the images' true classes, counting every decision."""

    def __init__(self, client, by_id: dict[int, dict], new_class: str):
        self.client, self.by_id, self.new_class = client, by_id, new_class
        self.bulk_decisions = self.single_decisions = self.corrections = 0
        self.created_class = False

    def decision_for(self, image_id: int) -> dict:
        entry = self.by_id.get(image_id)
        kind = entry["kind"] if entry else None
        if kind == KIND_HELD_OUT:
            return {"label": self.new_class}
        if kind == KIND_NO_DEFECT:
            return {"label": "no_defect"}
        if kind == KIND_OTHER_LINE or entry is None:
            return {"exclude": True, "reason": EXCLUDE_REASON}
        return {"label": entry["truth"]}

    def ensure_new_class(self) -> None:
        if self.created_class:
            return
        code, answer = self.client.request(
            "POST", "/api/v1/classes/",
            json.dumps({"name": self.new_class, "description": "new defect type found in the novelty groups"}).encode(),
            {"Content-Type": "application/json"})
        if code not in (201, 409):
            raise SystemExit(f"POST classes/ answered {code}: {answer}")
        self.created_class = True

    def post(self, path: str, payload: dict) -> dict:
        if payload.get("label") == self.new_class:
            self.ensure_new_class()
        code, answer = self.client.request("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        if code not in (200, 201):
            raise SystemExit(f"POST {path} answered {code}: {answer}")
        return answer

    def review(self, image_id: int, label_version: int, decision: dict) -> None:
        self.post(f"/api/v1/images/{image_id}/reviews/", {**decision, "expected_version": label_version})

    def name_groups(self) -> list[dict]:
        """One bulk decision per novelty group (majority true class), then the members it got wrong.
        Like a person at the groups page: take what is listed, decide, look again until it is empty."""
        summary, decided = [], set()
        while True:
            code, answer = self.client.request("GET", "/api/v1/novelty-groups/?page_size=200")
            if code != 200:
                raise SystemExit(f"GET novelty-groups/ answered {code}: {answer}")
            groups = [g for g in answer["results"] if not {m["id"] for m in g["images"]} <= decided]
            if not groups:
                return summary
            for group in groups:
                decisions = [self.decision_for(member["id"]) for member in group["images"]]
                keys = [json.dumps(d, sort_keys=True) for d in decisions]
                majority_key, majority_count = Counter(keys).most_common(1)[0]
                result = self.post("/api/v1/reviews/bulk/", {"images": group["images"], **json.loads(majority_key)})
                self.bulk_decisions += 1
                versions = {r["image"]: r["label_version"] for r in result["results"] if r["ok"]}
                for member, key, decision in zip(group["images"], keys, decisions):
                    decided.add(member["id"])
                    if key != majority_key and member["id"] in versions:
                        self.review(member["id"], versions[member["id"]], decision)
                        self.corrections += 1
                summary.append({"size": group["size"], "decision": json.loads(majority_key),
                                "purity": round(majority_count / group["size"], 3)})

    def work_the_queue(self) -> None:
        """Everything still waiting for a person, one decision each."""
        for image in list_images(self.client, f"source={SOURCE}&needs_review=true&label=&excluded=false"):
            self.review(image["id"], image["label_version"], self.decision_for(image["id"]))
            self.single_decisions += 1


def train(client, timeout: float) -> tuple[dict, dict, float]:
    began = time.monotonic()
    code, run = client.request("POST", "/api/v1/training-runs/", json.dumps({"parameters": {}}).encode(),
                               {"Content-Type": "application/json"})
    if code != 202:
        raise SystemExit(f"POST training-runs/ answered {code}: {run}")
    run, _ = follow_run(client, run["id"], timeout)
    if run["status"] != "succeeded":
        raise SystemExit(f"run ended {run['status']}: {run['error']}")
    code, version = client.request("GET", f"/api/v1/model-versions/{run['model_version']}/")
    return run, version, time.monotonic() - began


def one_loop(*, held_out: str, options) -> dict:
    work = ROOT / "var" / "bench-novelty" / held_out
    work.mkdir(parents=True, exist_ok=True)
    import_dir, uploads = plan_data(neu=options.data, held_out=held_out, work=work, seed=options.seed,
                                    no_defect=options.no_defect, other_line=options.other_line)
    installation = fresh_installation(work, user="qa-bench", role="ml_admin", import_dir=import_dir)
    env, token = installation.env, installation.token
    web = start_web(env, work)
    workers = [start_worker(env, work, queue="training"), start_worker(env, work, queue="inference")]
    try:
        wait_until_up(token)
        client = Client(token)
        run1, v1, v1_s = train(client, options.timeout)
        log(f"v1 live after {v1_s:.0f} s: test accuracy {v1['metrics'].get('accuracy')}")

        loop_began = time.monotonic()
        by_id = upload_all(client, uploads, batch=options.batch)
        images = wait_for_predictions(client, len(by_id), options.timeout)
        upload_s = time.monotonic() - loop_began
        flagged = flagging(images, by_id)
        log(json.dumps(flagged))

        qa = QaPerson(client, by_id, new_class=f"new_{held_out}")
        groups = qa.name_groups()
        qa.work_the_queue()
        missed = sum(1 for image in images if by_id.get(image["id"], {}).get("kind") == KIND_HELD_OUT
                     and image["prediction"] and not image["prediction"]["review_reasons"])
        labelling_s = time.monotonic() - loop_began - upload_s
        log(f"{qa.bulk_decisions} group decisions, {qa.corrections} corrections, {qa.single_decisions} single")

        run2, v2, v2_s = train(client, options.timeout)
        loop_s = time.monotonic() - loop_began
    finally:
        stop(web)
        for worker in workers:
            stop(worker)

    gate = run2["gate_decision"] or {}
    candidate, champion = gate.get("candidate") or {}, gate.get("champion") or {}
    old_drop = {name: round(champion["recall"][name] - candidate["recall"][name], 4)
                for name in gate.get("compared_classes", []) if name in candidate.get("recall", {})
                and name in champion.get("recall", {})}
    return {
        "held_out": held_out,
        "uploads": len(uploads),
        "new_images": len(by_id),
        "v1": {"number": v1["number"], "classes": v1["classes"], "test_accuracy": v1["metrics"].get("accuracy"),
               "train_to_live_s": round(v1_s, 1)},
        "flagging": flagged,
        "held_out_auto_accepted": missed,
        "groups": {"count": len(groups), "sizes": [g["size"] for g in groups][:20],
                   "mean_purity": round(sum(g["purity"] * g["size"] for g in groups) / max(1, sum(g["size"] for g in groups)), 4)},
        "decisions": {"group": qa.bulk_decisions, "corrections": qa.corrections, "single": qa.single_decisions,
                      "total": qa.bulk_decisions + qa.corrections + qa.single_decisions},
        "v2": {"number": v2["number"], "status": v2["status"], "classes": v2["classes"],
               "test_accuracy": v2["metrics"].get("accuracy"), "train_to_decision_s": round(v2_s, 1)},
        "gate": {"passed": gate.get("passed"), "promoted": gate.get("promoted"), "reasons": gate.get("reasons"),
                 "test_images": gate.get("test_images"), "new_class_recall": gate.get("new_class_recall"),
                 "old_class_recall_drop": old_drop, "recall_tolerance": (gate.get("rule") or {}).get("recall_tolerance"),
                 "candidate_recall": candidate.get("recall"), "champion_recall": champion.get("recall")},
        "new_class_test_recall": (gate.get("new_class_recall") or {}).get(f"new_{held_out}"),
        "seconds": {"upload_and_predict": round(upload_s, 1), "labelling": round(labelling_s, 1),
                    "upload_to_v2_decision": round(loop_s, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATASETS / "neu-cls")
    parser.add_argument("--held-out", action="append", help="NEU class to hold out (repeat; default three)")
    parser.add_argument("--no-defect", type=int, default=120, help="bsdata defect-free images to upload")
    parser.add_argument("--other-line", type=int, default=140, help="cr7-det images to upload (spread over its classes)")
    parser.add_argument("--batch", type=int, default=10, help="files per upload request")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "novelty.json",
                        help="results JSON; loops of other held-out classes already in it are kept")
    options = parser.parse_args()
    held_out = options.held_out or ["crazing", "inclusion", "scratches"]
    out = options.out
    results = dict(json.loads(out.read_text()).get("loops", {})) if out.exists() else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    for name in held_out:
        log(f"=== held-out class {name}")
        loop = one_loop(held_out=name, options=options)
        loop.update(date=time.strftime("%Y-%m-%d %H:%M"), commit=commit)
        results[f"{name}@{commit}"] = loop  # a rerun at another commit is kept beside the earlier one
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"loops": results}, indent=2) + "\n")
    write_report(results)
    log(f"wrote {out}")


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def write_report(results: dict) -> None:
    rows = []
    for name, r in results.items():
        f, d, g = r["flagging"], r["decisions"], r["gate"]
        worst_drop = max(g["old_class_recall_drop"].values(), default=0.0)
        rows.append(
            f"| {r['held_out']} ({r.get('commit', '?')}) | {pct(f['held_out']['foreign'])} ({pct(f['held_out']['any_reason'])}) "
            f"| {pct(f['no_defect']['foreign'])} ({pct(f['no_defect']['any_reason'])}) "
            f"| {pct(f['other_line']['foreign'])} ({pct(f['other_line']['any_reason'])}) "
            f"| {pct(f['neu_line']['foreign'])} ({pct(f['neu_line']['any_reason'])}) "
            f"| {r['groups']['count']} groups, purity {pct(r['groups']['mean_purity'])}: {d['group']} + {d['corrections']} "
            f"corrections + {d['single']} single = **{d['total']}** for {r['new_images']} images "
            f"| {pct(r['new_class_test_recall'])} | {worst_drop:+.3f} (tol. {g['recall_tolerance']}) "
            f"| {'promoted' if g['promoted'] else 'refused'} | {r['v1']['train_to_live_s']:.0f} s / "
            f"{r['seconds']['upload_to_v2_decision']:.0f} s |"
        )
    dates = sorted({r["date"] for r in results.values()})
    block = "\n".join([
        "## The novelty loop (`make bench-novelty`)",
        "",
        f"Command: `make bench-novelty` — {', '.join(dates)}. Raw JSON: `benchmarks/results/novelty.json`.",
        "",
        "Per held-out NEU class, an empty installation on the production-shaped stack: NEU imported without that "
        "class and without 15 % of each other class, v1 trained and promoted through the API; then uploaded, "
        "mixed and shuffled (10 files per request): every image of the held-out class, 120 defect-free "
        "`bsdata/no_defect` images, 140 `cr7-det` images (20 per class) and the unseen 15 % of NEU. A simulated "
        "QA person names each `GET novelty-groups/` group by its members' majority true class with one "
        "`POST reviews/bulk/` (held-out class → a new class made with `POST classes/`, defect-free → "
        "`no_defect`, the other line → exclude), corrects the members that decision got wrong, and labels what "
        "is left in the queue one by one; then v2 is trained through the API and judged by the gate.",
        "",
        "Flagged `foreign` (in brackets: in the queue for any reason). Targets: ≥ 90 % of the held-out class and "
        "of defect-free images, ≤ 7 % of NEU; new class test recall ≥ 97 %; no old class dropping beyond the "
        "gate's recall tolerance.",
        "",
        "| held out (commit) | held-out class | defect-free | other line | NEU (unseen) | decisions to label them | new class "
        "test recall (v2) | worst old-class recall drop | gate | v1 train / upload → v2 decided |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The gate's verdict on v2, per run (it compares the classes both versions know on the same frozen test "
        "split; the new classes' recall is reported on its own):",
        "",
        *[f"- {r['held_out']} ({r.get('commit', '?')}): {'; '.join(r['gate']['reasons'] or [])}; new classes "
          + ", ".join(f"{k} {v:.3f}" for k, v in (r['gate']['new_class_recall'] or {}).items())
          + f"; {r['gate']['test_images']} test images." for r in results.values()],
        "",
        "Training shares the machine's 2 cores with the web server, the inference worker and whatever else runs.",
    ])
    log(f"wrote {replace_doc_section('bench-novelty', block)}")


if __name__ == "__main__":
    main()
