"""No byte string makes any parser raise anything but ParseError, and format detection either
names a parser or raises ParseError."""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scraper import parsers, services

PREFIXES = [
    b"",
    b"[",
    b'[{"paper": {"id": "2406.1',
    b'{"dailyPapers": ',
    b"<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom'><entry>",
    b"<rss version='2.0'><channel><item><title>",
    b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><item>",
    b'<!doctype html><div data-target="DailyPapers" data-props="',
    b'<html><div data-target="PaperContent" data-props="{&quot;paper&quot;:',
    b"<html><article><h3><a href='/papers/2406.12345'>",
    b"<?xml version='1.0' encoding='gb2312'?><rss><channel><item><title>",
]

bodies = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda p, b: p + b, st.sampled_from(PREFIXES), st.binary(max_size=500)),
    st.builds(
        lambda p, t: p + t.encode("utf-8", "surrogatepass"),
        st.sampled_from(PREFIXES),
        st.text(max_size=300),
    ),
)

fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", sorted(parsers.PARSERS))
@fuzz
@given(body=bodies)
def test_no_body_makes_a_parser_raise_anything_but_parse_error(kind, body):
    try:
        page = parsers.parse(kind, body)
    except parsers.ParseError as err:
        assert str(err)
        return
    assert isinstance(page, parsers.ParsedPage)
    for paper in page.papers:
        assert paper.paper_id and paper.title
        assert len(paper.paper_id) <= parsers.MAX_PAPER_ID


@fuzz
@given(body=bodies, content_type=st.sampled_from(["", "text/html", "application/json", "x/y"]))
def test_detection_names_a_parser_or_raises_parse_error(body, content_type):
    try:
        kind = parsers.detect_format(content_type, body)
    except parsers.ParseError as err:
        assert "\n" not in str(err)
        return
    assert kind in parsers.PARSERS


@fuzz
@given(value=st.text(max_size=200))
def test_normalising_any_text_gives_an_id_or_none(value):
    found = parsers.normalize_arxiv_id(value)
    assert found is None or (found and "v" not in found.split("/")[-1])


texts = st.text(max_size=80)
items = st.fixed_dictionaries(
    {
        "paper": st.fixed_dictionaries(
            {
                "id": st.one_of(st.from_regex(r"\A\d{4}\.\d{5}(v\d)?\Z"), texts),
                "title": st.text(min_size=1, max_size=80),
                "summary": texts,
                "authors": st.lists(st.fixed_dictionaries({"name": texts}), max_size=4),
                "upvotes": st.one_of(st.none(), st.integers(), texts),
                "publishedAt": st.one_of(
                    texts,
                    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                ),
                "githubRepo": st.one_of(st.none(), texts.map(lambda t: "https://" + t)),
            }
        ),
        "numComments": st.one_of(st.none(), st.integers(), texts),
        "organization": st.one_of(st.none(), st.fixed_dictionaries({"fullname": texts})),
        "thumbnail": st.one_of(st.none(), texts.map(lambda t: "http://" + t)),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(page=st.lists(items, max_size=4))
def test_whatever_a_parser_accepts_the_database_stores(page):
    """What a parser returns always fits the columns: no NUL, no overflowing count, no
    unconvertible date, no over-long id or URL."""
    try:
        parsed = parsers.parse_hf_api(json.dumps(page).encode())
    except parsers.ParseError:
        return
    savepoint = transaction.savepoint()
    try:
        services.papers_upsert(items=parsed.papers)
    finally:
        transaction.savepoint_rollback(savepoint)
