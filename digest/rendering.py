"""Rendering a digest into subject, text and HTML. Each paper's block is rendered once per
process for a given set of highlighted terms and topics, so a digest run renders each paper a
handful of times, not once per subscriber. The mailer inlines the CSS of the whole message."""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import get_template
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from scraper.models import Paper

from . import query

EXCERPT_WORDS = 60
_MAX_CACHED = 20_000
_fragments: dict[tuple, tuple[str, str]] = {}


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


def authors_short(authors: list[str], limit: int = 3) -> str:
    """'Ada Lovelace, Grace Hopper, Alan Turing et al. (7 authors)'."""
    if len(authors) <= limit + 1:
        return ", ".join(authors)
    return f"{', '.join(authors[:limit])} et al. ({len(authors)} authors)"


def excerpt(abstract: str, terms: tuple[str, ...]) -> str:
    """The abstract's opening words, with the matched terms marked (escaped HTML)."""
    text = Truncator(abstract).words(EXCERPT_WORDS, truncate="…")
    highlight = getattr(query, "highlight", None)
    return str(highlight(text, terms)) if highlight else escape(text)


def paper_blocks(paper: Paper, terms: tuple[str, ...], topics: tuple[str, ...]) -> tuple[str, str]:
    """(HTML, text) of one paper in a digest, cached per process."""
    key = (paper.pk, paper.updated_at, paper.title, paper.upvotes, terms, topics)
    if (cached := _fragments.get(key)) is not None:
        return cached
    context = {
        "paper": paper,
        "authors": authors_short(paper.authors),
        "excerpt": mark_safe(excerpt(paper.abstract, terms)),
        "excerpt_text": Truncator(paper.abstract).words(EXCERPT_WORDS, truncate="…"),
        "topics": topics,
    }
    html = get_template("emails/_paper.html").render(context)
    text = get_template("emails/_paper.txt").render(context)
    if len(_fragments) >= _MAX_CACHED:
        _fragments.clear()
    _fragments[key] = (html, text)
    return html, text


def render_digest(*, digest, items, subscriber, links: dict) -> RenderedDigest:
    """`items` are the DigestItems to show (papers loaded), in rank order."""
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
