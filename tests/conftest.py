from pathlib import Path

import pytest

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
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
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
