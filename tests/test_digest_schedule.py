"""When digests are due: each subscriber's own hour, in their own zone, across DST."""

from datetime import UTC, datetime

import pytest
import time_machine

from digest import services
from subscriptions.models import Subscriber
from subscriptions.schedule import current_period, following_delivery
from subscriptions.services import subscriber_confirm
from tests.factories import make_paper, make_subscriber

pytestmark = pytest.mark.django_db


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_it_delivers_at_the_local_hour_in_the_subscribers_zone():
    s = Subscriber(timezone="America/New_York", delivery_hour=8)
    key, moment = current_period(s, utc(2026, 11, 28, 20, 0))
    assert key == "2026-11-28"
    assert moment == utc(2026, 11, 28, 13, 0)  # 08:00 EST


def test_the_local_date_decides_the_period_not_the_utc_date():
    s = Subscriber(timezone="Asia/Tokyo", delivery_hour=7)
    key, moment = current_period(s, utc(2026, 11, 28, 23, 30))  # already the 29th in Tokyo
    assert key == "2026-11-29"
    assert moment == utc(2026, 11, 28, 22, 0)


def test_it_keeps_the_local_hour_across_the_spring_dst_change():
    s = Subscriber(timezone="Europe/Berlin", delivery_hour=8)
    _, saturday = current_period(s, utc(2026, 3, 28, 12))
    assert saturday == utc(2026, 3, 28, 7)  # CET, UTC+1
    assert following_delivery(s, saturday) == utc(2026, 3, 29, 6)  # CEST, UTC+2


def test_it_keeps_the_local_hour_across_the_autumn_dst_change():
    s = Subscriber(timezone="America/New_York", delivery_hour=1)  # 01:00 happens twice
    _, saturday = current_period(s, utc(2026, 10, 31, 12))
    sunday = following_delivery(s, saturday)
    assert sunday == utc(2026, 11, 1, 5)  # the first 01:00 (EDT)
    assert following_delivery(s, sunday) == utc(2026, 11, 2, 6)  # EST


def test_an_hour_skipped_by_dst_delivers_once_that_day():
    s = Subscriber(timezone="Europe/Berlin", delivery_hour=2)  # 02:00 does not exist on 29 Mar
    key, moment = current_period(s, utc(2026, 3, 29, 12))
    assert key == "2026-03-29"
    assert moment.astimezone(s.tz).date().isoformat() == "2026-03-29"


def test_weekly_digests_come_on_the_chosen_weekday_and_share_one_period_per_week():
    s = Subscriber(frequency="weekly", weekday=4, delivery_hour=9, timezone="UTC")  # Friday
    key, moment = current_period(s, utc(2026, 11, 23, 10))  # Monday
    assert key == "2026-W48"
    assert moment == utc(2026, 11, 27, 9)
    assert following_delivery(s, moment) == utc(2026, 12, 4, 9)


def test_a_new_subscriber_gets_todays_digest_when_their_hour_has_passed():
    with time_machine.travel(utc(2026, 11, 28, 15), tick=False):
        s = make_subscriber(status=Subscriber.Status.PENDING, delivery_hour=8)
        subscriber_confirm(subscriber=s)
        s.refresh_from_db()
        assert s.next_digest_at == utc(2026, 11, 28, 8)
        assert services.subscribers_due(now=utc(2026, 11, 28, 15)) == [s.pk]


def test_it_sends_at_the_hour_and_then_waits_for_the_next_day(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    with time_machine.travel(utc(2026, 11, 28, 6), tick=False):
        make_paper("Sparse attention for long documents")
        s = make_subscriber(topics=["attention"], status=Subscriber.Status.PENDING, delivery_hour=8)
        subscriber_confirm(subscriber=s)
    for hour, expected in [(7, 0), (8, 1), (9, 1), (23, 1)]:
        with time_machine.travel(utc(2026, 11, 28, hour, 1), tick=False):
            services.digest_run()
        assert len(mail.outbox) == expected, f"at {hour}:01"
    s.refresh_from_db()
    assert s.next_digest_at == utc(2026, 11, 29, 8)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": Subscriber.Status.UNSUBSCRIBED},
        {"status": Subscriber.Status.SUPPRESSED},
        {"status": Subscriber.Status.PENDING},
        {"paused_until": datetime(2026, 12, 5).date()},
    ],
)
def test_paused_unsubscribed_suppressed_and_pending_readers_are_never_due(fields):
    now = utc(2026, 11, 28, 12)
    make_subscriber(topics=["attention"], due_at=utc(2026, 11, 28, 8), **fields)
    assert services.subscribers_due(now=now) == []
    assert services.subscribers_all_active(now=now) == []
