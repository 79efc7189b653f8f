"""Matching many topics against many papers: a percolator.

Every distinct query is compiled once into the index and filed where a paper's tokens will
find it; a paper then looks up only its own tokens and bigrams, so its cost is what it points
to, not the number of topics:

- The commonest queries are exactly a set test, and are filed so that being found is the
  test: one word ("LLM") under its token, two words ("diffusion video") under the pair of
  tokens, a two-word phrase ("language model") under its bigram. A paper finds them through
  its title's and abstract's tokens and bigrams, and they match with nothing left to check.
- Every other query is filed under keys (a token, or a pair of tokens, the longer ones as they
  tend to be the rarer), such that each paper it matches contains (both tokens of) one of its
  keys. The queries a paper finds this way are candidates, each verified exactly.

Identical queries (many readers follow "LLM") share one entry, verified once per paper. Adding
or removing a topic touches only its entry; nothing is rebuilt."""

import gc
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .query import (
    And,
    Document,
    Match,
    Or,
    Query,
    QueryError,
    Term,
    _tests_pass,
    document_for,
    parse_query,
    plain_form,
)

Key = tuple[str] | tuple[str, str]


class TopicMatch(NamedTuple):
    topic_id: int
    match: Match


class _Entry:
    """One distinct query and the topics that follow it. `plain` is the query as set tests
    (see Query.plain) when it can be; `query` is parsed when first needed if it was compiled
    from its plain form."""

    __slots__ = (
        "exact",
        "grams",
        "keys",
        "need",
        "plain",
        "query",
        "required",
        "text",
        "topic_ids",
    )

    def __init__(self, text: str, query: Query | None, plain):
        self.text = text
        self.query = query
        self.plain = plain
        self.topic_ids: list[int] = []
        self.exact = None  # where an entry that needs no verification is filed
        self.keys: list[Key] = []
        self.required: frozenset[str] = frozenset()
        # Set for a plain query of one alternative with nothing to exclude and no field.
        self.need: frozenset[str] | None = None
        self.grams: frozenset[tuple[str, ...]] = frozenset()

    @property
    def tree(self):
        if self.query is None:
            self.query = parse_query(self.text)
        return self.query.tree


def _compile(text: str) -> _Entry | None:
    """The entry for a query, or None when it is invalid."""
    plain = plain_form(text)
    if plain is None:
        try:
            query = parse_query(text)
        except QueryError:
            return None
        entry = _Entry(text, query, query.plain)
    else:
        entry = _Entry(text, None, plain)
    plain = entry.plain
    if plain is None:
        entry.required = _required(entry.query.tree)
        entry.keys = list(dict.fromkeys(_keys(entry.query.tree)))
        return entry
    if len(plain) == 1 and not plain[0][2] and not plain[0][3]:
        tokens, grams, _, _ = plain[0]
        if not grams and len(tokens) <= 2:
            entry.exact = _rarest(tokens)
        elif len(grams) == 1 and tokens == set(next(iter(grams))):
            entry.exact = (next(iter(grams)),)
    if entry.exact is None:
        entry.keys = list(dict.fromkeys(_rarest(_needed(alt)) for alt in plain))
        if len(plain) == 1 and not plain[0][2] and not plain[0][3]:
            entry.need, entry.grams = plain[0][0], plain[0][1]
    return entry


def _needed(alternative) -> frozenset[str]:
    """The tokens a paper needs, in some field, to pass one alternative of a plain query."""
    need, _, _, tests = alternative
    return need.union(
        *(
            values
            for attribute, values, present in tests
            if present and attribute.endswith("_tokens")
        )
    )


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


def _put(postings: dict, key: tuple, entry: _Entry) -> None:
    """File under a token, or under a pair of tokens as a dict of dicts."""
    if len(key) == 1:
        postings.setdefault(key[0], []).append(entry)
    else:
        postings.setdefault(key[0], {}).setdefault(key[1], []).append(entry)


def _take(postings: dict, key: tuple, entry: _Entry) -> None:
    if len(key) == 1:
        filed = postings[key[0]]
        filed.remove(entry)
        if not filed:
            del postings[key[0]]
    else:
        seconds = postings[key[0]]
        filed = seconds[key[1]]
        filed.remove(entry)
        if not filed:
            del seconds[key[1]]
            if not seconds:
                del postings[key[0]]


class TopicIndex:
    """Topics compiled once, then matched against each paper's document.

    `add` sets a topic's query (an invalid query just leaves the topic out), `remove` forgets
    it; `match` yields a TopicMatch per matching topic, in topic id order."""

    def __init__(self):
        self._topics: dict[int, _Entry] = {}
        self._entries: dict[str, _Entry] = {}
        # Exact entries: one token, a pair of tokens, a bigram (title and abstract only).
        self._words: dict[str, list[_Entry]] = {}
        self._word_pairs: dict[str, dict[str, list[_Entry]]] = {}
        self._bigrams: dict[tuple[str, str], list[_Entry]] = {}
        # Entries to verify: under a token, or a pair of tokens (any field).
        self._singles: dict[str, list[_Entry]] = {}
        self._pairs: dict[str, dict[str, list[_Entry]]] = {}

    def __len__(self):
        return len(self._topics)

    def add(self, topic_id: int, query: str) -> None:
        if topic_id in self._topics:
            self.remove(topic_id)
        entry = self._entries.get(query)
        if entry is None:
            entry = _compile(query)
            if entry is None:
                return
            self._entries[query] = entry
            self._file(entry)
        entry.topic_ids.append(topic_id)
        self._topics[topic_id] = entry

    def add_many(self, topics: Iterable[tuple[int, str]]) -> None:
        """`add` for each (topic_id, query), for loading many topics at once.

        A bulk load makes millions of small objects that stay as long as the index. The cyclic
        garbage collector would scan them during the load and then, again and again, in the
        collections that matching triggers (a million topics: seconds per paper batch). So it
        waits during the load, and the loaded objects are then moved out of its sight with
        gc.freeze(). They are still freed normally (by reference counting) with the index."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            for topic_id, query in topics:
                self.add(topic_id, query)
        finally:
            gc.freeze()
            if enabled:
                gc.enable()

    def remove(self, topic_id: int) -> None:
        entry = self._topics.pop(topic_id, None)
        if entry is None:
            return
        entry.topic_ids.remove(topic_id)
        if not entry.topic_ids:
            del self._entries[entry.text]
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
        """Each distinct matching query once: the ids of the topics following it (a list the
        caller must not change), and the match."""
        text_tokens = doc.text_tokens
        for token in text_tokens & self._words.keys():
            for entry in self._words[token]:
                yield entry.topic_ids, Match(0.0, (), entry, doc)
        for first in text_tokens & self._word_pairs.keys():
            for filed in _seconds(self._word_pairs[first], text_tokens):
                for entry in filed:
                    yield entry.topic_ids, Match(0.0, (), entry, doc)
        for bigram in doc.text_ngrams & self._bigrams.keys():
            for entry in self._bigrams[bigram]:
                yield entry.topic_ids, Match(0.0, (), entry, doc)
        tokens = doc.tokens
        filed = [self._singles[token] for token in tokens & self._singles.keys()]
        for first in tokens & self._pairs.keys():
            filed += _seconds(self._pairs[first], tokens)
        candidates = set().union(*filed) if len(filed) != 1 else filed[0]
        text_ngrams = doc.text_ngrams
        for entry in candidates:
            need = entry.need
            if need is not None:  # one alternative: tokens and n-grams
                if need <= text_tokens and entry.grams <= text_ngrams:
                    yield entry.topic_ids, Match(0.0, (), entry, doc)
                continue
            plain = entry.plain
            if plain is None:
                if not (entry.required <= tokens and entry.query.matches(doc)):
                    continue
            else:
                for need, grams, excluded, tests in plain:
                    if (
                        need <= text_tokens
                        and (not grams or grams <= text_ngrams)
                        and (not excluded or excluded.isdisjoint(text_tokens))
                        and (not tests or _tests_pass(tests, doc))
                    ):
                        break
                else:
                    continue
            yield entry.topic_ids, Match(0.0, (), entry, doc)

    # --- Filing -------------------------------------------------------------------------------

    def _file(self, entry: _Entry) -> None:
        exact = entry.exact
        if exact is None:
            for key in entry.keys:
                _put(self._pairs if len(key) == 2 else self._singles, key, entry)
        elif isinstance(exact[0], tuple):
            self._bigrams.setdefault(exact[0], []).append(entry)
        else:
            _put(self._word_pairs if len(exact) == 2 else self._words, exact, entry)

    def _unfile(self, entry: _Entry) -> None:
        exact = entry.exact
        if exact is None:
            for key in entry.keys:
                _take(self._pairs if len(key) == 2 else self._singles, key, entry)
        elif isinstance(exact[0], tuple):
            _take(self._bigrams, exact, entry)
        else:
            _take(self._word_pairs if len(exact) == 2 else self._words, exact, entry)


def _seconds(seconds: dict[str, list], tokens: set[str]) -> list[list]:
    """The lists filed under the second tokens of pairs that are in `tokens`."""
    return [seconds[token] for token in seconds.keys() & tokens]


_documents: dict[tuple, object] = {}


def paper_document(paper):
    """A paper's tokenised document, cached per process by its text: tokenising costs about
    ten times more than matching, and a digest run or a live preview sees the same papers
    again and again."""
    key = (paper.title, paper.abstract, tuple(paper.authors))
    doc = _documents.get(key)
    if doc is None:
        if len(_documents) > 50_000:
            _documents.clear()
        doc = _documents[key] = document_for(
            title=paper.title, abstract=paper.abstract, authors=paper.authors
        )
    return doc
