from dataclasses import fields

from django.db import transaction
from django.utils import timezone

from . import client, parsers
from .models import Paper, ScrapeRun, Source

_UPDATABLE = [f.name for f in fields(parsers.PaperData) if f.name != "paper_id"]


def papers_upsert(
    *, items: list[parsers.PaperData], source: Source | None = None
) -> tuple[int, int]:
    """Store parsed papers by canonical id; returns (new, updated). Fields a source leaves
    empty never overwrite what another source filled in."""
    unique = {item.paper_id: item for item in items}
    existing = Paper.objects.in_bulk(list(unique), field_name="paper_id")
    new = updated = 0
    touched = []
    for paper_id, item in unique.items():
        values = {name: getattr(item, name) for name in _UPDATABLE}
        values = {k: v for k, v in values.items() if v not in (None, "", [])}
        paper = existing.get(paper_id)
        if paper is None:
            paper = Paper.objects.create(paper_id=paper_id, **values)
            new += 1
        else:
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


def scrape_url(*, url: str, source: Source | None = None) -> ScrapeRun:
    """Fetch one URL, parse it and store its papers, recording the run. Never raises for a
    fetch or parse failure: the run says what went wrong."""
    run = ScrapeRun.objects.create(source=source, url=url)
    try:
        response = client.fetch(
            url,
            etag=source.etag if source else "",
            last_modified=source.last_modified if source else "",
        )
        if response.not_modified:
            run.status = ScrapeRun.Status.NOT_MODIFIED
        else:
            kind = parsers.detect_format(response.content_type, response.body)
            page = parsers.parse(kind, response.body)
            with transaction.atomic():
                run.new, run.updated = papers_upsert(items=page.papers, source=source)
            run.fetched = len(page.papers)
            run.status = ScrapeRun.Status.DEGRADED if page.degraded else ScrapeRun.Status.OK
        if source is not None:
            source.etag, source.last_modified = response.etag, response.last_modified
    except (client.FetchError, parsers.ParseError) as err:
        run.status = ScrapeRun.Status.FAILED
        run.error = str(err)
    run.finished_at = timezone.now()
    run.save()
    if source is not None:
        source_record_run(source=source, run=run)
    return run


def source_record_run(*, source: Source, run: ScrapeRun) -> None:
    source.last_run_at = run.finished_at
    source.last_status = run.status
    if run.status == ScrapeRun.Status.FAILED:
        source.consecutive_failures += 1
        source.last_error = run.error
    else:
        source.consecutive_failures = 0
        source.last_error = ""
    source.save(
        update_fields=[
            "last_run_at",
            "last_status",
            "consecutive_failures",
            "last_error",
            "etag",
            "last_modified",
        ]
    )


def sources_due(*, now=None) -> list[Source]:
    now = now or timezone.now()
    return [
        s
        for s in Source.objects.filter(enabled=True)
        if s.last_run_at is None
        or (now - s.last_run_at).total_seconds() >= s.interval_minutes * 60 - 30
    ]


def scrape_source(*, source_id: int) -> ScrapeRun | None:
    source = Source.objects.filter(pk=source_id, enabled=True).first()
    return scrape_url(url=source.url, source=source) if source else None
