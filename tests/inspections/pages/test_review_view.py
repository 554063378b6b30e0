import re

import pytest

from inspections.models import DefectClass, Review
from inspections.review.services.reviews import review_submit

pytestmark = pytest.mark.django_db


def test_review_page_shows_probabilities_numbered_classes_and_history(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.62, "inclusion": 0.38}, needs_review=True)
    qa = role_user("qa")
    review_submit(image=image, label_name="patches", reviewer=role_user("ml_admin"), expected_version=0)
    client.force_login(qa)
    html = client.get(f"/review/{image.pk}/", {"reviewed": "all"}).content.decode()
    assert "62.0%" in html and "38.0%" in html
    names = [c.name for c in DefectClass.objects.filter(active=True).exclude(name="no_defect").order_by("name")]
    for key, name in zip("123456789", names):
        assert f'data-key="{key}" data-label="{name}"' in html
    assert 'data-key="0" data-label="no_defect"' in html
    assert 'data-label-version="1"' in html
    history = html[html.index('id="history"'):]
    assert "unlabelled → <strong>patches</strong>" in history


def test_viewer_sees_no_label_buttons_and_every_write_is_refused(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.6, "inclusion": 0.4})
    client.force_login(role_user("viewer"))
    html = client.get(f"/review/{image.pk}/").content.decode()
    assert "label-button" not in html and 'id="decide-form"' not in html and 'id="new-class-form"' not in html
    assert client.post(f"/review/{image.pk}/decide/", {"label": "crazing"}).status_code == 403
    api = client.post(f"/api/v1/images/{image.pk}/reviews/", {"label": "crazing"}, content_type="application/json")
    assert api.status_code == 403
    assert not Review.objects.exists()


def test_form_decision_records_the_review_and_goes_to_the_next_image(client, role_user, predicted_image):
    first = predicted_image({"crazing": 0.5, "inclusion": 0.5}, needs_review=True)
    second = predicted_image({"crazing": 0.9, "inclusion": 0.1})
    qa = role_user("qa")
    client.force_login(qa)
    page = client.get(f"/review/{first.pk}/").content.decode()
    assert f'name="next" value="/review/{second.pk}/"' in page
    response = client.post(f"/review/{first.pk}/decide/",
                           {"label": "inclusion", "expected_version": "0", "next": f"/review/{second.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/review/{second.pk}/"
    review = Review.objects.get()
    assert (review.image_id, review.label.name, review.previous_label, review.reviewer) == (first.pk, "inclusion", None, qa)
    assert review.prediction == first.predictions.get()
    following = client.get(response["Location"]).content.decode()
    assert re.search(rf'<p id="saved-note" class="saved-note" role="status" data-csrf="[^"]+">'
                     rf'Saved: image {first.pk} labelled inclusion. </p>', following)


def test_next_must_stay_on_this_site(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.5, "inclusion": 0.5})
    client.force_login(role_user("qa"))
    response = client.post(f"/review/{image.pk}/decide/", {"label": "crazing", "next": "//evil.example/"})
    assert response["Location"] == "/review/"


def test_a_stale_decision_gets_409_and_the_current_state(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.5, "inclusion": 0.5})
    review_submit(image=image, label_name="scratches", reviewer=role_user("qa"), expected_version=0)
    client.force_login(role_user("qa"))
    response = client.post(f"/review/{image.pk}/decide/", {"label": "crazing", "expected_version": "0"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since version 0" in html
    assert '<strong id="current-label">scratches</strong>' in html
    assert 'name="expected_version" value="1"' in html
    image.refresh_from_db()
    assert image.label.name == "scratches" and Review.objects.count() == 1


def test_heatmap_is_404_without_an_active_model(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.5, "inclusion": 0.5})
    client.force_login(role_user("qa"))
    assert client.get(f"/images/{image.pk}/heatmap.png").status_code == 404
    assert 'id="heatmap-toggle"' not in client.get(f"/review/{image.pk}/").content.decode()


def test_unknown_image_is_404(client, role_user):
    client.force_login(role_user("qa"))
    assert client.get("/review/999999/").status_code == 404


def test_the_history_offers_undo_of_the_latest_decision_to_its_author_and_ml_admins(client, role_user, predicted_image):
    image = predicted_image({"crazing": 0.62, "inclusion": 0.38}, needs_review=True)
    qa, other_qa, admin = role_user("qa"), role_user("qa"), role_user("ml_admin")
    review_submit(image=image, label_name="crazing", reviewer=qa, expected_version=0)
    latest = review_submit(image=image, label_name="patches", reviewer=qa, expected_version=1)
    undo_form = f'action="/review/{image.pk}/undo/{latest.pk}/'
    for user, offered in [(qa, True), (admin, True), (other_qa, False), (role_user("viewer"), False)]:
        client.force_login(user)
        html = client.get(f"/review/{image.pk}/", {"reviewed": "all"}).content.decode()
        assert (undo_form in html) is offered, user
        assert html.count('id="history-undo"') == int(offered)   # only the latest decision

    client.force_login(other_qa)
    refused = client.post(f"/review/{image.pk}/undo/{latest.pk}/?reviewed=all", follow=True)
    assert "Not undone: Only the person who made a decision" in refused.content.decode()
    client.force_login(qa)
    response = client.post(f"/review/{image.pk}/undo/{latest.pk}/?reviewed=all", follow=True)
    assert response.redirect_chain[-1][0] == f"/review/{image.pk}/?reviewed=all"
    html = response.content.decode()
    assert f"Undone: image {image.pk} is back to crazing." in html
    assert "<strong>undone</strong>: back to crazing" in html
    image.refresh_from_db()
    assert (image.label.name, image.label_version) == ("crazing", 3)
    # The undo is now the latest decision: nothing offered, and the decision is not undone twice.
    assert 'id="history-undo"' not in html
    again = client.post(f"/review/{image.pk}/undo/{latest.pk}/", follow=True).content.decode()
    assert "Not undone:" in again and Review.objects.filter(decision="undo").count() == 1
    assert client.post(f"/review/{image.pk + 1000}/undo/{latest.pk}/").status_code == 404
