"""The scraper's admin: sources with health at a glance and "scrape now", papers, runs."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from scraper.models import Paper, ScrapeRun, Source
from tests.factories import make_paper, make_source
from tests.fault_server import FaultServer, Reply, fast_scraper_settings

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scraper"


@pytest.fixture(autouse=True)
def _fast(settings):
    fast_scraper_settings(settings)
    cache.clear()


@pytest.fixture
def admin_client():
    user = User.objects.create_superuser("admin", "admin@example.org", "pw-not-used")
    browser = Client()
    browser.force_login(user)
    return browser


def test_sources_show_health_at_a_glance(admin_client):
    make_source("Healthy HF")
    sick = make_source("Sick blog", kind=Source.Kind.FEED)
    Source.objects.filter(pk=sick.pk).update(consecutive_failures=3, last_status="failed")
    page = admin_client.get("/admin/scraper/source/").content.decode()
    assert "Healthy HF" in page and "Sick blog" in page
    assert page.count('alt="False"') == 1 and page.count('alt="True"') >= 1
    assert "Scrape now" in page


def test_scrape_now_queues_the_chosen_sources(admin_client, django_capture_on_commit_callbacks):
    with FaultServer() as server:
        body = (FIXTURES / "hf_api_day.json").read_bytes()
        source = make_source("HF", server.script("/day", Reply(body=body)), Source.Kind.HF_API)
        with django_capture_on_commit_callbacks(execute=True) as queued:
            response = admin_client.post(
                "/admin/scraper/source/",
                {"action": "scrape_now", "_selected_action": [source.pk]},
                follow=True,
            )
    assert len(queued) == 1, "queued after commit, not inside the request's transaction"
    assert "Queued 1 source(s) for scraping" in response.content.decode()
    run = ScrapeRun.objects.get()
    assert (run.source, run.status, run.new) == (source, "ok", 2)


def test_papers_are_found_by_title_id_and_author(admin_client):
    make_paper("Sparse Attention at Scale", paper_id="2611.00001", authors=["Ada Lovelace"])
    make_paper("Another Paper", paper_id="2611.00002", authors=["Łukasz Kaiser"])
    for term, expected in [
        ("sparse", "2611.00001"),
        ("2611.00002", "Another Paper"),
        ("lovelace", "Sparse Attention at Scale"),
        ("Łukasz", "Another Paper"),
    ]:
        page = admin_client.get("/admin/scraper/paper/", {"q": term}).content.decode()
        assert expected in page, term
    assert Paper.objects.count() == 2


def test_runs_list_their_errors(admin_client):
    ScrapeRun.objects.create(url="https://x.example/p", status="failed", error="HTTP 500 from x")
    page = admin_client.get("/admin/scraper/scraperun/").content.decode()
    assert "HTTP 500 from x" in page
    assert admin_client.get("/admin/scraper/backfill/").status_code == 200
