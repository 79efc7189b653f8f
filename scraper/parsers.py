"""Parsers turn a fetched body into PaperData. They never touch the database, and for any
input they either return a ParsedPage or raise ParseError."""

import html
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from bs4 import BeautifulSoup

HF_BASE = "https://huggingface.co"

ARXIV_ID_RE = re.compile(
    r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|^)"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?:\.pdf)?(?:[/?#]|$)",
    re.IGNORECASE,
)


class ParseError(Exception):
    """The body is not a page of the expected kind, or is malformed."""


@dataclass
class PaperData:
    paper_id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    organization: str = ""
    published_at: datetime | None = None
    upvotes: int | None = None
    num_comments: int | None = None
    hf_url: str = ""
    arxiv_url: str = ""
    pdf_url: str = ""
    code_url: str = ""
    project_url: str = ""
    thumbnail_url: str = ""


@dataclass
class ParsedPage:
    papers: list[PaperData]
    degraded: bool = False


def normalize_arxiv_id(value: str) -> str | None:
    """'arXiv:2406.12345v2', 'https://arxiv.org/pdf/2406.12345v2.pdf' → '2406.12345'."""
    match = ARXIV_ID_RE.search(value.strip())
    return match.group("id") if match else None


def clean_text(value) -> str:
    """Strip HTML, normalise whitespace and Unicode (NFC); LaTeX stays as written."""
    if value is None:
        return ""
    text = str(value)
    if "<" in text and ">" in text:
        text = BeautifulSoup(text, "lxml").get_text(" ")
    text = html.unescape(text)
    return unicodedata.normalize("NFC", " ".join(text.split()))


def parse_datetime(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _org_name(org) -> str:
    if isinstance(org, dict):
        return clean_text(org.get("fullname") or org.get("name") or "")
    return clean_text(org) if isinstance(org, str) else ""


def _author_names(authors) -> list[str]:
    names = []
    for author in authors if isinstance(authors, list) else []:
        if isinstance(author, dict):
            name = author.get("name") or (author.get("user") or {}).get("fullname") or ""
        else:
            name = author
        if isinstance(name, str) and (name := clean_text(name)):
            names.append(name)
    return names


def hf_item_to_paper(item: dict) -> PaperData | None:
    """One item of the Hugging Face daily papers list (API or page hydration JSON)."""
    if not isinstance(item, dict):
        return None
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return None
    arxiv_id = normalize_arxiv_id(raw_id)
    paper_id = arxiv_id or raw_id.strip()
    title = clean_text(paper.get("title") or item.get("title"))
    if not title:
        return None
    github = paper.get("githubRepo")
    project = paper.get("projectPage")
    thumbnail = item.get("thumbnail")
    return PaperData(
        paper_id=paper_id,
        title=title,
        abstract=clean_text(paper.get("summary") or item.get("summary")),
        authors=_author_names(paper.get("authors")),
        organization=_org_name(paper.get("organization") or item.get("organization")),
        published_at=parse_datetime(paper.get("publishedAt") or item.get("publishedAt")),
        upvotes=_int(paper.get("upvotes")),
        num_comments=_int(item.get("numComments")),
        hf_url=f"{HF_BASE}/papers/{paper_id}",
        arxiv_url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
        code_url=github if isinstance(github, str) and github.startswith("http") else "",
        project_url=project if isinstance(project, str) and project.startswith("http") else "",
        thumbnail_url=thumbnail
        if isinstance(thumbnail, str) and thumbnail.startswith("http")
        else "",
    )


def _hf_items(items) -> list[PaperData]:
    if not isinstance(items, list):
        raise ParseError("expected a JSON array of daily papers")
    papers = [p for p in map(hf_item_to_paper, items) if p is not None]
    if items and not papers:
        raise ParseError("no item of the array looks like a daily paper")
    return papers


def parse_hf_api(body: bytes | str) -> ParsedPage:
    """A response of https://huggingface.co/api/daily_papers: a JSON array of items."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ParseError(f"not JSON: {err}") from err
    return ParsedPage(_hf_items(data))


def parse_hf_page(body: bytes | str) -> ParsedPage:
    """A Daily Papers page: the hydration JSON in data-target="DailyPapers" data-props."""
    try:
        soup = BeautifulSoup(body, "lxml")
    except Exception as err:  # lxml raises a variety of errors on binary junk
        raise ParseError(f"not HTML: {err}") from err
    node = soup.find(attrs={"data-target": "DailyPapers"})
    if node is None or not node.get("data-props"):
        raise ParseError('no element with data-target="DailyPapers" on the page')
    try:
        props = json.loads(node["data-props"])
    except ValueError as err:
        raise ParseError(f"DailyPapers data-props is not JSON: {err}") from err
    if not isinstance(props, dict):
        raise ParseError("DailyPapers data-props is not a JSON object")
    return ParsedPage(_hf_items(props.get("dailyPapers", [])))


def detect_format(content_type: str, body: bytes) -> str:
    """The parser name for a response: 'hf_page' or 'hf_api'. Raises ParseError if unknown."""
    head = body[:4096].lstrip().lower()
    content_type = (content_type or "").lower()
    if "json" in content_type or head.startswith(b"["):
        return "hf_api"
    if b"dailypapers" in body.lower() and (
        b"<html" in head or b"<!doctype" in head or b"<" in head[:1]
    ):
        return "hf_page"
    raise ParseError(
        f"unknown format (content type {content_type or 'missing'!r}): "
        "not a Hugging Face Daily Papers page or API response"
    )


PARSERS = {"hf_page": parse_hf_page, "hf_api": parse_hf_api}


def parse(kind: str, body: bytes) -> ParsedPage:
    return PARSERS[kind](body)
