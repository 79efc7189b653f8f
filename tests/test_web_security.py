"""Headers, CSP, escaping of scraped text, and no 500 on odd requests."""

import pytest
from django.test import Client

from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_csp_and_the_usual_headers(client):
    page = client.get("/")
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"
    assert "<script>" not in page.content.decode(), "no inline scripts"


def test_static_files_are_served_by_the_app(client):
    for path in ["/static/css/site.css", "/static/js/site.js"]:
        response = client.get(path)
        assert response.status_code == 200, path


def test_https_settings_follow_site_url(settings):
    assert settings.SESSION_COOKIE_SECURE is settings.SITE_IS_HTTPS
    assert settings.CSRF_COOKIE_SECURE is settings.SITE_IS_HTTPS


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/"),
        ("delete", "/link/"),
        ("post", "/sample/"),
        ("get", "/manage/x/topics/"),
        ("get", "/manage/x/pause/"),
        ("get", "/manage/%00/"),
        ("get", "/manage/%00abcdefghijklmnopqrstuvwxyz/"),
        ("post", "/manage/%00abcdefghijklmnopqrstuvwxyz/topics/"),
        ("get", "/confirm/%F0%9F%92%A9/"),
        ("get", "/unsubscribe/topic/..%2F..%2F/"),
        ("get", "/manage/%00abc/digests/1/"),
        ("get", "/manage/NoSuchKeyNoSuchKeyNoSuchKey/digests/1/"),
    ],
)
def test_odd_requests_get_a_4xx_never_a_500(method, path):
    client = Client(raise_request_exception=False)
    response = getattr(client, method)(path)
    assert 400 <= response.status_code < 500, (method, path, response.status_code)


def test_binary_and_huge_form_input_is_refused_cleanly(client):
    reader = make_subscriber("ada@example.org")
    for data in (
        {"email": "\x00\xff@example.org"},
        {"email": "a@b.c" * 10_000},
        {"email": "ada@example.org", "query": "\x00"},
    ):
        assert client.post("/", data).status_code == 400
    page = client.post(f"/manage/{reader.key}/topics/", {"query": "\x00"})
    assert page.status_code == 400
    page = client.post(f"/manage/{reader.key}/topics/", {"query": "Lo\x07RA"})
    assert page.status_code == 302
    assert reader.topics.get().query == "Lo RA"


def test_the_404_page_is_friendly(client):
    page = client.get("/no/such/page/")
    assert page.status_code == 404
    assert "We couldn't find that page" in page.content.decode()


def test_rate_limits_are_on_by_default_outside_pytest_and_off_with_the_variable():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.RATELIMIT_ENABLE)"
    )
    env = {k: v for k, v in os.environ.items() if k != "RATELIMIT_ENABLE"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    root = Path(__file__).resolve().parent.parent

    def run(**extra):
        done = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, cwd=root, capture_output=True
        )
        return done.stdout.decode().strip()

    assert run() == "True"
    assert run(RATELIMIT_ENABLE="false") == "False"
