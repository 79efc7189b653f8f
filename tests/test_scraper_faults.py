"""The faults of the real world, served by a real HTTP server on loopback: each one ends in a
recorded, readable error (or a recovery), with no paper lost or stored twice."""

import gzip
import itertools
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from scraper import client, services
from scraper.models import Paper, ScrapeRun, Source
from tests.factories import make_source
from tests.fault_server import FaultServer, Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_scraper")]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scraper"
DAY = (FIXTURES / "hf_api_day.json").read_bytes()
JSON = "application/json; charset=utf-8"


def good(**extra) -> Reply:
    return Reply(**{"body": DAY, "content_type": JSON, **extra})


def api_source(url: str) -> Source:
    return make_source(url=url, kind=Source.Kind.HF_API)


def stored() -> dict[str, tuple]:
    return {p.paper_id: (p.title, p.upvotes, p.abstract) for p in Paper.objects.all()}


def scrape(url: str, source: Source | None = None) -> ScrapeRun:
    run = services.scrape_url(url=url, source=source)
    run.refresh_from_db()
    return run


def assert_recovers(server: FaultServer, path: str):
    """After the fault, a healthy answer stores each paper exactly once."""
    server.script(path, good())
    run = scrape(server.url(path))
    assert (run.status, run.new) == ("ok", 2 - len(stored()) + run.new)
    assert sorted(stored()) == ["2611.00001", "2611.00002"]


class TestRetries:
    def test_it_waits_out_a_429_with_retry_after_then_stores_the_page(self, server):
        url = server.script(
            "/day", Reply(status=429, headers={"Retry-After": "1"}, body=b"slow down"), good()
        )
        run = scrape(url)
        assert (run.status, run.fetched, run.new, run.http_status) == ("ok", 2, 2, 200)
        first, second = server.hits("/day")
        assert second.at - first.at >= 1.0

    def test_a_retry_after_longer_than_we_wait_is_a_readable_failure(self, server):
        source = api_source(
            server.script("/day", Reply(status=429, headers={"Retry-After": "3600"}), good())
        )
        run = scrape(source.url, source)
        assert run.status == "failed" and run.http_status == 429
        assert "HTTP 429 Too Many Requests" in run.error
        assert "come back in 3600 s" in run.error and "SCRAPER_RETRY_AFTER_MAX_SECONDS" in run.error
        assert len(server.hits("/day")) == 1
        source.refresh_from_db()
        assert source.next_run_at >= timezone.now() + timedelta(minutes=59)
        assert stored() == {}

    def test_a_500_then_a_200_is_retried(self, server):
        url = server.script("/day", Reply(status=500, body=b"oops"), good())
        run = scrape(url)
        assert (run.status, run.new) == ("ok", 2)
        assert len(server.hits("/day")) == 2

    def test_a_500_every_time_fails_after_the_retries_and_keeps_the_papers(self, server):
        assert_recovers(server, "/day")
        before = stored()
        url = server.script("/day", Reply(status=500, body=b"oops"))
        run = scrape(url)
        assert run.status == "failed" and run.http_status == 500
        assert run.error == (
            f"HTTP 500 Internal Server Error from {url} (gave up after 3 attempts)"
        )
        assert len(server.hits("/day")) == 1 + 3
        assert stored() == before

    def test_a_404_is_permanent_and_not_retried(self, server):
        run = scrape(server.url("/missing"))
        assert run.status == "failed" and run.http_status == 404
        assert run.error == f"HTTP 404 Not Found from {server.url('/missing')}"
        assert len(server.hits("/missing")) == 1

    def test_a_closed_port_is_a_clear_connection_error(self, settings):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        run = scrape(f"http://127.0.0.1:{port}/papers")
        assert run.status == "failed" and run.http_status is None
        assert run.error.startswith("could not connect to 127.0.0.1")
        assert run.error.endswith("(gave up after 3 attempts)")

    def test_no_network_says_so(self, monkeypatch):
        def no_dns(*args, **kwargs):
            raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

        monkeypatch.setattr(client.shared_client(), "stream", no_dns)
        run = scrape("https://huggingface.co/papers")
        assert run.status == "failed"
        assert run.error == (
            "could not connect to huggingface.co: [Errno -3] Temporary failure in name "
            "resolution (the name does not resolve: is the network up?) (gave up after 3 attempts)"
        )

    def test_backoff_grows_with_jitter_and_honours_retry_after(self, settings):
        settings.SCRAPER_BACKOFF_SECONDS = 1
        settings.SCRAPER_BACKOFF_MAX_SECONDS = 10
        assert 0.5 <= client.backoff_delay(0) <= 1
        assert 4 <= client.backoff_delay(3) <= 8
        assert 5 <= client.backoff_delay(6) <= 10
        assert client.backoff_delay(0, retry_after=7) == 7


class TestSlowAndBrokenBodies:
    def test_a_read_slower_than_the_timeout_is_retried(self, server):
        url = server.script("/day", good(body_delay=1.0), good())
        run = scrape(url)
        assert (run.status, run.new) == ("ok", 2)

    def test_a_read_always_slower_than_the_timeout_fails_readably(self, server, settings):
        settings.SCRAPER_RETRIES = 0
        url = server.script("/day", good(body_delay=1.0))
        run = scrape(url)
        assert run.status == "failed"
        assert run.error == (
            f"timed out reading {url}: nothing for 0.4 s (SCRAPER_READ_TIMEOUT) "
            "(gave up after 1 attempt)"
        )
        assert stored() == {}

    def test_a_truncated_body_stores_nothing_and_loses_nothing(self, server):
        assert_recovers(server, "/day")
        before = stored()
        url = server.script("/day", good(truncate_to=200))
        run = scrape(url)
        assert run.status == "failed"
        assert run.error.startswith("connection to 127.0.0.1 broke off while reading")
        assert stored() == before
        assert_recovers(server, "/day")

    def test_a_garbage_body_is_an_unknown_format(self, server):
        url = server.script(
            "/day", Reply(body=b"\x00\xffGARBAGE\x13\x37", content_type="application/octet-stream")
        )
        run = scrape(url)
        assert run.status == "failed" and run.http_status == 200
        assert run.error.startswith("parse error: unknown format")
        assert "'application/octet-stream'" in run.error and "\n" not in run.error
        assert_recovers(server, "/day")

    def test_garbage_under_a_json_content_type_is_a_parse_error(self, server):
        url = server.script("/day", Reply(body=b"{ this is not json", content_type=JSON))
        run = scrape(url)
        assert run.status == "failed" and run.error.startswith("parse error: not JSON")

    def test_a_huge_declared_body_is_refused_before_reading(self, server):
        url = server.script("/day", Reply(body=b"[" + b" " * 300_000 + b"]", content_type=JSON))
        run = scrape(url)
        assert run.status == "failed"
        assert run.error == (
            f"body of {url} is 300,002 bytes, over the 200,000-byte limit (SCRAPER_MAX_BYTES)"
        )

    def test_a_huge_streamed_body_is_cut_off_at_the_limit(self, server):
        url = server.script("/day", Reply(body=b"[", content_type=JSON, stream_bytes=5_000_000))
        run = scrape(url)
        assert run.status == "failed"
        assert run.error == f"body of {url} is over the 200,000-byte limit (SCRAPER_MAX_BYTES)"
        assert len(server.hits("/day")) == 1, "a permanent error is not retried"

    def test_a_compressed_bomb_is_measured_decompressed(self, server):
        bomb = b"[" + b" " * 3_000_000 + b"]"
        url = server.script("/day", Reply(body=bomb, content_type=JSON, gzip=True))
        assert len(gzip.compress(bomb)) < 200_000
        run = scrape(url)
        assert run.status == "failed" and "over the 200,000-byte limit" in run.error

    def test_gzip_is_asked_for_and_decoded(self, server):
        url = server.script("/day", good(gzip=True))
        run = scrape(url)
        assert (run.status, run.new) == ("ok", 2)
        assert "gzip" in server.hits("/day")[0].headers["Accept-Encoding"]


class TestContentTypes:
    def test_json_served_as_html_is_still_read(self, server):
        url = server.script("/day", good(content_type="text/html"))
        run = scrape(url)
        assert (run.status, run.kind, run.new) == ("ok", "hf_api", 2)

    def test_an_image_is_an_unknown_format(self, server):
        url = server.script(
            "/img", Reply(body=b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", content_type="image/png")
        )
        run = scrape(url)
        assert run.status == "failed"
        assert run.error.startswith(
            "parse error: unknown format: a body of content type 'image/png'"
        )

    def test_an_html_page_that_is_no_paper_page_is_an_unknown_format(self, server):
        url = server.script("/blog", Reply(body=b"<!doctype html><html><body>Hi</body></html>"))
        run = scrape(url)
        assert run.status == "failed"
        assert "unknown format: an HTML page of content type 'text/html'" in run.error


class TestRedirects:
    def test_a_redirect_is_followed(self, server):
        server.script("/new", good())
        url = server.script("/old", Reply(status=301, headers={"Location": "/new"}))
        run = scrape(url)
        assert (run.status, run.new, run.url) == ("ok", 2, url)

    def test_a_redirect_loop_is_named_hop_by_hop(self, server):
        server.script("/b", Reply(status=302, headers={"Location": "/a"}))
        url = server.script("/a", Reply(status=302, headers={"Location": "/b"}))
        run = scrape(url)
        assert run.status == "failed"
        assert run.error == f"redirect loop: {url} → {server.url('/b')} → {url}"

    def test_too_many_redirects_stop_at_the_limit(self, server, settings):
        settings.SCRAPER_MAX_REDIRECTS = 3
        for i in range(6):
            server.script(f"/r{i}", Reply(status=307, headers={"Location": f"/r{i + 1}"}))
        run = scrape(server.url("/r0"))
        assert run.status == "failed"
        assert "too many redirects" in run.error and "more than 3" in run.error
        assert len(server.hits("/r3")) == 1 and not server.hits("/r4")


class TestConditionalGet:
    def test_a_304_does_no_work(self, server):
        source = api_source(
            server.script(
                "/day",
                good(headers={"ETag": '"v1"', "Last-Modified": "Tue, 03 Nov 2026 10:00:00 GMT"}),
                Reply(status=304, body=b"", content_type=""),
            )
        )
        first = scrape(source.url, source)
        assert (first.status, first.new) == ("ok", 2)
        Paper.objects.update(upvotes=999)  # were the page parsed again, this would change
        second = scrape(source.url, source)
        assert (second.status, second.fetched, second.new, second.updated) == (
            "not_modified",
            0,
            0,
            0,
        )
        assert second.http_status == 304
        request = server.hits("/day")[1]
        assert request.headers["If-None-Match"] == '"v1"'
        assert request.headers["If-Modified-Since"] == "Tue, 03 Nov 2026 10:00:00 GMT"
        assert set(Paper.objects.values_list("upvotes", flat=True)) == {999}
        source.refresh_from_db()
        assert (source.etag, source.last_status, source.consecutive_failures) == (
            '"v1"',
            "not_modified",
            0,
        )

    def test_a_failed_parse_keeps_the_old_validators(self, server):
        source = api_source(
            server.script(
                "/day",
                good(headers={"ETag": '"v1"'}),
                Reply(body=b"{broken", content_type=JSON, headers={"ETag": '"v2"'}),
            )
        )
        scrape(source.url, source)
        run = scrape(source.url, source)
        assert run.status == "failed"
        source.refresh_from_db()
        assert source.etag == '"v1"', "the broken page must be fetched whole next time"


class TestPoliteness:
    def test_it_names_itself_with_a_contact_url(self, server):
        scrape(server.script("/day", good()))
        agent = server.hits("/day")[0].headers["User-Agent"]
        assert agent == "Paperboy/0.1 (+https://paperboy.example.org/about)"

    def test_robots_txt_is_asked_once_and_obeyed(self, server):
        server.script(
            "/robots.txt",
            Reply(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"),
        )
        server.script("/private/day", good())
        run = scrape(server.url("/private/day"))
        assert run.status == "failed"
        assert run.error == (
            f"robots.txt of {server.url('')} disallows {server.url('/private/day')} for Paperboy"
        )
        assert not server.hits("/private/day")
        assert scrape(server.script("/day", good())).status == "ok"
        assert len(server.hits("/robots.txt")) == 1, "robots.txt is cached"

    def test_a_robots_txt_that_errs_keeps_us_off_for_now(self, server):
        server.script("/robots.txt", Reply(status=503, body=b"down"))
        run = scrape(server.script("/day", good()))
        assert run.status == "failed"
        assert run.error.startswith(f"robots.txt of {server.url('')} could not be read (HTTP 503")
        assert not server.hits("/day")

    def test_robots_can_be_turned_off(self, server, settings):
        settings.SCRAPER_RESPECT_ROBOTS = False
        server.script("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /\n"))
        assert scrape(server.script("/day", good())).status == "ok"
        assert not server.hits("/robots.txt")

    def test_requests_to_one_host_are_spaced(self, server, settings):
        settings.SCRAPER_HOST_DELAY_SECONDS = 0.3
        url = server.script("/day", good())
        for _ in range(3):
            assert scrape(url).status == "ok"
        times = [hit.at for hit in server.requests]
        assert len(times) == 4  # robots.txt, then the page three times
        assert all(b - a >= 0.29 for a, b in itertools.pairwise(times)), [
            round(b - a, 3) for a, b in itertools.pairwise(times)
        ]

    def test_documented_apis_follow_their_own_terms_not_robots_txt(self, server, settings):
        settings.SCRAPER_ROBOTS_EXEMPT = [server.url("/api/")]
        server.script("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /api\n"))
        assert scrape(server.script("/api/daily_papers", good())).status == "ok"
        assert scrape(server.script("/apis", good())).status == "failed"

    def test_a_crawl_delay_in_robots_txt_wins_over_a_shorter_setting(self, server, settings):
        server.script("/robots.txt", Reply(body=b"User-agent: *\nCrawl-delay: 2\n"))
        scrape(server.script("/day", good()))
        assert client.host_delay("127.0.0.1") == 2

    def test_host_delays_cover_subdomains(self, settings):
        settings.SCRAPER_HOST_DELAYS = {"arxiv.org": 3.0}
        settings.SCRAPER_HOST_DELAY_SECONDS = 1.0
        assert client.host_delay("export.arxiv.org") == 3.0
        assert client.host_delay("arxiv.org") == 3.0
        assert client.host_delay("notarxiv.org") == 1.0
        assert client.host_delay("huggingface.co") == 1.0
