"""Reads for the digest app."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from scraper.models import Paper

from .matching import paper_document
from .models import Digest
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


@dataclass(frozen=True)
class DigestEntry:
    """A paper in a digest: its rank, the reader's topics that matched it, the words to mark."""

    paper: Paper
    rank: int
    topics: list[str]
    terms: list[str]


def digest_entries(
    digests: Iterable[Digest], *, limit: int | None = None, papers: Mapping[int, Paper] = {}
) -> dict[int, list[DigestEntry]]:
    """Each digest's papers in rank order (the first `limit`), by digest pk. Papers come from
    `papers` when there, else from one query for all the digests. A paper deleted since is
    left out."""
    digests = list(digests)
    stored = {d.pk: d.papers or {} for d in digests}
    wanted = {
        item[0]
        for packed in stored.values()
        for item in packed.get("items", [])[:limit]
        if item[0] not in papers
    }
    found = {**papers, **Paper.objects.in_bulk(wanted)} if wanted else papers
    out = {}
    for pk, packed in stored.items():
        topics, terms = packed.get("topics", []), packed.get("terms", [])
        out[pk] = [
            DigestEntry(
                found[paper], rank, [topics[i] for i in topic_at], [terms[i] for i in term_at]
            )
            for rank, (paper, topic_at, term_at) in enumerate(
                packed.get("items", [])[:limit], start=1
            )
            if paper in found
        ]
    return out
