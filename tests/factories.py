"""Small builders for test data."""

import itertools
from datetime import datetime

from django.utils import timezone

from scraper.models import Paper, Source
from subscriptions.models import Subscriber, Topic

_ids = itertools.count(1)


def make_paper(title="A paper", abstract="", *, upvotes=0, seen_at=None, sources=(), **fields):
    paper_id = fields.pop("paper_id", f"2611.{next(_ids):05d}")
    paper = Paper.objects.create(
        paper_id=paper_id,
        title=title,
        abstract=abstract,
        upvotes=upvotes,
        authors=fields.pop("authors", ["Ada Lovelace", "Grace Hopper"]),
        hf_url=fields.pop("hf_url", f"https://huggingface.co/papers/{paper_id}"),
        **fields,
    )
    if seen_at is not None:
        Paper.objects.filter(pk=paper.pk).update(first_seen_at=seen_at)
        paper.refresh_from_db()
    if sources:
        paper.sources.add(*sources)
    return paper


def make_source(name="Hugging Face", url=None, kind=Source.Kind.HF_PAGE):
    return Source.objects.create(
        name=name, url=url or f"https://example.org/{next(_ids)}", kind=kind
    )


def make_subscriber(
    email=None,
    topics=(),
    *,
    status=Subscriber.Status.ACTIVE,
    due_at: datetime | None = None,
    **fields,
) -> Subscriber:
    subscriber = Subscriber.objects.create(
        email=email or f"reader{next(_ids)}@example.org",
        status=status,
        confirmed_at=timezone.now() if status != Subscriber.Status.PENDING else None,
        **fields,
    )
    for query in topics:
        Topic.objects.create(subscriber=subscriber, query=query)
    if due_at is not None:
        subscriber.next_digest_at = due_at
        subscriber.save(update_fields=["next_digest_at"])
    return subscriber
