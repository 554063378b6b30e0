"""The dashboard's Line section says how classify/ reaches the line worker on this installation."""

import pytest

pytestmark = pytest.mark.django_db


def _transport_line(client, role_user) -> str:
    client.force_login(role_user("viewer"))
    html = client.get("/dashboard/").content.decode()
    line = html[html.index('id="line"'):html.index("</section>", html.index('id="line"'))]
    return line[line.index('id="classify-transport"'):]


def test_the_line_section_names_redis_when_it_is_configured(client, role_user, settings):
    settings.STEELQC_EVENTS_REDIS_URL = "unix:///srv/steelqc/redis.sock"
    shown = _transport_line(client, role_user)
    assert 'data-transport="redis"' in shown and "through Redis (STEELQC_EVENTS_REDIS_URL)" in shown
    assert "redis.sock" not in shown  # the page names the setting, not where it points


def test_the_line_section_names_the_folder_without_redis(client, role_user, settings, tmp_path):
    settings.STEELQC_EVENTS_REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    shown = _transport_line(client, role_user)
    assert 'data-transport="files"' in shown and f"through files in {tmp_path / 'classify'}" in shown
    assert "must run on this machine" in shown
