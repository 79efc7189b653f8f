"""Rendering a digest into subject, text and HTML.

A paper looks the same in every digest except for what each reader's topics add: the matched
words highlighted in its excerpt and the list of topics that matched. So each paper's block is
rendered from its template once per process, with markers where those two go, and each digest
fills the markers in: a digest run renders each paper once, not once per reader. The email
templates come with their CSS inlined (see email_templates)."""

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.template.loader import get_template
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from scraper.models import Paper

from . import query
from .email_templates import styled_tag

EXCERPT_WORDS = 60
# A marker no scraped text can contain: it differs in every process.
_MARK = secrets.token_hex(8)
_SLOT = re.compile(rf"\[{_MARK}:(\w+)\]")


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


class Skeleton:
    """Rendered text with named slots (`Skeleton.slot(name)` in the context) to fill in later."""

    __slots__ = ("_pieces",)

    def __init__(self, rendered: str):
        self._pieces = _SLOT.split(rendered)  # literal, slot name, literal, ..., literal

    @staticmethod
    def slot(name: str) -> str:
        return mark_safe(f"[{_MARK}:{name}]")

    def fill(self, **values: str) -> str:
        pieces = self._pieces[:]
        pieces[1::2] = [values[name] for name in pieces[1::2]]
        return "".join(pieces)


@dataclass(frozen=True)
class PaperSkeleton:
    html: Skeleton
    text: Skeleton
    excerpt: str


def authors_short(authors: list[str], limit: int = 3) -> str:
    """'Ada Lovelace, Grace Hopper, Alan Turing et al. (7 authors)'."""
    if len(authors) <= limit + 1:
        return ", ".join(authors)
    return f"{', '.join(authors[:limit])} et al. ({len(authors)} authors)"


@lru_cache(maxsize=20_000)
def _paper_skeleton(paper: Paper, _version: tuple) -> PaperSkeleton:
    """`_version` is part of the cache key: a paper whose title or upvotes changed renders anew."""
    context = {
        "paper": paper,
        "authors": authors_short(paper.authors),
        "excerpt": Skeleton.slot("excerpt"),
        "matched": Skeleton.slot("matched"),
    }
    return PaperSkeleton(
        html=Skeleton(get_template("emails/_paper.html").render(context)),
        text=Skeleton(
            get_template("emails/_paper.txt").render(
                {**context, "excerpt": Truncator(paper.abstract).words(EXCERPT_WORDS, truncate="…")}
            )
        ),
        excerpt=Truncator(paper.abstract).words(EXCERPT_WORDS, truncate="…"),
    )


def excerpt_html(abstract: str, terms: tuple[str, ...]) -> str:
    """An abstract's first words, HTML-escaped, with `terms` in <mark>: the web's excerpt."""
    return query.highlight(Truncator(abstract).words(EXCERPT_WORDS, truncate="…"), terms)


def paper_blocks(paper: Paper, terms: tuple[str, ...], topics: tuple[str, ...]) -> tuple[str, str]:
    """(HTML, text) of one paper in a digest: its excerpt with `terms` highlighted, and the
    `topics` that matched it."""
    skeleton = _paper_skeleton(paper, (paper.pk, paper.updated_at, paper.title, paper.upvotes))
    html = skeleton.html.fill(
        excerpt=query.highlight(skeleton.excerpt, terms).replace("<mark>", styled_tag("mark")),
        matched=format_html_join(
            ", ", styled_tag("code") + "{}</code>", ((topic,) for topic in topics)
        ),
    )
    return html, skeleton.text.fill(matched=", ".join(topics))


def render_digest(*, digest, items, subscriber, links: dict) -> RenderedDigest:
    """`items` are the DigestEntries to show, in rank order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        blocks = paper_blocks(item.paper, tuple(item.terms), tuple(item.topics))
        groups.setdefault(item.topics[0] if item.topics else "", []).append(blocks)
    context = {
        "subject": digest.subject,
        "preheader": " · ".join(item.paper.title for item in items[:3]),
        "groups": [
            (
                topic,
                mark_safe("".join(h for h, _ in blocks)),
                "".join(t for _, t in blocks),
                links.get("topic_stop_urls", {}).get(topic, ""),
            )
            for topic, blocks in groups.items()
        ],
        "more_count": digest.more_count,
        "subscriber": subscriber,
        "postal_address": settings.PAPERBOY_POSTAL_ADDRESS,
        "site_url": settings.SITE_URL,
        **links,
    }
    html = get_template("emails/digest.html").render(context)
    text = get_template("emails/digest.txt").render(context)
    return RenderedDigest(subject=digest.subject, text=text, html=html)
