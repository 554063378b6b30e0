"""The upload pages' result rows read what became of their images from upload/answers/: status,
current label and latest prediction, for many images in one request."""

from __future__ import annotations

import pytest

from tests.factories import InspectionImageFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def test_answers_give_each_images_latest_prediction_or_none_yet(client, role_user):
    predicted = InspectionImageFactory(status="predicted")
    PredictionFactory(image=predicted, probabilities={"crazing": 0.2, "inclusion": 0.8}, needs_review=True)
    waiting = InspectionImageFactory()
    client.force_login(role_user("qa"))
    response = client.get("/upload/answers/", {"ids": f"{predicted.pk},{waiting.pk},999999"})
    assert response.status_code == 200
    answers = {answer["id"]: answer for answer in response.json()["images"]}
    assert set(answers) == {predicted.pk, waiting.pk}
    assert answers[waiting.pk]["prediction"] is None and answers[waiting.pk]["status"] == "pending"
    prediction = answers[predicted.pk]["prediction"]
    assert (prediction["label"], prediction["confidence"], prediction["needs_review"]) == ("inclusion", 0.8, True)
    assert prediction["probabilities"] == {"crazing": 0.2, "inclusion": 0.8}


@pytest.mark.parametrize("ids", ["1,x", ",".join(str(n) for n in range(1, 102))])
def test_answers_refuse_what_is_not_a_short_list_of_ids(client, role_user, ids):
    client.force_login(role_user("qa"))
    assert client.get("/upload/answers/", {"ids": ids}).status_code == 400


def test_the_rows_link_to_the_review_view_only_for_roles_that_may_open_it(client, role_user):
    client.force_login(role_user("qa"))
    assert 'data-review-url="/review/0/"' in client.get("/upload/bulk/").content.decode()
    client.force_login(role_user("integrator"))
    html = client.get("/upload/").content.decode()
    assert 'data-file-url="/api/v1/images/0/file/"' in html and "data-review-url" not in html
