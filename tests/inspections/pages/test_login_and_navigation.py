import pytest

pytestmark = pytest.mark.django_db

NAV = ("dashboard", "queue", "upload", "bulk-upload", "api", "admin")
EXPECTED = {
    "qa": {"dashboard", "queue", "upload", "bulk-upload", "api"},
    "ml_admin": {"dashboard", "queue", "upload", "bulk-upload", "api"},
    "integrator": {"dashboard", "upload", "bulk-upload", "api"},
    "viewer": {"dashboard", "queue", "api"},
    "superuser": set(NAV),
}


def test_login_page_logs_in_and_goes_home(client, role_user):
    user = role_user("qa")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": user.username, "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").wsgi_request.user == user


def test_wrong_password_shows_an_error_and_stays_logged_out(client, role_user):
    user = role_user("qa")
    response = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 200
    assert b"form-error" in response.content
    assert client.get("/review/").status_code == 302


def test_logout_is_a_post(client, role_user):
    client.force_login(role_user("qa"))
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/review/").status_code == 302


@pytest.mark.parametrize("path", ["/review/", "/dashboard/", "/upload/bulk/", "/review/1/"])
def test_pages_send_anonymous_users_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_navigation_shows_only_what_the_role_may_do(client, role_user, role):
    client.force_login(role_user(role))
    html = client.get("/").content.decode()
    shown = {name for name in NAV if f'data-nav="{name}"' in html}
    assert shown == EXPECTED[role]


@pytest.mark.parametrize(("role", "path", "status"), [
    ("integrator", "/review/", 403),
    ("viewer", "/upload/bulk/", 403),
    ("viewer", "/review/", 200),
    ("integrator", "/dashboard/", 200),
])
def test_hidden_links_are_also_refused_on_the_server(client, role_user, role, path, status):
    client.force_login(role_user(role))
    assert client.get(path).status_code == status
