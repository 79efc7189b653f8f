"""Bounces and complaints arriving on anymail's tracking webhook suppress the reader."""

import base64
import json

import pytest
from django.test import Client

from digest.models import DeliveryEvent
from subscriptions.models import Subscriber
from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(b"hook:s3cret").decode()


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}


def postmark_event(record_type="Bounce", bounce_type="HardBounce", email="ada@example.org", id=1):
    return {
        "RecordType": record_type,
        "ID": id,
        "Type": bounce_type,
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": email,
        "BouncedAt": "2026-11-28T12:00:00Z",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    }


def post(payload, client, auth=AUTH):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return client.post(
        "/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        **headers,
    )


def test_a_hard_bounce_suppresses_the_reader_with_the_reason(
    client: Client, django_capture_on_commit_callbacks
):
    reader = make_subscriber(email="ada@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(postmark_event(), client).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert "unable to deliver" in reader.suppressed_reason
    assert reader.next_digest_at is None


def test_a_complaint_suppresses_the_reader(client, django_capture_on_commit_callbacks):
    reader = make_subscriber(email="ada@example.org")
    event = {
        "RecordType": "SpamComplaint",
        "ID": 7,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "MessageID": "1",
        "Email": "ADA@example.org",
        "BouncedAt": "2026-11-28T12:00:00Z",
        "Description": "The subscriber explicitly marked this message as spam.",
    }
    with django_capture_on_commit_callbacks(execute=True):
        post(event, client)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert reader.suppressed_reason.startswith("complained")


def test_soft_bounces_are_counted_and_suppress_after_several(
    client, django_capture_on_commit_callbacks
):
    reader = make_subscriber(email="ada@example.org")
    for n in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            post(postmark_event(bounce_type="SoftBounce", id=n), client)
        reader.refresh_from_db()
        assert (reader.status, reader.soft_bounces) == ("active", n)
    with django_capture_on_commit_callbacks(execute=True):
        post(postmark_event(bounce_type="SoftBounce", id=3), client)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert "3 soft bounces" in reader.suppressed_reason


def test_a_duplicate_event_is_skipped_by_its_id(client, django_capture_on_commit_callbacks):
    reader = make_subscriber(email="ada@example.org")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert post(postmark_event(bounce_type="SoftBounce", id=42), client).status_code == 200
    reader.refresh_from_db()
    assert reader.soft_bounces == 1
    assert DeliveryEvent.objects.count() == 1


def test_the_webhook_refuses_requests_without_the_secret(client):
    reader = make_subscriber(email="ada@example.org")
    assert post(postmark_event(), client, auth=None).status_code == 400
    bad = "Basic " + base64.b64encode(b"hook:wrong").decode()
    assert post(postmark_event(), client, auth=bad).status_code == 400
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert not DeliveryEvent.objects.exists()
