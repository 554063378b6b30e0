"""The folder inlet's own logic, with the classify step stood in for: which files are taken and
when, where they go, what is recorded and queued, and what a restart does."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from django.utils import timezone

from inspections.line.bridge.folder import FolderInlet
from inspections.line.bridge.stats import SourceStats
from inspections.line.models import BridgeFrame, BridgeMessage
from inspections.line.services.bridge import (
    RESULT_FIELDS,
    FrameOutcome,
    bridge_frames_claim,
    bridge_frames_finish,
    classify_key,
    result_payload,
)
from inspections.line.services.classify import ClassifyFile
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _inlet(folder, classify, **options) -> FolderInlet:
    options = {"settle_s": 0.0, "publish": True, **options}
    return FolderInlet(source="cam-1", folder=folder, classify=classify, stats=SourceStats("cam-1"), **options)


def _drain(inlet: FolderInlet, steps: int = 10) -> None:
    for _ in range(steps):
        if not inlet.step():
            return


def _names(folder) -> set[str]:
    return {path.name for path in folder.iterdir() if path.is_file() or path.is_symlink() or path.is_fifo()}


def test_a_new_file_is_classified_recorded_queued_and_moved_to_done(tmp_path, fake_classifier):
    (tmp_path / "f-001.png").write_bytes(image_bytes(seed=1))
    _drain(_inlet(tmp_path, fake_classifier))
    assert _names(tmp_path) == set() and _names(tmp_path / "done") == {"f-001.png"}
    frame = BridgeFrame.objects.get()
    assert (frame.source, frame.name, frame.state) == ("cam-1", "f-001.png", "done")
    message = BridgeMessage.objects.get()
    assert message.topic == "steelqc/cam-1/result" and message.published_at is None
    assert set(message.payload) == set(RESULT_FIELDS)
    assert message.payload["sha256"] == frame.sha256 and message.payload["label"] == "scratches"
    assert message.payload["model_version"] == 7 and message.payload["kept"] is False
    assert fake_classifier.calls == [(classify_key(source="cam-1", batch=frame.batch), [frame.sha256])]


def test_a_foreign_frame_also_raises_an_alert(tmp_path, fake_classifier):
    (tmp_path / "foreign-1.png").write_bytes(image_bytes(seed=2))
    _drain(_inlet(tmp_path, fake_classifier))
    alert = BridgeMessage.objects.get(topic="steelqc/cam-1/alert").payload
    assert (alert["kind"], alert["reason"], alert["filename"], alert["image_id"]) == (
        "flagged", "foreign", "foreign-1.png", 41)


def test_a_file_still_growing_waits_until_its_size_settles(tmp_path, fake_classifier):
    content = image_bytes(seed=3, size=(64, 64))
    path = tmp_path / "slow.png"
    path.write_bytes(content[:100])
    inlet = _inlet(tmp_path, fake_classifier, settle_s=0.3)
    assert inlet.step() is False
    time.sleep(0.2)
    with path.open("ab") as out:
        out.write(content[100:])
    assert inlet.step() is False  # changed 0 s ago
    time.sleep(0.35)
    assert inlet.step() is True
    assert _names(tmp_path / "done") == {"slow.png"} and not _names(tmp_path / "failed")


def test_temporary_names_are_never_taken_and_the_renamed_file_is_taken_at_once(tmp_path, fake_classifier):
    for name in (".incoming.png", "frame.png.tmp", "frame.png.part", "frame~"):
        (tmp_path / name).write_bytes(image_bytes(seed=4))
    inlet = _inlet(tmp_path, fake_classifier)
    assert inlet.step() is False and not fake_classifier.calls
    os.rename(tmp_path / "frame.png.tmp", tmp_path / "frame.png")
    assert inlet.step() is True
    assert _names(tmp_path / "done") == {"frame.png"}


def test_hostile_files_go_to_failed_with_their_reason_and_the_inlet_carries_on(tmp_path, fake_classifier, settings,
                                                                              monkeypatch):
    monkeypatch.setattr("inspections.line.bridge.folder.EMPTY_SETTLE_S", 0.0)
    settings.STEELQC_MAX_UPLOAD_BYTES = 20_000
    settings.STEELQC_MAX_IMAGE_PIXELS = 100 * 100
    (tmp_path / "a-not-an-image.png").write_bytes(b"MZ\x90\x00 this is no image")
    (tmp_path / "b-empty.png").write_bytes(b"")
    (tmp_path / "c-truncated.png").write_bytes(image_bytes(seed=5, size=(64, 64))[:300])
    (tmp_path / "d-too-large.png").write_bytes(b"\x89PNG" + os.urandom(30_000))
    (tmp_path / "e-too-many-pixels.png").write_bytes(image_bytes(seed=6, size=(120, 120), fmt="PNG"))
    (tmp_path / "f-link.png").symlink_to("/etc/passwd")
    os.mkfifo(tmp_path / "g-pipe.png")
    (tmp_path / "h-good.png").write_bytes(image_bytes(seed=7))
    (tmp_path / "subfolder").mkdir()
    _drain(_inlet(tmp_path, fake_classifier), steps=20)
    assert _names(tmp_path / "done") == {"h-good.png"}
    failed = tmp_path / "failed"
    reasons = {path.name.removesuffix(".reason.txt"): path.read_text().split(":")[0]
               for path in failed.glob("*.reason.txt")}
    assert reasons == {"a-not-an-image.png": "undecodable_image", "b-empty.png": "empty_file",
                       "c-truncated.png": "undecodable_image", "d-too-large.png": "file_too_large",
                       "e-too-many-pixels.png": "too_many_pixels", "f-link.png": "not_a_file",
                       "g-pipe.png": "not_a_file"}
    assert (failed / "f-link.png").is_symlink() and (failed / "g-pipe.png").is_fifo()  # moved, never opened
    assert _names(tmp_path) == set() and (tmp_path / "subfolder").is_dir()
    assert [len(shas) for _, shas in fake_classifier.calls] == [1]
    assert BridgeFrame.objects.count() == 1


def test_a_restart_mid_request_asks_again_under_the_same_key_and_records_once(tmp_path, fake_classifier):
    for i in range(3):
        (tmp_path / f"f{i}.png").write_bytes(image_bytes(seed=10 + i))
    fake_classifier.stop_next = True  # the bridge stops while the request waits
    _drain(_inlet(tmp_path, fake_classifier), steps=1)
    assert set(BridgeFrame.objects.values_list("state", flat=True)) == {"taken"}
    assert _names(tmp_path) == {"f0.png", "f1.png", "f2.png"}
    _drain(_inlet(tmp_path, fake_classifier))  # the next start
    (first_key, first_shas), (second_key, second_shas) = fake_classifier.calls
    assert second_key == first_key and second_shas == first_shas
    assert _names(tmp_path / "done") == {"f0.png", "f1.png", "f2.png"}
    assert BridgeMessage.objects.filter(topic__endswith="/result").count() == 3


def test_a_stop_after_recording_before_the_move_moves_it_without_a_second_result(tmp_path, fake_classifier):
    content = image_bytes(seed=20)
    (tmp_path / "f.png").write_bytes(content)
    item = ClassifyFile(filename="f.png", content=content, sha256=hashlib.sha256(content).hexdigest())
    bridge_frames_claim(source="cam-1", frames=[("f.png", item.sha256)])
    answer = fake_classifier([item], source="cam-1", key="k")[0]
    bridge_frames_finish(source="cam-1", publish=True, outcomes=[FrameOutcome(sha256=item.sha256, result=result_payload(
        filename="f.png", sha256=item.sha256, answer=answer, at=timezone.now()))])  # then the bridge stopped
    calls = len(fake_classifier.calls)
    _drain(_inlet(tmp_path, fake_classifier))
    assert _names(tmp_path / "done") == {"f.png"}
    assert len(fake_classifier.calls) == calls and BridgeMessage.objects.count() == 1


def test_the_same_bytes_again_go_to_done_without_a_second_result(tmp_path, fake_classifier):
    content = image_bytes(seed=21)
    (tmp_path / "first.png").write_bytes(content)
    inlet = _inlet(tmp_path, fake_classifier)
    _drain(inlet)
    (tmp_path / "first.png").write_bytes(content)  # the same name and bytes again
    (tmp_path / "again.png").write_bytes(content)
    _drain(inlet)
    assert _names(tmp_path / "done") == {"first.png", "first.1.png", "again.png"}
    assert len(fake_classifier.calls) == 1 and BridgeMessage.objects.count() == 1
    assert inlet.stats.total["duplicates"] == 2


def test_frames_answered_expired_are_sent_again_under_a_new_key(tmp_path, fake_classifier):
    (tmp_path / "late.png").write_bytes(image_bytes(seed=22))
    (tmp_path / "ok.png").write_bytes(image_bytes(seed=23))
    fake_classifier.expire = {"late.png"}
    inlet = _inlet(tmp_path, fake_classifier)
    inlet.stop.wait = lambda timeout=None: False  # no pause between tries
    _drain(inlet)
    (key1, shas1), (key2, shas2) = fake_classifier.calls
    assert len(shas1) == 2 and len(shas2) == 1 and key1 != key2
    assert _names(tmp_path / "done") == {"late.png", "ok.png"} and not _names(tmp_path / "failed")


def test_a_batch_holds_at_most_the_batch_size_and_files_are_taken_oldest_first(tmp_path, fake_classifier):
    for i in range(5):
        path = tmp_path / f"z{4 - i}.png"
        path.write_bytes(image_bytes(seed=30 + i))
        os.utime(path, ns=(i * 10**9, i * 10**9))
    _drain(_inlet(tmp_path, fake_classifier, batch=2))
    assert [len(shas) for _, shas in fake_classifier.calls] == [2, 2, 1]
    order = list(BridgeFrame.objects.order_by("id").values_list("name", flat=True))
    assert order == ["z4.png", "z3.png", "z2.png", "z1.png", "z0.png"]


def test_nothing_is_taken_while_the_outbox_is_full(tmp_path, fake_classifier):
    (tmp_path / "f.png").write_bytes(image_bytes(seed=40))
    inlet = _inlet(tmp_path, fake_classifier, may_take=lambda: False)
    assert inlet.step() is False
    assert _names(tmp_path) == {"f.png"} and not fake_classifier.calls


def test_old_records_are_pruned_but_taken_frames_and_waiting_messages_are_kept(tmp_path, fake_classifier):
    from datetime import timedelta

    from inspections.line.services.bridge import bridge_messages_published, bridge_records_prune

    for i in range(3):
        (tmp_path / f"f{i}.png").write_bytes(image_bytes(seed=50 + i))
    _drain(_inlet(tmp_path, fake_classifier))
    bridge_frames_claim(source="cam-1", frames=[("waiting.png", "f" * 64)])
    published = list(BridgeMessage.objects.order_by("id").values_list("id", flat=True))[:2]
    bridge_messages_published(ids=published)
    later = timezone.now() + timedelta(days=8)
    assert bridge_records_prune(keep_days=7, now=later) == 3 + 2
    assert list(BridgeFrame.objects.values_list("name", flat=True)) == ["waiting.png"]
    assert BridgeMessage.objects.filter(published_at__isnull=True).count() == 1
    assert bridge_records_prune(keep_days=7, now=timezone.now()) == 0
