"""Matching many topics against many papers: a percolator.

Every topic is compiled once into the index and filed under keys: one token, or a pair of
tokens, such that any paper the topic matches contains (both tokens of) at least one of its
keys. A paper looks up only its own tokens, gathers the topics filed under them (the
candidates), and verifies each candidate exactly with `Query.match`. So a paper costs its
tokens and its candidates, not the number of topics.

Words side by side ("diffusion video", "reinforcement learning") are filed under a pair of
their tokens, so a paper with only one of them never considers the topic; the longer tokens are
chosen, as they tend to be the rarer. Identical queries (many readers follow "LLM") share one
compiled entry, verified once per paper. Adding or removing a topic touches only its entry."""

import gc
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .query import And, Document, Match, Or, Query, QueryError, Term, parse_query

Key = tuple[str] | tuple[str, str]


class TopicMatch(NamedTuple):
    topic_id: int
    match: Match


class _Entry:
    """One distinct query, the topics that follow it, and the keys it is filed under."""

    __slots__ = ("keys", "query", "required", "topic_ids")

    def __init__(self, query: Query):
        self.query = query
        self.topic_ids: list[int] = []
        self.required = _required(query.tree)
        self.keys: list[Key] = _keys(query.tree)


def _required(node) -> frozenset[str]:
    """Tokens that every paper the node matches contains, in some field."""
    if isinstance(node, Term):
        if node.negated:
            return frozenset()
        return frozenset(u for u in node.units if isinstance(u, str))
    if isinstance(node, And):
        return frozenset().union(*(_required(child) for child in node.children))
    return frozenset.intersection(*(_required(child) for child in node.children))


def _rarest(tokens: Iterable[str]) -> Key:
    """The two tokens likely to be rarest (the longest ones), or the one token."""
    return tuple(sorted(set(tokens), key=lambda t: (-len(t), t))[:2])


def _keys(node) -> list[Key]:
    """Keys such that every paper the node matches contains all the tokens of one of them."""
    if isinstance(node, Or):
        return [key for child in node.children for key in _keys(child)]
    required = _required(node)
    if required:
        return [_rarest(required)]
    if isinstance(node, Term):  # only hyphenated words: their parts, or their concatenation
        parts, concat = next(u for u in node.units if not isinstance(u, str))
        return [_rarest(parts), (concat,)]
    options = [
        _keys(child) for child in node.children if not (isinstance(child, Term) and child.negated)
    ]
    return min(options, key=len)


class TopicIndex:
    """Topics compiled once, then matched against each paper's document.

    `add` sets a topic's query (an invalid query just leaves the topic out), `remove` forgets
    it; `match` yields a TopicMatch per matching topic, in topic id order."""

    def __init__(self):
        self._topics: dict[int, _Entry] = {}
        self._entries: dict[str, _Entry] = {}
        self._singles: dict[str, set[_Entry]] = {}
        self._pairs: dict[str, dict[str, set[_Entry]]] = {}

    def __len__(self):
        return len(self._topics)

    def add(self, topic_id: int, query: str) -> None:
        if topic_id in self._topics:
            self.remove(topic_id)
        entry = self._entries.get(query)
        if entry is None:
            try:
                parsed = parse_query(query)
            except QueryError:
                return
            entry = self._entries[query] = _Entry(parsed)
            self._file(entry)
        entry.topic_ids.append(topic_id)
        self._topics[topic_id] = entry

    def add_many(self, topics: Iterable[tuple[int, str]]) -> None:
        """`add` for each (topic_id, query). A bulk load makes millions of small objects that
        all stay: the cyclic garbage collector would scan them over and over, so it waits."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            for topic_id, query in topics:
                self.add(topic_id, query)
        finally:
            if enabled:
                gc.enable()

    def remove(self, topic_id: int) -> None:
        entry = self._topics.pop(topic_id, None)
        if entry is None:
            return
        entry.topic_ids.remove(topic_id)
        if not entry.topic_ids:
            del self._entries[entry.query.text]
            self._unfile(entry)

    def match(self, doc: Document) -> Iterator[TopicMatch]:
        hits = [
            TopicMatch(topic_id, found)
            for topic_ids, found in self.match_queries(doc)
            for topic_id in topic_ids
        ]
        hits.sort(key=lambda hit: hit.topic_id)
        yield from hits

    def match_queries(self, doc: Document) -> Iterator[tuple[Sequence[int], Match]]:
        """Each distinct matching query once: the ids of the topics following it (do not
        change the list), and the match."""
        tokens = doc.tokens
        for entry in self._candidates(tokens):
            if entry.required <= tokens and entry.query.matches(doc):
                yield entry.topic_ids, Match(node=entry.query.tree, doc=doc)

    def _candidates(self, tokens: frozenset[str]) -> set[_Entry]:
        filed = [self._singles[token] for token in tokens & self._singles.keys()]
        for first in tokens & self._pairs.keys():
            seconds = self._pairs[first]
            if len(seconds) < len(tokens):
                filed += [entries for token, entries in seconds.items() if token in tokens]
            else:
                filed += [seconds[token] for token in tokens & seconds.keys()]
        return set().union(*filed)

    # --- Filing -------------------------------------------------------------------------------

    def _file(self, entry: _Entry) -> None:
        for key in entry.keys:
            if len(key) == 1:
                self._singles.setdefault(key[0], set()).add(entry)
            else:
                self._pairs.setdefault(key[0], {}).setdefault(key[1], set()).add(entry)

    def _unfile(self, entry: _Entry) -> None:
        for key in entry.keys:
            if len(key) == 1:
                filed = self._singles.get(key[0])
                if filed is not None:
                    filed.discard(entry)
                    if not filed:
                        del self._singles[key[0]]
            else:
                seconds = self._pairs.get(key[0], {})
                filed = seconds.get(key[1])
                if filed is not None:
                    filed.discard(entry)
                    if not filed:
                        del seconds[key[1]]
                        if not seconds:
                            del self._pairs[key[0]]
