"""Digests through providers' HTTP APIs (django-anymail), against fake APIs on loopback."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import time_machine

from digest import services
from digest.models import Digest
from tests.factories import make_paper, make_subscriber
from tests.fake_provider import FakeProvider, mailgun_success, postmark_success

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def postmark(settings):
    with FakeProvider(postmark_success) as provider:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {
            "POSTMARK_SERVER_TOKEN": "server-token",
            "POSTMARK_API_URL": provider.url,
        }
        yield provider


@pytest.fixture
def mailgun(settings):
    with FakeProvider(mailgun_success) as provider:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key-123",
            "MAILGUN_API_URL": provider.url + "v3",
            "MAILGUN_SENDER_DOMAIN": "mg.example.org",
        }
        yield provider


@pytest.fixture
def due_reader():
    with time_machine.travel(NOW, tick=False):
        make_paper("Attention is all you need", "Transformers.")
        yield make_subscriber(
            email="ada@example.org", topics=["attention"], due_at=NOW - timedelta(hours=1)
        )


def run(at=NOW):
    with time_machine.travel(at, tick=False):
        services.digest_run()


def test_it_sends_through_postmark_with_the_unsubscribe_headers(postmark, due_reader):
    run()

    [request] = postmark.requests
    assert request.path == "/email"
    assert request.headers["X-Postmark-Server-Token"] == "server-token"
    body = request.json()
    assert body["To"] == "ada@example.org"
    assert body["Subject"] == "1 new paper: Attention is all you need"
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http://testserver/unsubscribe/")
    assert "Attention is all you need" in body["HtmlBody"]
    assert "Attention is all you need" in body["TextBody"]
    digest = Digest.objects.get()
    assert digest.status == "sent"
    assert digest.provider_message_id


def test_it_sends_through_mailgun(mailgun, due_reader):
    run()

    [request] = mailgun.requests
    assert request.path == "/v3/mg.example.org/messages"
    form = parse_qs(request.body.decode())
    assert form["to"] == ["ada@example.org"]
    assert form["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    assert "Attention is all you need" in form["html"][0]
    assert Digest.objects.get().provider_message_id.endswith("@example.org>")


def test_a_provider_error_is_retried_and_the_digest_goes_out_when_it_recovers(postmark, due_reader):
    postmark.queue.append((500, {"ErrorCode": 100, "Message": "Server error"}))

    run()
    digest = Digest.objects.get()
    assert digest.status == "pending"
    assert "500" in digest.error or "Server error" in digest.error

    run(NOW + timedelta(minutes=3))
    digest.refresh_from_db()
    assert digest.status == "sent"
    assert len(postmark.requests) == 2


def test_an_inactive_recipient_fails_the_digest_for_good(postmark, due_reader):
    postmark.queue.append(
        (
            422,
            {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as inactive.\n"
                "Found inactive addresses: ada@example.org.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam "
                "complaint. ",
            },
        )
    )

    run()

    digest = Digest.objects.get()
    assert digest.status == "failed"
    run(NOW + timedelta(hours=1))
    assert len(postmark.requests) == 1, "a failed digest is not retried"
