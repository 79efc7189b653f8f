"""Matching many topics against many papers."""

from collections.abc import Iterable
from dataclasses import dataclass

from .query import Document, Match, QueryError, parse_query


@dataclass(frozen=True)
class TopicMatch:
    topic_id: int
    match: Match


class TopicIndex:
    """Topics compiled once, then matched against each paper's document."""

    def __init__(self):
        self._queries = {}

    def add(self, topic_id: int, query: str) -> None:
        try:
            self._queries[topic_id] = parse_query(query)
        except QueryError:
            self._queries.pop(topic_id, None)

    def remove(self, topic_id: int) -> None:
        self._queries.pop(topic_id, None)

    def __len__(self):
        return len(self._queries)

    def match(self, doc: Document) -> Iterable[TopicMatch]:
        for topic_id, query in self._queries.items():
            if (m := query.match(doc)) is not None:
                yield TopicMatch(topic_id, m)
