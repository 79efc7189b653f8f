"""Topic queries: parsing and evaluation against a paper.

For now: case-insensitive words and "quoted phrases" over title and abstract, all of which
must match. The full language (OR, exclusions, fields, stemming) replaces this module."""

import re
import unicodedata
from dataclasses import dataclass, field

TOKEN_RE = re.compile(r"[^\W_]+")
MAX_QUERY_LENGTH = 300


class QueryError(ValueError):
    """A query that cannot be parsed; `position` is the offending character's index."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.message = message
        self.position = position

    def caret(self, query: str) -> str:
        return f"{query}\n{' ' * self.position}^"


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class Document:
    title: tuple[str, ...]
    abstract: tuple[str, ...]
    authors: tuple[str, ...] = ()


def document_for(*, title: str, abstract: str, authors=()) -> Document:
    return Document(
        tuple(tokenize(title)), tuple(tokenize(abstract)), tuple(tokenize(" ".join(authors)))
    )


@dataclass
class Match:
    score: float
    terms: set[str] = field(default_factory=set)


def _contains(tokens: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tokens[i : i + n] == phrase for i in range(len(tokens) - n + 1))


@dataclass(frozen=True)
class Query:
    text: str
    parts: tuple[tuple[str, ...], ...]

    def match(self, doc: Document) -> Match | None:
        score, terms = 0.0, set()
        for phrase in self.parts:
            weight = 2.0 if len(phrase) > 1 else 1.0
            in_title = _contains(doc.title, phrase)
            if not in_title and not _contains(doc.abstract, phrase):
                return None
            score += weight * (3.0 if in_title else 1.0)
            terms.add(" ".join(phrase))
        return Match(score=score, terms=terms)


def parse_query(text: str) -> Query:
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"the query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    parts, pos = [], 0
    for m in re.finditer(r'"([^"]*)"|([^\s"]+)|(")', text):
        pos = m.start()
        if m.group(3):
            raise QueryError("this quote is never closed", pos)
        tokens = tuple(tokenize(m.group(1) if m.group(1) is not None else m.group(2)))
        if tokens:
            parts.append(tokens)
    if not parts:
        raise QueryError('the query is empty: write a word or a "quoted phrase"', 0)
    return Query(text=text, parts=tuple(parts))
