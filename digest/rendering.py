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
from html import escape

from django.conf import settings
from django.template.loader import get_template
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
    excerpt_html: str  # escaped, nothing highlighted


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
    excerpt = Truncator(paper.abstract).words(EXCERPT_WORDS, truncate="…")
    return PaperSkeleton(
        html=Skeleton(get_template("emails/_paper.html").render(context)),
        text=Skeleton(get_template("emails/_paper.txt").render({**context, "excerpt": excerpt})),
        excerpt=excerpt,
        excerpt_html=escape(excerpt),
    )


def excerpt_html(abstract: str, terms: tuple[str, ...]) -> str:
    """An abstract's first words, HTML-escaped, with `terms` in <mark>: the web's excerpt."""
    return query.highlight(Truncator(abstract).words(EXCERPT_WORDS, truncate="…"), terms)


def paper_blocks(paper: Paper, terms: tuple[str, ...], topics: tuple[str, ...]) -> tuple[str, str]:
    """(HTML, text) of one paper in a digest: its excerpt with `terms` highlighted, and the
    `topics` that matched it."""
    skeleton = _paper_skeleton(paper, (paper.pk, paper.updated_at, paper.title, paper.upvotes))
    html = skeleton.html.fill(
        excerpt=query.highlight(skeleton.excerpt, terms, mark=styled_tag("mark"))
        if terms
        else skeleton.excerpt_html,
        matched=", ".join(map(_topic_html, topics)),
    )
    return html, skeleton.text.fill(matched=", ".join(topics))


@lru_cache(maxsize=50_000)
def _topic_html(topic: str) -> str:
    return f"{styled_tag('code')}{escape(topic)}</code>"


def group_topics(items) -> list[str]:
    """The topics a digest's papers are grouped under, in order: each paper's first."""
    return list(dict.fromkeys(item.topics[0] if item.topics else "" for item in items))


@lru_cache(maxsize=512)
def _digest_skeletons(more_count: int, postal_address: str, site_url: str):
    """digest.html and .txt with a slot for everything that differs between readers; one pair
    per "and N more" count (the wording follows the number)."""
    slots = {
        name: Skeleton.slot(name)
        for name in ("subject", "preheader", "groups", "web_url", "manage_url", "unsubscribe_url")
    }
    context = {
        **slots,
        "subscriber": {"email": Skeleton.slot("email")},
        "more_count": more_count,
        "postal_address": postal_address,
        "site_url": site_url,
    }
    return tuple(
        Skeleton(get_template(f"emails/digest.{kind}").render(context)) for kind in ("html", "txt")
    )


@lru_cache(maxsize=4)
def _group_skeletons(with_stop_link: bool):
    """_group.html and .txt (a topic's heading, its papers, its stop link) with slots."""
    context = {
        "topic": Skeleton.slot("topic"),
        "papers": Skeleton.slot("papers"),
        "stop_url": Skeleton.slot("stop_url") if with_stop_link else "",
    }
    return tuple(
        Skeleton(get_template(f"emails/_group.{kind}").render(context)) for kind in ("html", "txt")
    )


def render_digest(*, digest, items, subscriber, links: dict) -> RenderedDigest:
    """`items` are the DigestEntries to show, in rank order. The templates are rendered once
    with slots (see Skeleton); here the slots are filled, escaped for the HTML part."""
    groups: dict[str, list[tuple[str, str]]] = {topic: [] for topic in group_topics(items)}
    for item in items:
        blocks = paper_blocks(item.paper, tuple(item.terms), tuple(item.topics))
        groups[item.topics[0] if item.topics else ""].append(blocks)
    stop_urls = links.get("topic_stop_urls", {})
    html_groups, text_groups = [], []
    for topic, blocks in groups.items():
        stop_url = stop_urls.get(topic, "")
        html_group, text_group = _group_skeletons(bool(stop_url))
        html_groups.append(
            html_group.fill(
                topic=escape(topic), papers="".join(h for h, _ in blocks), stop_url=escape(stop_url)
            )
        )
        text_groups.append(
            text_group.fill(topic=topic, papers="".join(t for _, t in blocks), stop_url=stop_url)
        )
    values = {
        "subject": digest.subject,
        "preheader": " · ".join(item.paper.title for item in items[:3]),
        "web_url": links["web_url"],
        "manage_url": links["manage_url"],
        "unsubscribe_url": links["unsubscribe_url"],
        "email": subscriber.email,
    }
    html, text = _digest_skeletons(
        digest.more_count, settings.PAPERBOY_POSTAL_ADDRESS, settings.SITE_URL
    )
    return RenderedDigest(
        subject=digest.subject,
        html=html.fill(groups="".join(html_groups), **{k: escape(v) for k, v in values.items()}),
        text=text.fill(groups="".join(text_groups), **values),
    )
