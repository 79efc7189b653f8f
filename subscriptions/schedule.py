"""When a subscriber's digests are due. Periods are computed in the subscriber's own zone:
a daily period is a local date, a weekly one an ISO week; the delivery moment is the chosen
local hour on that date (or on the chosen weekday of that week)."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .models import Subscriber


def period_key(subscriber: Subscriber, local_day: date) -> str:
    if subscriber.frequency == Subscriber.Frequency.WEEKLY:
        year, week, _ = local_day.isocalendar()
        return f"{year}-W{week:02d}"
    return local_day.isoformat()


def delivery_moment(subscriber: Subscriber, local_day: date) -> datetime:
    """The UTC instant of the delivery in the period containing local_day."""
    if subscriber.frequency == Subscriber.Frequency.WEEKLY:
        local_day = local_day - timedelta(days=local_day.weekday() - subscriber.weekday)
    local = datetime.combine(local_day, time(subscriber.delivery_hour), tzinfo=subscriber.tz)
    # A delivery hour skipped by a DST jump lands an hour later; fold=0 picks the first of a
    # repeated hour. Round-tripping through UTC normalises both cases.
    return local.astimezone(ZoneInfo("UTC"))


def next_period_day(subscriber: Subscriber, local_day: date) -> date:
    step = 7 if subscriber.frequency == Subscriber.Frequency.WEEKLY else 1
    return local_day + timedelta(days=step)


def current_period(subscriber: Subscriber, now: datetime) -> tuple[str, datetime]:
    """The period containing `now` in the subscriber's zone, and its delivery moment."""
    local_day = now.astimezone(subscriber.tz).date()
    return period_key(subscriber, local_day), delivery_moment(subscriber, local_day)


def following_delivery(subscriber: Subscriber, period_moment: datetime) -> datetime:
    local_day = period_moment.astimezone(subscriber.tz).date()
    return delivery_moment(subscriber, next_period_day(subscriber, local_day))
