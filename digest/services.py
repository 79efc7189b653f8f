"""The digest run: who is due, what they get, and sending it exactly once.

A chunk of subscribers goes through four steps, each a handful of queries for the whole chunk:
match (topics against recent papers), reserve (a Digest row per subscriber and period, with its
papers), claim (pending → sending, row-locked, so only one worker sends), send, then record the
outcome and store when each subscriber is next due."""

import logging
import queue
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import connection as db_connection
from django.db import connections as db_connections
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.reverse import cached_reverse
from scraper.models import Paper
from subscriptions import schedule
from subscriptions.models import Subscriber, Topic
from subscriptions.services import manage_url, topic_unsubscribe_url
from subscriptions.tokens import unsubscribe_token

from . import mailer, rendering
from .matching import TopicIndex, bit_indices, paper_document
from .models import Digest
from .query import Match, Query, parse_query
from .selectors import DigestEntry, digest_entries

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A digest keeps at most this many papers: the email shows the reader's maximum, the web
# archive the rest. Papers ranked below this stay unsent and can come in a later digest.
ARCHIVE_MAX_PAPERS = 100


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


# --- Who ------------------------------------------------------------------------------------


def _receiving(now: datetime):
    """Active subscribers not certainly paused. A pause lasts to the end of its date in the
    subscriber's own zone, so a pause ending in the date range that some zone is in now is
    settled per subscriber (`_paused_locally`) when the chunk runs."""
    latest_local_date = (now + timedelta(hours=14)).date()
    return Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=latest_local_date)
    )


def _paused_locally(subscriber: Subscriber, now: datetime) -> bool:
    return (
        subscriber.paused_until is not None
        and subscriber.paused_until >= now.astimezone(subscriber.tz).date()
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


# --- What -----------------------------------------------------------------------------------


def recent_papers(*, now: datetime) -> list[Paper]:
    since = now - timedelta(days=settings.DIGEST_RECENT_DAYS)
    return list(Paper.objects.filter(first_seen_at__gte=since).prefetch_related("sources"))


class RunMatches:
    """The recent papers matched against topic queries, once per process and run: each
    distinct query is matched once (the matching engine, a batch of all the papers at a time)
    and each (query, paper) is scored once, whichever chunk of readers it comes up in. Kept
    while the recent papers stay the same, which is one run. Upvotes and sources, which
    change, are read from the papers of each chunk, not from here."""

    MAX_SCORES = 200_000  # (query, paper) scores kept; beyond, they are worked out again

    def __init__(self, papers: list[Paper]):
        self.docs = [paper_document(paper) for paper in papers]
        self.key = [(paper.pk, doc) for paper, doc in zip(papers, self.docs, strict=True)]
        self._bits: dict[str, int] = {}
        self._parsed: dict[str, Query] = {}
        self._scores: dict[tuple[str, int], tuple[float, set[str]]] = {}

    @classmethod
    def of(cls, papers: list[Paper]) -> "RunMatches":
        current = getattr(cls, "_current", None)
        if current is None or current.key != [
            (paper.pk, paper_document(paper)) for paper in papers
        ]:
            current = cls._current = cls(papers)
        return current

    def bits(self, queries: Iterable[str]) -> dict[str, int]:
        """Each query's bitset of the papers it matches (bit i: papers[i]); 0 when invalid."""
        new = [query for query in set(queries) if query not in self._bits]
        if new:
            index = TopicIndex()
            for n, query in enumerate(new):
                index.add(n, query)
                self._bits[query] = 0
            for query, _, bits in index.match_batch(self.docs).queries():
                self._bits[query] = bits
        return self._bits

    def scored(self, query: str, paper: int) -> tuple[float, set[str]]:
        """How well `query` matches papers[paper], and the words it matched."""
        found = self._scores.get((query, paper))
        if found is None:
            parsed = self._parsed.get(query)
            if parsed is None:
                parsed = self._parsed[query] = parse_query(query)
            match = parsed.match(self.docs[paper])
            if match is None:  # the engine and the parse tree disagree: a bug, not the reader's
                log.error("query %r matched paper %s only in the index", query, paper)
                match = Match()
            found = (match.score, match.terms)
            if len(self._scores) >= self.MAX_SCORES:
                self._scores.clear()
            self._scores[(query, paper)] = found
        return found


def papers_for_subscribers(
    *, subscribers: list[Subscriber], papers: list[Paper]
) -> dict[int, list[PaperMatch]]:
    """Each subscriber's matching papers, ranked (score, then upvotes), honouring each topic's
    and the subscriber's minimum upvotes and sources; before removing what was already sent.
    Subscribers come with their topics and sources prefetched."""
    topics = sorted((t for s in subscribers for t in s.topics.all()), key=lambda t: t.pk)
    topic_sources = defaultdict(set)
    for topic_id, source_id in Topic.sources.through.objects.filter(
        topic__in=[t.pk for t in topics]
    ).values_list("topic_id", "source_id"):
        topic_sources[topic_id].add(source_id)
    subs = {s.pk: s for s in subscribers}
    reader_sources = {s.pk: {src.pk for src in s.sources.all()} for s in subscribers}
    run = RunMatches.of(papers)
    bits = run.bits(topic.query for topic in topics)
    paper_sources: dict[int, set[int]] = {}
    result: dict[int, dict[int, PaperMatch]] = {s.pk: {} for s in subscribers}
    for topic in topics:
        matched = bits[topic.query]
        if not matched:
            continue
        sub = subs[topic.subscriber_id]
        found = result[sub.pk]
        min_upvotes = max(topic.min_upvotes, sub.min_upvotes)
        sources = topic_sources[topic.pk] or reader_sources[sub.pk]
        for i in bit_indices(matched):
            paper = papers[i]
            if paper.upvotes < min_upvotes:
                continue
            if sources:
                if i not in paper_sources:
                    paper_sources[i] = {src.pk for src in paper.sources.all()}
                if sources.isdisjoint(paper_sources[i]):
                    continue
            score, terms = run.scored(topic.query, i)
            entry = found.get(paper.id)
            if entry is None:
                entry = found[paper.id] = PaperMatch(paper)
            entry.score = max(entry.score, score)
            entry.topics.append(topic.query)
            entry.terms |= terms
    return {
        pk: sorted(found.values(), key=lambda m: (-m.score, -m.paper.upvotes, m.paper.id))
        for pk, found in result.items()
    }


def digest_subject(*, count: int, top_title: str) -> str:
    title = mailer.header_safe(top_title, limit=90)
    if count == 1:
        return f"1 new paper: {title}"
    return f"{count} new papers: {title}, and more"


# --- Reserve and claim ------------------------------------------------------------------------


def _reserve(plans: dict[int, str], subscribers: dict[int, Subscriber], matches, now):
    """Create this chunk's Digest rows and their papers. Returns (to_send, done, busy):
    digests to send (ours, or pending ones a crashed run left), subscriber ids whose period is
    settled (sent, empty or failed before), and subscriber ids another worker is on."""
    run_id = uuid.uuid4().hex
    existing = {
        d.subscriber_id: d
        for d in Digest.objects.filter(
            subscriber_id__in=list(plans), period_key__in=set(plans.values())
        )
        if plans.get(d.subscriber_id) == d.period_key
    }
    new_ids = [pk for pk in plans if pk not in existing]
    # What each reader already had: any paper recent enough to match arrived after its
    # first sighting, so the digests created since then are the ones to look at.
    already = defaultdict(set)
    for sub_id, paper_ids in Digest.objects.filter(
        subscriber_id__in=new_ids,
        created_at__gte=now - timedelta(days=settings.DIGEST_RECENT_DAYS),
        status__in=(Digest.Status.PENDING, Digest.Status.SENDING, Digest.Status.SENT),
    ).values_list("subscriber_id", "paper_ids"):
        already[sub_id].update(paper_ids)

    fresh = {
        pk: [m for m in matches[pk] if m.paper.id not in already[pk]][:ARCHIVE_MAX_PAPERS]
        for pk in new_ids
    }
    rows = []
    for pk in new_ids:
        papers = fresh[pk]
        shown = min(len(papers), subscribers[pk].max_papers)
        rows.append(
            Digest(
                subscriber_id=pk,
                period_key=plans[pk],
                run_id=run_id,
                status=Digest.Status.PENDING if papers else Digest.Status.EMPTY,
                subject=digest_subject(count=len(papers), top_title=papers[0].paper.title)
                if papers
                else "",
                paper_count=shown,
                more_count=len(papers) - shown,
                papers=_packed(papers),
                paper_ids=[m.paper.id for m in papers],
            )
        )
    Digest.objects.bulk_create(rows, ignore_conflicts=True)
    # The rows this run created (a concurrent run may have won some), kept as built: the
    # database adds only their ids and timestamps.
    built = {row.subscriber_id: row for row in rows}
    ours = []
    for pk, sub_id, created_at in Digest.objects.filter(
        subscriber_id__in=new_ids, run_id=run_id, status="pending"
    ).values_list("pk", "subscriber_id", "created_at"):
        row = built[sub_id]
        row.pk, row.created_at, row._state.adding = pk, created_at, False
        ours.append(row)
    ours_ids = {d.subscriber_id for d in ours}
    created_here = {
        pk for pk in new_ids if not fresh[pk]
    }  # empty digests this run settled (or a concurrent run did: same outcome)
    to_send, done, busy = list(ours), set(created_here), set()
    lost = set(new_ids) - ours_ids - created_here  # a concurrent run reserved them first
    busy |= lost
    for sub_id, digest in existing.items():
        state = _resume_state(digest, now)
        if state == "send":
            to_send.append(digest)
        elif state == "done":
            done.add(sub_id)
        else:
            busy.add(sub_id)
    return to_send, done, busy


def _packed(matches: list[PaperMatch]) -> dict:
    """A digest's papers as stored (see Digest.papers): each topic and term written once."""
    topics = list(dict.fromkeys(t for m in matches for t in m.topics))
    terms = sorted({t for m in matches for t in m.terms})
    topic_at = {t: i for i, t in enumerate(topics)}
    term_at = {t: i for i, t in enumerate(terms)}
    return {
        "topics": topics,
        "terms": terms,
        "items": [
            [m.paper.id, [topic_at[t] for t in m.topics], sorted(term_at[t] for t in m.terms)]
            for m in matches
        ],
    }


def _resume_state(digest: Digest, now: datetime) -> str:
    """What to do with a digest an earlier run created for this period."""
    if digest.status in (Digest.Status.SENT, Digest.Status.EMPTY, Digest.Status.FAILED):
        return "done"
    if digest.status == Digest.Status.PENDING:
        backoff = timedelta(minutes=2**digest.attempts) if digest.attempts else timedelta(0)
        if digest.claimed_at and now - digest.claimed_at < backoff:
            return "wait"
        return "send"
    stale_after = timedelta(seconds=settings.DIGEST_SENDING_STALE_SECONDS)
    if digest.claimed_at is None or now - digest.claimed_at >= stale_after:
        # The worker sending it died: send again (the one case that can double a message).
        Digest.objects.filter(pk=digest.pk, status=Digest.Status.SENDING).update(
            status=Digest.Status.PENDING
        )
        return "send"
    return "busy"


def _claim(digests: list[Digest], now: datetime) -> list[Digest]:
    """pending → sending for the digests no other worker holds; returns those we won, as
    they now are."""
    with transaction.atomic():
        won = set(
            Digest.objects.select_for_update(skip_locked=True)
            .filter(pk__in=[d.pk for d in digests], status=Digest.Status.PENDING)
            .values_list("pk", flat=True)
        )
        Digest.objects.filter(pk__in=won).update(
            status=Digest.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    claimed = [d for d in digests if d.pk in won]
    for digest in claimed:
        digest.status, digest.claimed_at = Digest.Status.SENDING, now
        digest.attempts += 1
    return claimed


# --- Render and send --------------------------------------------------------------------------


def digest_links(
    subscriber: Subscriber, digest: Digest, topics: Iterable[str] | None = None
) -> dict:
    """The links of a digest; the "stop this topic" ones for `topics` (default: all the
    subscriber's topics; an email needs only those heading its groups)."""
    wanted = None if topics is None else set(topics)
    return {
        "topic_stop_urls": {
            t.query: topic_unsubscribe_url(t)
            for t in subscriber.topics.all()
            if wanted is None or t.query in wanted
        },
        "manage_url": manage_url(subscriber),
        "unsubscribe_url": unsubscribe_url(subscriber),
        "web_url": settings.SITE_URL + cached_reverse("digest_web", subscriber.key, digest.pk),
    }


def unsubscribe_url(subscriber: Subscriber) -> str:
    return settings.SITE_URL + cached_reverse("unsubscribe", unsubscribe_token(subscriber))


def digest_message_id(digest: Digest) -> str:
    """Stable per digest, so a message re-sent after a crash reads as the same message."""
    return f"<digest-{digest.pk}.{digest.period_key}@{mailer.message_domain()}>"


def digest_message(digest: Digest, entries: list[DigestEntry], subscriber: Subscriber):
    shown = entries[: subscriber.max_papers]
    links = digest_links(subscriber, digest, topics=rendering.group_topics(shown))
    rendered = rendering.render_digest(
        digest=digest, items=shown, subscriber=subscriber, links=links
    )
    return mailer.build_email(
        to=subscriber.email,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        unsubscribe_url=links["unsubscribe_url"],
        message_id=digest_message_id(digest),
    )


def digest_context(digest: Digest, *, limit: int | None = None) -> dict:
    """Template context of a digest for the web ("view in browser")."""
    subscriber = digest.subscriber
    items = digest_entries([digest], limit=limit)[digest.pk]
    groups: dict[str, list[DigestEntry]] = {}
    for item in items:
        groups.setdefault(item.topics[0] if item.topics else "", []).append(item)
    return {
        "digest": digest,
        "subscriber": subscriber,
        "items": items,
        "groups": list(groups.items()),
        "more_count": digest.more_count,
        "postal_address": settings.PAPERBOY_POSTAL_ADDRESS,
        **digest_links(subscriber, digest),
    }


def _send_claimed(digests: list[Digest], subscribers: dict[int, Subscriber], papers) -> dict:
    """Render the claimed digests here while a _Sender thread sends them over one connection
    and records each outcome. `papers` are the ones already loaded, by pk."""
    shown = max(subscribers[d.subscriber_id].max_papers for d in digests)
    entries = digest_entries(digests, limit=shown, papers=papers)
    with _Sender() as sender:
        for digest in digests:
            message = digest_message(digest, entries[digest.pk], subscribers[digest.subscriber_id])
            message.freeze()
            if not sender.put(digest, message):
                break  # the sender failed: the digests left stay claimed, and are resumed
    return sender.outcomes


class _Sender:
    """Sends the messages handed to it and records each outcome in the database.

    Threads do the waiting, so that the thread rendering the messages (most of the CPU time
    of a run) never waits: SENDERS threads send, each over its own connection, so that one
    waiting for the mail server's reply does not hold up the next message; a recorder thread
    commits the outcomes, in one statement all those that arrive within LINGER of the first
    (up to UNRECORDED), so that waiting for the database holds up no sending. The senders
    wait before sending more than UNRECORDED messages ahead of the records: a crash leaves at
    most those, the messages in flight, sent but not recorded. A short queue bounds what is
    rendered ahead. While the threads run, the interpreter hands the GIL over every 0.2 ms
    instead of 5, or a thread woken by a reply would wait up to 5 ms for the rendering
    thread each time.

    Inside a transaction (the caller's), it sends and records in the calling thread, over
    one connection, instead: a connection of its own could not see the rows to update."""

    AHEAD = 32
    SENDERS = 2
    UNRECORDED = 4
    LINGER = 0.005
    SWITCH_INTERVAL = 0.0002

    def __init__(self):
        self.threaded = not db_connection.in_atomic_block
        self.outcomes: dict[int, str] = {}
        self.error: BaseException | None = None
        self.connection = None

    def __enter__(self) -> "_Sender":
        if not self.threaded:
            self.connection = mailer.open_connection()
            return self
        self._to_send: queue.Queue = queue.Queue(maxsize=self.AHEAD)
        self._to_record: queue.Queue = queue.Queue()
        self._slots = threading.Semaphore(self.UNRECORDED)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, self.SWITCH_INTERVAL))
        self._threads = [
            threading.Thread(target=self._send_all, name="digest-sender", daemon=True)
            for _ in range(self.SENDERS)
        ]
        self._threads.append(
            threading.Thread(target=self._record_all, name="digest-recorder", daemon=True)
        )
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        if not self.threaded:
            self.connection.close()
            return
        for _ in range(self.SENDERS):
            self._to_send.put(None)
        for thread in self._threads:
            thread.join()
        sys.setswitchinterval(self._switch_interval)
        if self.error is not None and exc[0] is None:
            raise self.error

    def put(self, digest: Digest, message) -> bool:
        """Send a message (queue it, when threaded); False once the sender has failed."""
        if not self.threaded:
            result, self.connection = _send(self.connection, message)
            self._record([(digest, result)])
        elif self.error is not None:
            return False
        else:
            self._to_send.put((digest, message))
        return True

    def _record(self, outcomes: list) -> None:
        sent = [(d.pk, result) for d, result in outcomes if not isinstance(result, Exception)]
        if sent:
            _mark_sent(sent)
        for digest, result in outcomes:
            if isinstance(result, Exception):
                self.outcomes[digest.subscriber_id] = _send_failed(digest, result)
            else:
                self.outcomes[digest.subscriber_id] = "sent"

    def _send_all(self):
        connection = item = None
        try:
            connection = mailer.open_connection()
            while (item := self._to_send.get()) is not None:
                self._slots.acquire()
                if self.error is not None:  # nothing more goes out that cannot be recorded
                    break
                result, connection = _send(connection, item[1])
                self._to_record.put((item[0], result))
        except BaseException as err:  # handed to the rendering thread, which raises it
            self.error = err
        finally:
            self._to_record.put(None)
            while item is not None:  # so that put() never blocks
                item = self._to_send.get()
            if connection is not None:
                connection.close()

    def _record_all(self):
        senders_left = self.SENDERS
        try:
            while senders_left:
                batch = [self._to_record.get()]
                deadline = time.monotonic() + self.LINGER
                while len(batch) < self.UNRECORDED and None not in batch:
                    try:
                        wait = max(0.0, deadline - time.monotonic())
                        batch.append(self._to_record.get(timeout=wait))
                    except queue.Empty:
                        break
                while not self._to_record.empty():
                    batch.append(self._to_record.get())
                outcomes = [item for item in batch if item is not None]
                senders_left -= len(batch) - len(outcomes)
                try:
                    self._record(outcomes)
                finally:
                    for _ in outcomes:
                        self._slots.release()
        except BaseException as err:
            self.error = err
            while senders_left:  # the senders stop; free their slots until they have
                if self._to_record.get() is None:
                    senders_left -= 1
                self._slots.release()
        finally:
            db_connections.close_all()  # this thread's own


def _send(connection, message) -> tuple["str | mailer.SendError", object]:
    """(the provider's message id or why the message was not accepted, the connection to
    send the next message over: a new one when this one was lost)."""
    try:
        return mailer.send(message, connection), connection
    except mailer.SendError as err:
        if err.connection_lost:
            connection.close()
            connection = mailer.open_connection()
        return err, connection


def _mark_sent(sent: list[tuple[int, str]]) -> None:
    """Digests → sent, with their provider message ids ((pk, id) pairs): one statement per
    distinct id, so one for a batch sent over SMTP (which gives none). Written in SQL, values
    all passed as parameters: the recorder marks a batch every few messages, and compiling the
    ORM's UPDATE cost more than executing it, time the rendering thread waited for the GIL
    (the delivery benchmark ran 450 → 680 digests/s with this change alone)."""
    by_provider_id = defaultdict(list)
    for pk, provider_id in sent:
        by_provider_id[provider_id].append(pk)
    ops = db_connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    table = ops.quote_name(Digest._meta.db_table)
    with db_connection.cursor() as cursor:
        for provider_id, pks in by_provider_id.items():
            cursor.execute(
                f"UPDATE {table} SET status = %s, sent_at = %s, provider_message_id = %s,"  # noqa: S608
                f" error = '' WHERE id IN ({', '.join(['%s'] * len(pks))})",
                [Digest.Status.SENT, now, provider_id, *pks],
            )


def _send_failed(digest: Digest, err: "mailer.SendError") -> str:
    attempts = digest.attempts
    if err.permanent or attempts >= MAX_ATTEMPTS:
        # A failed digest's papers never reached the reader: the next digest may hold them.
        Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.FAILED, error=str(err))
        log.error("digest %s to %s failed for good: %s", digest.pk, digest.subscriber_id, err)
        mail_admins(
            f"Digest {digest.pk} failed",
            f"Subscriber {digest.subscriber_id}, period {digest.period_key}, "
            f"after {attempts} attempt(s):\n\n{err}",
            fail_silently=True,
        )
        return "failed"
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.PENDING, error=str(err))
    log.warning("digest %s will be retried (attempt %s): %s", digest.pk, attempts, err)
    return "retrying"


# --- The run ----------------------------------------------------------------------------------


def _next_delivery(subscriber: Subscriber, handled_key: str, now: datetime) -> datetime:
    key, moment = schedule.current_period(subscriber, now)
    return schedule.following_delivery(subscriber, moment) if key == handled_key else moment


def digests_send_chunk(
    *, subscriber_ids: list[int], now: datetime, period_key: str | None = None
) -> RunResult:
    """Build and send the digests of a chunk of subscribers. `period_key` forces one key for
    everyone (send_digests --all, previews); otherwise each subscriber's scheduled period is
    used and their next delivery is stored afterwards. Safe to run twice or concurrently."""
    result = RunResult()
    subscribers = {
        s.pk: s
        for s in Subscriber.objects.filter(
            pk__in=subscriber_ids, status=Subscriber.Status.ACTIVE
        ).prefetch_related("sources", "topics")
        if not _paused_locally(s, now)
    }
    if period_key:
        plans = dict.fromkeys(subscribers, period_key)
    else:
        plans = {
            pk: schedule.period_key(s, s.next_digest_at.astimezone(s.tz).date())
            for pk, s in subscribers.items()
            if s.next_digest_at is not None and s.next_digest_at <= now
        }
    result.skipped += len(subscriber_ids) - len(plans)
    if not plans:
        return result
    chunk = [subscribers[pk] for pk in plans]
    papers = recent_papers(now=now)
    matches = papers_for_subscribers(subscribers=chunk, papers=papers)
    to_send, done, busy = _reserve(plans, subscribers, matches, now)
    result.skipped += len(busy)
    outcomes = dict.fromkeys(done, "empty")
    claimed = _claim(to_send, now)
    result.skipped += len(to_send) - len(claimed)
    if claimed:
        outcomes.update(_send_claimed(claimed, subscribers, {p.pk: p for p in papers}))
    for outcome in outcomes.values():
        setattr(result, outcome, getattr(result, outcome) + 1)
    if not period_key:
        next_at = defaultdict(list)
        for pk, outcome in outcomes.items():
            if outcome != "retrying":
                next_at[_next_delivery(subscribers[pk], plans[pk], now)].append(pk)
        # Readers who share a zone and an hour share their next delivery: one UPDATE each.
        for moment, pks in next_at.items():
            Subscriber.objects.filter(pk__in=pks).update(next_digest_at=moment)
    return result


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
