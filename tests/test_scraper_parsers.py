"""Every parser on the project's own small fixtures (tests/fixtures/scraper/), so a clone
without ../shared still checks each field; the real recorded pages are in
test_scraper_conformance.py."""

# ruff: noqa: RUF001  (the real text has typographic quotes and full-width commas)

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scraper import parsers
from scraper.parsers import ParseError, clean_text, detect_format, normalize_arxiv_id

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scraper"


def parse_fixture(name: str, kind: str | None = None) -> parsers.ParsedPage:
    body = (FIXTURES / name).read_bytes()
    return parsers.parse(kind or detect_format("", body), body)


def by_id(page: parsers.ParsedPage) -> dict[str, parsers.PaperData]:
    return {p.paper_id: p for p in page.papers}


SPARSE_ABSTRACT = "We bound the loss by $\\mathcal{O}(n^{-1/2})$ when p < 0.05 and q > 1."


class TestArxivIds:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2406.12345", "2406.12345"),
            ("arXiv:2406.12345v2", "2406.12345"),
            ("arXiv: 2406.12345 [cs.LG]", "2406.12345"),
            ("https://arxiv.org/abs/2406.12345v3", "2406.12345"),
            ("https://arxiv.org/pdf/2406.12345v2.pdf", "2406.12345"),
            ("https://arxiv.org/pdf/2406.12345", "2406.12345"),
            ("http://export.arxiv.org/abs/2406.12345", "2406.12345"),
            ("https://huggingface.co/papers/2406.12345", "2406.12345"),
            ("https://huggingface.co/papers/2406.12345#community", "2406.12345"),
            ("oai:arXiv.org:2604.21952v1", "2604.21952"),
            ("0704.0001", "0704.0001"),
            ("http://arxiv.org/abs/cond-mat/0412498v1", "cond-mat/0412498"),
            ("hep-th/9901001v2", "hep-th/9901001"),
            ("math.AG/0601001", "math.AG/0601001"),
        ],
    )
    def test_it_recognises_arxiv_ids_in_their_usual_places(self, value, expected):
        assert normalize_arxiv_id(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "tag:blogger.com,1999:blog-1.post-2",
            "https://example.org/2406.12345x",
            "12345.678901",
            "https://www.natashatherobot.com/?p=6602",
        ],
    )
    def test_it_finds_no_id_where_there_is_none(self, value):
        assert normalize_arxiv_id(value) is None


class TestCleanText:
    def test_it_strips_html_and_normalises_whitespace(self):
        assert clean_text("<p>One</p><p>Two<br>three</p>\n\n <b>bold</b>.") == (
            "One Two three bold."
        )

    def test_it_keeps_latex_and_comparisons_as_written(self):
        text = "Error $O(n^{-1/2})$ with p < 0.05 and q > 1, \\emph{tight}"
        assert clean_text(text) == text

    def test_it_composes_unicode(self):
        assert clean_text("Go\u0308del") == "G\u00f6del"

    def test_it_unescapes_entities_in_markup(self):
        assert clean_text("Caf&#233; &amp; <i>cr&egrave;me</i>") == "Café & crème"

    def test_it_leaves_plain_text_alone(self):
        assert clean_text("a &amp; <b>", markup=False) == "a &amp; <b>"


class TestHuggingFaceApi:
    def test_it_reads_every_field_of_an_item(self):
        papers = by_id(parse_fixture("hf_api_day.json"))
        paper = papers["2611.00001"]
        assert paper.title == "Sparse Attention at Scale"
        assert paper.abstract == SPARSE_ABSTRACT + " Code: soon."
        assert paper.authors == ["Ada Lovelace", "Grace Hopper", "Kurt Gödel"]
        assert paper.organization == "Example Lab"
        assert paper.published_at == datetime(2026, 11, 2, 17, 59, 49, tzinfo=UTC)
        assert (paper.upvotes, paper.num_comments) == (42, 3)
        assert paper.hf_url == "https://huggingface.co/papers/2611.00001"
        assert paper.arxiv_url == "https://arxiv.org/abs/2611.00001"
        assert paper.pdf_url == "https://arxiv.org/pdf/2611.00001"
        assert paper.code_url == "https://github.com/example/sparse"
        assert paper.project_url == "https://example.org/sparse"
        assert paper.thumbnail_url.endswith("/papers/2611.00001.png")

    def test_it_skips_items_that_are_not_papers_and_keeps_zero_upvotes(self):
        papers = by_id(parse_fixture("hf_api_day.json"))
        assert list(papers) == ["2611.00001", "2611.00002"]
        assert papers["2611.00002"].upvotes == 0
        assert papers["2611.00002"].code_url == ""

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "not JSON"),
            (b"{not json", "not JSON"),
            (b'{"error": "Invalid date"}', "the API answered with an error: Invalid date"),
            (b'{"papers": []}', "expected a JSON array"),
            (b"[1, 2, 3]", "no item of the array looks like a daily paper"),
        ],
    )
    def test_it_rejects_what_is_not_a_list_of_daily_papers(self, body, message):
        with pytest.raises(ParseError, match=message):
            parsers.parse_hf_api(body)

    def test_an_empty_day_is_no_error(self):
        assert parsers.parse_hf_api(b"[]").papers == []


class TestHuggingFacePage:
    def test_it_reads_the_hydration_json(self):
        page = parse_fixture("hf_page_day.html")
        assert not page.degraded
        assert by_id(page)["2611.00001"] == by_id(parse_fixture("hf_api_day.json"))["2611.00001"]

    def test_without_hydration_json_it_reads_the_cards_degraded(self):
        page = parse_fixture("hf_page_cards_only.html")
        assert page.degraded
        assert "hydration JSON" in page.notes and "2 paper cards" in page.notes
        first, second = page.papers
        assert first.paper_id == "2611.00001"
        assert first.title == "Sparse Attention at Scale"
        assert (first.upvotes, first.num_comments) == (57, 5)
        assert first.organization == "Example Lab"
        assert first.hf_url == "https://huggingface.co/papers/2611.00001"
        assert first.arxiv_url == "https://arxiv.org/abs/2611.00001"
        assert first.thumbnail_url.endswith("/papers/2611.00001.png")
        assert (first.abstract, first.authors) == ("", [])
        assert (second.title, second.upvotes, second.num_comments) == ("Card & Only", 7, 0)
        assert second.organization == ""

    def test_it_reads_a_single_paper_page(self):
        [paper] = parse_fixture("hf_paper_detail.html").papers
        assert paper.paper_id == "2611.00001"
        assert paper.abstract == "Long abstract."
        assert (paper.upvotes, paper.num_comments) == (61, 2)
        assert paper.organization == "Example Lab"
        assert paper.thumbnail_url.endswith("/2611.00001/gradient.png")

    def test_a_page_without_papers_is_an_error(self):
        with pytest.raises(ParseError, match="no Hugging Face papers on the page"):
            parsers.parse_hf_page(b"<html><body><h1>Hello</h1></body></html>")


class TestArxiv:
    def test_the_api_gives_every_field_without_versions(self):
        papers = by_id(parse_fixture("arxiv_api.xml"))
        paper = papers["2611.00001"]
        assert paper.title == "Sparse Attention at Scale"
        assert paper.abstract == SPARSE_ABSTRACT
        assert paper.authors == ["Ada Lovelace", "Grace Hopper", "Kurt Gödel"]
        assert paper.organization == "Example Lab"
        assert paper.published_at == datetime(2026, 11, 2, 17, 59, 49, tzinfo=UTC)
        assert paper.arxiv_url == "https://arxiv.org/abs/2611.00001"
        assert paper.pdf_url == "https://arxiv.org/pdf/2611.00001"
        assert paper.code_url == "https://github.com/example/sparse"
        assert paper.project_url == "https://example.org/sparse"
        assert (paper.upvotes, paper.num_comments, paper.hf_url) == (None, None, "")
        assert papers["hep-th/9901001"].arxiv_url == "https://arxiv.org/abs/hep-th/9901001"

    def test_an_api_error_is_a_parse_error_with_arxivs_words(self):
        with pytest.raises(ParseError, match=r"incorrect id format for 1234\.12345"):
            parse_fixture("arxiv_api_error.xml")

    def test_the_rss_listing_splits_authors_and_strips_the_announcement(self):
        papers = by_id(parse_fixture("arxiv_rss.xml"))
        paper = papers["2611.00001"]
        assert paper.abstract == "We bound the loss by $\\mathcal{O}(n^{-1/2})$ when p < 0.05."
        assert paper.authors == ["Ada Lovelace", "Grace Hopper", "Kurt Gödel"]
        assert paper.published_at == datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
        assert papers["2610.09999"].abstract == "Revised."

    def test_an_empty_weekend_listing_is_no_error(self):
        assert parse_fixture("arxiv_rss_empty.xml").papers == []


class TestFeeds:
    def test_rss2_with_entities_guid_and_thumbnail(self):
        page = parse_fixture("feed_rss2.xml")
        papers = by_id(page)
        post = papers["lab-post-17"]
        assert post.title == "Café & Crème: Why We Don’t Cache"
        assert post.abstract == "We really don’t."
        assert post.authors == ["Ada Lovelace"]
        assert post.published_at == datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
        assert post.project_url == "https://lab.example.org/posts/cafe"
        assert post.thumbnail_url == "https://lab.example.org/cafe.jpg"
        assert post.arxiv_url == ""
        assert papers["2611.00001"].arxiv_url == "https://arxiv.org/abs/2611.00001"
        assert page.notes == "skipped 1 of 3 entries without an id or title"

    def test_atom_keeps_plain_text_and_author_order(self):
        [paper] = parse_fixture("feed_atom.xml").papers
        assert paper.paper_id == "tag:journal.example.org,2026:article-1"
        assert paper.title == "On Proofs"
        assert paper.abstract == "Symmetry implies conservation: a < b."
        assert paper.authors == ["Emmy Noether", "David Hilbert"]
        assert paper.published_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)

    def test_rss1_rdf_with_surname_first_authors(self):
        [paper] = parse_fixture("feed_rdf.xml").papers
        assert paper.paper_id == "https://preprints.example.org/p/100v1"
        assert paper.authors == ["Mendel, G.", "McClintock, B. B.", "Darwin, C."]
        assert paper.published_at == datetime(2026, 10, 30, tzinfo=UTC)

    def test_gb2312_is_decoded_and_slash_dates_read_year_month_day(self):
        [paper] = parse_fixture("feed_gb2312.xml").papers
        assert paper.title == "纪念币 & 邮票"
        assert paper.abstract == "品相如图，喜欢联系"
        assert paper.authors == ["大鱼儿"]
        assert paper.published_at == datetime(2020, 1, 10, 14, 33, tzinfo=UTC)

    def test_an_over_long_guid_becomes_a_stable_digest(self):
        guid = "https://example.org/" + "x" * 600
        body = (
            f"<rss version='2.0'><channel><title>t</title><item><title>A</title>"
            f"<guid>{guid}</guid></item></channel></rss>"
        ).encode()
        [paper] = parsers.parse_feed(body).papers
        assert paper.paper_id.startswith("sha256:") and len(paper.paper_id) < 100
        assert parsers.parse_feed(body).papers[0].paper_id == paper.paper_id


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("hf_api_day.json", "hf_api"),
            ("hf_page_day.html", "hf_page"),
            ("hf_page_cards_only.html", "hf_page"),
            ("hf_paper_detail.html", "hf_page"),
            ("arxiv_api.xml", "arxiv_api"),
            ("arxiv_rss.xml", "arxiv_rss"),
            ("arxiv_rss_empty.xml", "arxiv_rss"),
            ("feed_rss2.xml", "feed"),
            ("feed_atom.xml", "feed"),
            ("feed_rdf.xml", "feed"),
            ("feed_gb2312.xml", "feed"),
        ],
    )
    def test_the_body_decides_whatever_the_content_type(self, name, kind):
        body = (FIXTURES / name).read_bytes()
        assert detect_format("", body) == kind
        assert detect_format("application/octet-stream", body) == kind

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("text/html", b"<!doctype html><html><body><h1>Hello</h1></body></html>"),
            ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00"),
            ("text/plain", b"just words"),
            ("", b""),
        ],
    )
    def test_an_unknown_format_is_one_clear_line(self, content_type, body):
        with pytest.raises(ParseError) as caught:
            detect_format(content_type, body)
        message = str(caught.value)
        assert message.startswith("unknown format") and "\n" not in message
        assert repr(content_type or "missing") in message
