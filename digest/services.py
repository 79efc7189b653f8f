"""The digest run: who is due, what they get, and sending it exactly once."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from scraper.models import Paper
from subscriptions import schedule
from subscriptions.models import Subscriber, Topic
from subscriptions.services import manage_url, subscriber_reschedule
from subscriptions.tokens import unsubscribe_token

from . import mailer
from .matching import TopicIndex
from .models import Digest, DigestItem
from .query import document_for

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A digest left in "sending" this long was abandoned by a worker that died mid-send.
SENDING_STALE_AFTER = timedelta(minutes=10)


@dataclass
class PaperMatch:
    paper: Paper
    score: float = 0.0
    topics: list[str] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)


@dataclass
class RunResult:
    sent: int = 0
    empty: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0

    def add(self, other: "RunResult") -> None:
        for name in ("sent", "empty", "failed", "retrying", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _receiving(now: datetime):
    return Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=now.date())
    )


def subscribers_due(*, now: datetime) -> list[int]:
    return list(
        _receiving(now)
        .filter(next_digest_at__lte=now)
        .order_by("next_digest_at", "pk")
        .values_list("pk", flat=True)
    )


def subscribers_all_active(*, now: datetime) -> list[int]:
    return list(_receiving(now).order_by("pk").values_list("pk", flat=True))


def chunked(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def recent_papers(*, now: datetime) -> list[Paper]:
    since = now - timedelta(days=settings.DIGEST_RECENT_DAYS)
    return list(Paper.objects.filter(first_seen_at__gte=since).prefetch_related("sources"))


def papers_for_subscribers(
    *, subscribers: list[Subscriber], papers: list[Paper]
) -> dict[int, list[PaperMatch]]:
    """Each subscriber's matching papers, ranked, before removing what they already got."""
    topics = list(Topic.objects.filter(subscriber__in=subscribers).prefetch_related("sources"))
    index = TopicIndex()
    by_id = {}
    for topic in topics:
        index.add(topic.pk, topic.query)
        by_id[topic.pk] = topic
    subs = {s.pk: s for s in subscribers}
    source_ids = {s.pk: {src.pk for src in s.sources.all()} for s in subscribers}
    result: dict[int, dict[int, PaperMatch]] = {s.pk: {} for s in subscribers}
    for paper in papers:
        doc = document_for(title=paper.title, abstract=paper.abstract, authors=paper.authors)
        paper_sources = {src.pk for src in paper.sources.all()}
        for hit in index.match(doc):
            topic = by_id[hit.topic_id]
            sub = subs[topic.subscriber_id]
            if paper.upvotes < max(topic.min_upvotes, sub.min_upvotes):
                continue
            wanted = {src.pk for src in topic.sources.all()} or source_ids[sub.pk]
            if wanted and not (wanted & paper_sources):
                continue
            entry = result[sub.pk].setdefault(paper.pk, PaperMatch(paper))
            entry.score = max(entry.score, hit.match.score)
            entry.topics.append(topic.query)
            entry.terms |= hit.match.terms
    return {
        pk: sorted(found.values(), key=lambda m: (-m.score, -m.paper.upvotes, m.paper.pk))
        for pk, found in result.items()
    }


def digest_claim(
    *, subscriber: Subscriber, period_key: str, matches: list[PaperMatch], now: datetime
) -> Digest | None:
    """Reserve the digest of this period with its papers, or resume one a crashed run left.
    Returns None when there is nothing to send for this period."""
    with transaction.atomic():
        digest, created = Digest.objects.get_or_create(subscriber=subscriber, period_key=period_key)
        if not created:
            return _resumable(digest, now)
        already = set(
            DigestItem.objects.filter(subscriber=subscriber).values_list("paper_id", flat=True)
        )
        fresh = [m for m in matches if m.paper.pk not in already]
        if not fresh:
            digest.status = Digest.Status.EMPTY
            digest.save(update_fields=["status"])
            return None
        DigestItem.objects.bulk_create(
            DigestItem(
                digest=digest,
                subscriber=subscriber,
                paper=m.paper,
                rank=rank,
                topics=m.topics,
                terms=sorted(m.terms),
            )
            for rank, m in enumerate(fresh, start=1)
        )
        shown = min(len(fresh), subscriber.max_papers)
        digest.paper_count = shown
        digest.more_count = len(fresh) - shown
        digest.subject = digest_subject(count=len(fresh), top_title=fresh[0].paper.title)
        digest.save(update_fields=["paper_count", "more_count", "subject"])
    return digest


def _resumable(digest: Digest, now: datetime) -> Digest | None:
    if digest.status == Digest.Status.PENDING:
        backoff = timedelta(minutes=2**digest.attempts) if digest.attempts else timedelta(0)
        if digest.claimed_at and now - digest.claimed_at < backoff:
            return None
        return digest
    if digest.status == Digest.Status.SENDING and (
        digest.claimed_at is None or now - digest.claimed_at >= SENDING_STALE_AFTER
    ):
        Digest.objects.filter(pk=digest.pk, status=Digest.Status.SENDING).update(
            status=Digest.Status.PENDING
        )
        digest.status = Digest.Status.PENDING
        return digest
    return None


def digest_subject(*, count: int, top_title: str) -> str:
    title = mailer.header_safe(top_title, limit=90)
    if count == 1:
        return f"1 new paper: {title}"
    return f"{count} new papers: {title}, and more"


def digest_context(digest: Digest, *, limit: int | None = None) -> dict:
    subscriber = digest.subscriber
    items = list(digest.items.select_related("paper").order_by("rank"))
    if limit is not None:
        items = items[:limit]
    groups: dict[str, list[DigestItem]] = {}
    for item in items:
        groups.setdefault(item.topics[0] if item.topics else "", []).append(item)
    return {
        "digest": digest,
        "subscriber": subscriber,
        "items": items,
        "groups": list(groups.items()),
        "more_count": digest.more_count,
        "manage_url": manage_url(subscriber),
        "unsubscribe_url": unsubscribe_url(subscriber),
        "web_url": settings.SITE_URL + reverse("digest_web", args=[subscriber.key, digest.pk]),
        "postal_address": settings.PAPERBOY_POSTAL_ADDRESS,
    }


def unsubscribe_url(subscriber: Subscriber) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(subscriber)])


def digest_message(digest: Digest):
    context = digest_context(digest, limit=digest.subscriber.max_papers)
    return mailer.build_email(
        to=digest.subscriber.email,
        subject=digest.subject,
        template="digest",
        context=context,
        unsubscribe_url=context["unsubscribe_url"],
        message_id=f"<digest-{digest.pk}.{digest.period_key}@{mailer.message_domain()}>",
    )


def digest_send(*, digest: Digest, now: datetime, connection=None) -> str:
    """Send a claimed digest: pending → sending → sent, or back to pending / failed.
    Returns the digest's final status."""
    claimed = Digest.objects.filter(pk=digest.pk, status=Digest.Status.PENDING).update(
        status=Digest.Status.SENDING, claimed_at=now, attempts=digest.attempts + 1
    )
    if claimed != 1:
        return "skipped"
    digest.refresh_from_db()
    try:
        provider_id = mailer.send(digest_message(digest), connection)
    except mailer.SendError as err:
        if err.permanent or digest.attempts >= MAX_ATTEMPTS:
            _digest_failed(digest, str(err))
            return Digest.Status.FAILED
        Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.PENDING, error=str(err))
        log.warning("digest %s will be retried: %s", digest.pk, err)
        return "retrying"
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.SENT,
        sent_at=timezone.now(),
        provider_message_id=str(provider_id or ""),
        message_id=f"<digest-{digest.pk}.{digest.period_key}@{mailer.message_domain()}>",
        error="",
    )
    return Digest.Status.SENT


def _digest_failed(digest: Digest, error: str) -> None:
    with transaction.atomic():
        Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.FAILED, error=error)
        # The papers were never delivered: free them for the next digest.
        digest.items.all().delete()
    log.error("digest %s failed for good: %s", digest.pk, error)
    mail_admins(
        f"Digest {digest.pk} to {digest.subscriber.email} failed",
        f"Period {digest.period_key}, after {digest.attempts} attempt(s):\n\n{error}",
        fail_silently=True,
    )


def digests_send_chunk(
    *, subscriber_ids: list[int], now: datetime, period_key: str | None = None
) -> RunResult:
    """Build and send the digests of a chunk of subscribers. `period_key` forces one key for
    everyone (send_digests --all); otherwise each subscriber's scheduled period is used.
    Safe to run twice or concurrently: the Digest claim decides who sends."""
    result = RunResult()
    subscribers = list(
        Subscriber.objects.filter(pk__in=subscriber_ids, status=Subscriber.Status.ACTIVE)
        .prefetch_related("sources")
        .order_by("pk")
    )
    if not subscribers:
        return result
    matches = papers_for_subscribers(subscribers=subscribers, papers=recent_papers(now=now))
    connection = mailer.open_connection()
    try:
        connection.open()
        for subscriber in subscribers:
            outcome = _digest_for(subscriber, matches[subscriber.pk], now, period_key, connection)
            setattr(result, outcome, getattr(result, outcome) + 1)
    finally:
        connection.close()
    return result


def _digest_for(subscriber, matches, now, forced_key, connection) -> str:
    if forced_key:
        key = forced_key
    else:
        if subscriber.next_digest_at is None or subscriber.next_digest_at > now:
            return "skipped"
        key = schedule.period_key(
            subscriber, subscriber.next_digest_at.astimezone(subscriber.tz).date()
        )
    try:
        digest = digest_claim(subscriber=subscriber, period_key=key, matches=matches, now=now)
    except IntegrityError:
        return "skipped"
    outcome = "empty"
    if digest is not None:
        outcome = digest_send(digest=digest, now=now, connection=connection)
    if outcome == Digest.Status.SENT:
        outcome = "sent"
    elif outcome == Digest.Status.FAILED:
        outcome = "failed"
    if not forced_key and outcome not in ("retrying", "skipped"):
        subscriber_reschedule(subscriber=subscriber, now=now)
    return outcome


def digest_run(*, now: datetime | None = None, everyone: bool = False, enqueue: bool = False):
    """Send every digest due now (or, with everyone, every receiving subscriber's digest).
    With enqueue, each chunk becomes a Celery task; otherwise chunks run here, in order."""
    from . import tasks

    now = now or timezone.now()
    ids = subscribers_all_active(now=now) if everyone else subscribers_due(now=now)
    period_key = f"now-{now:%Y%m%dT%H%M%S}" if everyone else None
    result = RunResult()
    for chunk in chunked(ids, settings.DIGEST_CHUNK_SIZE):
        if enqueue:
            tasks.send_digest_chunk.delay(chunk, now.isoformat(), period_key)
        else:
            result.add(digests_send_chunk(subscriber_ids=chunk, now=now, period_key=period_key))
    return len(ids), result
