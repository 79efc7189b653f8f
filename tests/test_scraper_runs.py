"""Storing papers, recording runs, health, the overlap lock and beat's sweep."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import DataError
from django.utils import timezone

from scraper import parsers, services, tasks
from scraper.models import Paper, ScrapeRun, Source
from scraper.parsers import PaperData
from tests.factories import make_source
from tests.fault_server import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_scraper")]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scraper"
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def fixture_page(name: str) -> list[PaperData]:
    body = (FIXTURES / name).read_bytes()
    return parsers.parse(parsers.detect_format("", body), body).papers


class TestPapersUpsert:
    def test_the_same_arxiv_paper_from_hugging_face_and_arxiv_is_one_paper(self):
        hf = make_source("HF", kind=Source.Kind.HF_API)
        arxiv = make_source("arXiv", kind=Source.Kind.ARXIV_API)
        assert services.papers_upsert(items=fixture_page("arxiv_api.xml"), source=arxiv) == (2, 0)
        new, updated = services.papers_upsert(items=fixture_page("hf_api_day.json"), source=hf)
        assert (new, updated) == (1, 1)
        paper = Paper.objects.get(paper_id="2611.00001")
        assert set(paper.sources.all()) == {hf, arxiv}
        assert paper.upvotes == 42 and paper.num_comments == 3
        assert paper.hf_url == "https://huggingface.co/papers/2611.00001"
        assert paper.arxiv_url == "https://arxiv.org/abs/2611.00001"
        assert paper.authors == ["Ada Lovelace", "Grace Hopper", "Kurt Gödel"]
        assert Paper.objects.count() == 3

    def test_a_source_that_knows_less_overwrites_nothing(self):
        services.papers_upsert(items=fixture_page("hf_api_day.json"))
        services.papers_upsert(items=fixture_page("arxiv_rss.xml"))
        paper = Paper.objects.get(paper_id="2611.00001")
        assert paper.upvotes == 42, "arXiv has no upvotes and must not reset them"
        assert paper.organization == "Example Lab"
        assert paper.thumbnail_url.endswith("2611.00001.png")
        assert paper.code_url == "https://github.com/example/sparse"

    def test_upvotes_and_comments_follow_every_rescrape_and_first_seen_stays(self):
        with time_machine.travel(NOW):
            services.papers_upsert(items=fixture_page("hf_api_day.json"))
        later = fixture_page("hf_api_day.json")
        later[0].upvotes, later[0].num_comments = 50, 7
        with time_machine.travel(NOW + timedelta(hours=5)):
            assert services.papers_upsert(items=later) == (0, 1)
        paper = Paper.objects.get(paper_id="2611.00001")
        assert (paper.upvotes, paper.num_comments) == (50, 7)
        assert paper.first_seen_at == NOW

    def test_an_unchanged_rescrape_updates_nothing(self):
        services.papers_upsert(items=fixture_page("hf_api_day.json"))
        assert services.papers_upsert(items=fixture_page("hf_api_day.json")) == (0, 0)

    def test_control_characters_never_reach_the_database(self):
        body = (
            b'[{"paper": {"id": "2611.00009", "title": "Nul\\u0000 in \\u0007title",'
            b' "summary": "a\\u0000b", "authors": [{"name": "A\\u0000da"}]},'
            b' "thumbnail": "https://x.example/\\u0000.png"}]'
        )
        items = parsers.parse_hf_api(body).papers
        assert services.papers_upsert(items=items) == (1, 0)
        paper = Paper.objects.get()
        assert (paper.title, paper.abstract, paper.authors) == ("Nul in title", "ab", ["Ada"])
        assert paper.thumbnail_url == ""

    def test_a_paper_listed_twice_on_a_page_is_stored_once(self):
        items = fixture_page("hf_api_day.json")
        assert services.papers_upsert(items=items + items) == (2, 0)

    def test_a_paper_created_meanwhile_by_another_run_is_updated_not_doubled(self, monkeypatch):
        services.papers_upsert(items=fixture_page("hf_api_day.json")[:1])
        monkeypatch.setattr(Paper.objects, "in_bulk", lambda *a, **k: {})
        later = fixture_page("hf_api_day.json")[:1]
        later[0].upvotes = 77
        assert services.papers_upsert(items=later) == (0, 1)
        assert Paper.objects.get().upvotes == 77


class TestRuns:
    def test_every_run_is_recorded_with_its_counts(self, server):
        url = server.script("/day", Reply(body=(FIXTURES / "hf_api_day.json").read_bytes()))
        run = services.scrape_url(url=url)
        run.refresh_from_db()
        assert (run.status, run.kind, run.fetched, run.new, run.updated) == (
            "ok",
            "hf_api",
            2,
            2,
            0,
        )
        assert run.started_at <= run.finished_at and run.http_status == 200

    def test_a_degraded_page_says_so_in_its_run(self, server):
        url = server.script(
            "/papers", Reply(body=(FIXTURES / "hf_page_cards_only.html").read_bytes())
        )
        run = services.scrape_url(url=url)
        assert run.status == ScrapeRun.Status.DEGRADED
        assert run.get_status_display() == "ok, parsed degraded"
        assert "hydration JSON (DailyPapers data-props) is missing" in run.notes
        assert run.fetched == 2

    def test_a_failure_half_way_through_storing_stores_nothing(self, server, monkeypatch):
        url = server.script("/day", Reply(body=(FIXTURES / "hf_api_day.json").read_bytes()))
        real_create = Paper.objects.create
        calls = []

        def create_then_fail(**kwargs):
            calls.append(kwargs["paper_id"])
            if len(calls) == 2:
                raise DataError("value too long for type character varying(1000)")
            return real_create(**kwargs)

        monkeypatch.setattr(Paper.objects, "create", create_then_fail)
        run = services.scrape_url(url=url)
        assert run.status == "failed" and "value too long" in run.error
        assert Paper.objects.count() == 0, "the first paper of the page was rolled back"

    def test_a_bug_in_a_parser_fails_the_run_not_the_caller(self, server, monkeypatch):
        url = server.script("/day", Reply(body=b"[]", content_type="application/json"))

        def broken(body):
            raise KeyError("surprise")

        monkeypatch.setitem(parsers.PARSERS, "hf_api", broken)
        run = services.scrape_url(url=url)
        assert run.status == "failed" and run.error == "internal error: KeyError('surprise')"


class TestHealth:
    def test_consecutive_failures_make_a_source_unhealthy_and_a_success_heals_it(self, server):
        source = make_source(url=server.script("/day", Reply(status=404)), kind="hf_api")
        for expected in (1, 2):
            services.scrape_url(url=source.url, source=source)
            source.refresh_from_db()
            assert (source.consecutive_failures, source.healthy) == (expected, True)
        services.scrape_url(url=source.url, source=source)
        source.refresh_from_db()
        assert (source.consecutive_failures, source.healthy) == (3, False)
        assert source.last_status == "failed" and source.last_error.startswith("HTTP 404")
        server.script("/day", Reply(body=b"[]", content_type="application/json"))
        services.scrape_url(url=source.url, source=source)
        source.refresh_from_db()
        assert (source.consecutive_failures, source.healthy, source.last_error) == (0, True, "")

    def test_a_failing_source_is_retried_later_and_later(self, server):
        source = make_source(url=server.script("/day", Reply(status=404)), kind="hf_api")
        waits = []
        for _ in range(3):
            run = services.scrape_url(url=source.url, source=source)
            source.refresh_from_db()
            waits.append(source.next_run_at - run.started_at)
        assert waits == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=4)]

    def test_a_healthy_source_is_next_due_one_interval_after_its_start(self, server):
        source = make_source(url=server.script("/day", Reply(body=b"[]")), kind="hf_api")
        run = services.scrape_url(url=source.url, source=source)
        source.refresh_from_db()
        assert source.next_run_at == run.started_at + timedelta(minutes=60)


class TestSweepAndLock:
    def test_sources_due_are_enabled_due_and_not_running(self):
        never = make_source("never run")
        due = make_source("due")
        Source.objects.filter(pk=due.pk).update(next_run_at=NOW - timedelta(minutes=1))
        later = make_source("later")
        Source.objects.filter(pk=later.pk).update(next_run_at=NOW + timedelta(hours=1))
        running = make_source("running")
        Source.objects.filter(pk=running.pk).update(running_since=NOW - timedelta(minutes=3))
        stuck = make_source("stuck")
        Source.objects.filter(pk=stuck.pk).update(running_since=NOW - timedelta(hours=1))
        off = make_source("off")
        Source.objects.filter(pk=off.pk).update(enabled=False)
        names = {s.name for s in services.sources_due(now=NOW)}
        assert names == {"never run", "due", "stuck"}
        assert never.name in names

    def test_an_overlapping_run_is_skipped_and_recorded(self, server):
        source = make_source(url=server.script("/day", Reply(body=b"[]")), kind="hf_api")
        assert services.source_claim(source_id=source.pk)
        run = services.scrape_source(source_id=source.pk)
        assert run.status == ScrapeRun.Status.SKIPPED
        assert run.error.startswith("skipped: a run of this source is still going (since ")
        assert not server.hits("/day")
        source.refresh_from_db()
        assert source.consecutive_failures == 0 and source.last_run_at is None

    def test_the_lock_is_released_after_a_failed_run(self, server):
        source = make_source(url=server.script("/day", Reply(status=500)), kind="hf_api")
        assert services.scrape_source(source_id=source.pk).status == "failed"
        source.refresh_from_db()
        assert source.running_since is None
        assert services.source_claim(source_id=source.pk)

    def test_a_lock_left_by_a_dead_worker_goes_stale(self, settings):
        source = make_source()
        assert services.source_claim(source_id=source.pk, now=NOW)
        assert not services.source_claim(source_id=source.pk, now=NOW + timedelta(minutes=5))
        stale = NOW + timedelta(seconds=settings.SCRAPER_RUN_STALE_SECONDS + 1)
        assert services.source_claim(source_id=source.pk, now=stale)

    def test_a_run_left_running_by_a_dead_worker_is_closed_as_abandoned(self, server, settings):
        source = make_source(url=server.script("/day", Reply(body=b"[]")), kind="hf_api")
        dead = ScrapeRun.objects.create(source=source, url=source.url)
        long_ago = timezone.now() - timedelta(seconds=settings.SCRAPER_RUN_STALE_SECONDS + 60)
        ScrapeRun.objects.filter(pk=dead.pk).update(started_at=long_ago)
        Source.objects.filter(pk=source.pk).update(running_since=long_ago)
        assert services.scrape_source(source_id=source.pk).status == "ok"
        dead.refresh_from_db()
        assert dead.status == "failed" and dead.error.startswith("abandoned: the worker")

    def test_a_disabled_source_is_not_scraped(self):
        source = make_source()
        Source.objects.filter(pk=source.pk).update(enabled=False)
        assert services.scrape_source(source_id=source.pk) is None
        assert not ScrapeRun.objects.exists()

    def test_beats_sweep_scrapes_each_due_source_and_one_failure_stops_no_other(self, server):
        body = (FIXTURES / "hf_api_day.json").read_bytes()
        broken = make_source("broken", server.script("/broken", Reply(status=500)), "hf_api")
        garbled = make_source("garbled", server.script("/garbled", Reply(body=b"{")), "hf_api")
        good = make_source("good", server.script("/good", Reply(body=body)), "hf_api")
        tasks.scrape_due_sources.delay()
        runs = {r.source.name: r for r in ScrapeRun.objects.select_related("source")}
        assert {name: r.status for name, r in runs.items()} == {
            "broken": "failed",
            "garbled": "failed",
            "good": "ok",
        }
        assert runs["garbled"].error.startswith("parse error: not JSON")
        assert set(good.papers.values_list("paper_id", flat=True)) == {"2611.00001", "2611.00002"}
        assert not broken.papers.exists() and not garbled.papers.exists()
        tasks.scrape_due_sources.delay()
        assert ScrapeRun.objects.count() == 3, "nothing is due again before its interval"
        assert timezone.now() < Source.objects.get(pk=good.pk).next_run_at
