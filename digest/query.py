"""The topic query language (issue 4): parsing, evaluation against a paper, highlighting.

Text and queries are NFKC-normalised and casefolded; tokens are maximal runs of letters and
digits, each reduced by Harman's S-stemmer. A hyphenated word ("pre-training") gives its parts
as consecutive tokens plus, spanning the same place, their concatenation ("pretraining"), so a
document is a small token graph: every token has a start and an end position, and a phrase
matches a path of tokens where each one starts where the previous one ends.

Grammar (AND binds tighter than OR; adjacency means AND):

    query := and_group ("OR" and_group)*
    and_group := item (["AND"] item)*
    item := "(" query ")" | ["-"] [field ":"] (word | '"' phrase '"')

Docs: docs/query-language.md."""

import functools
import html
import itertools
import re
import unicodedata
from collections.abc import Iterable

from django.utils.safestring import SafeString, mark_safe

MAX_QUERY_LENGTH = 300
FIELDS = ("title", "abstract", "author")
# Ranking: a hit in the title counts three times one in the abstract; a phrase twice a word.
FIELD_WEIGHTS = {"title": 3.0, "abstract": 1.0, "author": 2.0}
PHRASE_WEIGHT = 2.0

_QUOTES = '"“”„'
_GROUP_RE = re.compile(r"[^\W_]+(?:[-\u2010\u2011][^\W_]+)*")
_RUN_RE = re.compile(r"[^\W_]+")
_LEX_RE = re.compile(r'\s+|[()]|["“”„]|[^\s()"“”„]+')
_FIELD_RE = re.compile(r"([^\W\d_]+):")
_QUOTE_RE = re.compile(r'["“”„]')
_NO = frozenset()


class QueryError(ValueError):
    """A query that cannot be parsed: `message` says what, `position` (0-based index into the
    query as written) says where."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self):
        return f"{self.message} (at character {self.position + 1})"

    def caret(self, query: str) -> str:
        """The query on one line and a caret under the offending character on the next."""
        return f"{query}\n{' ' * self.position}^"


# --- Tokens -----------------------------------------------------------------------------------


class _Stems(dict):
    """Token spelling → stem, worked out when first asked for."""

    def __missing__(self, word: str) -> str:
        if len(self) > 500_000:
            self.clear()
        found = self[word] = stem(word)
        return found


_stems = _Stems()


def stem(word: str) -> str:
    """Harman's S-stemmer, exactly: ies → y, es → e, s → nothing, with its exceptions."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _stem(word: str) -> str:
    # Tokens repeat a lot (a million topics, thousands of papers): stem each spelling once and
    # share one string object per token.
    return _stems[word]


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _units(normalized: str) -> list:
    """The query side of a word or phrase: a token, or for a hyphenated word a pair
    (parts, concatenation) meaning either the parts in a row or the one concatenated token."""
    units = []
    for group in _GROUP_RE.findall(normalized):
        runs = _RUN_RE.findall(group)
        if len(runs) == 1:
            units.append(_stem(runs[0]))
        else:
            units.append((tuple(_stem(r) for r in runs), _stem("".join(runs))))
    return units


def _graph(normalized: str, start: int = 0) -> tuple[list[tuple[str, int, int]], int]:
    """The text side: (token, start, end) triples and the next free position."""
    out = []
    pos = start
    for group in _GROUP_RE.findall(normalized):
        runs = _RUN_RE.findall(group)
        for run in runs:
            out.append((_stem(run), pos, pos + 1))
            pos += 1
        if len(runs) > 1:
            out.append((_stem("".join(runs)), pos - len(runs), pos))
    return out, pos


def tokenize(text: str) -> list[str]:
    """The text's tokens in order; a hyphenated word's concatenation follows its parts."""
    return [token for token, _, _ in _graph(normalize(text))[0]]


# --- Documents --------------------------------------------------------------------------------

Spans = dict[str, list[tuple[int, int]]]
# A field as read: its tokens, one per position (None at the gap after each author's name), and
# its hyphenated words' concatenations as (token, start, end).
Graph = tuple[list, list[tuple[str, int, int]]]

_CHAIN_RE = re.compile(r"([^\W_]+)([-\u2010\u2011](?=[^\W_]))?")


def _spans(triples: Iterable[tuple[str, int, int]]) -> Spans:
    spans: Spans = {}
    for token, start, end in triples:
        spans.setdefault(token, []).append((start, end))
    return spans


def _read(normalized: str, seq: list, concats: list) -> None:
    """Append a text's tokens to `seq`, and its hyphenated words' concatenations to `concats`:
    the same graph as _graph, without building a triple per token."""
    stems = _stems
    if "-" not in normalized and "\u2010" not in normalized and "\u2011" not in normalized:
        seq += map(stems.__getitem__, _RUN_RE.findall(normalized))
        return
    chain: list[str] | None = None
    start = 0
    for run, hyphen in _CHAIN_RE.findall(normalized):
        seq.append(stems[run])
        if chain is None:
            if hyphen:
                chain, start = [run], len(seq) - 1
        else:
            chain.append(run)
            if not hyphen:
                concats.append((_stem("".join(chain)), start, len(seq)))
                chain = None


def _graph_spans(graph: Graph) -> Spans:
    seq, concats = graph
    spans: Spans = {}
    for position, token in enumerate(seq):
        if token is not None:
            spans.setdefault(token, []).append((position, position + 1))
    for token, start, end in concats:
        spans.setdefault(token, []).append((start, end))
    return spans


def _token_set(graph: Graph) -> frozenset[str]:
    seq, concats = graph
    tokens = set(seq)
    tokens.discard(None)
    tokens.update(token for token, _, _ in concats)
    return frozenset(tokens)


class Document:
    """A paper as the matcher sees it: per field, the tokens as read (`graphs`: title, abstract,
    author) and the set of tokens, also for the title and abstract together (`text_tokens`) and
    for all three (`tokens`). Worked out when first read, because the topic index needs neither:
    per field, each token's (start, end) positions (`title`, `abstract`, `author`), and per field
    and for the title and abstract together, the n-grams (token paths of 2 to 4 tokens, what
    phrases match)."""

    __slots__ = (
        "abstract",
        "abstract_ngrams",
        "abstract_tokens",
        "author",
        "author_ngrams",
        "author_tokens",
        "graphs",
        "text_ngrams",
        "text_tokens",
        "title",
        "title_ngrams",
        "title_tokens",
        "tokens",
    )

    def __init__(self, title: Graph, abstract: Graph, author: Graph):
        self.graphs = (title, abstract, author)
        self.title_tokens = _token_set(title)
        self.abstract_tokens = _token_set(abstract)
        self.author_tokens = _token_set(author)
        # Plain sets, not frozensets: `a_set & a_dict.keys()` then loops over the smaller side.
        self.text_tokens = set(self.title_tokens | self.abstract_tokens)
        self.tokens = self.text_tokens | self.author_tokens

    def __getattr__(self, name: str):
        # Called only while a slot is unset: work out the positions or the n-grams, once.
        if name in ("title", "abstract", "author"):
            self.title, self.abstract, self.author = map(_graph_spans, self.graphs)
        elif name.endswith("_ngrams"):
            self.title_ngrams = _ngrams(self.title)
            self.abstract_ngrams = _ngrams(self.abstract)
            self.author_ngrams = _ngrams(self.author)
            self.text_ngrams = self.title_ngrams | self.abstract_ngrams
        else:
            raise AttributeError(name)
        return object.__getattribute__(self, name)


MAX_NGRAM = 4


def _ngrams(spans: Spans) -> frozenset[tuple[str, ...]]:
    """Every path of 2 to MAX_NGRAM tokens, each starting where the previous one ends."""
    starting: dict[int, list[tuple[str, int]]] = {}
    for token, places in spans.items():
        for start, end in places:
            starting.setdefault(start, []).append((token, end))
    out: set[tuple[str, ...]] = set()
    paths = [((token,), end) for found in starting.values() for token, end in found]
    for _ in range(MAX_NGRAM - 1):
        longer = [
            ((*path, token), end) for path, at in paths for token, end in starting.get(at, ())
        ]
        out.update(path for path, _ in longer)
        paths = longer
    return frozenset(out)


def document_for(*, title: str, abstract: str, authors: Iterable[str] = ()) -> Document:
    author: Graph = ([], [])
    for name in authors:
        _read(normalize(name), *author)
        author[0].append(None)  # a gap, so that no phrase runs from one author into the next
    graphs = []
    for text in (title, abstract):
        graph: Graph = ([], [])
        _read(normalize(text), *graph)
        graphs.append(graph)
    return Document(graphs[0], graphs[1], author)


def _advance(spans: Spans, ends: set[int] | None, unit) -> set[int]:
    """Where a path can end after `unit`, having ended at one of `ends` (None: anywhere)."""
    if isinstance(unit, str):
        found = spans.get(unit, ())
        if ends is None:
            return {e for _, e in found}
        return {e for s, e in found if s in ends}
    parts, concat = unit
    via_parts = ends
    for part in parts:
        via_parts = _advance(spans, via_parts, part)
        if not via_parts:
            break
    return via_parts | _advance(spans, ends, concat)


def _phrase_in(spans: Spans, units: tuple) -> bool:
    ends = None
    for unit in units:
        ends = _advance(spans, ends, unit)
        if not ends:
            return False
    return True


# --- The parse tree ---------------------------------------------------------------------------


class Match:
    """How a query matched a document: `score` ranks (title over abstract, phrases over words),
    `terms` are the matched words and phrases as the user wrote them, for highlighting.

    Both are worked out on first use: a paper matches many topics, and most of the matches
    are never ranked (filtered out by upvotes or sources, or beyond a digest's length)."""

    __slots__ = ("_doc", "_score", "_source", "_terms")

    def __init__(self, score: float = 0.0, terms: Iterable[str] = (), source=None, doc=None):
        """Either a known `score` and `terms`, or a `source` (with a parse `tree`) that matched
        `doc`, to work them out from when asked."""
        self._source, self._doc = source, doc
        if source is None:
            self._score, self._terms = score, set(terms)

    def _work_out(self) -> None:
        self._terms = set()
        self._score = self._source.tree.collect(self._doc, self._terms)
        self._source = self._doc = None

    @property
    def score(self) -> float:
        if self._source is not None:
            self._work_out()
        return self._score

    @property
    def terms(self) -> set[str]:
        if self._source is not None:
            self._work_out()
        return self._terms

    def __eq__(self, other):
        if not isinstance(other, Match):
            return NotImplemented
        return self.score == other.score and self.terms == other.terms

    __hash__ = None

    def __repr__(self):
        return f"Match(score={self.score!r}, terms={sorted(self.terms)!r})"


class Term:
    """A word or a phrase, maybe restricted to a field, maybe excluded (`negated`).

    `units` are stemmed tokens, or (parts, concatenation) pairs for hyphenated words; `text`
    is the word or phrase as written; `token` is set when the term is one plain token."""

    __slots__ = (
        "field",
        "needs",
        "negated",
        "pairs",
        "position",
        "quoted",
        "text",
        "token",
        "units",
        "weight",
    )

    def __init__(self, *, units, text, field=None, negated=False, quoted=False, position=0):
        self.units = tuple(units)
        self.text = text
        self.field = field
        self.negated = negated
        self.quoted = quoted
        self.position = position
        single = len(self.units) == 1 and isinstance(self.units[0], str)
        self.token = self.units[0] if single else None
        self.weight = 1.0 if single else PHRASE_WEIGHT
        # Necessary for a phrase in the title or abstract: its words, and its two-word steps.
        self.needs = self.pairs = _NO
        if not single:
            self.needs = frozenset(u for u in self.units if isinstance(u, str))
            self.pairs = frozenset(
                (a, b)
                for a, b in zip(self.units, self.units[1:], strict=False)
                if isinstance(a, str) and isinstance(b, str)
            )

    def __repr__(self):
        sign = "-" if self.negated else ""
        field = f"{self.field}:" if self.field else ""
        return f"Term({sign}{field}{self.units!r})"

    def _in(self, spans: Spans) -> bool:
        if self.token is not None:
            return self.token in spans
        return _phrase_in(spans, self.units)

    def best_field(self, doc: Document) -> str | None:
        """The field where the term occurs (the title before the abstract), or None."""
        if self.field is None:
            if self.token is None and not (
                self.needs <= doc.text_tokens and self.pairs <= doc.text_ngrams
            ):
                return None
            if self._in(doc.title):
                return "title"
            return "abstract" if self._in(doc.abstract) else None
        return self.field if self._in(getattr(doc, self.field)) else None

    def matches(self, doc: Document) -> bool:
        return (self.best_field(doc) is None) is self.negated

    def collect(self, doc: Document, terms: set[str]) -> float:
        if self.negated:
            return 0.0
        terms.add(self.text)
        return self.weight * FIELD_WEIGHTS[self.best_field(doc)]


class And:
    __slots__ = ("children",)

    def __init__(self, children):
        self.children = tuple(children)

    def __repr__(self):
        return f"And{self.children!r}"

    def matches(self, doc: Document) -> bool:
        return all(child.matches(doc) for child in self.children)

    def collect(self, doc: Document, terms: set[str]) -> float:
        return sum(child.collect(doc, terms) for child in self.children)


class Or:
    __slots__ = ("children",)

    def __init__(self, children):
        self.children = tuple(children)

    def __repr__(self):
        return f"Or{self.children!r}"

    def matches(self, doc: Document) -> bool:
        return any(child.matches(doc) for child in self.children)

    def collect(self, doc: Document, terms: set[str]) -> float:
        return sum(child.collect(doc, terms) for child in self.children if child.matches(doc))


Node = Term | And | Or


class Query:
    """A parsed query. `tree` is an And / Or / Term tree; `terms()` lists its Terms."""

    __slots__ = ("plain", "text", "tree")

    def __init__(self, text: str, tree: Node):
        self.text = text
        self.tree = tree
        self.plain = _plain(tree)

    def __repr__(self):
        return f"Query({self.text!r})"

    def matches(self, doc: Document) -> bool:
        if self.plain is None:
            return self.tree.matches(doc)
        return plain_matches(self.plain, doc)

    def match(self, doc: Document) -> Match | None:
        if not self.matches(doc):
            return None
        return Match(source=self, doc=doc)

    def terms(self) -> list[Term]:
        out, stack = [], [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, Term):
                out.append(node)
            else:
                stack.extend(reversed(node.children))
        return out


Plain = tuple[frozenset[str], frozenset[tuple[str, ...]], frozenset[str], tuple]
_MAX_PLAIN = 8


def _plain(node) -> tuple[Plain, ...] | None:
    """The query as a few alternatives of set tests on a document: tokens and n-grams (for
    phrases) its title and abstract must have, tokens they must not have, and tests on one
    field: (Document attribute, set, whether it must be a subset or disjoint). None when the
    query needs more (phrases longer than MAX_NGRAM tokens, too many alternatives)."""
    if isinstance(node, Term):
        return _term_plain(node.units, node.negated, node.field)
    options = [_plain(child) for child in node.children]
    if any(option is None for option in options):
        return None
    if isinstance(node, Or):
        return _any_of(options)
    return _all_of(options)


def _term_plain(units: tuple, negated: bool, field: str | None = None):
    if len(units) > MAX_NGRAM:
        return None
    out = []
    for spelling in itertools.product(
        *([(u,)] if isinstance(u, str) else [u[0], (u[1],)] for u in units)
    ):
        tokens = sum(spelling, ())
        if len(tokens) > MAX_NGRAM or (negated and len(tokens) > 1):
            return None
        grams = frozenset((tokens,)) if len(tokens) > 1 else _NO
        if field is not None:
            tests = ((f"{field}_tokens", frozenset(tokens), not negated),)
            if grams:
                tests += ((f"{field}_ngrams", grams, True),)
            out.append((_NO, _NO, _NO, tests))
        elif negated:
            out.append((_NO, _NO, frozenset(tokens), ()))
        else:
            out.append((frozenset(tokens), grams, _NO, ()))
    if negated and len(out) > 1:
        return None
    return tuple(out)


def _any_of(options) -> tuple[Plain, ...] | None:
    out = tuple(alt for option in options for alt in option)
    return out if len(out) <= _MAX_PLAIN else None


def _all_of(options) -> tuple[Plain, ...] | None:
    if all(len(option) == 1 for option in options):  # the common case: no alternatives
        alts = [option[0] for option in options]
        return (
            (
                _NO.union(*(a[0] for a in alts)),
                _NO.union(*(a[1] for a in alts)),
                _NO.union(*(a[2] for a in alts)),
                sum((a[3] for a in alts), ()),
            ),
        )
    out = ((_NO, _NO, _NO, ()),)
    for option in options:
        out = tuple(
            (a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] + b[3]) for a in out for b in option
        )
        if len(out) > _MAX_PLAIN:
            return None
    return out


def plain_matches(plain: tuple[Plain, ...], doc: Document) -> bool:
    text_tokens = doc.text_tokens
    for need, grams, excluded, tests in plain:
        if (
            need <= text_tokens
            and (not grams or grams <= doc.text_ngrams)
            and (not excluded or excluded.isdisjoint(text_tokens))
            and (not tests or _tests_pass(tests, doc))
        ):
            return True
    return False


def _tests_pass(tests: tuple, doc: Document) -> bool:
    for attribute, values, present in tests:
        found = getattr(doc, attribute)
        if present:
            if not values <= found:
                return False
        elif not values.isdisjoint(found):
            return False
    return True


_FAST_WORD = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_FAST_TERM = rf'-?(?:{_FAST_WORD}|"\s*{_FAST_WORD}(?:\s+{_FAST_WORD})*\s*")'
_FAST_RE = re.compile(rf"\s*{_FAST_TERM}(?:\s+{_FAST_TERM})*\s*")
_FAST_TERM_RE = re.compile(rf'(-?)(?:({_FAST_WORD})|"([^"]*)")')
_fast_terms: dict[tuple[str, str, str], tuple | None] = {}  # the same words recur in topics


def plain_form(text: str) -> tuple[Plain, ...] | None:
    """`parse_query(text).plain`, read without building a parse tree for the commonest
    queries (ASCII words, hyphenated words, short phrases, exclusions, AND and OR without
    parentheses), so that a million topics compile quickly. None for anything else: parse."""
    if len(text) > MAX_QUERY_LENGTH or not _FAST_RE.fullmatch(text):
        return None
    groups, group, after_and = [], [], False
    for minus, word, phrase in _FAST_TERM_RE.findall(text):
        if not minus and word in (_OR, _AND):
            if not group or after_and:
                return None
            if word == _OR:
                groups.append(group)
                group = []
            after_and = word == _AND
            continue
        key = (minus, word, phrase)
        option = _fast_terms.get(key, False)
        if option is False:
            if len(_fast_terms) > 200_000:
                _fast_terms.clear()
            option = _fast_terms[key] = _term_plain(
                tuple(_units((word or phrase).lower())), bool(minus)
            )
        if option is None:
            return None
        group.append(option)
        after_and = False
    if not group or after_and:
        return None
    groups.append(group)
    options = []
    for group in groups:
        if all(not alt[0] for option in group for alt in option):
            return None  # only exclusions: an error the parser words
        options.append(group[0] if len(group) == 1 else _all_of(group))
        if options[-1] is None:
            return None
    return options[0] if len(options) == 1 else _any_of(options)


# --- Parsing ----------------------------------------------------------------------------------

_OR, _AND, _OPEN, _CLOSE = "OR", "AND", "(", ")"


def _lex(text: str) -> list:
    """Operators as (kind, position); words and phrases as Terms."""
    out: list = []
    i, n = 0, len(text)
    while i < n:
        piece = _LEX_RE.match(text, i).group()
        start, i = i, i + len(piece)
        if piece.isspace():
            continue
        if piece in (_OPEN, _CLOSE):
            out.append((piece, start))
        elif piece in _QUOTES:
            term, i = _phrase(text, start, start)
            out.append(term)
        elif piece in (_OR, _AND):
            out.append((piece, start))
        else:
            term, i = _word(text, piece, start, i)
            if term is not None:
                out.append(term)
    return out


def _phrase(text: str, quote: int, start: int, *, field=None, negated=False):
    closing = _QUOTE_RE.search(text, quote + 1)
    if closing is None:
        raise QueryError("this quote is never closed", quote)
    inner = text[quote + 1 : closing.start()]
    units = _units(normalize(inner))
    if not units:
        raise QueryError("this phrase has no words in it", quote)
    term = Term(
        units=units,
        text=" ".join(inner.split()),
        field=field,
        negated=negated,
        quoted=True,
        position=start,
    )
    return term, closing.end()


def _word(text: str, piece: str, start: int, end: int):
    """A word, maybe with "-" and a field before it; a phrase when a quote follows them."""
    body, at = piece, start
    negated = body.startswith("-")
    if negated:
        body, at = body[1:], at + 1
    field = None
    if found := _FIELD_RE.match(body):
        name = found.group(1).casefold()
        if name not in FIELDS:
            raise QueryError(
                f"there is no field “{found.group(1)}:”, only title:, abstract: and author:", at
            )
        field, body, at = name, body[found.end() :], at + found.end()
        if body.startswith("-"):
            raise QueryError(f"put the “-” before the field, as in -{name}:word", at)
    if not body:
        following = text[end : end + 1]
        if following and following in _QUOTES:
            return _phrase(text, end, start, field=field, negated=negated)
        if following == _OPEN:
            what = f"{field}:" if field else "“-”"
            raise QueryError(f'{what} applies to one word or "phrase", not to parentheses', end)
        if field:
            raise QueryError(f'{field}: needs a word or a "phrase" right after it', end)
        raise QueryError('nothing to exclude after this “-”: write -word or -"phrase"', start)
    units = _units(normalize(body))
    if not units:
        if field or negated:
            raise QueryError("there is no word here, only punctuation", at)
        return None, end  # punctuation on its own ("&", "+") means nothing
    return Term(units=units, text=body, field=field, negated=negated, position=start), end


class _Parser:
    def __init__(self, tokens: list):
        self.tokens = tokens
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    @staticmethod
    def kind(token) -> str | None:
        return token[0] if isinstance(token, tuple) else None

    def query(self) -> Node:
        groups = [self.and_group()]
        while self.kind(self.peek()) == _OR:
            self.i += 1
            groups.append(self.and_group())
        return groups[0] if len(groups) == 1 else Or(_flatten(groups, Or))

    def and_group(self) -> Node:
        items: list[Node] = []
        while True:
            token = self.peek()
            kind = self.kind(token)
            if token is None or kind in (_OR, _CLOSE):
                if not items:
                    self._nothing_before(token)
                break
            self.i += 1
            if kind == _AND:
                following = self.kind(self.peek())
                if not items or self.peek() is None or following in (_OR, _AND, _CLOSE):
                    raise QueryError('AND needs a word or a "phrase" on both sides', token[1])
            elif kind == _OPEN:
                if self.kind(self.peek()) == _CLOSE:
                    raise QueryError("there is nothing between these parentheses", token[1])
                items.append(self.query())
                if self.kind(self.peek()) != _CLOSE:
                    raise QueryError("this parenthesis is never closed", token[1])
                self.i += 1
            else:
                items.append(token)
        if all(isinstance(item, Term) and item.negated for item in items):
            raise QueryError(
                'a query cannot only exclude: add a word or a "phrase" to look for',
                items[0].position,
            )
        return items[0] if len(items) == 1 else And(_flatten(items, And))

    def _nothing_before(self, token) -> None:
        previous = self.tokens[self.i - 1] if self.i else None
        if self.kind(previous) == _OR:
            raise QueryError('OR needs a word or a "phrase" on both sides', previous[1])
        if token is None:
            if self.kind(previous) == _OPEN:
                raise QueryError("this parenthesis is never closed", previous[1])
            raise QueryError('the query is empty: write a word or a "quoted phrase"', 0)
        if token[0] == _OR:
            raise QueryError('OR needs a word or a "phrase" on both sides', token[1])
        raise QueryError("this parenthesis closes nothing", token[1])


def _flatten(children: list[Node], kind: type) -> list[Node]:
    out: list[Node] = []
    for child in children:
        out.extend(child.children if isinstance(child, kind) else (child,))
    return out


def parse_query(text: str) -> Query:
    """Parse a topic query. Raises QueryError (and nothing else) on any invalid input."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"the query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    parser = _Parser(_lex(text))
    tree = parser.query()
    if (token := parser.peek()) is not None:
        # Only a ")" can stop the top level early.
        raise QueryError("this parenthesis closes nothing", token[1])
    return Query(text, tree)


# --- Highlighting -----------------------------------------------------------------------------


_ASCII_RUN = re.compile(r"[\x00-\x7f]+")


def _clusters(text: str) -> tuple[str, list[int]]:
    """`text` normalised, and for each normalised character the index of its source character.
    Each character with its combining marks is normalised on its own, so offsets map back;
    runs of ASCII (which NFKC leaves alone and casefolding maps one to one) go in one step."""
    pieces, origin = [], []
    i, n = 0, len(text)
    while i < n:
        run = _ASCII_RUN.match(text, i)
        if run:
            end = run.end()
            if end < n and unicodedata.combining(text[end]):
                end -= 1  # the last ASCII character belongs with the marks after it
            if end > i:
                pieces.append(text[i:end].casefold())
                origin.extend(range(i, end))
                i = end
                continue
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = normalize(text[i:j])
        pieces.append(piece)
        origin.extend([i] * len(piece))
        i = j
    return "".join(pieces), origin


def highlight(text: str, terms: Iterable[str], mark: str = "<mark>") -> SafeString:
    """`text` HTML-escaped, with each occurrence of the matched `terms` (words and phrases as
    written in a query) in <mark>...</mark> (`mark` is the start tag, a styled one in email)."""
    wanted = [units for term in terms if (units := _term_units(term))]
    if not wanted or not text:
        return mark_safe(html.escape(text))
    spans, bounds = _highlight_index(text)
    ranges = []
    for units in wanted:
        for start, end in _phrase_paths(spans, units):
            ranges.append((bounds[start][0], bounds[end - 1][1]))
    if not ranges:
        return mark_safe(html.escape(text))
    ranges.sort()
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, at = [], 0
    for start, end in merged:
        out.append(html.escape(text[at:start]))
        out.append(f"{mark}{html.escape(text[start:end])}</mark>")
        at = end
    out.append(html.escape(text[at:]))
    return mark_safe("".join(out))  # every piece is escaped above (as Django would)


@functools.lru_cache(maxsize=4096)
def _term_units(term: str) -> tuple:
    return tuple(_units(normalize(term)))


@functools.lru_cache(maxsize=4096)
def _highlight_index(text: str) -> tuple[Spans, list[tuple[int, int]]]:
    """The token graph of a text to highlight, and each position's (start, end) in the text.
    Cached: a digest run highlights the same excerpts for many readers, each with their own
    terms, and tokenising is most of the cost."""
    normalized, origin = _clusters(text)
    origin.append(len(text))
    triples, bounds = [], []
    pos = 0
    for found in _GROUP_RE.finditer(normalized):
        runs = list(_RUN_RE.finditer(normalized, found.start(), found.end()))
        for run in runs:
            triples.append((_stem(run.group()), pos, pos + 1))
            bounds.append((origin[run.start()], origin[run.end() - 1] + 1))
            pos += 1
        if len(runs) > 1:
            concat = _stem("".join(run.group() for run in runs))
            triples.append((concat, pos - len(runs), pos))
    return _spans(triples), bounds


def _phrase_paths(spans: Spans, units: list) -> set[tuple[int, int]]:
    """Every (start, end) of a path of tokens that spells `units`."""
    paths: set[tuple[int, int]] | None = None
    for unit in units:
        paths = _advance_paths(spans, paths, unit)
        if not paths:
            return set()
    return paths or set()


def _advance_paths(spans: Spans, paths, unit) -> set[tuple[int, int]]:
    if isinstance(unit, str):
        found = spans.get(unit, ())
        if paths is None:
            return set(found)
        return {(start, e) for start, end in paths for s, e in found if s == end}
    parts, concat = unit
    via_parts = paths
    for part in parts:
        via_parts = _advance_paths(spans, via_parts, part)
        if not via_parts:
            break
    return via_parts | _advance_paths(spans, paths, concat)
