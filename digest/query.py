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

import re
import unicodedata
from collections.abc import Iterable

from django.utils.html import escape
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

_stems: dict[str, str] = {}


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
    found = _stems.get(word)
    if found is None:
        if len(_stems) > 500_000:
            _stems.clear()
        found = _stems[word] = stem(word)
    return found


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


def _spans(triples: Iterable[tuple[str, int, int]]) -> Spans:
    spans: Spans = {}
    for token, start, end in triples:
        spans.setdefault(token, []).append((start, end))
    return spans


class Document:
    """A paper as the matcher sees it: per field, each token's (start, end) positions; the
    tokens of the title and abstract, of every field, and the title's and abstract's bigrams
    (token pairs where one ends where the next starts), for quick checks."""

    __slots__ = ("abstract", "author", "text_bigrams", "text_tokens", "title", "tokens")

    def __init__(self, title: Spans, abstract: Spans, author: Spans):
        self.title = title
        self.abstract = abstract
        self.author = author
        self.text_tokens = frozenset(title).union(abstract)
        self.tokens = self.text_tokens.union(author)
        self.text_bigrams = _bigrams(title) | _bigrams(abstract)


def _bigrams(spans: Spans) -> set[tuple[str, str]]:
    starting: dict[int, list[str]] = {}
    for token, places in spans.items():
        for start, _ in places:
            starting.setdefault(start, []).append(token)
    return {
        (token, following)
        for token, places in spans.items()
        for _, end in places
        for following in starting.get(end, ())
    }


def document_for(*, title: str, abstract: str, authors: Iterable[str] = ()) -> Document:
    author_triples: list[tuple[str, int, int]] = []
    pos = 0
    for name in authors:
        triples, pos = _graph(normalize(name), pos)
        author_triples += triples
        pos += 1  # a gap, so that no phrase runs from one author into the next
    return Document(
        _spans(_graph(normalize(title))[0]),
        _spans(_graph(normalize(abstract))[0]),
        _spans(author_triples),
    )


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

    __slots__ = ("_doc", "_node", "_score", "_terms")

    def __init__(self, score: float = 0.0, terms: Iterable[str] = (), *, node=None, doc=None):
        self._node, self._doc = node, doc
        if node is None:
            self._score, self._terms = score, set(terms)

    def _work_out(self) -> None:
        self._terms = set()
        self._score = self._node.collect(self._doc, self._terms)
        self._node = self._doc = None

    @property
    def score(self) -> float:
        if self._node is not None:
            self._work_out()
        return self._score

    @property
    def terms(self) -> set[str]:
        if self._node is not None:
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
    is the word or phrase as written; `tokens` every token that can satisfy it."""

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
                self.needs <= doc.text_tokens and self.pairs <= doc.text_bigrams
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
        plain = self.plain
        if plain is None:
            return self.tree.matches(doc)
        for tokens, bigrams, excluded in plain:
            if (
                tokens <= doc.text_tokens
                and (not bigrams or bigrams <= doc.text_bigrams)
                and (not excluded or excluded.isdisjoint(doc.text_tokens))
            ):
                return True
        return False

    def match(self, doc: Document) -> Match | None:
        if not self.matches(doc):
            return None
        return Match(node=self.tree, doc=doc)

    def terms(self) -> list[Term]:
        out, stack = [], [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, Term):
                out.append(node)
            else:
                stack.extend(reversed(node.children))
        return out


Plain = tuple[frozenset[str], frozenset[tuple[str, str]], frozenset[str]]
_NO = frozenset()
_MAX_PLAIN = 8


def _plain(node) -> tuple[Plain, ...] | None:
    """The query as a few alternatives of set tests on a document's title and abstract: tokens
    it must have, bigrams it must have (two-word phrases), tokens it must not have. None when
    the query needs more (fields, longer phrases, hyphenated words, too many alternatives)."""
    if isinstance(node, Term):
        if node.field is not None:
            return None
        if node.token is not None:
            token = frozenset((node.token,))
            return ((_NO, _NO, token),) if node.negated else ((token, _NO, _NO),)
        units = node.units
        if node.negated or len(units) != 2 or not all(isinstance(u, str) for u in units):
            return None
        return ((frozenset(units), frozenset((units,)), _NO),)
    options = [_plain(child) for child in node.children]
    if any(option is None for option in options):
        return None
    if isinstance(node, Or):
        out = tuple(alt for option in options for alt in option)
        return out if len(out) <= _MAX_PLAIN else None
    out = ((_NO, _NO, _NO),)
    for option in options:
        out = tuple((a[0] | b[0], a[1] | b[1], a[2] | b[2]) for a in out for b in option)
        if len(out) > _MAX_PLAIN:
            return None
    return out


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


def _clusters(text: str) -> tuple[str, list[int]]:
    """`text` normalised, and for each normalised character the index of its source character.
    Each character with its combining marks is normalised on its own, so offsets map back."""
    pieces, origin = [], []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = normalize(text[i:j])
        pieces.append(piece)
        origin.extend([i] * len(piece))
        i = j
    return "".join(pieces), origin


def highlight(text: str, terms: Iterable[str]) -> SafeString:
    """`text` HTML-escaped, with each occurrence of the matched `terms` (words and phrases as
    written in a query) in <mark>...</mark>."""
    wanted = [units for term in terms if (units := _units(normalize(term)))]
    if not wanted or not text:
        return mark_safe(escape(text))
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
    spans = _spans(triples)
    ranges = []
    for units in wanted:
        for start, end in _phrase_paths(spans, units):
            ranges.append((bounds[start][0], bounds[end - 1][1]))
    ranges.sort()
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, at = [], 0
    for start, end in merged:
        out.append(escape(text[at:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        at = end
    out.append(escape(text[at:]))
    return mark_safe("".join(out))  # every piece is escaped above


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
