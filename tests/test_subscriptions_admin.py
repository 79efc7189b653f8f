"""The admin: state filters, search, actions, topics and digests inline."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from digest.models import Digest
from subscriptions.models import Subscriber
from tests.factories import make_paper, make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_at_once")]


@pytest.fixture
def people():
    return {
        "pending": make_subscriber("pending@example.org", status=Subscriber.Status.PENDING),
        "active": make_subscriber("active@example.org", ["LoRA"]),
        "paused": make_subscriber(
            "paused@example.org", paused_until=timezone.localdate() + timedelta(days=5)
        ),
        "unsubscribed": make_subscriber("gone@example.org", status=Subscriber.Status.UNSUBSCRIBED),
        "suppressed": make_subscriber("bounced@example.org", status=Subscriber.Status.SUPPRESSED),
    }


@pytest.mark.parametrize("state", ["pending", "active", "paused", "unsubscribed", "suppressed"])
def test_it_filters_by_state(admin_client, people, state):
    page = admin_client.get("/admin/subscriptions/subscriber/", {"state": state})
    assert page.status_code == 200
    shown = [p.email for p in people.values() if p.email in page.content.decode()]
    assert shown == [people[state].email]


def test_it_searches_by_address_and_topic(admin_client, people):
    page = admin_client.get("/admin/subscriptions/subscriber/", {"q": "LoRA"})
    assert "active@example.org" in page.content.decode()
    assert "pending@example.org" not in page.content.decode()


def test_the_change_page_shows_topics_and_digests_inline(admin_client, people):
    active = people["active"]
    Digest.objects.create(subscriber=active, period_key="2026-11-20", status="empty")
    page = admin_client.get(f"/admin/subscriptions/subscriber/{active.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "LoRA" in body and "2026-11-20" in body


def act(admin_client, action, *subscribers):
    return admin_client.post(
        "/admin/subscriptions/subscriber/",
        {"action": action, "_selected_action": [s.pk for s in subscribers]},
        follow=True,
    )


def test_resend_confirmation_goes_to_pending_subscribers_only(admin_client, people):
    act(admin_client, "resend_confirmation", people["pending"], people["active"])
    [message] = mail.outbox
    assert message.to == ["pending@example.org"]


def test_send_a_preview(admin_client, people):
    make_paper("LoRA everywhere", "LoRA.")
    page = act(admin_client, "send_preview", people["active"], people["unsubscribed"])
    assert "Preview queued for 1 subscriber(s)." in page.content.decode()
    [message] = mail.outbox
    assert message.to == ["active@example.org"]


def test_suppress(admin_client, people):
    act(admin_client, "suppress", people["active"])
    people["active"].refresh_from_db()
    assert people["active"].status == "suppressed"
    assert people["active"].suppressed_reason.startswith("suppressed by")
    assert people["active"].next_digest_at is None
