"""Writes of the scraper: storing papers, running a scrape of one URL or source, and the
Hugging Face backfill. Network I/O always happens outside a database transaction; each run's
writes are one transaction of their own."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import client, parsers
from .models import Backfill, Paper, ScrapeRun, Source

logger = logging.getLogger(__name__)

_UPDATABLE = [f.name for f in fields(parsers.PaperData) if f.name != "paper_id"]
# A failing source is retried sooner than never and later than always.
MAX_FAILURE_BACKOFF = timedelta(hours=24)


def _values(item: parsers.PaperData) -> dict:
    values = {name: getattr(item, name) for name in _UPDATABLE}
    return {k: v for k, v in values.items() if v not in (None, "", [])}


def papers_upsert(
    *, items: list[parsers.PaperData], source: Source | None = None
) -> tuple[int, int]:
    """Store parsed papers by canonical id; returns (new, updated). Fields a source leaves
    empty never overwrite what another source filled in; upvotes and comments follow the
    latest scrape. Safe against a concurrent run creating the same paper."""
    unique: dict[str, parsers.PaperData] = {}
    for item in items:
        unique.setdefault(item.paper_id, item)
    existing = Paper.objects.in_bulk(list(unique), field_name="paper_id")
    new = updated = 0
    touched = []
    for paper_id in sorted(unique):  # one lock order for every run: no deadlocks between them
        item = unique[paper_id]
        values = _values(item)
        paper = existing.get(paper_id)
        if paper is None:
            try:
                with transaction.atomic():
                    paper = Paper.objects.create(paper_id=paper_id, **values)
                new += 1
                touched.append(paper)
                continue
            except IntegrityError:  # another run stored it since we looked
                paper = Paper.objects.get(paper_id=paper_id)
        changed = [k for k, v in values.items() if getattr(paper, k) != v]
        if changed:
            for k in changed:
                setattr(paper, k, values[k])
            paper.save(update_fields=[*changed, "updated_at"])
            updated += 1
        touched.append(paper)
    if source is not None and touched:
        source.papers.add(*touched)
    return new, updated


def _record(run: ScrapeRun, **values) -> ScrapeRun:
    for key, value in values.items():
        setattr(run, key, value)
    run.finished_at = timezone.now()
    run.save()
    return run


def scrape_url(*, url: str, source: Source | None = None) -> ScrapeRun:
    """Fetch one URL, parse it and store its papers, recording the run. Never raises for a
    fetch or parse failure (nor for a bug in a parser): the run says what went wrong, and no
    paper is written unless the whole page was stored."""
    run = _scrape(url=url, source=source, carrier=source)
    if source is not None:
        source_record_run(source=source, run=run)
    return run


def _scrape(
    *, url: str, source: Source | None, carrier: Source | None, kind: str = ""
) -> ScrapeRun:
    """`source` lends its ETag / Last-Modified and kind and gets the new validators; `carrier`
    is the source the run and its papers are filed under."""
    run = ScrapeRun.objects.create(source=carrier, url=url)
    kind = kind or (source.kind if source else "")
    try:
        response = client.fetch(
            url,
            etag=source.etag if source else "",
            last_modified=source.last_modified if source else "",
        )
        run.http_status = response.status_code
        if response.not_modified:
            _record(run, status=ScrapeRun.Status.NOT_MODIFIED, kind=kind)
        else:
            kind = kind or parsers.detect_format(response.content_type, response.body)
            page = parsers.parse(kind, response.body)
            with transaction.atomic():
                new, updated = papers_upsert(items=page.papers, source=carrier)
                _record(
                    run,
                    kind=kind,
                    fetched=len(page.papers),
                    new=new,
                    updated=updated,
                    notes=page.notes,
                    status=ScrapeRun.Status.DEGRADED if page.degraded else ScrapeRun.Status.OK,
                )
                if source is not None:
                    source.etag = response.etag[:500]
                    source.last_modified = response.last_modified[:100]
    except client.FetchError as err:
        run.http_status = err.status
        run.retry_after = err.retry_after
        run.permanent = err.permanent
        _record(run, kind=kind, status=ScrapeRun.Status.FAILED, error=str(err))
    except parsers.ParseError as err:
        _record(run, kind=kind, status=ScrapeRun.Status.FAILED, error=f"parse error: {err}")
    except Exception as err:  # a bug must not stop the other sources: record it, loudly
        logger.exception("scraping %s failed", url)
        _record(run, kind=kind, status=ScrapeRun.Status.FAILED, error=f"internal error: {err!r}")
    return run


def source_record_run(*, source: Source, run: ScrapeRun) -> None:
    """Health follows the latest run: failures count up and push the next try back (doubling
    with each failure, capped at a day); any success resets them."""
    source.last_run_at = run.finished_at
    source.last_status = run.status
    interval = timedelta(minutes=source.interval_minutes)
    if run.status == ScrapeRun.Status.FAILED:
        source.consecutive_failures += 1
        source.last_error = run.error
        backoff = min(interval * 2 ** (source.consecutive_failures - 1), MAX_FAILURE_BACKOFF)
        wait = max(backoff, timedelta(seconds=getattr(run, "retry_after", None) or 0))
        source.next_run_at = run.started_at + max(wait, interval)
    else:
        source.consecutive_failures = 0
        source.last_error = ""
        source.next_run_at = run.started_at + interval
    source.save(
        update_fields=[
            "last_run_at",
            "last_status",
            "consecutive_failures",
            "last_error",
            "etag",
            "last_modified",
            "next_run_at",
        ]
    )


def sources_due(*, now=None) -> list[Source]:
    """Enabled sources whose next run is due (with half a minute's slack, so a source due a
    moment after beat's sweep isn't left for the next one) and that aren't running now."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.SCRAPER_RUN_STALE_SECONDS)
    return list(
        Source.objects.filter(enabled=True)
        .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now + timedelta(seconds=30)))
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=stale))
    )


def source_claim(*, source_id: int, now=None) -> bool:
    """Take the source's overlap lock: a conditional UPDATE that only one caller can win.
    A lock older than SCRAPER_RUN_STALE_SECONDS belonged to a worker that died."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.SCRAPER_RUN_STALE_SECONDS)
    claimed = (
        Source.objects.filter(pk=source_id)
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=stale))
        .update(running_since=now)
    )
    return claimed == 1


def source_release(*, source_id: int, claimed_at=None) -> None:
    """Drop the lock; with `claimed_at`, only our own claim (not one that took over ours)."""
    claims = Source.objects.filter(pk=source_id)
    if claimed_at is not None:
        claims = claims.filter(running_since=claimed_at)
    claims.update(running_since=None)


def scrape_source(*, source_id: int) -> ScrapeRun | None:
    """Scrape one enabled source unless a run of it is already going, in which case a
    skipped run is recorded. Returns None for an unknown or disabled source."""
    source = Source.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return None
    claimed_at = timezone.now()
    if not source_claim(source_id=source.pk, now=claimed_at):
        since = Source.objects.filter(pk=source.pk).values_list("running_since", flat=True)[0]
        return ScrapeRun.objects.create(
            source=source,
            url=source.url,
            kind=source.kind,
            status=ScrapeRun.Status.SKIPPED,
            finished_at=timezone.now(),
            error=f"skipped: a run of this source is still going (since {since:%H:%M:%S} UTC)",
        )
    stale = claimed_at - timedelta(seconds=settings.SCRAPER_RUN_STALE_SECONDS)
    ScrapeRun.objects.filter(
        source=source, status=ScrapeRun.Status.RUNNING, started_at__lt=stale
    ).update(
        status=ScrapeRun.Status.FAILED,
        finished_at=claimed_at,
        error="abandoned: the worker running it stopped before it finished",
    )
    try:
        return scrape_url(url=source.url, source=source)
    finally:
        source_release(source_id=source.pk, claimed_at=claimed_at)


# --- Backfill -----------------------------------------------------------------------------

BACKFILL_NAME = "hf-daily"


@dataclass
class BackfillDay:
    day: date
    index: int
    total: int
    run: ScrapeRun


def hf_date_url(day: date) -> str:
    return f"{settings.SCRAPER_HF_BASE_URL}/papers/date/{day:%Y-%m-%d}"


def hf_daily_source() -> Source:
    """The Source that carries backfilled Hugging Face papers (as load_sample's does)."""
    source, _ = Source.objects.get_or_create(
        url=f"{settings.SCRAPER_HF_BASE_URL}/papers",
        defaults={"name": "Hugging Face Daily Papers", "kind": Source.Kind.HF_PAGE},
    )
    return source


def backfill_position(*, since: date, until: date, restart: bool = False) -> Backfill:
    """The stored walk for [since, until]: resumed where it stopped if it covers the same
    start and isn't finished, else started afresh."""
    state = Backfill.objects.filter(name=BACKFILL_NAME).first()
    if (
        state is None
        or restart
        or state.since != since
        or state.finished_at is not None
        or state.next_date > until
    ):
        state, _ = Backfill.objects.update_or_create(
            name=BACKFILL_NAME,
            defaults={"since": since, "until": until, "next_date": since, "finished_at": None},
        )
    elif state.until != until:
        state.until = until
        state.save(update_fields=["until", "updated_at"])
    return state


def backfill_hf(
    *,
    since: date,
    until: date,
    restart: bool = False,
    on_day: Callable[[BackfillDay], None] | None = None,
) -> tuple[Backfill, list[ScrapeRun]]:
    """Walk the Hugging Face date pages from the stored position to `until`, one polite
    request per day (client.fetch spaces them), saving the position after each day. A day that
    can never be fetched (a 404) is recorded and passed; any other failure stops the walk and
    stays the position, so the next call retries it."""
    state = backfill_position(since=since, until=until, restart=restart)
    source = hf_daily_source()
    total = (until - since).days + 1
    runs = []
    day = state.next_date
    while day <= until:
        run = _scrape(url=hf_date_url(day), source=None, carrier=source, kind=source.kind)
        runs.append(run)
        if on_day:
            on_day(BackfillDay(day, (day - since).days + 1, total, run))
        if run.status == ScrapeRun.Status.FAILED and not getattr(run, "permanent", False):
            break
        day += timedelta(days=1)
        state.next_date = day
        if day > until:
            state.finished_at = timezone.now()
        state.save(update_fields=["next_date", "finished_at", "updated_at"])
    return state, runs


# --- Sources ------------------------------------------------------------------------------


class SourceInvalid(ValueError):
    """A source that can't be added, with the reason in words."""


def guess_kind(url: str) -> str:
    """The source kind a URL most likely is, from its host and path alone."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path
    if host.endswith("huggingface.co") or host == "hf.co":
        return Source.Kind.HF_API if path.startswith("/api/") else Source.Kind.HF_PAGE
    if host.endswith("arxiv.org"):
        if path.startswith("/api/"):
            return Source.Kind.ARXIV_API
        if host.startswith("rss.") or path.startswith("/rss/"):
            return Source.Kind.ARXIV_RSS
    return Source.Kind.FEED


def source_add(
    *,
    url: str,
    kind: str | None = None,
    name: str | None = None,
    interval_minutes: int = 60,
    enabled: bool = True,
) -> Source:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceInvalid(f"not an absolute http(s) URL: {url!r}")
    if kind is not None and kind not in Source.Kind.values:
        raise SourceInvalid(f"unknown kind {kind!r}; one of {', '.join(Source.Kind.values)}")
    if interval_minutes < 5:
        raise SourceInvalid("the interval must be at least 5 minutes (beat sweeps every 5)")
    if Source.objects.filter(url=url).exists():
        raise SourceInvalid(f"a source with this URL exists already: {url}")
    return Source.objects.create(
        url=url,
        kind=kind or guess_kind(url),
        name=name or f"{parts.hostname}{parts.path}".rstrip("/")[:200],
        interval_minutes=interval_minutes,
        enabled=enabled,
    )
