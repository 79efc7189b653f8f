"""The operator's commands: `scrape` (URLs, every source, --since backfill) and `sources`."""

import itertools
import socket
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scraper.models import Backfill, Paper, ScrapeRun, Source
from tests.fault_server import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_scraper")]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scraper"
DAY_PAGE = (FIXTURES / "hf_page_day.html").read_bytes()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/papers"


class TestScrape:
    def test_it_reports_each_url_in_one_line(self, server, capsys):
        url = server.script("/papers", Reply(body=DAY_PAGE))
        call_command("scrape", url)
        assert capsys.readouterr().out == f"{url}: fetched 2, new 2, updated 0\n"

    def test_a_degraded_page_says_so(self, server, capsys):
        url = server.script(
            "/papers", Reply(body=(FIXTURES / "hf_page_cards_only.html").read_bytes())
        )
        call_command("scrape", url)
        assert capsys.readouterr().out == (
            f"{url}: fetched 2, new 2, updated 0 (ok, parsed degraded)\n"
        )

    def test_any_failed_url_fails_the_command_after_doing_the_others(self, server, capsys):
        good = server.script("/papers", Reply(body=DAY_PAGE))
        offline = closed_port_url()
        with pytest.raises(CommandError, match="1 of 2 failed") as caught:
            call_command("scrape", offline, good)
        assert caught.value.returncode == 1
        out, err = capsys.readouterr()
        assert f"{good}: fetched 2, new 2, updated 0" in out
        assert err.startswith(f"{offline}: error: could not connect to 127.0.0.1")
        assert Paper.objects.count() == 2

    def test_an_unknown_format_is_one_clear_line(self, server, capsys):
        url = server.script("/x", Reply(body=b"hello", content_type="text/plain"))
        with pytest.raises(CommandError):
            call_command("scrape", url)
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"{url}: error: parse error: unknown format: a body of content")

    def test_without_urls_it_scrapes_every_enabled_source(self, server, capsys):
        url = server.script("/papers", Reply(body=DAY_PAGE))
        call_command("sources", "add", url, "--kind", "hf_page", "--name", "HF")
        call_command("sources", "add", server.url("/off"), "--disabled")
        capsys.readouterr()
        call_command("scrape")
        assert capsys.readouterr().out == f"{url}: fetched 2, new 2, updated 0\n"
        assert list(Source.objects.get(name="HF").papers.order_by("paper_id")) == list(
            Paper.objects.order_by("paper_id")
        )

    def test_without_urls_or_sources_it_says_what_to_do(self, capsys):
        call_command("scrape")
        assert "No enabled sources" in capsys.readouterr().out


class TestBackfill:
    @pytest.fixture
    def hf(self, server, settings):
        settings.SCRAPER_HF_BASE_URL = server.url("").rstrip("/")
        for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
            server.script(f"/papers/date/{day}", Reply(body=DAY_PAGE))
        return server

    def test_it_walks_the_days_with_a_progress_bar(self, hf, capsys):
        call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-03")
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("[########................] 1/3 ")
        assert lines[0].endswith("/papers/date/2026-11-01: fetched 2, new 2, updated 0")
        assert lines[2].startswith("[########################] 3/3 ")
        assert lines[2].endswith("/papers/date/2026-11-03: fetched 2, new 0, updated 0")
        assert lines[3] == "Backfill 2026-11-01 → 2026-11-03 done: 2 new papers."
        assert [h.path for h in hf.requests if h.path != "/robots.txt"] == [
            "/papers/date/2026-11-01",
            "/papers/date/2026-11-02",
            "/papers/date/2026-11-03",
        ]
        source = Source.objects.get(url=hf.url("/papers"))
        assert source.papers.count() == 2 == Paper.objects.count()
        assert ScrapeRun.objects.filter(source=source).count() == 3

    def test_it_stops_at_a_failed_day_and_resumes_there(self, hf, capsys):
        down = [Reply(status=503)] * 3  # the first attempt and both retries
        hf.script("/papers/date/2026-11-02", *down, Reply(body=DAY_PAGE))
        with pytest.raises(CommandError, match="backfill stopped at 2026-11-02") as caught:
            call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-03")
        assert caught.value.returncode == 1
        assert "2026-11-02: error: HTTP 503 Service Unavailable" in capsys.readouterr().err
        assert Backfill.objects.get().next_date.isoformat() == "2026-11-02"
        hf.requests.clear()
        call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-03")
        out = capsys.readouterr().out
        assert out.startswith("Resuming the backfill at 2026-11-02 (--restart to redo).\n")
        assert [h.path for h in hf.requests] == [
            "/papers/date/2026-11-02",
            "/papers/date/2026-11-03",
        ]
        assert Backfill.objects.get().finished_at is not None

    def test_a_day_that_does_not_exist_is_recorded_and_passed(self, hf, capsys):
        hf.script("/papers/date/2026-11-02", Reply(status=404))
        with pytest.raises(CommandError, match=r"1 day\(s\) could not be fetched"):
            call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-03")
        out, err = capsys.readouterr()
        assert "2026-11-02: error: HTTP 404 Not Found" in err
        assert "/papers/date/2026-11-03: fetched 2" in out
        assert Backfill.objects.get().finished_at is not None
        assert len(hf.hits("/papers/date/2026-11-02")) == 1, "a 404 is not retried"

    def test_restart_walks_again_from_the_start(self, hf, capsys):
        call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-02")
        hf.requests.clear()
        call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-02", "--restart")
        assert [h.path for h in hf.requests] == [
            "/papers/date/2026-11-01",
            "/papers/date/2026-11-02",
        ]

    def test_days_are_fetched_politely(self, hf, settings):
        settings.SCRAPER_HOST_DELAY_SECONDS = 0.2
        call_command("scrape", "--since", "2026-11-01", "--until", "2026-11-03")
        times = [h.at for h in hf.requests]
        assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--since", "yesterday"], r"not a date \(YYYY-MM-DD\): 'yesterday'"),
            (["--since", "2026-11-03", "--until", "2026-11-01"], "is after --until"),
            (["--since", "2026-11-01", "http://x.example"], "either URLs or --since"),
            (["--restart"], "go with --since"),
        ],
    )
    def test_bad_arguments_are_refused(self, args, message):
        with pytest.raises(CommandError, match=message):
            call_command("scrape", *args)


class TestSources:
    def test_add_guesses_the_kind_from_the_url(self, capsys):
        for url in [
            "https://huggingface.co/papers",
            "https://huggingface.co/api/daily_papers",
            "http://export.arxiv.org/api/query?search_query=cat:cs.LG&sortBy=submittedDate",
            "https://rss.arxiv.org/rss/cs.LG",
            "https://lab.example.org/feed.xml",
        ]:
            call_command("sources", "add", url)
        kinds = list(Source.objects.order_by("pk").values_list("kind", flat=True))
        assert kinds == ["hf_page", "hf_api", "arxiv_api", "arxiv_rss", "feed"]
        first = capsys.readouterr().out.splitlines()[0]
        assert first.endswith(
            "huggingface.co/papers (hf_page, every 60 min) https://huggingface.co/papers"
        )

    def test_add_refuses_what_cannot_work(self):
        call_command("sources", "add", "https://huggingface.co/papers")
        with pytest.raises(CommandError, match="exists already"):
            call_command("sources", "add", "https://huggingface.co/papers")
        with pytest.raises(CommandError, match="not an absolute http"):
            call_command("sources", "add", "ftp://example.org/feed")
        with pytest.raises(CommandError, match="at least 5 minutes"):
            call_command("sources", "add", "https://example.org/f", "--interval", "1")

    def test_list_shows_health_and_disable_enable_work(self, capsys):
        call_command("sources", "add", "https://huggingface.co/papers", "--name", "HF")
        call_command("sources", "add", "https://example.org/feed", "--name", "Blog")
        Source.objects.filter(name="Blog").update(
            consecutive_failures=4, last_error="HTTP 500 from x", last_run_at="2026-11-03T10:00Z"
        )
        call_command("sources", "disable", "https://huggingface.co/papers")
        capsys.readouterr()
        call_command("sources", "list")
        out = capsys.readouterr().out
        assert "disabled" in out.splitlines()[0]
        assert "UNHEALTHY: 4 failures in a row" in out and "last error: HTTP 500 from x" in out
        hf = Source.objects.get(name="HF")
        call_command("sources", "enable", str(hf.pk))
        assert Source.objects.get(name="HF").enabled
        with pytest.raises(CommandError, match="no source with id or URL '999'"):
            call_command("sources", "disable", "999")


def test_load_sample_still_loads_the_bundled_papers(capsys):
    call_command("load_sample")
    assert "sample:" in capsys.readouterr().out
    assert Paper.objects.exists()
    assert Source.objects.get(url="https://huggingface.co/papers").papers.exists()
