"""Matching many topics against many papers: a percolator that works a batch at a time.

A query is a boolean formula over its terms (AND, OR, NOT of words and phrases, each maybe
restricted to a field), and a term either occurs in a paper or not. So a batch of papers is
read into postings of bitsets (bit i: the batch's i-th paper) for its tokens and for the
n-grams the topics' phrases need; each term's bitset is then a lookup (a phrase of more than
four tokens, or with many spellings, is verified on the papers that have its words), and each
distinct query's bitset is a few `&`, `|` and `&~` on Python integers: every paper of the
batch at once, exactly, with nothing left to verify.

Every distinct query is compiled once, into the ids of its terms, and filed under a key token
that each paper it matches contains (the longest of its words, as the longer ones tend to be
the rarer; for an OR of alternatives with no word in common, one key per alternative). A batch
only evaluates the queries filed under tokens its papers contain. Identical queries (many
readers follow "LLM") share one entry, evaluated once per batch. Adding or removing a topic
touches only its entry; nothing is rebuilt."""

import collections
import functools
import gc
import itertools
import operator
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .query import (
    MAX_NGRAM,
    MAX_QUERY_LENGTH,
    And,
    Document,
    Match,
    Or,
    Query,
    QueryError,
    Term,
    _lex,
    _phrase_in,
    document_for,
    parse_query,
)

# A query's pieces as codes: a term is its id, an excluded term _EXCLUDED - its id, the rest are
# small negative numbers.
_OPEN, _CLOSE, _OR, _AND, _NOTHING, _INVALID, _EXCLUDED = -1, -2, -3, -4, -5, -6, -7
_OPERATORS = {"(": _OPEN, ")": _CLOSE, "OR": _OR, "AND": _AND}
_SPECIAL = frozenset((_OPEN, _CLOSE, _OR, _AND, _NOTHING, _INVALID))
_NEEDED, _EXCLUDING = (0).__le__, _EXCLUDED.__ge__  # which codes are terms, excluded terms
# Pieces as the parser's lexer reads them (valid when each '"' belongs to a phrase piece): a
# word, a parenthesis, a phrase (maybe with "-" and a field), a word right before a phrase.
_PIECE_RE = re.compile(r'[^\s()"]++(?!")|[()]|-?(?:[^\W\d_]+:)?"[^"]*"|[^\s()"]++')
_CURLY = frozenset("“”„")
_FIELDS = (None, "title", "abstract", "author")
_TOKEN_SETS = ("text_tokens", "title_tokens", "abstract_tokens", "author_tokens")
_CHUNK = 4096  # distinct queries compiled together in a bulk load
_SPELLINGS = 16  # a phrase with more spellings (hyphenated words) than this is verified

# A query's form: alternatives (OR) of conjunctions, each (terms that must occur, terms that
# must not, nested alternatives that must hold).
AndForm = tuple[tuple[int, ...], tuple[int, ...], tuple]
Form = tuple[AndForm, ...]

# An entry, one per distinct query, is a tuple (a million of them are made in a few seconds):
# a conjunction of terms (the common case) as the terms that must occur and those that must
# not, with no form; anything else as its form. Then its topics' ids, keys and text.
Entry = tuple[tuple[int, ...] | None, tuple[int, ...] | None, Form | None, list, tuple, str]
_POS, _NEG, _FORM, _TOPICS, _KEYS, _TEXT = range(6)
_first, _second = operator.itemgetter(0), operator.itemgetter(1)
_topics_of = operator.itemgetter(_TOPICS)


class TopicMatch(NamedTuple):
    topic_id: int
    match: Match


class _Source:
    """What a Match works its score and terms out from: the query's parse tree."""

    __slots__ = ("index", "text")

    def __init__(self, index: "TopicIndex", text: str):
        self.index, self.text = index, text

    @property
    def tree(self):
        return self.index.parsed(self.text).tree


class _Entries(dict):
    """Distinct query → its entry; a new query is compiled when first asked for (None when it
    is invalid)."""

    __slots__ = ("index",)

    def __missing__(self, text: str) -> Entry | None:
        return self.index._compile(text)


class _Pieces(dict):
    """A query piece → its code, read when first asked for."""

    __slots__ = ("index",)

    def __missing__(self, piece: str) -> int:
        return self.index._piece_code(piece)


class TopicIndex:
    """Topics compiled once, then matched a batch of papers at a time.

    `add` sets a topic's query (an invalid query just leaves the topic out), `remove` forgets
    it; `match_batch` matches many papers at once; `match` yields a TopicMatch per matching
    topic of one paper, in topic id order."""

    def __init__(self):
        self._topics: dict[int, str] = {}  # topic id → query
        self._entries = _Entries()
        self._entries.index = self
        # Entries under their key token; those with several keys apart (they are evaluated once
        # per batch however many of their keys it has). Lists: a million appends cost less
        # than a million dict entries, and a topic's removal scans only its key's list.
        self._filed: defaultdict[str, list[Entry]] = defaultdict(list)
        self._filed_many: defaultdict[str, list[Entry]] = defaultdict(list)
        # Terms, by id: how to find their papers (see _term_spec), and their keys.
        self._term_ids: dict[tuple, int] = {}
        self._terms: list[tuple] = []
        self._term_keys: list[tuple[str, ...]] = []
        self._term_rank: list[int] = []
        # The n-grams terms need, their first tokens and their proper prefixes.
        self._grams: set[tuple[str, ...]] = set()
        self._gram_starts: set[str] = set()
        self._gram_prefixes: set[tuple[str, ...]] = set()
        self._pieces = _Pieces()  # a query piece's code (terms recur in queries)
        self._pieces.index = self
        self._parsed: dict[str, Query] = {}

    def __len__(self):
        return len(self._topics)

    def add(self, topic_id: int, query: str) -> None:
        if topic_id in self._topics:
            self.remove(topic_id)
        entry = self._entries[query]
        if entry is not None:
            entry[_TOPICS].append(topic_id)
            self._topics[topic_id] = query

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
            self._add_many(list(topics))
        finally:
            gc.freeze()
            if enabled:
                gc.enable()

    def _add_many(self, topics: list[tuple[int, str]]) -> None:
        # Loops in C where it can (map, zip, deque): Python code runs once per distinct query,
        # not once per topic, and as little as possible even then.
        ids = list(map(operator.itemgetter(0), topics))
        texts = list(map(operator.itemgetter(1), topics))
        fresh = dict(zip(ids, texts, strict=True))
        if len(fresh) < len(ids) or not self._topics.keys().isdisjoint(fresh):
            for topic_id, text in topics:  # topics that come twice, or were there: as `add` does
                self.add(topic_id, text)
            return
        groups: defaultdict[str, list[int]] = defaultdict(list)  # query → topic ids
        collections.deque(map(list.append, map(groups.__getitem__, texts), ids), maxlen=0)
        known = self._entries
        new = list(groups)
        if known:
            for text in [text for text in new if text in known]:
                known[text][_TOPICS].extend(groups[text])
            new = [text for text in new if text not in known]
        expected = len(known) + len(new)
        for start in range(0, len(new), _CHUNK):  # in chunks, that stay in the processor's caches
            self._compile_many(new[start : start + _CHUNK], groups)
        if len(known) < expected:  # invalid queries
            for text in new:
                if text not in known:
                    for topic_id in groups[text]:
                        del fresh[topic_id]
        if self._topics:
            self._topics.update(fresh)
        else:
            self._topics = fresh

    def remove(self, topic_id: int) -> None:
        text = self._topics.pop(topic_id, None)
        if text is not None:
            entry = self._entries[text]
            entry[_TOPICS].remove(topic_id)
            if not entry[_TOPICS]:
                self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        text = entry[_TEXT]
        del self._entries[text]
        self._parsed.pop(text, None)
        filed = self._filed if len(entry[_KEYS]) == 1 else self._filed_many
        for key in entry[_KEYS]:
            under = filed[key]
            del under[next(i for i, filed_entry in enumerate(under) if filed_entry is entry)]
            if not under:
                del filed[key]

    def parsed(self, query: str) -> Query:
        """A query's parse tree (for ranking), parsed once."""
        found = self._parsed.get(query)
        if found is None:
            found = self._parsed[query] = parse_query(query)
        return found

    # --- Matching -----------------------------------------------------------------------------

    def match_batch(self, docs: Sequence[Document]) -> "BatchMatch":
        """Every distinct query that matches some of `docs`, with the bitset of the papers it
        matches (bit i: docs[i]). Cost: the papers' tokens, the terms and the queries filed
        under those tokens; not the number of topics."""
        # The cyclic garbage collector would scan the batch's hits (and entries not loaded in bulk)
        # again and again as the hits are made; nothing made here forms a cycle.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._match_batch(docs)
        finally:
            if enabled:
                gc.enable()

    def _match_batch(self, docs: Sequence[Document]) -> "BatchMatch":
        batch = _Batch(self, docs)
        bits = batch.bits
        present: set[str] = set().union(*(doc.tokens for doc in docs))
        hits: list[tuple[Entry, int]] = []
        hit = hits.append
        evaluated = 0
        filed = self._filed
        for key in present & filed.keys():
            under = filed[key]
            evaluated += len(under)
            for entry in under:
                pos = entry[0]
                if pos is None:
                    found = _evaluate(entry[2], bits)
                else:
                    found = bits[pos[0]]
                    if found and len(pos) > 1:
                        for term in pos[1:]:
                            found &= bits[term]
                    if found and entry[1]:
                        for term in entry[1]:
                            found &= ~bits[term]
                if found:
                    hit((entry, found))
        # Entries with several keys, each once (by identity: entries are unique per query).
        filed = self._filed_many
        lists = [filed[key] for key in present & filed.keys()]
        entries = itertools.chain.from_iterable(lists)
        unique = dict(zip(map(id, entries), itertools.chain.from_iterable(lists), strict=True))
        evaluated += len(unique)
        for entry in unique.values():
            form = entry[_FORM] or ((entry[_POS], entry[_NEG], ()),)
            if found := _evaluate(form, bits):
                hit((entry, found))
        return BatchMatch(self, docs, hits, evaluated)

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
        for entry, _ in self.match_batch((doc,)).hits:
            yield entry[_TOPICS], Match(source=_Source(self, entry[_TEXT]), doc=doc)

    # --- Compiling ----------------------------------------------------------------------------

    def _compile(self, text: str) -> Entry | None:
        """Compile and file a new distinct query; None when it is invalid."""
        if len(self._pieces) > 200_000:
            self._pieces.clear()
        return self._compile_codes(text, self._codes(text))

    def _compile_many(self, texts: list[str], groups: dict[str, list[int]]) -> None:
        """`_compile` for many new distinct queries: the commonest ones (conjunctions of words
        and phrases, maybe some excluded) in bulk, with loops in C (map, zip, compress)."""
        if len(self._pieces) > 200_000:
            self._pieces.clear()
        # An odd number of quotes leaves one unclosed (the lexers pair them in order). Empty
        # queries, and queries of spaces only, are left to the parser too.
        quick = [
            text
            for text in texts
            if text.isascii()
            and len(text) <= MAX_QUERY_LENGTH
            and not text.count('"') & 1
            and text
            and not text.isspace()
        ]
        if len(quick) < len(texts):
            for text in set(texts).difference(quick):
                if entry := self._compile(text):
                    entry[_TOPICS].extend(groups[text])
        pieces = [
            _PIECE_RE.findall(text) if '"' in text or "(" in text or ")" in text else text.split()
            for text in quick
        ]
        read = itertools.repeat(self._pieces.__getitem__)
        codes = list(map(tuple, map(map, read, pieces)))
        positive = list(map(_NEEDED, map(min, codes)))
        texts = list(itertools.compress(quick, positive))
        needed = list(itertools.compress(codes, positive))
        excluded: list[tuple[int, ...]] = [()] * len(texts)
        for text, found, simple in zip(quick, codes, positive, strict=True):
            if simple:
                continue
            if found and _SPECIAL.isdisjoint(found) and max(found) >= 0:
                texts.append(text)
                needed.append(tuple(filter(_NEEDED, found)))
                excluded.append(tuple(map(_EXCLUDED.__sub__, filter(_EXCLUDING, found))))
            elif _INVALID in found:
                self._compile_codes(text, None, groups[text])
            elif not self._compile_alternatives(text, found, groups[text]):
                found = tuple(filter(_NOTHING.__ne__, found))
                self._compile_codes(text, found, groups[text])
        if not texts:
            return
        best = functools.partial(min, key=self._term_rank.__getitem__)
        keys = list(map(self._term_keys.__getitem__, map(best, needed)))
        nothing = itertools.repeat(None)
        entries = list(
            zip(
                needed, excluded, nothing, map(groups.__getitem__, texts), keys, texts, strict=False
            )
        )
        self._entries.update(zip(texts, entries, strict=True))
        one_key = [len(found) == 1 for found in keys]
        collections.deque(
            map(
                list.append,
                map(self._filed.__getitem__, map(_first, itertools.compress(keys, one_key))),
                itertools.compress(entries, one_key),
            ),
            maxlen=0,
        )
        if not all(one_key):
            for entry in entries:
                if len(entry[_KEYS]) > 1:
                    for key in entry[_KEYS]:
                        self._filed_many[key].append(entry)

    def _compile_alternatives(self, text: str, codes: tuple[int, ...], topic_ids: list) -> bool:
        """Compile and file the commonest queries with OR (`a OR b`, `(a OR b) c d`: words
        and phrases, none excluded) quickly; False for any other query."""
        if not codes:
            return False
        rank, term_keys = self._term_rank.__getitem__, self._term_keys
        n = len(codes)
        if n == 3 and codes[1] == _OR and codes[0] >= 0 and codes[2] >= 0:  # a OR b
            form = (((codes[0],), (), ()), ((codes[2],), (), ()))
            keys = tuple(dict.fromkeys(term_keys[codes[0]] + term_keys[codes[2]]))
            self._file(text, None, None, form, keys, topic_ids)
            return True
        if (
            n > 5
            and codes[0] == _OPEN
            and codes[2] == _OR
            and codes[4] == _CLOSE
            and min(codes[5:]) >= 0
            and codes[1] >= 0
            and codes[3] >= 0
        ):  # (a OR b) c d
            rest = codes[5:]
            form = ((rest, (), ((((codes[1],), (), ()), ((codes[3],), (), ())),)),)
            keys = term_keys[min(rest, key=rank)]
            if len(keys) != 1:
                keys = self._form_keys(form)
            self._file(text, None, None, form, keys, topic_ids)
            return True
        if codes[0] == _OPEN:
            if codes.count(_OPEN) != 1 or codes.count(_CLOSE) != 1:
                return False
            close = codes.index(_CLOSE)
            rest = codes[close + 1 :]
            if rest and min(rest) < 0:
                return False
            alternatives = _words_or_words(codes[1:close])
        else:
            rest = ()
            alternatives = _words_or_words(codes)
        if alternatives is None:
            return False
        if len(alternatives) == 1:  # "(a b) c"
            pos = alternatives[0] + rest
            self._file(text, pos, (), None, term_keys[min(pos, key=rank)], topic_ids)
            return True
        form = tuple([(alternative, (), ()) for alternative in alternatives])
        keys = term_keys[min(rest, key=rank)] if rest else ()
        if rest:
            form = ((rest, (), (form,)),)
        if len(keys) != 1:
            keys = []
            for alternative in alternatives:
                keys += term_keys[min(alternative, key=rank)]
            keys = tuple(dict.fromkeys(keys))
            if rest:
                keys = min(keys, term_keys[min(rest, key=rank)], key=len)
        self._file(text, None, None, form, keys, topic_ids)
        return True

    def _compile_codes(
        self, text: str, codes: tuple[int, ...] | None, topic_ids: list | None = None
    ) -> Entry | None:
        if codes and min(codes) >= 0:  # words and phrases, all needed
            pos, neg, form = codes, (), None
        else:
            form = None if codes is None else _read_codes(codes)
            if form is None:  # not plainly valid: the parser decides, and words any error
                try:
                    query = parse_query(text)
                except QueryError:
                    return None
                form = _or_form(query.tree, self._term_id)
            if len(form) == 1 and not form[0][2]:
                pos, neg, form = form[0][0], form[0][1], None
            else:
                pos = neg = None
        if form is not None:
            keys = self._form_keys(form)
        else:
            keys = self._term_keys[min(pos, key=self._term_rank.__getitem__)]
        return self._file(text, pos, neg, form, keys, [] if topic_ids is None else topic_ids)

    def _file(self, text: str, pos, neg, form, keys: tuple[str, ...], topic_ids: list) -> Entry:
        entry = (pos, neg, form, topic_ids, keys, text)
        if len(keys) == 1:
            self._filed[keys[0]].append(entry)
        else:
            for key in keys:
                self._filed_many[key].append(entry)
        self._entries[text] = entry
        return entry

    def _codes(self, text: str) -> tuple[int, ...] | None:
        """The codes of the query's pieces, each piece read once per index; None when the
        pieces are not plainly those the parser's lexer reads."""
        if len(text) > MAX_QUERY_LENGTH:
            return None
        if not text.isascii() and not _CURLY.isdisjoint(text):
            return None
        if '"' in text or "(" in text or ")" in text:
            pieces = _PIECE_RE.findall(text)
            if text.count('"') != 2 * sum(1 for piece in pieces if piece[-1] == '"'):
                return None  # an unclosed quote
        else:
            pieces = text.split()
        codes = tuple(map(self._pieces.__getitem__, pieces))
        if codes and min(codes) >= 0:
            return codes
        if _INVALID in codes:
            return None
        return tuple(code for code in codes if code != _NOTHING)

    def _piece_code(self, piece: str) -> int:
        code = _OPERATORS.get(piece)
        if code is None:
            try:
                lexed = _lex(piece)
            except QueryError:
                code = _INVALID
            else:
                if not lexed:
                    code = _NOTHING  # punctuation on its own means nothing
                elif len(lexed) == 1 and isinstance(lexed[0], Term):
                    term = self._term_id(lexed[0])
                    code = _EXCLUDED - term if lexed[0].negated else term
                else:
                    code = _INVALID
        self._pieces[piece] = code
        return code

    def _term_id(self, term: Term) -> int:
        key = (term.units, term.field)
        found = self._term_ids.get(key)
        if found is None:
            found = self._term_ids[key] = len(self._terms)
            spec = _term_spec(term.units, term.field)
            self._terms.append(spec)
            if spec[0] == "grams":
                for gram in spec[2]:
                    if len(gram) > 1:
                        self._grams.add(gram)
                        self._gram_starts.add(gram[0])
                        self._gram_prefixes.update(gram[:n] for n in range(2, len(gram)))
            keys = _term_keys(term.units)
            self._term_keys.append(keys)
            # Fewer keys first, then longer ones (a term's keys hold one, or two, tokens).
            self._term_rank.append(len(keys) * 1000 - len(keys[0]))
        return found

    def _form_keys(self, form: Form) -> tuple[str, ...]:
        """Key tokens such that every paper the form matches contains one of them."""
        out: list[str] = []
        term_keys, rank = self._term_keys, self._term_rank.__getitem__
        for pos, _, subs in form:
            if pos:
                best = term_keys[min(pos, key=rank)]
                if len(best) == 1 or not subs:
                    out += best
                    continue
            options = [term_keys[term] for term in pos] + [self._form_keys(sub) for sub in subs]
            out += min(options, key=len)
        return tuple(dict.fromkeys(out)) if len(out) > 1 else tuple(out)


def _words_or_words(codes: tuple[int, ...]) -> list[tuple[int, ...]] | None:
    """The alternatives of words and phrases (none excluded) between ORs; None for anything
    else (then the general reading decides)."""
    if not codes or min(codes) < _OR or _OPEN in codes or _CLOSE in codes:
        return None  # AND, exclusions, punctuation
    alternatives = []
    start = 0
    for at, code in enumerate(codes):
        if code == _OR:
            alternatives.append(codes[start:at])
            start = at + 1
    alternatives.append(codes[start:])
    return None if () in alternatives else alternatives


def _read_codes(codes: tuple[int, ...]) -> Form | None:
    """The form of a query's piece codes, or None where the parser would raise."""
    if _OPEN in codes or _CLOSE in codes:
        if codes[0] == _OPEN and codes.count(_OPEN) == 1 and codes.count(_CLOSE) == 1:
            # "(a OR b) c": alternatives in parentheses, then words and phrases
            close = codes.index(_CLOSE)
            rest = codes[close + 1 :]
            if _SPECIAL.isdisjoint(rest):
                inner = _read_codes(codes[1:close])
                if inner is None:
                    return None
                pos = tuple(code for code in rest if code >= 0)
                neg = tuple(_EXCLUDED - code for code in rest if code < 0)
                if len(inner) == 1:
                    return ((inner[0][0] + pos, inner[0][1] + neg, ()),)
                if not pos and not neg:
                    return inner
                return ((pos, neg, (inner,)),)
        found = _parse_or(codes, 0)
        if found is None or found[1] != len(codes):
            return None  # a ")" that closes nothing
        return found[0]
    alternatives = []
    pos: list[int] = []
    neg: list[int] = []
    after_and = False
    for code in codes:
        if code >= 0:
            pos.append(code)
            after_and = False
        elif code <= _EXCLUDED:
            neg.append(_EXCLUDED - code)
            after_and = False
        elif after_and or not (pos or neg):
            return None  # AND or OR with nothing before it
        elif code == _AND:
            after_and = True
        else:
            if not pos:
                return None  # only exclusions
            alternatives.append((tuple(pos), tuple(neg), ()))
            pos, neg = [], []
    if after_and or not pos:
        return None
    alternatives.append((tuple(pos), tuple(neg), ()))
    return tuple(alternatives)


def _parse_or(codes: tuple[int, ...], i: int) -> tuple[Form, int] | None:
    """The parser's grammar on piece codes (see query._Parser): alternatives up to a ")" or
    the end, and where they stop; None where the parser would raise."""
    alternatives: list[AndForm] = []
    while True:
        found = _parse_and(codes, i)
        if found is None:
            return None
        conjunction, i = found
        if not conjunction[0] and not conjunction[1] and len(conjunction[2]) == 1:
            alternatives += conjunction[2][0]  # "(a OR b) OR c" is "a OR b OR c"
        else:
            alternatives.append(conjunction)
        if i < len(codes) and codes[i] == _OR:
            i += 1
        else:
            return tuple(alternatives), i


def _parse_and(codes: tuple[int, ...], i: int) -> tuple[AndForm, int] | None:
    pos: list[int] = []
    neg: list[int] = []
    subs: list[Form] = []
    after_and = False
    n = len(codes)
    while i < n:
        code = codes[i]
        if code >= 0:
            pos.append(code)
            after_and = False
            i += 1
        elif code <= _EXCLUDED:
            neg.append(_EXCLUDED - code)
            after_and = False
            i += 1
        elif code in (_OR, _CLOSE):
            break
        elif code == _AND:
            if after_and or not (pos or neg or subs):
                return None
            after_and = True
            i += 1
        else:  # "("
            if i + 1 < n and codes[i + 1] == _CLOSE:
                return None
            found = _parse_or(codes, i + 1)
            if found is None or found[1] >= n or codes[found[1]] != _CLOSE:
                return None
            sub, i = found
            i += 1
            after_and = False
            if len(sub) == 1:  # "(a b) c" is "a b c"
                pos += sub[0][0]
                neg += sub[0][1]
                subs += sub[0][2]
            else:
                subs.append(sub)
    if after_and or not (pos or subs):
        return None  # nothing, or only exclusions
    return (tuple(pos), tuple(neg), tuple(subs)), i


def _or_form(node, term_id) -> Form:
    """A parse tree's form, with `term_id` giving each term's id."""
    if isinstance(node, Or):
        out: list[AndForm] = []
        for child in node.children:
            out += _or_form(child, term_id)
        return tuple(out)
    children = node.children if isinstance(node, And) else (node,)
    pos: list[int] = []
    neg: list[int] = []
    subs: list[Form] = []
    for child in children:
        if isinstance(child, Term):
            (neg if child.negated else pos).append(term_id(child))
        else:
            sub = _or_form(child, term_id)
            if len(sub) == 1:
                pos += sub[0][0]
                neg += sub[0][1]
                subs += sub[0][2]
            else:
                subs.append(sub)
    return ((tuple(pos), tuple(neg), tuple(subs)),)


def _evaluate(form: Form, bits) -> int:
    """The bitset of the papers a form matches."""
    out = 0
    for pos, neg, subs in form:
        if pos:
            found = bits[pos[0]]
            for term in pos[1:]:
                found &= bits[term]
        else:
            found = -1
        if subs:
            for sub in subs:
                if not found:
                    break
                found &= _evaluate(sub, bits)
        if neg and found:
            for term in neg:
                found &= ~bits[term]
        out |= found
    return out


def _longest(tokens: Iterable[str]) -> str:
    return min(tokens, key=lambda token: (-len(token), token))


def _term_keys(units: tuple) -> tuple[str, ...]:
    """Tokens such that each paper a term occurs in has one of them: the longest of its plain
    words; for hyphenated words only, the first one's longest part or its concatenation."""
    words = [unit for unit in units if isinstance(unit, str)]
    if words:
        return (_longest(words),)
    parts, concat = units[0]
    return tuple(dict.fromkeys((_longest(parts), concat)))


def _term_spec(units: tuple, field: str | None) -> tuple:
    """How to find a term's papers in a batch: ("token", field, token), ("grams", field,
    spellings) where each spelling of at most MAX_NGRAM tokens is a token or an n-gram, or
    ("verify", field, units, words) for a phrase walked on the papers that have its words."""
    where = _FIELDS.index(field)
    if len(units) == 1 and isinstance(units[0], str):
        return ("token", where, units[0])
    hyphenated = sum(1 for unit in units if not isinstance(unit, str))
    longest = sum(1 if isinstance(unit, str) else len(unit[0]) for unit in units)
    if longest > MAX_NGRAM or 2**hyphenated > _SPELLINGS:
        words = tuple(dict.fromkeys(unit for unit in units if isinstance(unit, str)))
        return ("verify", where, units, words)
    options = [[(unit,)] if isinstance(unit, str) else [unit[0], (unit[1],)] for unit in units]
    spellings = tuple(sum(combo, ()) for combo in itertools.product(*options))
    return ("grams", where, tuple(dict.fromkeys(spellings)))


class _Bits(dict):
    """Term id → bitset of the batch's papers it occurs in, worked out when first asked."""

    __slots__ = ("batch",)

    def __missing__(self, term: int) -> int:
        found = self[term] = self.batch.term_bits(term)
        return found


# From this many papers on, a batch works out every term's bitset at once (into a list, which
# reads faster than a dict that fills itself): most terms occur in some of them.
_EAGER = 64


class _Batch:
    """A batch of documents read into bitset postings, per field, worked out when needed."""

    def __init__(self, index: TopicIndex, docs: Sequence[Document]):
        self.index = index
        self.docs = docs
        self.all = (1 << len(docs)) - 1
        self._postings: list = [None, None, None, None]
        if len(docs) >= _EAGER:
            self.bits = list(map(self.term_bits, range(len(index._terms))))
        else:
            self.bits = _Bits()
            self.bits.batch = self

    def term_bits(self, term: int) -> int:
        kind, where, *spec = self.index._terms[term]
        tokens, grams = self.postings(where)
        if kind == "token":
            return tokens.get(spec[0], 0)
        if kind == "grams":
            found = 0
            for spelling in spec[0]:
                if len(spelling) == 1:
                    found |= tokens.get(spelling[0], 0)
                else:
                    found |= grams.get(spelling, 0)
            return found
        units, words = spec
        candidates = self.all
        for word in words:
            candidates &= tokens.get(word, 0)
        fields = ("title", "abstract") if where == 0 else (_FIELDS[where],)
        found = 0
        while candidates:
            low = candidates & -candidates
            doc = self.docs[low.bit_length() - 1]
            if any(_phrase_in(getattr(doc, field), units) for field in fields):
                found |= low
            candidates ^= low
        return found

    def postings(self, where: int) -> tuple[dict, dict]:
        """Token → bitset and n-gram → bitset (only the n-grams terms need) for one field, or
        for the title and abstract together (where 0)."""
        found = self._postings[where]
        if found is not None:
            return found
        if where == 0:  # the title's and the abstract's, merged
            title, abstract = self.postings(1), self.postings(2)
            found = (_merged(title[0], abstract[0]), _merged(title[1], abstract[1]))
        else:
            index = self.index
            tokens: dict[str, int] = {}
            grams: dict[tuple[str, ...], int] = {}
            attribute = _TOKEN_SETS[where]
            starts = index._gram_starts
            for i, doc in enumerate(self.docs):
                bit = 1 << i
                field_tokens = getattr(doc, attribute)
                had = map(tokens.get, field_tokens, itertools.repeat(0))
                now = map(operator.or_, had, itertools.repeat(bit))
                tokens.update(zip(field_tokens, now, strict=True))
                if not starts.isdisjoint(field_tokens):
                    get = grams.get
                    for gram in _grams_in(doc.graphs[where - 1], index):
                        grams[gram] = get(gram, 0) | bit
            found = (tokens, grams)
        self._postings[where] = found
        return found


def _merged(first: dict, second: dict) -> dict:
    """Two postings as one: each key's bitsets or-ed."""
    if len(first) < len(second):
        first, second = second, first
    out = dict(first)
    get = out.get
    for key, bits in second.items():
        out[key] = get(key, 0) | bits
    return out


def _grams_in(graph, index: TopicIndex) -> set[tuple[str, ...]]:
    """The n-grams of a field's token graph that the index's terms need."""
    seq, concats = graph
    starts, prefixes, wanted = index._gram_starts, index._gram_prefixes, index._grams
    if not concats:  # no hyphenated word: paths are runs of consecutive tokens
        found = set()
        for at in itertools.compress(itertools.count(), map(starts.__contains__, seq)):
            path = (seq[at],)
            for token in seq[at + 1 : at + MAX_NGRAM]:
                if token is None:
                    break
                path = (*path, token)
                if path in wanted:
                    found.add(path)
                if path not in prefixes:
                    break
        return found
    after: dict[int, list[tuple[str, int]]] = {}
    for token, start, end in concats:
        after.setdefault(start, []).append((token, end))
    paths = [((token,), at + 1) for at, token in enumerate(seq) if token in starts]
    paths += [((token,), end) for token, _, end in concats if token in starts]
    found = set()
    n = len(seq)
    while paths:
        path, at = paths.pop()
        following = after.get(at, [])
        if at < n and seq[at] is not None:
            following = [(seq[at], at + 1), *following]
        for token, end in following:
            longer = (*path, token)
            if longer in wanted:
                found.add(longer)
            if len(longer) < MAX_NGRAM and longer in prefixes:
                paths.append((longer, end))
    return found


class BatchMatch:
    """What a batch matched: each distinct matching query once, with the bitset of the papers
    it matches (bit i for docs[i]); views of it by topic and by paper.

    The views read the index's topics as they are when called: read them before changing
    the index."""

    def __init__(self, index: TopicIndex, docs: Sequence[Document], hits: list, evaluated: int):
        self.index = index
        self.docs = docs
        self.hits = hits  # (entry, bitset)
        self.evaluated = evaluated  # distinct queries evaluated: the batch's cost
        self._by_text: dict[str, int] | None = None

    def queries(self) -> Iterator[tuple[str, Sequence[int], int]]:
        """Each matching distinct query once: its text, its topics' ids (a list not to be
        changed) and the bitset of its papers."""
        for entry, bits in self.hits:
            yield entry[_TEXT], entry[_TOPICS], bits

    def count(self) -> int:
        """The number of (topic, paper) matches."""
        entries = map(_first, self.hits)
        papers = map(int.bit_count, map(_second, self.hits))
        return sum(map(operator.mul, map(len, map(_topics_of, entries)), papers))

    def topic_bits(self, topic_id: int) -> int:
        """The bitset of the papers a topic matches (0 for none, or an unknown topic)."""
        if self._by_text is None:
            self._by_text = {entry[_TEXT]: bits for entry, bits in self.hits}
        return self._by_text.get(self.index._topics.get(topic_id), 0)

    def papers(self, topic_id: int) -> list[int]:
        """The indices in docs of the papers a topic matches, in order."""
        return bit_indices(self.topic_bits(topic_id))

    def match(self, topic_id: int, paper: int) -> Match | None:
        """How a topic matched docs[paper] (score and terms worked out when read), or None."""
        if not self.topic_bits(topic_id) >> paper & 1:
            return None
        source = _Source(self.index, self.index._topics[topic_id])
        return Match(source=source, doc=self.docs[paper])

    def by_paper(self) -> list[list[tuple[Sequence[int], Match]]]:
        """Per paper, each matching distinct query once: its topics' ids and the match."""
        out: list[list] = [[] for _ in self.docs]
        for entry, bits in self.hits:
            source = _Source(self.index, entry[_TEXT])
            for paper in bit_indices(bits):
                out[paper].append((entry[_TOPICS], Match(source=source, doc=self.docs[paper])))
        return out


def bit_indices(bits: int) -> list[int]:
    """The positions of a bitset's set bits, lowest first."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


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
