"""Reads for the digest app."""

from datetime import timedelta

from django.utils import timezone

from scraper.models import Paper

from .matching import paper_document
from .query import Match, parse_query

BATCH = 500


def papers_matching_query(
    *, query: str, days: int | None = 30, limit: int | None = None
) -> list[tuple[Paper, Match]]:
    """The stored papers a topic query matches, newest first (first seen, then id), each with
    its match: first seen in the last `days` days (all papers when None), at most `limit`.

    Raises QueryError, with the message and position to show, when the query is invalid."""
    parsed = parse_query(query)
    papers = Paper.objects.order_by("-first_seen_at", "-pk")
    if days is not None:
        papers = papers.filter(first_seen_at__gte=timezone.now() - timedelta(days=days))
    found: list[tuple[Paper, Match]] = []
    # Papers stream in batches: a preview must not hold every stored abstract in memory.
    for paper in papers.iterator(chunk_size=BATCH):
        doc = paper_document(paper)
        if (match := parsed.match(doc)) is not None:
            found.append((paper, match))
            if limit is not None and len(found) >= limit:
                break
    return found
