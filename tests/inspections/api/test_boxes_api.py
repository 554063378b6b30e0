"""GET/POST images/{id}/boxes/: defect boxes read by any role, changed by qa and ml_admin in
versioned all-or-nothing sets; bad input answers 4xx in the API's error shape and stores nothing."""

from __future__ import annotations

import json

import pytest

from inspections.catalog.services.boxes import MAX_BOXES_PER_IMAGE
from inspections.models import DefectBox, DefectBoxChange, DefectClass, InspectionImage
from inspections.review.services.boxes import MAX_CHANGES
from tests.factories import InspectionImageFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def image() -> InspectionImage:
    return InspectionImageFactory(width=200, height=100, label=DefectClass.objects.get(name="scratches"),
                                  label_source="import")


def _url(image) -> str:
    return f"/api/v1/images/{image.pk}/boxes/"


def _post(client, image, changes, *, version=0, **extra):
    return client.post(_url(image), {"expected_version": version, "changes": changes, **extra}, format="json")


def _add(label="inclusion", box=(0.1, 0.2, 0.5, 0.6)) -> dict:
    return {"op": "add", "label": label, "box": list(box) if isinstance(box, tuple) else box}


def _nothing_stored(image) -> None:
    assert not DefectBox.objects.filter(image=image).exists()
    assert not DefectBoxChange.objects.filter(image=image).exists()
    image.refresh_from_db()
    assert image.boxes_version == 0


@pytest.mark.parametrize("role", ["viewer", "integrator", "qa", "ml_admin"])
def test_every_role_reads_the_boxes(role, image):
    response = client_for(role).get(_url(image))
    assert response.status_code == 200
    assert response.json() == {"image": image.pk, "width": 200, "height": 100, "boxes_version": 0, "boxes": [],
                               "predicted": []}


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403), ("integrator", 403),
                                              ("qa", 200), ("ml_admin", 200), ("superuser", 200)])
def test_only_labellers_change_boxes(role, status, image):
    response = _post(client_for(role), image, [_add()])
    if status == 200:
        assert response.status_code == 200, response.content[:300]
        assert response.json()["boxes_version"] == 1
    else:
        assert_error(response, status)
        _nothing_stored(image)


def test_a_read_scope_token_cannot_change_boxes(image):
    assert_error(_post(client_for("qa", scope="read"), image, [_add()]), 403, "permission_denied")
    _nothing_stored(image)


def test_draw_move_relabel_delete_with_versions_and_history(image):
    qa = client_for("qa")
    first = _post(qa, image, [_add("inclusion"), _add("scratches", (0, 0, 1, 1))]).json()
    assert first["boxes_version"] == 1
    inclusion, whole = first["added"]
    assert [(b["id"], b["label"], b["source"]) for b in first["boxes"]] == [
        (inclusion, "inclusion", "person"), (whole, "scratches", "person")]
    assert first["boxes"][0]["box"] == [0.1, 0.2, 0.5, 0.6]
    assert first["boxes"][0]["box_px"] == [20.0, 20.0, 100.0, 60.0]
    assert first["boxes"][0]["created_by"] == qa.user.username

    second = _post(qa, image, [{"op": "move", "id": inclusion, "box": [0.2, 0.2, 0.3, 0.3]},
                               {"op": "relabel", "id": inclusion, "label": "crazing"},
                               {"op": "delete", "id": whole}], version=1).json()
    assert second["boxes_version"] == 2 and second["added"] == []
    assert [(b["id"], b["label"], b["box"]) for b in second["boxes"]] == [(inclusion, "crazing", [0.2, 0.2, 0.3, 0.3])]

    history = client_for("viewer").get(_url(image) + "?history=true").json()["history"]
    assert [(h["box"], h["action"], h["boxes_version"]) for h in history] == [
        (whole, "deleted", 2), (inclusion, "relabelled", 2), (inclusion, "moved", 2),
        (whole, "drawn", 1), (inclusion, "drawn", 1)]
    assert history[1]["before"] == {"label": "inclusion", "box": [0.2, 0.2, 0.3, 0.3]}
    assert history[1]["after"]["label"] == "crazing"
    assert history[0]["after"] is None and history[-1]["before"] is None
    assert {h["changed_by"] for h in history} == {qa.user.username}
    # The deleted box keeps its row (ids stay stable) but is no longer listed.
    assert DefectBox.objects.get(pk=whole).deleted_at is not None
    detail = client_for("viewer").get(f"/api/v1/images/{image.pk}/").json()
    assert (detail["boxes_version"], detail["box_count"]) == (2, 1)


def test_pixels_in_pixels_out(image):
    body = _post(client_for("qa"), image, [_add(box=(20, 10, 100, 50))], units="pixels").json()
    assert body["boxes"][0]["box"] == [0.1, 0.1, 0.5, 0.5]
    assert body["boxes"][0]["box_px"] == [20.0, 10.0, 100.0, 50.0]


def test_a_stale_version_is_a_conflict_and_changes_nothing(image):
    qa = client_for("qa")
    assert _post(qa, image, [_add()]).status_code == 200
    error = assert_error(_post(client_for("ml_admin"), image, [_add("crazing")], version=0), 409, "conflict")
    assert error["details"]["boxes_version"] == 1 and error["details"]["expected_version"] == 0
    assert DefectBox.objects.filter(image=image).count() == 1
    image.refresh_from_db()
    assert image.boxes_version == 1


@pytest.mark.parametrize(("box", "reason"), [
    ([-0.1, 0.2, 0.5, 0.6], "outside_image"),
    ([0.1, 0.2, 1.5, 0.6], "outside_image"),
    ([0.5, 0.2, 0.1, 0.6], "bad_numbers"),  # inverted
    ([0.1, 0.6, 0.5, 0.6], "bad_numbers"),  # empty
    ([0.1, 0.2, 0.5], "bad_numbers"),
    (["0.1", 0.2, 0.5, 0.6], "bad_numbers"),
    ([True, 0.2, 0.5, 0.6], "bad_numbers"),
    ("0.1 0.2 0.5 0.6", "bad_numbers"),
    (None, "bad_numbers"),
])
def test_bad_boxes_are_refused_with_the_change_index(box, reason, image):
    error = assert_error(_post(client_for("qa"), image, [_add(), _add(box=box)]), 400, "invalid_box")
    assert error["details"]["change"] == 1 and error["details"]["reason"] == reason
    _nothing_stored(image)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e999"])
def test_nan_and_infinity_are_refused(literal, image):
    raw = ('{"expected_version": 0, "changes": [{"op": "add", "label": "crazing", "box": [%s, 0.1, 0.5, 0.5]}]}'
           % literal)
    response = client_for("qa").post(_url(image), raw, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert_error(response, 400)
    _nothing_stored(image)


def test_an_unknown_or_inactive_class_is_refused(image):
    DefectClass.objects.create(name="retired_class", active=False)
    for label in ("no_such_class", "retired_class"):
        error = assert_error(_post(client_for("qa"), image, [_add(), _add(label)]), 400, "unknown_class")
        assert error["details"]["change"] == 1 and "crazing" in error["details"]["classes"]
    _nothing_stored(image)


def test_unknown_box_ids_are_refused(image):
    other = InspectionImageFactory()
    qa = client_for("qa")
    other_box = _post(qa, other, [_add()]).json()["added"][0]
    for change in ({"op": "delete", "id": other_box}, {"op": "move", "id": 987654, "box": [0, 0, 1, 1]},
                   {"op": "relabel", "id": other_box, "label": "crazing"}):
        error = assert_error(_post(qa, image, [_add(), change]), 400, "unknown_box")
        assert error["details"]["change"] == 1
    _nothing_stored(image)
    # Deleting a box twice in one set: the second change finds no box.
    mine = _post(qa, image, [_add()]).json()["added"][0]
    assert_error(_post(qa, image, [{"op": "delete", "id": mine}] * 2, version=1), 400, "unknown_box")
    assert DefectBox.objects.get(pk=mine).deleted_at is None


@pytest.mark.parametrize(("body", "code"), [
    ({"changes": [_add()]}, "expected_version_required"),
    ({"expected_version": "zero", "changes": [_add()]}, "expected_version_required"),
    ({"expected_version": -1, "changes": [_add()]}, "expected_version_required"),
    ({"expected_version": 0}, "invalid"),
    ({"expected_version": 0, "changes": []}, "invalid"),
    ({"expected_version": 0, "changes": {"op": "add"}}, "invalid"),
    ({"expected_version": 0, "changes": ["add"]}, "invalid_box"),
    ({"expected_version": 0, "changes": [{"op": "resize", "id": 1}]}, "invalid_box"),
    ({"expected_version": 0, "changes": [{"op": "delete", "id": "1"}]}, "invalid_box"),
    ({"expected_version": 0, "changes": [{"op": "add", "box": [0, 0, 1, 1]}]}, "invalid_box"),
    ({"expected_version": 0, "units": "inches", "changes": [_add()]}, "invalid"),
])
def test_malformed_requests(body, code, image):
    assert_error(client_for("qa").post(_url(image), body, format="json"), 400, code)
    _nothing_stored(image)


def test_a_body_that_is_not_an_object(image):
    response = client_for("qa").post(_url(image), json.dumps([1, 2]), content_type="application/json")
    assert_error(response, 400, "invalid")
    _nothing_stored(image)


def test_ten_thousand_boxes_are_refused_whole(image):
    changes = [_add(box=(i / 20000, 0.0, i / 20000 + 0.00004, 0.5)) for i in range(10_000)]
    error = assert_error(_post(client_for("qa"), image, changes), 400, "too_many_boxes")
    assert error["details"] == {"changes": 10_000, "limit": MAX_CHANGES}
    _nothing_stored(image)


def test_an_image_holds_a_bounded_number_of_boxes(image):
    qa = client_for("qa")
    assert _post(qa, image, [_add()] * MAX_CHANGES).status_code == 200
    error = assert_error(_post(qa, image, [_add()], version=1), 400, "too_many_boxes")
    assert error["details"] == {"boxes": MAX_BOXES_PER_IMAGE + 1, "limit": MAX_BOXES_PER_IMAGE}
    assert DefectBox.objects.filter(image=image).count() == MAX_CHANGES


def test_an_unknown_image_is_a_404():
    assert_error(client_for("viewer").get("/api/v1/images/987654/boxes/"), 404, "not_found")
    assert_error(_post(client_for("qa"), InspectionImage(pk=987654), [_add()]), 404, "not_found")
