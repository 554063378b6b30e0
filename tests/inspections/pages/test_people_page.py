"""The People page: an ml_admin makes a login with a role and hands over a password link that
really sets a password; changes roles and deactivates ordinary accounts; sees why protected ones
are not theirs to change. The API tokens page offers to make an unknown user an API-only account."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from inspections.access.models import ApiToken, AuthEvent, AuthEventKind
from inspections.access.roles import user_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _link(html: str) -> str:
    match = re.search(r'data-testid="password-link"[^>]*value="(http://testserver[^"]+)"', html)
    assert match, "no password link on the page"
    return match.group(1).removeprefix("http://testserver")


def test_an_ml_admin_makes_a_login_whose_link_sets_a_password(client, role_user):
    client.force_login(role_user("ml_admin"))
    page = client.get("/accounts/people/").content.decode()
    options = set(re.findall(r'<option value="(\w+)"', page.split("New login")[1].split("</form>")[0]))
    assert options == {"qa", "viewer", "integrator"}

    response = client.post("/accounts/people/", {"username": "anna", "role": "qa"})
    assert response.status_code == 201
    anna = get_user_model().objects.get(username="anna")
    assert user_roles(anna) == {"qa"} and not anna.has_usable_password()
    link = _link(response.content.decode())

    client.logout()
    form = client.get(link, follow=True)  # Django moves the token out of the address first
    assert b"Choose a password" in form.content and b"anna" in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "steel-strip-42", "new_password2": "steel-strip-42"})
    assert done.status_code == 302
    login = client.post("/accounts/login/", {"username": "anna", "password": "steel-strip-42"})
    assert login.status_code == 302 and login["Location"] == "/"
    client.logout()
    assert b"no longer works" in client.get(link, follow=True).content  # used once


def test_protected_accounts_show_why_and_offer_no_change(client, role_user):
    admin = role_user("ml_admin")
    role_user("superuser")
    other_admin = UserFactory(roles=["ml_admin"])
    client.force_login(admin)
    html = client.get("/accounts/people/").content.decode()
    row = html.split(f'data-person="{other_admin.username}"')[1].split("</tr>")[0]
    assert "only a superuser may change it" in row and "<form" not in row
    own = html.split(f'data-person="{admin.username}"')[1].split("</tr>")[0]
    assert "your own account" in own and "<form" not in own
    refused = client.post(f"/accounts/people/{other_admin.pk}/active/", {"active": "0"}, follow=True)
    assert "only a superuser may change it" in refused.content.decode()
    other_admin.refresh_from_db()
    assert other_admin.is_active


def test_deactivating_ends_the_persons_session(client, role_user):
    person = role_user("qa")
    client.force_login(role_user("ml_admin"))
    response = client.post(f"/accounts/people/{person.pk}/active/", {"active": "0"})
    assert response.status_code == 302 and response["Location"] == "/accounts/people/"
    client.force_login(person)
    assert client.get("/review/").status_code == 302  # to the login page: an inactive session is no login
    assert AuthEvent.objects.filter(kind=AuthEventKind.USER_DEACTIVATED, user=person).count() == 1


def test_changing_a_role_on_the_page(client, role_user):
    person = role_user("viewer")
    client.force_login(role_user("ml_admin"))
    client.post(f"/accounts/people/{person.pk}/role/", {"role": "qa"})
    person.refresh_from_db()
    assert user_roles(person) == {"qa"}
    refused = client.post(f"/accounts/people/{person.pk}/role/", {"role": "ml_admin"}, follow=True)
    assert "Only a superuser may give the role ml_admin." in refused.content.decode()


def test_the_token_page_offers_to_make_an_unknown_user_an_api_only_account(client, role_user):
    client.force_login(role_user("ml_admin"))
    form = {"username": "line-9-camera", "name": "line 9", "scope": "upload", "expires_days": ""}
    response = client.post("/accounts/api-tokens/", form)
    assert response.status_code == 400
    html = response.content.decode()
    assert "No user &#x27;line-9-camera&#x27;." in html and 'data-testid="api-user-offer"' in html
    assert 'name="create_user" value="1"' in html and 'href="/accounts/people/"' in html
    assert not get_user_model().objects.filter(username="line-9-camera").exists()

    made = client.post("/accounts/api-tokens/", {**form, "create_user": "1"})
    assert made.status_code == 201 and b'data-testid="token-secret"' in made.content
    token = ApiToken.objects.get(user__username="line-9-camera")
    assert token.scope == "upload" and user_roles(token.user) == {"integrator"}
    assert not token.user.has_usable_password()


def test_people_is_in_the_administration_menu_of_an_ml_admin_only(client, role_user):
    client.force_login(role_user("ml_admin"))
    assert 'data-nav="people"' in client.get("/").content.decode()
    client.force_login(role_user("qa"))
    assert 'data-nav="people"' not in client.get("/").content.decode()
    refused = client.get("/accounts/people/")
    assert refused.status_code == 403 and b"People are managed by the role ml_admin" in refused.content
