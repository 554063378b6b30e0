"""The pages of the role ml_admin are in the navigation (an Administration menu) for the roles that
may open them, and a refused page is the site's own 403 page: the layout, its navigation, and which
role the page needs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

ADMINISTRATION = ("people", "api-tokens", "lockouts", "retention", "admin")


def _shown(html: str) -> set[str]:
    return {name for name in ADMINISTRATION if f'data-nav="{name}"' in html}


@pytest.mark.parametrize(("role", "expected"), [
    ("ml_admin", {"people", "api-tokens", "lockouts", "retention"}),
    ("superuser", set(ADMINISTRATION)),
    ("qa", set()),
    ("viewer", set()),
    ("integrator", set()),
])
def test_administration_menu_lists_the_pages_the_role_may_open(client, role_user, role, expected):
    client.force_login(role_user(role))
    html = client.get("/").content.decode()
    assert _shown(html) == expected
    assert ('data-nav="administration"' in html) is bool(expected)


def test_each_administration_link_opens_for_an_ml_admin(client, role_user):
    client.force_login(role_user("ml_admin"))
    html = client.get("/").content.decode()
    for path in ("/accounts/people/", "/accounts/api-tokens/", "/accounts/lockouts/", "/retention/"):
        assert f'href="{path}"' in html
        assert client.get(path).status_code == 200


def test_a_refused_page_is_the_sites_403_page_naming_the_role_it_needs(client, role_user):
    client.force_login(role_user("qa"))
    response = client.get("/accounts/api-tokens/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html
    assert "API tokens are managed by the role ml_admin." in html
    assert 'data-testid="your-roles">qa<' in html
    assert 'data-nav="dashboard"' in html and 'data-nav="queue"' in html  # the layout, with navigation
