"""Parsers turn a fetched body into PaperData. They never touch the database, and for any
input they either return a ParsedPage or raise ParseError.

One parser per kind of source (`PARSERS`); `detect_format` picks one from a response's content
type and body when the kind is not known in advance."""

import calendar
import functools
import hashlib
import html
import json
import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

logger = logging.getLogger(__name__)

HF_BASE = "https://huggingface.co"
ARXIV_BASE = "https://arxiv.org"
MAX_PAPER_ID = 500  # Paper.paper_id's max_length

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[a-z]{2})?/\d{7}"
ARXIV_ID_RE = re.compile(
    r"(?:arxiv(?:\.org)?:\s*|arxiv\.org/(?:abs|pdf|html|format)/|huggingface\.co/papers/"
    r"|hf\.co/papers/|^)"
    rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v\d+)?(?=\.pdf|[^\w.]|\.(?!\d)|$)",
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
    # Why the page was parsed degraded, or what was left out, in words for the run record.
    notes: str = ""


def normalize_arxiv_id(value: str) -> str | None:
    """'arXiv:2406.12345v2', 'https://arxiv.org/pdf/2406.12345v2.pdf',
    'oai:arXiv.org:2406.12345v1', 'https://huggingface.co/papers/2406.12345' → '2406.12345'.
    Old-style ids keep their archive: 'hep-th/9901001v2' → 'hep-th/9901001'."""
    if not isinstance(value, str):
        return None
    match = ARXIV_ID_RE.search(value.strip())
    return match.group("id") if match else None


def arxiv_links(arxiv_id: str) -> dict[str, str]:
    """Version-less links, so every source writes the same value for the same paper."""
    return {"arxiv_url": f"{ARXIV_BASE}/abs/{arxiv_id}", "pdf_url": f"{ARXIV_BASE}/pdf/{arxiv_id}"}


_TAG = re.compile(r"</?[a-z][a-z0-9-]*(?:\s[^<>]*)?/?>|<!--|&(?:#\d+|#x[0-9a-f]+|[a-z]+\d*);", re.I)


_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|section|article|pre|hr)\b[^>]*>",
    re.I,
)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value, *, markup: bool = True) -> str:
    """Strip HTML, normalise whitespace and Unicode (NFC); LaTeX stays as written. Text known
    to be plain (`markup=False`) keeps its '<' and '&' as they are: 'p < 0.05' is no tag."""
    if value is None:
        return ""
    text = str(value)
    if markup and _TAG.search(text):
        # Block elements separate words; inline ones ('<b>soon</b>.') must not add spaces.
        text = _BLOCK_TAG.sub(r" \g<0> ", text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            text = BeautifulSoup(text, "lxml").get_text("")
        text = html.unescape(text)
    text = _CONTROL.sub("", text)  # PostgreSQL refuses NUL; no control character is content
    return unicodedata.normalize("NFC", " ".join(text.split()))


def parse_datetime(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _http_url(value) -> str:
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if not value.lower().startswith(("http://", "https://")) or _CONTROL.search(value):
        return ""
    return value if len(value) <= 1000 else ""


def _int(value) -> int | None:
    """A count that fits the database's integer column, else None (unknown)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -(2**31) <= number < 2**31 else None


def _guarded(parser):
    """The parsers' contract: anything but ParseError escaping is a bug in the parser, and is
    turned into a ParseError (logged with its traceback) so one bad page can't crash a run."""

    @functools.wraps(parser)
    def wrapper(body):
        try:
            return parser(body)
        except ParseError:
            raise
        except RecursionError as err:
            raise ParseError("the document is nested too deeply to parse") from err
        except Exception as err:
            logger.exception("%s failed on a %d-byte body", parser.__name__, len(body or b""))
            raise ParseError(f"could not parse: {type(err).__name__}: {err}") from err

    return wrapper


# --- Hugging Face -------------------------------------------------------------------------


def _org_name(org) -> str:
    if isinstance(org, dict):
        return clean_text(org.get("fullname") or org.get("name") or "")[:300]
    return clean_text(org)[:300] if isinstance(org, str) else ""


def _author_names(authors) -> list[str]:
    names = []
    for author in authors if isinstance(authors, list) else []:
        if isinstance(author, dict):
            user = author.get("user") if isinstance(author.get("user"), dict) else {}
            name = author.get("name") or user.get("fullname") or ""
        else:
            name = author
        if isinstance(name, str) and (name := clean_text(name)):
            names.append(name)
    return names


def hf_item_to_paper(item: dict) -> PaperData | None:
    """One item of the Hugging Face daily papers list (API or page hydration JSON), or the
    `paper` object of a single paper page."""
    if not isinstance(item, dict):
        return None
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return None
    arxiv_id = normalize_arxiv_id(raw_id)
    paper_id = arxiv_id or clean_text(raw_id, markup=False)[:MAX_PAPER_ID]
    if not paper_id:
        return None
    title = clean_text(paper.get("title") or item.get("title"))
    if not title:
        return None
    return PaperData(
        paper_id=paper_id,
        title=title,
        abstract=clean_text(paper.get("summary") or item.get("summary")),
        authors=_author_names(paper.get("authors")),
        organization=_org_name(item.get("organization") or paper.get("organization")),
        published_at=parse_datetime(paper.get("publishedAt") or item.get("publishedAt")),
        upvotes=_int(paper.get("upvotes")),
        num_comments=_int(item.get("numComments")),
        hf_url=f"{HF_BASE}/papers/{paper_id}",
        **(arxiv_links(arxiv_id) if arxiv_id else {}),
        code_url=_http_url(paper.get("githubRepo")),
        project_url=_http_url(paper.get("projectPage")),
        thumbnail_url=_http_url(item.get("thumbnail")),
    )


def _hf_items(items) -> list[PaperData]:
    if not isinstance(items, list):
        raise ParseError("expected a JSON array of daily papers")
    papers = [p for p in map(hf_item_to_paper, items) if p is not None]
    if items and not papers:
        raise ParseError("no item of the array looks like a daily paper")
    return papers


@_guarded
def parse_hf_api(body: bytes | str) -> ParsedPage:
    """A response of https://huggingface.co/api/daily_papers: a JSON array of items."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ParseError(f"not JSON: {err}") from err
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise ParseError(f"the API answered with an error: {data['error'][:300]}")
    return ParsedPage(_hf_items(data))


def _soup(body) -> BeautifulSoup:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            return BeautifulSoup(body, "lxml")
    except Exception as err:  # lxml raises a variety of errors on binary junk
        raise ParseError(f"not HTML: {err}") from err


def _props(node) -> dict | None:
    try:
        props = json.loads(node.get("data-props") or "")
    except ValueError:
        return None
    return props if isinstance(props, dict) else None


def _hf_detail(props: dict, soup: BeautifulSoup) -> PaperData | None:
    """A single paper page (huggingface.co/papers/<id>): data-target="PaperContent"."""
    item = {"paper": props.get("paper")}
    comments = props.get("comments")
    if isinstance(comments, list):
        item["numComments"] = sum(
            1 for c in comments if isinstance(c, dict) and c.get("type", "comment") == "comment"
        )
    item["organization"] = props.get("submitterOrganization")
    image = soup.find("meta", attrs={"property": "og:image"})
    item["thumbnail"] = image.get("content") if image else ""
    return hf_item_to_paper(item)


_CARD_ORG_SKIP = re.compile(r"^/(papers|login|join|search|models|datasets|spaces)\b")


def _hf_card(article) -> PaperData | None:
    """One paper card of the page markup: enough to know the paper, not everything about it."""
    heading = article.find(["h3", "h2"])
    link = heading.find("a", href=True) if heading else None
    if link is None:
        return None
    paper_id = normalize_arxiv_id(urljoin(HF_BASE + "/", link["href"]))
    title = clean_text(link.get_text(" "))
    if not paper_id or not title:
        return None
    upvotes = None
    for div in article.select("div.leading-none"):
        if (upvotes := _int(div.get_text(strip=True))) is not None:
            break
    comments = article.find("a", href=re.compile(r"#community$"))
    organization = ""
    for anchor in article.find_all("a", href=re.compile(r"^/[^/?#]+$")):
        if not _CARD_ORG_SKIP.match(anchor["href"]) and (span := anchor.find("span")):
            organization = clean_text(span.get_text(" "))
            break
    image = article.find("img", src=re.compile(r"thumbnails"))
    return PaperData(
        paper_id=paper_id,
        title=title,
        organization=organization[:300],
        upvotes=upvotes,
        num_comments=_int(comments.get_text(strip=True)) if comments else None,
        hf_url=f"{HF_BASE}/papers/{paper_id}",
        **arxiv_links(paper_id),
        thumbnail_url=_http_url(image.get("src")) if image else "",
    )


@_guarded
def parse_hf_page(body: bytes | str) -> ParsedPage:
    """A Hugging Face papers page: the daily, weekly, monthly and search listings
    (data-target="DailyPapers"), or a single paper page (data-target="PaperContent"). Without
    the hydration JSON, the paper cards of the markup are read and the page is degraded."""
    soup = _soup(body)
    node = soup.find(attrs={"data-target": "DailyPapers"})
    if node is not None and (props := _props(node)) is not None:
        return ParsedPage(_hf_items(props.get("dailyPapers", [])))
    detail = soup.find(attrs={"data-target": "PaperContent"})
    if detail is not None and (props := _props(detail)) is not None:
        paper = _hf_detail(props, soup)
        if paper is None:
            raise ParseError("the PaperContent data-props holds no paper")
        return ParsedPage([paper])
    cards = [p for p in map(_hf_card, soup.find_all("article")) if p is not None]
    if cards:
        why = "is not JSON" if node is not None and node.get("data-props") else "is missing"
        return ParsedPage(
            cards,
            degraded=True,
            notes=f"hydration JSON (DailyPapers data-props) {why}: read {len(cards)} paper "
            "cards from the markup (title, upvotes, comments; no abstracts or authors)",
        )
    raise ParseError(
        'no Hugging Face papers on the page: no data-target="DailyPapers" hydration JSON '
        "and no paper cards"
    )


# --- Feeds: arXiv API, arXiv RSS, any RSS / Atom -----------------------------------------

_INITIALS = re.compile(r"^(?:[A-Z][a-z]?\.?[\s-]*){1,4}$")
_ARXIV_RSS_PREFIX = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*(?:Abstract:\s*)?", re.IGNORECASE
)
_SLASH_DATE = re.compile(r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_URL = re.compile(r"https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:]")


def _feed(body, *, expect: str) -> feedparser.FeedParserDict:
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body or not body.strip():
        raise ParseError(f"empty body, expected {expect}")
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version") and not parsed.entries:
        error = parsed.get("bozo_exception")
        detail = f": {str(error)[:200]}" if error else ""
        raise ParseError(f"not {expect}{detail}")
    return parsed


def split_authors(names: list[str]) -> list[str]:
    """Ordered, de-duplicated author names. One string holding a list is split: 'A, B and C'
    (arXiv RSS) or 'Surname, I., Other, J. K.' (bioRxiv) becomes one name per author."""
    out: list[str] = []
    for raw in names:
        text = clean_text(raw)
        if not text:
            continue
        parts = [p.strip() for p in re.split(r";|,|\s+and\s+", text) if p.strip()]
        if len(parts) > 1 and len(parts) % 2 == 0 and all(_INITIALS.match(p) for p in parts[1::2]):
            parts = [f"{parts[i]}, {parts[i + 1]}" for i in range(0, len(parts), 2)]
        elif len(parts) > 1 and not all(" " in p or "." in p for p in parts):
            parts = [text]  # 'Lovelace, Ada': one author written surname first
        for name in parts:
            if name not in out:
                out.append(name)
    return out


def _entry_authors(entry) -> list[str]:
    names = [a.get("name", "") for a in entry.get("authors") or [] if isinstance(a, dict)]
    if not any(names) and entry.get("author"):
        names = [entry.get("author")]
    return split_authors([n for n in names if isinstance(n, str)])


def _entry_datetime(entry) -> datetime | None:
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if isinstance(raw, str) and (match := _SLASH_DATE.match(raw)):
            # feedparser reads 2020/1/10 as 2020-11-01; this shape is year/month/day.
            y, m, d, hh, mm, ss = (int(g) if g else 0 for g in match.groups())
            try:
                return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)
            except ValueError:
                continue
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (TypeError, ValueError, OverflowError, OSError):
                continue
    return None


def _entry_thumbnail(entry) -> str:
    for media in entry.get("media_thumbnail") or []:
        if isinstance(media, dict) and (url := _http_url(media.get("url"))):
            return url
    candidates = list(entry.get("media_content") or []) + list(entry.get("enclosures") or [])
    for media in candidates:
        if not isinstance(media, dict):
            continue
        is_image = str(media.get("type") or media.get("medium") or "").startswith("image")
        if is_image and (url := _http_url(media.get("url") or media.get("href"))):
            return url
    return ""


def _links_in(text: str) -> tuple[str, str]:
    """(code, project) links named in an arXiv comment or abstract."""
    code = project = ""
    for match in _URL.finditer(text or ""):
        url = match.group(0)
        before = text[max(0, match.start() - 40) : match.start()].lower()
        if not code and re.match(r"https?://(www\.)?(github\.com|gitlab\.com)/[^/]+/[^/]+", url):
            code = url
        elif not project and ("project" in before or "website" in before or "page" in before):
            project = url
    return code, project


def _is_plain(entry, key: str = "summary") -> bool:
    detail = entry.get(f"{key}_detail")
    return isinstance(detail, dict) and detail.get("type") == "text/plain"


def _entry_to_arxiv_paper(
    entry, *, abstract: str, extra: str = "", plain: bool = False
) -> PaperData | None:
    candidates = [entry.get("id"), entry.get("link")]
    candidates += [link.get("href") for link in entry.get("links") or [] if isinstance(link, dict)]
    arxiv_id = next((i for c in candidates if c and (i := normalize_arxiv_id(str(c)))), None)
    title = clean_text(entry.get("title"))
    if not arxiv_id or not title:
        return None
    code, project = _links_in(f"{extra} {abstract}")
    return PaperData(
        paper_id=arxiv_id,
        title=title,
        abstract=clean_text(abstract, markup=not plain),
        authors=_entry_authors(entry),
        organization=clean_text(entry.get("arxiv_affiliation"))[:300],
        published_at=_entry_datetime(entry),
        **arxiv_links(arxiv_id),
        code_url=code,
        project_url=project,
    )


def _arxiv_api_error(parsed) -> str | None:
    for entry in parsed.entries:
        if "api/errors" in str(entry.get("id", "")):
            return clean_text(entry.get("summary") or entry.get("title")) or "unknown error"
    return None


@_guarded
def parse_arxiv_api(body: bytes | str) -> ParsedPage:
    """An Atom response of the arXiv API (export.arxiv.org/api/query), old or new format."""
    parsed = _feed(body, expect="an arXiv API (Atom) response")
    if error := _arxiv_api_error(parsed):
        raise ParseError(f"the arXiv API answered with an error: {error[:300]}")
    papers = []
    for entry in parsed.entries:
        paper = _entry_to_arxiv_paper(
            entry,
            abstract=entry.get("summary", ""),
            extra=entry.get("arxiv_comment", ""),
            plain=_is_plain(entry),
        )
        if paper is not None:
            papers.append(paper)
    if parsed.entries and not papers:
        raise ParseError("no entry of the Atom feed has an arXiv id")
    return _with_skipped(papers, len(parsed.entries))


@_guarded
def parse_arxiv_rss(body: bytes | str) -> ParsedPage:
    """An arXiv listing feed (rss.arxiv.org/rss/<category>): 'arXiv:ID Announce Type: new
    Abstract: ...' descriptions, authors in one dc:creator. An empty feed (weekends) is fine."""
    parsed = _feed(body, expect="an arXiv RSS feed")
    papers = []
    for entry in parsed.entries:
        abstract = _ARXIV_RSS_PREFIX.sub("", clean_text(entry.get("summary", "")))
        paper = _entry_to_arxiv_paper(entry, abstract=abstract)
        if paper is not None:
            papers.append(paper)
    if parsed.entries and not papers:
        raise ParseError("no item of the RSS feed has an arXiv id")
    return _with_skipped(papers, len(parsed.entries))


def _guid(entry) -> str:
    raw = entry.get("id") or entry.get("link") or ""
    raw = clean_text(raw, markup=False) if isinstance(raw, str) else ""
    if len(raw) > MAX_PAPER_ID:  # an absurd GUID still names one work, just shorter
        raw = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    return raw


@_guarded
def parse_feed(body: bytes | str) -> ParsedPage:
    """Any RSS 0.9x/1.0 (RDF)/2.0 or Atom feed. An entry is a paper with its arXiv id when it
    links to one (arXiv, Hugging Face), else with its GUID (or link) as the id; the entry's
    link is stored as the work's project page."""
    parsed = _feed(body, expect="an RSS or Atom feed")
    papers = []
    for entry in parsed.entries:
        link = _http_url(entry.get("link"))
        summary = entry.get("summary") or ""
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        plain = _is_plain(entry) if entry.get("summary") else False
        arxiv_paper = _entry_to_arxiv_paper(entry, abstract=summary, plain=plain)
        if arxiv_paper is not None:
            arxiv_paper.thumbnail_url = _entry_thumbnail(entry)
            papers.append(arxiv_paper)
            continue
        guid, title = _guid(entry), clean_text(entry.get("title"))
        if not guid or not title:
            continue
        papers.append(
            PaperData(
                paper_id=guid,
                title=title,
                abstract=clean_text(summary, markup=not plain),
                authors=_entry_authors(entry),
                published_at=_entry_datetime(entry),
                project_url=link,
                thumbnail_url=_entry_thumbnail(entry),
            )
        )
    if parsed.entries and not papers:
        raise ParseError("no entry of the feed has a title and an id or link")
    return _with_skipped(papers, len(parsed.entries))


def _with_skipped(papers: list[PaperData], total: int) -> ParsedPage:
    skipped = total - len(papers)
    notes = f"skipped {skipped} of {total} entries without an id or title" if skipped else ""
    return ParsedPage(papers, notes=notes)


# --- Format detection -----------------------------------------------------------------------

FORMATS = ("hf_page", "hf_api", "arxiv_api", "arxiv_rss", "feed")
_XML_PRELUDE = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*", re.DOTALL
)
_FIRST_LINK = re.compile(rb"<link>\s*([^<\s]*)")
_ARXIV_HOST = re.compile(rb"https?://(?:rss\.|export\.)?arxiv\.org/")


def detect_format(content_type: str, body: bytes) -> str:
    """The parser name for a response (one of FORMATS). The body decides when it is clear, so a
    mislabelled response still parses; raises ParseError naming what was seen if nothing fits."""
    content_type = (content_type or "").split(";")[0].strip().lower()
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    head = _XML_PRELUDE.sub(b"", body[:8192], count=1).lstrip().lower()
    if head.startswith((b"[", b"{")) or (content_type.endswith("json") and head[:1] != b"<"):
        return "hf_api"
    if head.startswith((b"<rss", b"<feed", b"<rdf:rdf", b"<rdf")) or (
        content_type.endswith(("rss+xml", "atom+xml", "rdf+xml")) and head[:1] == b"<"
    ):
        window = body[:20000].lower()
        if head.startswith(b"<feed") and (
            b"arxiv.org/api" in window or b"arxiv.org/schemas/atom" in window
        ):
            return "arxiv_api"
        channel_link = _FIRST_LINK.search(window)
        if head.startswith(b"<rss") and channel_link and _ARXIV_HOST.match(channel_link.group(1)):
            return "arxiv_rss"
        return "feed"
    lowered = body.lower()
    is_html = head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<div"))
    if (is_html or content_type == "text/html") and (
        b'data-target="dailypapers"' in lowered
        or b'data-target="papercontent"' in lowered
        or (b"huggingface" in lowered and b'href="/papers/' in lowered)
    ):
        return "hf_page"
    seen = "an HTML page" if is_html else "a body"
    raise ParseError(
        f"unknown format: {seen} of content type {content_type or 'missing'!r} is not a Hugging "
        "Face papers page or API response, an arXiv API or RSS response, or an RSS/Atom feed"
    )


PARSERS = {
    "hf_page": parse_hf_page,
    "hf_api": parse_hf_api,
    "arxiv_api": parse_arxiv_api,
    "arxiv_rss": parse_arxiv_rss,
    "feed": parse_feed,
}


def parse(kind: str, body: bytes) -> ParsedPage:
    if kind not in PARSERS:
        raise ParseError(f"no parser for kind {kind!r}")
    return PARSERS[kind](body)
