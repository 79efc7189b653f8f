import uuid
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, fast_scraper_settings
from tests.servers import SMTPSink, StaticHTTPServer

HERE = Path(__file__).resolve().parent
OWN_FIXTURES = HERE / "fixtures"
SHARED_FIXTURES = HERE.parent.parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def _defaults(settings, tmp_path):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SITE_URL = "http://testserver"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PAPERBOY_POSTAL_ADDRESS = "Paperboy, 1 Example Street, Exampletown"
    from config.celery import app

    app.conf.task_always_eager = True


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback; Django sends to it over SMTP."""
    with SMTPSink() as sink:
        settings.EMAIL_BACKEND = "digest.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield sink


@pytest.fixture(scope="session")
def fixture_server():
    with StaticHTTPServer(OWN_FIXTURES) as server:
        yield server


@pytest.fixture(scope="session")
def shared_fixture_server():
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside this clone (it is in CI)")
    with StaticHTTPServer(SHARED_FIXTURES) as server:
        yield server


@pytest.fixture
def fast_scraper(settings):
    """Scraper timeouts, retries and delays short enough for tests, and no politeness state
    (per-host delays, robots.txt) left over from an earlier test."""
    from django.core.cache import cache

    fast_scraper_settings(settings)
    cache.clear()


@pytest.fixture
def server():
    """A fault server on loopback: each test queues the replies it needs."""
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture
def private_ratelimit_cache(settings):
    """Rate limits on (they are off under pytest by default), counted in a private in-memory
    cache per test: fresh counters, and nothing written to the shared Redis."""
    settings.RATELIMIT_ENABLE = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(uuid.uuid4()),
        }
    }


@pytest.fixture
def tasks_at_once(monkeypatch):
    """The test transaction never commits, so run what would be enqueued on commit at once."""
    from subscriptions import services

    monkeypatch.setattr(services, "_enqueue", lambda task, *args: task.delay(*args))
