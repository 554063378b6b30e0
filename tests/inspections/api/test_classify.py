"""POST classify/: validation as for uploads (no worker needed; every refused row of the
hostile-input table), and against a real worker process: kept and not-kept answers with their
ids, rows and files only for kept images, counts for all, the hostile-input table's accepted
files, and a worker killed mid-request answered by the deadline."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from inspections import task_names
from inspections.line.services import classify as line_classify
from inspections.line.services.classify import BYTES_PREFIX
from inspections.line.services.retention import sampled
from inspections.models import InspectionImage, LineMinute, Prediction, RetentionPolicy
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review import prediction_events
from tests.conftest import tiny_dataset, wait_for
from tests.factories import ModelVersionFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for
from tests.security.test_hostile_input import (
    ACCEPTED_UPLOADS,
    BOUNDARY,
    INTERNALS,
    REFUSED_UPLOADS,
    multipart,
    post_files,
    row_counts,
)

URL = "/api/v1/classify/"


def _files(*items: tuple[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, content, content_type="application/octet-stream") for name, content in items]


def _post(client, files, query: str = "", **fields):
    return client.post(URL + query, {"file": files, **fields}, format="multipart")


def _rows() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in apps.get_app_config("inspections").get_models()
            if m.__name__ not in ("AuthEvent", "ApiToken", "DefectClass")}


def _stored_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "images" in p.parts}


# --- input and limits (no worker) -----------------------------------------------------------

@pytest.mark.django_db
class TestInput:
    @pytest.fixture(autouse=True)
    def _active(self):
        model_version_promote(version=ModelVersionFactory())  # classify/ refuses early without one

    def test_no_file_is_400(self):
        error = assert_error(_post(client_for("integrator"), [], source="line-1"), 400, "invalid")
        assert "file" in error["details"]

    def test_undecodable_file_is_400_and_nothing_is_queued_or_stored(self, no_queue):
        before = _rows()
        assert_error(_post(client_for("integrator"), _files(("a.png", b"not an image"))), 400, "undecodable_image")
        assert not no_queue and _rows() == before

    def test_too_large_file_is_413(self, settings, no_queue):
        settings.STEELQC_MAX_UPLOAD_BYTES = 100
        assert_error(_post(client_for("integrator"), _files(("a.png", image_bytes(seed=1, size=(64, 64))))),
                     413, "file_too_large")
        assert not no_queue

    def test_every_file_refused_is_400_with_per_file_errors(self, no_queue):
        response = _post(client_for("integrator"), _files(("a.png", b""), ("b.png", b"junk")))
        error = assert_error(response, 400, "all_files_refused")
        assert [r["error"]["code"] for r in error["details"]["results"]] == ["empty_file", "undecodable_image"]
        assert not no_queue

    def test_more_files_than_the_request_limit_is_400(self, settings, no_queue):
        settings.STEELQC_API_MAX_FILES_PER_REQUEST = 2
        files = _files(*[(f"{i}.png", image_bytes(seed=i)) for i in range(3)])
        assert "file" in assert_error(_post(client_for("integrator"), files), 400, "invalid")["details"]
        assert not no_queue

    def test_ten_thousand_files_meet_djangos_own_limit(self, no_queue):
        tile = image_bytes(seed=5, size=(4, 4))
        body = multipart(*[("file", f"{i}.png", tile) for i in range(10_000)])
        response = client_for("integrator").generic("POST", URL, body,
                                                    content_type=f"multipart/form-data; boundary={BOUNDARY}")
        assert_error(response, 400)
        assert not no_queue

    @pytest.mark.parametrize("timeout", ["0", "31", "soon", "nan"])
    def test_bad_timeout_is_400(self, timeout, no_queue):
        error = assert_error(_post(client_for("integrator"), _files(("a.png", image_bytes(seed=2))),
                                   query=f"?timeout={timeout}"), 400, "invalid")
        assert "timeout" in error["details"]
        assert not no_queue

    def test_too_long_source_is_400(self, no_queue):
        assert_error(_post(client_for("integrator"), _files(("a.png", image_bytes(seed=3))), source="s" * 101), 400)
        assert not no_queue

    def test_viewer_and_read_scope_are_refused(self, no_queue):
        files = _files(("a.png", image_bytes(seed=4)))
        assert_error(_post(client_for("viewer"), files), 403, "permission_denied")
        files = _files(("a.png", image_bytes(seed=4)))
        assert_error(_post(client_for("integrator", scope="read"), files), 403, "permission_denied")
        assert _post(client_for(None), _files(("a.png", image_bytes(seed=4)))).status_code == 401
        assert not no_queue

    def test_waiters_beyond_the_bound_get_503(self, settings, no_queue):
        settings.STEELQC_API_MAX_WAITERS = 1
        with prediction_events.waiter_slot():
            response = _post(client_for("integrator"), _files(("a.png", image_bytes(seed=6))))
        assert_error(response, 503, "too_many_waiters")
        assert not no_queue

    def test_redis_refusing_the_subscription_is_503_and_nothing_is_queued(self, monkeypatch, no_queue):
        def refused(channels):
            raise prediction_events.SubscriptionBroken("connection refused")

        monkeypatch.setattr("inspections.line.services.classify_transport.subscribed", refused)
        before = _stored_bytes()
        response = _post(client_for("integrator"), _files(("a.png", image_bytes(seed=8))))
        assert_error(response, 503, "queue_unavailable")
        assert not no_queue and _stored_bytes() == before

    def test_a_broker_that_is_down_is_503_and_the_bytes_are_removed(self, monkeypatch):
        def down(name, *, kwargs, queue):
            raise ConnectionError("broker down")

        monkeypatch.setattr("inspections.queueing._send", down)
        before = _stored_bytes()
        response = _post(client_for("integrator"), _files(("a.png", image_bytes(seed=9)), ("b.png", image_bytes(seed=10))))
        assert_error(response, 503, "queue_unavailable")
        assert _stored_bytes() == before

    def test_an_answer_channel_that_breaks_off_is_504_at_once(self, monkeypatch, no_queue):
        def broken(self, *, deadline):
            raise prediction_events.SubscriptionBroken("connection reset")

        monkeypatch.setattr(prediction_events.Subscription, "next_message", broken)
        started = time.monotonic()
        response = _post(client_for("integrator"), _files(("a.png", image_bytes(seed=11))), query="?timeout=20")
        assert_error(response, 504, "classify_timeout")
        assert time.monotonic() - started < 10 and len(no_queue) == 1


def _stored_bytes() -> set[bytes]:
    """Keys of this test database's classify/ image bytes in Redis (a request that timed out
    leaves its bytes to their TTL)."""
    name = connections["default"].settings_dict["NAME"]
    return set(prediction_events.events_client().keys(f"{BYTES_PREFIX}{name}:*"))


@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSED_UPLOADS, ids=lambda c: c.kind)
def test_refused_file_is_refused_as_an_upload_is(case, settings, media_root, no_queue):
    """Every refused row of the hostile-input table: the same status and code as images/,
    nothing queued, no row, no file, no bytes left in Redis."""
    model_version_promote(version=ModelVersionFactory())
    for name, value in case.settings.items():
        setattr(settings, name, value)
    rows_before, files_before, bytes_before = row_counts(), _stored_files(media_root), _stored_bytes()
    client = client_for("integrator")
    response = post_files(client, (case.filename, case.content()), path=URL, extra=(("source", None, b"line-1"),))
    assert_error(response, case.status, case.code)
    assert not INTERNALS.search(response.json()["error"]["message"])
    assert not no_queue
    assert row_counts() == rows_before and _stored_files(media_root) == files_before
    assert _stored_bytes() == bytes_before


@pytest.mark.django_db
def test_without_an_active_model_the_answer_is_409_at_once(no_queue):
    response = _post(client_for("integrator"), _files(("a.png", image_bytes(seed=7))))
    assert_error(response, 409, "no_active_model")
    assert not no_queue


# --- against a real worker ------------------------------------------------------------------

# serialized_rollback as the other transactional tests of this folder (test_upload, test_wait). Plain
# transactional tests run with every app available (tests/conftest.py), so none leaves rows behind
# that this set-up would load twice, whatever the order.
WORKER_DB = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def line_tiles(tmp_path_factory) -> list[tuple[str, bytes]]:
    """Textures like the tiny model's training data (mostly confident) and noise (mostly flagged)."""
    rows = tiny_dataset(tmp_path_factory.mktemp("line"), seed=77, per_class=4)
    tiles = [(path.name, path.read_bytes()) for path, _, _ in rows]
    return tiles + [(f"noise-{i}.png", image_bytes(seed=7000 + i, size=(32, 32))) for i in range(4)]


def _warm_up(client) -> None:
    """The first request of a fresh worker process waits for the model to load (slow on a busy
    machine); later ones are answered in milliseconds. Its tile is none of the tests' tiles and
    its source none of theirs, so what the policy keeps of it is not counted anywhere."""
    tile = ("warm-up.png", image_bytes(seed=9999, size=(32, 32)))
    for _ in range(8):
        if _post(client, _files(tile), query="?timeout=30", source="warm-up").status_code == 200:
            return
    raise AssertionError("the worker never answered")


@pytest.mark.worker
@WORKER_DB
def test_classify_keeps_flagged_only_with_rate_zero_and_counts_everything(celery_worker, tiny_model_dirs,
                                                                          line_tiles, media_root):
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    RetentionPolicy.objects.create(source="", sample_rate=0.0, max_per_minute=100, max_per_day=100)
    client = client_for("integrator")
    _warm_up(client)
    images_before, files_before = InspectionImage.objects.count(), _stored_files(media_root)
    response = _post(client, _files(*line_tiles), query="?timeout=30", source="strip-a",
                     external_id="coil-1")
    assert response.status_code == 200, response.content[:500]
    results = response.json()["results"]
    assert [r["filename"] for r in results] == [name for name, _ in line_tiles]
    for result in results:
        assert set(result) == {"filename", "prediction", "kept", "image_id"}
        prediction = result["prediction"]
        assert set(prediction) == {"label", "confidence", "probabilities", "needs_review", "review_reasons",
                                   "frame_issue", "ood_score", "anomaly_score", "anomaly_model_version", "boxes",
                                   "latency_ms", "model_version", "model_version_number"}
        assert (prediction["anomaly_score"], prediction["anomaly_model_version"]) == (None, None)
        assert prediction["boxes"] == []  # the tiny model has no detection head
        assert result["kept"] == bool(prediction["review_reasons"])  # flagged: kept; the rest: rate 0
        assert prediction["needs_review"] == bool(prediction["review_reasons"])
        assert (result["image_id"] is not None) == result["kept"]
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
        assert (prediction["model_version"], prediction["model_version_number"]) == (version.id, version.number)
    kept_ids = {r["image_id"] for r in results if r["kept"]}
    assert 0 < len(kept_ids) < len(results)  # both answers occur: noise is flagged, the textures are not
    assert set(InspectionImage.objects.filter(source="strip-a").values_list("id", flat=True)) == kept_ids
    assert InspectionImage.objects.count() - images_before == len(kept_ids)  # nothing beyond the policy
    assert len(_stored_files(media_root) - files_before) == len(kept_ids)
    by_id = {r["image_id"]: r for r in results if r["kept"]}
    for image in InspectionImage.objects.filter(source="strip-a"):
        assert (image.source, image.external_id, image.status) == ("strip-a", "coil-1", "predicted")
        assert image.original_name == by_id[image.id]["filename"]
        prediction = Prediction.objects.get(image=image)
        assert prediction.model_version_id == version.id
        assert prediction.review_reasons == by_id[image.id]["prediction"]["review_reasons"]
        assert prediction.label.name == by_id[image.id]["prediction"]["label"]
    minute = LineMinute.objects.get(source="strip-a")
    assert (minute.seen, minute.kept, minute.flagged) == (len(line_tiles), len(kept_ids), len(kept_ids))
    assert sum(minute.per_class.values()) == sum(minute.confidence_histogram) == len(line_tiles)
    assert minute.latency_ms_sum > 0 and minute.model_version_id == version.id


@pytest.mark.worker
@WORKER_DB
def test_classify_with_rate_one_keeps_up_to_the_minute_cap(celery_worker, tiny_model_dirs, line_tiles):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    RetentionPolicy.objects.create(source="strip-b", sample_rate=1.0, max_per_minute=2, max_per_day=100)
    client = client_for("integrator")
    _warm_up(client)
    response = _post(client, _files(*line_tiles), query="?timeout=30", source="strip-b")
    assert response.status_code == 200, response.content[:500]
    results = response.json()["results"]
    flagged = [r for r in results if r["prediction"]["review_reasons"]]
    confident = [r for r in results if not r["prediction"]["review_reasons"]]
    assert all(r["kept"] for r in flagged)
    assert sum(r["kept"] for r in confident) == min(2, len(confident))
    assert InspectionImage.objects.filter(source="strip-b").count() == len(flagged) + min(2, len(confident))
    # A refused file among good ones: its own error, the others answered.
    response = _post(client, _files(("bad.png", b"junk"), line_tiles[0]), query="?timeout=30",
                     source="strip-b")
    assert response.status_code == 200
    bad, good = response.json()["results"]
    assert bad["error"]["code"] == "undecodable_image" and good["prediction"]["label"] in {"crazing", "inclusion"}
    assert LineMinute.objects.get(source="strip-b").seen == len(line_tiles) + 1


@pytest.mark.worker
@WORKER_DB
def test_classify_samples_the_unflagged_by_their_hash_at_the_policys_rate(celery_worker, tiny_model_dirs, line_tiles,
                                                                          media_root):
    """Rate 0.5, caps far away: an unflagged tile is kept exactly when its sha256 says sampled,
    and nothing else is stored."""
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    RetentionPolicy.objects.create(source="strip-d", sample_rate=0.5, max_per_minute=1000, max_per_day=1000)
    client = client_for("integrator")
    _warm_up(client)
    files_before = _stored_files(media_root)
    response = _post(client, _files(*line_tiles), query="?timeout=30", source="strip-d")
    assert response.status_code == 200, response.content[:500]
    results = response.json()["results"]
    expected = [bool(r["prediction"]["review_reasons"]) or sampled(sha256=hashlib.sha256(content).hexdigest(), rate=0.5)
                for r, (_, content) in zip(results, line_tiles)]
    assert [r["kept"] for r in results] == expected
    kept_ids = {r["image_id"] for r in results if r["kept"]}
    assert set(InspectionImage.objects.filter(source="strip-d").values_list("id", flat=True)) == kept_ids
    assert len(_stored_files(media_root) - files_before) == len(kept_ids)


@pytest.mark.worker
@WORKER_DB
def test_a_worker_killed_mid_request_gives_504_by_the_deadline(celery_worker, tiny_model_dirs, line_tiles):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    client = client_for("integrator")
    _warm_up(client)
    outcome: dict = {}

    def request() -> None:
        started = time.monotonic()
        try:
            outcome["response"] = _post(client, _files(*line_tiles), query="?timeout=4", source="strip-c")
            outcome["elapsed"] = time.monotonic() - started
        finally:
            connections.close_all()

    marker = celery_worker.log_path.stat().st_size
    try:
        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        wait_for(lambda: "classify_images" in celery_worker.log_path.read_text(errors="replace")[marker:],
                 timeout=10, interval=0.01)
        celery_worker.line.kill(signal.SIGKILL)
        thread.join(15)
        assert not thread.is_alive(), "the request hung past its deadline"
        assert_error(outcome["response"], 504, "classify_timeout")
        assert outcome["elapsed"] < 4 + 3
    finally:
        celery_worker.line.start()
    # The restarted worker answers again: the next request gets its result.
    _warm_up(client)
    response = _post(client, _files(line_tiles[2]), query="?timeout=30", source="strip-c")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["results"][0]["prediction"]["label"] in {"crazing", "inclusion"}


@pytest.mark.worker
@WORKER_DB
def test_the_hostile_input_tables_accepted_files_are_classified_and_kept_as_uploads(celery_worker, tiny_model_dirs,
                                                                                    line_tiles, media_root):
    """Every accepted row of the hostile-input table in one request, with a policy that keeps
    everything: each is predicted and stored under its content address with its cleaned name."""
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    RetentionPolicy.objects.create(source="hostile", sample_rate=1.0, max_per_minute=100, max_per_day=100)
    client = client_for("integrator")
    _warm_up(client)
    contents = [case.content() for case in ACCEPTED_UPLOADS]
    response = post_files(client, *[(case.filename, content) for case, content in zip(ACCEPTED_UPLOADS, contents)],
                          path=URL + "?timeout=30", extra=(("source", None, b"hostile"),))
    assert response.status_code == 200, response.content[:500]
    results = response.json()["results"]
    assert len(results) == len(ACCEPTED_UPLOADS)
    for case, content, result in zip(ACCEPTED_UPLOADS, contents, results):
        assert "error" not in result, (case.kind, result)
        assert result["kept"] and result["prediction"]["label"] in {"crazing", "inclusion"}, case.kind
        image = InspectionImage.objects.get(pk=result["image_id"])
        assert image.format == case.format, case.kind
        assert (media_root / image.file.name).read_bytes() == content, case.kind
        assert image.original_name == result["filename"], case.kind
        if case.original_name is not None:
            assert image.original_name == case.original_name, case.kind
        assert all(ch.isprintable() for ch in image.original_name) and "/" not in image.original_name


# --- retries: the idempotency key and the deadline (no worker: the worker's part is called here) ---

def _answer(request_id: str, label: str) -> str:
    results = [{"filename": "a.png", "prediction": {"label": label}, "kept": False, "image_id": None}]
    return json.dumps({"request_id": request_id, "results": results})


@pytest.mark.django_db
class TestRetries:
    @pytest.fixture(autouse=True)
    def _active(self):
        model_version_promote(version=ModelVersionFactory())

    @pytest.fixture(autouse=True)
    def _no_keys_remembered(self):
        """Keys and answers outlive a test run in Redis; each test starts with none of this database's."""
        redis, name = prediction_events.events_client(), connections["default"].settings_dict["NAME"]
        for prefix in (line_classify.KEY_PREFIX, line_classify.STORED_ANSWER_PREFIX):
            stale = redis.keys(f"{prefix}{name}:*")
            if stale:
                redis.delete(*stale)

    @pytest.fixture(autouse=True)
    def _client(self):
        self.client = client_for("integrator")  # keys are per user: every request of a test is the same one's

    def _post_keyed(self, key: str, *files, timeout: str = "1"):
        return self.client.post(URL + f"?timeout={timeout}", {"file": _files(*files), "source": "s1"},
                                             format="multipart", HTTP_IDEMPOTENCY_KEY=key)

    def test_every_request_goes_to_the_line_queue_with_its_deadline(self, no_queue):
        started = time.time()
        assert_error(self._post_keyed("k-queue", ("a.png", image_bytes(seed=40))), 504, "classify_timeout")
        [(name, kwargs, queue)] = no_queue
        assert (name, queue) == (task_names.CLASSIFY_IMAGES, task_names.LINE_QUEUE)
        assert started + 1 <= kwargs["deadline_at"] <= time.time() + 1
        assert kwargs["answer_ttl_s"] > 0

    def test_a_retry_with_the_key_gets_the_first_answer_and_queues_nothing(self, no_queue):
        tile = ("a.png", image_bytes(seed=41))
        assert_error(self._post_keyed("k-retry", tile), 504, "classify_timeout")
        [(_, kwargs, _)] = no_queue
        # The worker finished after the deadline and stored its answer under the request.
        redis = prediction_events.events_client()
        redis.set(line_classify._stored_answer_name(kwargs["request_id"]), _answer(kwargs["request_id"], "crazing"))
        response = self._post_keyed("k-retry", tile)
        assert response.status_code == 200, response.content[:300]
        assert response.json()["results"][0]["prediction"]["label"] == "crazing"
        assert len(no_queue) == 1, "the retry classified the frames again"

    def test_a_retry_while_the_first_runs_waits_for_its_answer(self, no_queue):
        tile = ("a.png", image_bytes(seed=42))
        assert_error(self._post_keyed("k-wait", tile), 504, "classify_timeout")
        request_id = no_queue[0][1]["request_id"]
        channel = line_classify._names(request_id)[1]
        redis = prediction_events.events_client()
        publisher = threading.Timer(0.7, lambda: redis.publish(channel, _answer(request_id, "patches")))
        publisher.start()
        try:
            response = self._post_keyed("k-wait", tile, timeout="10")
        finally:
            publisher.cancel()
        assert response.status_code == 200 and response.json()["results"][0]["prediction"]["label"] == "patches"
        assert len(no_queue) == 1

    def test_the_key_with_other_files_is_409_and_a_lost_request_is_taken_over(self, no_queue, settings):
        assert_error(self._post_keyed("k-other", ("a.png", image_bytes(seed=43))), 504, "classify_timeout")
        assert_error(self._post_keyed("k-other", ("a.png", image_bytes(seed=44))), 409, "idempotency_key_reused")
        assert len(no_queue) == 1
        # Once the first request must be lost (its images expired, its time limit run out, no
        # answer stored), a retry classifies again under the same key.
        settings.STEELQC_INFERENCE_TIME_LIMIT = -line_classify.BYTES_GRACE_S - 10
        assert_error(self._post_keyed("k-lost", ("a.png", image_bytes(seed=45))), 504, "classify_timeout")
        assert_error(self._post_keyed("k-lost", ("a.png", image_bytes(seed=45))), 504, "classify_timeout")
        assert len(no_queue) == 3 and no_queue[1][1]["request_id"] != no_queue[2][1]["request_id"]

    @pytest.mark.parametrize("key", ["", "a b", "x" * 201, "k\u00e9y"])
    def test_an_unusable_key_is_400_before_anything_is_queued(self, key, no_queue):
        response = client_for("integrator").post(URL, {"file": _files(("a.png", image_bytes(seed=46)))},
                                                 format="multipart", HTTP_IDEMPOTENCY_KEY=key)
        assert_error(response, 400, "invalid_idempotency_key")
        assert not no_queue

    def test_a_request_taken_after_its_deadline_without_a_key_is_dropped_and_counted(self):
        redis = prediction_events.events_client()
        prefix, _ = line_classify._names("late-request")
        items = [{"key": f"{prefix}{i}", "filename": f"{i}.png", "sha256": "0" * 64} for i in range(3)]
        for item in items:
            redis.set(item["key"], image_bytes(seed=47), ex=60)
        kept = line_classify.classify_run(request_id="late-request", reply_to="nobody", items=items, source="late",
                                          deadline_at=time.time() - 1, answer_ttl_s=0)
        assert kept == 0 and not any(redis.exists(item["key"]) for item in items)
        minute = LineMinute.objects.get(source="late")
        assert (minute.dropped, minute.seen, minute.kept) == (3, 0, 0)
        response = client_for("integrator").get("/api/v1/line-stats/?source=late")
        assert [bucket["dropped"] for bucket in response.json()["buckets"]] == [3]


@pytest.mark.worker
@WORKER_DB
def test_a_retried_request_with_its_key_is_counted_once(celery_worker, tiny_model_dirs, line_tiles):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    client = client_for("integrator")
    _warm_up(client)

    def post():
        return client.post(URL + "?timeout=30", {"file": _files(*line_tiles[:2]), "source": "strip-k"},
                           format="multipart", HTTP_IDEMPOTENCY_KEY="coil-7-frame-1")

    first, second = post(), post()
    assert first.status_code == second.status_code == 200, (first.content[:300], second.content[:300])
    assert second.json() == first.json()
    assert sum(LineMinute.objects.filter(source="strip-k").values_list("seen", flat=True)) == 2


@pytest.mark.django_db
def test_a_classify_answers_boxes_carry_their_class_box_threshold():
    """Each box in a classify/ answer is marked as in images/: the class's box threshold on the version
    in service and whether the box scores at least that (a line client takes those the review view shows)."""
    from types import SimpleNamespace

    from inspections.line.services.classify import _answer_json
    from tests.factories import ModelVersionFactory

    version = ModelVersionFactory(classes=["crazing", "scratches"], box_thresholds={"scratches": 0.6})
    result = SimpleNamespace(probabilities={"crazing": 0.2, "scratches": 0.8}, frame_issue=None, ood_score=0.1,
                             boxes=[{"label": "scratches", "box": [0.1, 0.1, 0.5, 0.3], "score": 0.55},
                                    {"label": "crazing", "box": [0.6, 0.6, 0.9, 0.9], "score": 0.35}])
    answer = SimpleNamespace(result=result, label="scratches", confidence=0.8, review_reasons=[], anomaly_score=None)
    serving = SimpleNamespace(version=version, anomaly_version=None)
    boxes = _answer_json(serving, answer, 12.0)["boxes"]
    assert [(b["label"], b["box_threshold"], b["above_threshold"]) for b in boxes] == [
        ("scratches", 0.6, False), ("crazing", 0.3, True)]
