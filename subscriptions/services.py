import contextlib
import re
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from config.reverse import cached_reverse
from digest.query import QueryError, parse_query

from . import schedule
from .models import Subscriber, Topic

CONFIRMATION_RESEND_AFTER = timedelta(minutes=2)
MAX_TOPICS = 50


class TopicError(ValueError):
    """A topic that cannot be saved; the message is meant for the person who typed it."""


def _enqueue(task, *args):
    transaction.on_commit(lambda: task.delay(*args))


def _by_email(email: str):
    """Subscribers with this address in any case, through the index on LOWER(email) (iexact
    would scan the table)."""
    return Subscriber.objects.alias(email_lower=Lower("email")).filter(email_lower=email.lower())


def subscriber_signup(
    *, email: str, queries: list[str] = (), timezone_name: str = ""
) -> Subscriber | None:
    """Start (or restart) a subscription for an already validated, normalised address and
    already parsed topic queries.

    The caller answers the same whatever happens here, so the page never reveals whether an
    address is known. New and pending addresses get a confirmation email (at most one every
    couple of minutes); active ones get their preferences link; suppressed ones get nothing.
    Topics are only attached to a subscription that is not confirmed yet, so a stranger can
    never add topics to someone else's digest."""
    from . import tasks

    now = timezone.now()
    with transaction.atomic():
        subscriber = _by_email(email).select_for_update().first()
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(
                        email=email, timezone=timezone_name or "UTC", confirmation_sent_at=now
                    )
                    # A new subscriber has no topics yet: no duplicates, no limit to check.
                    fresh = dict.fromkeys(filter(None, map(normalize_query, queries)))
                    Topic.objects.bulk_create(
                        [Topic(subscriber=subscriber, query=q) for q in fresh][:MAX_TOPICS]
                    )
            except IntegrityError:  # a concurrent sign-up of the same address won
                subscriber = _by_email(email).select_for_update().get()
            else:
                _enqueue(tasks.send_confirmation, subscriber.pk)
                return subscriber
        if subscriber.status == Subscriber.Status.SUPPRESSED:
            return None
        if subscriber.status == Subscriber.Status.ACTIVE:
            _enqueue(tasks.send_manage_link, subscriber.pk)
            return subscriber
        if subscriber.status == Subscriber.Status.PENDING:
            for query in queries:
                with contextlib.suppress(TopicError):  # already there, or over the limit
                    topic_add(subscriber=subscriber, query=query)
        _confirmation_resend(subscriber, now)
    return subscriber


def _confirmation_resend(subscriber: Subscriber, now: datetime) -> None:
    from . import tasks

    recently = subscriber.confirmation_sent_at and (
        now - subscriber.confirmation_sent_at < CONFIRMATION_RESEND_AFTER
    )
    if not recently:
        subscriber.confirmation_sent_at = now
        subscriber.save(update_fields=["confirmation_sent_at"])
        _enqueue(tasks.send_confirmation, subscriber.pk)


def subscriber_request_link(*, email: str) -> None:
    """Email the preferences link of a validated, normalised address, if it has a
    subscription worth managing. The caller answers the same whatever happens here: pending
    addresses get their confirmation again, unknown and suppressed ones get nothing."""
    from . import tasks

    subscriber = _by_email(email).first()
    if subscriber is None or subscriber.status == Subscriber.Status.SUPPRESSED:
        return
    if subscriber.status == Subscriber.Status.PENDING:
        with transaction.atomic():
            _confirmation_resend(subscriber, timezone.now())
        return
    tasks.send_manage_link.delay(subscriber.pk)


def subscriber_confirm(*, subscriber: Subscriber, now: datetime | None = None) -> Subscriber:
    if subscriber.status in (Subscriber.Status.PENDING, Subscriber.Status.UNSUBSCRIBED):
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = now or timezone.now()
        subscriber.unsubscribed_at = None
        subscriber.save(update_fields=["status", "confirmed_at", "unsubscribed_at"])
        subscriber_reschedule(subscriber=subscriber, now=now)
    return subscriber


def subscriber_unsubscribe(*, subscriber: Subscriber) -> Subscriber:
    if subscriber.status != Subscriber.Status.UNSUBSCRIBED:
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.unsubscribed_at = timezone.now()
        subscriber.next_digest_at = None
        subscriber.save(update_fields=["status", "unsubscribed_at", "next_digest_at"])
    return subscriber


def subscriber_resubscribe(*, subscriber: Subscriber) -> Subscriber:
    """Undo an unsubscribe from the link in an email the person already confirmed."""
    if subscriber.status == Subscriber.Status.UNSUBSCRIBED and subscriber.confirmed_at:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.unsubscribed_at = None
        subscriber.save(update_fields=["status", "unsubscribed_at"])
        subscriber_reschedule(subscriber=subscriber)
    return subscriber


def subscriber_reschedule(*, subscriber: Subscriber, now: datetime | None = None) -> None:
    """Store when the next digest is due: this period's delivery moment if this period has no
    digest yet (so a new subscriber's first digest comes today), else the next period's."""
    now = now or timezone.now()
    if subscriber.status != Subscriber.Status.ACTIVE:
        subscriber.next_digest_at = None
    else:
        key, moment = schedule.current_period(subscriber, now)
        if subscriber.digests.filter(period_key=key).exists():
            moment = schedule.following_delivery(subscriber, moment)
        subscriber.next_digest_at = moment
    subscriber.save(update_fields=["next_digest_at"])


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_query(query: str) -> str:
    """Control characters become spaces (a NUL cannot even be stored), runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", query).split())


def topic_add(*, subscriber: Subscriber, query: str) -> Topic:
    query = normalize_query(query)
    if not query:
        raise TopicError('Write a topic first, for example: LoRA or "continual pre-training".')
    try:
        parse_query(query)
    except QueryError as err:
        raise TopicError(f"{err.message} (at character {err.position + 1})") from err
    if subscriber.topics.count() >= MAX_TOPICS:
        raise TopicError(f"You can follow at most {MAX_TOPICS} topics.")
    if subscriber.topics.filter(query=query).exists():
        raise TopicError(f"You already follow “{query}”.")
    try:
        with transaction.atomic():
            return Topic.objects.create(subscriber=subscriber, query=query)
    except IntegrityError as err:
        raise TopicError(f"You already follow “{query}”.") from err


def topic_update(*, subscriber: Subscriber, topic_id: int, query: str) -> Topic:
    """Change a topic's query. Raises Topic.DoesNotExist for a topic not theirs, TopicError
    for a query that cannot be saved."""
    topic = subscriber.topics.get(pk=topic_id)
    query = normalize_query(query)
    if query == topic.query:
        return topic
    try:
        parse_query(query)
    except QueryError as err:
        raise TopicError(f"{err.message} (at character {err.position + 1})") from err
    if subscriber.topics.filter(query=query).exclude(pk=topic.pk).exists():
        raise TopicError(f"You already follow “{query}”.")
    topic.query = query
    try:
        with transaction.atomic():
            topic.save(update_fields=["query"])
    except IntegrityError as err:
        raise TopicError(f"You already follow “{query}”.") from err
    return topic


def topic_delete(*, subscriber: Subscriber, topic_id: int) -> bool:
    deleted, _ = Topic.objects.filter(subscriber=subscriber, pk=topic_id).delete()
    return bool(deleted)


def manage_url(subscriber: Subscriber) -> str:
    return settings.SITE_URL + cached_reverse("manage", subscriber.key)


SCHEDULE_FIELDS = ("frequency", "weekday", "delivery_hour", "timezone", "max_papers", "min_upvotes")


def subscriber_set_schedule(
    *, subscriber: Subscriber, sources=None, now: datetime | None = None, **fields
) -> Subscriber:
    """Store already validated schedule fields (SCHEDULE_FIELDS) and sources (None leaves
    them; empty means all), then when the next digest is due."""
    unknown = set(fields) - set(SCHEDULE_FIELDS)
    if unknown:
        raise TypeError(f"not schedule fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(subscriber, name, value)
    with transaction.atomic():
        subscriber.save(update_fields=list(fields))
        if sources is not None:
            subscriber.sources.set(sources)
        subscriber_reschedule(subscriber=subscriber, now=now)
    return subscriber


def subscriber_pause(*, subscriber: Subscriber, until, now: datetime | None = None) -> Subscriber:
    """No digests up to and including `until` (a date in the subscriber's zone); the first one
    after comes at the usual hour on the day after, not at the moment the pause ends."""
    now = now or timezone.now()
    subscriber.paused_until = until
    subscriber.save(update_fields=["paused_until"])
    resume_at = datetime.combine(until + timedelta(days=1), time(0), tzinfo=subscriber.tz)
    subscriber_reschedule(subscriber=subscriber, now=max(now, resume_at))
    return subscriber


def subscriber_resume(*, subscriber: Subscriber, now: datetime | None = None) -> Subscriber:
    subscriber.paused_until = None
    subscriber.save(update_fields=["paused_until"])
    subscriber_reschedule(subscriber=subscriber, now=now)
    return subscriber


def subscriber_send_preview(*, subscriber: Subscriber) -> bool:
    """Queue a digest of what matches now, outside the schedule. Its papers count as sent, so
    the next scheduled digest does not repeat them. False if the subscriber cannot get mail."""
    from . import tasks

    if subscriber.status != Subscriber.Status.ACTIVE:
        return False
    _enqueue(tasks.send_preview, subscriber.pk, timezone.now().isoformat())
    return True


def subscriber_suppress(*, subscriber: Subscriber, reason: str) -> Subscriber:
    subscriber.status = Subscriber.Status.SUPPRESSED
    subscriber.suppressed_reason = reason[:500]
    subscriber.next_digest_at = None
    subscriber.save(update_fields=["status", "suppressed_reason", "next_digest_at"])
    return subscriber


def subscriber_delete(*, subscriber: Subscriber) -> None:
    """Forget the subscriber for good: topics, digests and their papers' records go with it."""
    subscriber.delete()


def site_url(path: str) -> str:
    return settings.SITE_URL + path


def topic_unsubscribe_url(topic: Topic) -> str:
    """The signed link that stops one topic, for the digest's per-topic footer."""
    from .tokens import topic_unsubscribe_token

    return site_url(cached_reverse("topic_unsubscribe", topic_unsubscribe_token(topic)))
