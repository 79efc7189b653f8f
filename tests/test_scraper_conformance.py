"""Every parser against the real recorded pages in ../shared/fixtures (the ground truth, read
where they lie, never copied). Runs whenever that folder is beside the clone, as in CI."""

# ruff: noqa: RUF001  (the real text has typographic quotes and full-width commas)

import re
from datetime import UTC, datetime

import pytest

from scraper import parsers, services
from scraper.models import Paper, ScrapeRun
from tests.conftest import SHARED_FIXTURES
from tests.factories import make_source
from tests.fault_server import fast_scraper_settings

pytestmark = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(), reason="../shared/fixtures is not beside this clone"
)


@pytest.fixture(autouse=True)
def _fast(settings):
    fast_scraper_settings(settings)
    settings.SCRAPER_MAX_BYTES = 2_000_000


def parse(name: str) -> parsers.ParsedPage:
    body = (SHARED_FIXTURES / name).read_bytes()
    return parsers.parse(parsers.detect_format("", body), body)


def paper(name: str, paper_id: str) -> parsers.PaperData:
    return {p.paper_id: p for p in parse(name).papers}[paper_id]


def arxiv(paper_id: str) -> dict:
    return {
        "arxiv_url": f"https://arxiv.org/abs/{paper_id}",
        "pdf_url": f"https://arxiv.org/pdf/{paper_id}",
    }


def hf(paper_id: str) -> dict:
    return {
        "hf_url": f"https://huggingface.co/papers/{paper_id}",
        "thumbnail_url": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper_id}.png",
        **arxiv(paper_id),
    }


def assert_fields(found: parsers.PaperData, **expected):
    assert {k: getattr(found, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("name", "kind", "count"),
    [
        ("hf_daily_papers_sotawhat_2026-06-12.json", "hf_api", 30),
        ("hf_daily_papers_allnewsai_2026-07-31.json", "hf_api", 5),
        ("hf_daily_papers_newsassistant_2026-08-03.json", "hf_api", 3),
        ("hf_papers_page_2024-08-01.html", "hf_page", 13),
        ("hf_papers_page_2026-09-28.html", "hf_page", 28),
        ("hf_paper_detail_page_2509.24002_prettified.html", "hf_page", 1),
        ("arxiv_api_oldformat_au_del_maestro_2016-10-09.xml", "arxiv_api", 10),
        ("arxiv_api_newformat_transformer_cs.LG_2026-06-14.xml", "arxiv_api", 5),
        ("arxiv_rss_cs.LG_2026-04-27_trimmed3.xml", "arxiv_rss", 3),
        ("arxiv_rss_cs.CL_2026-08-01_weekend_empty.xml", "arxiv_rss", 0),
        ("feed_natasha_wordpress_rss2_entities.xml", "feed", 10),
        ("feed_macworld_rss2_entities_leading_newlines.xml", "feed", 30),
        ("feed_4fsodonline_blogger_atom.xml", "feed", 25),
        ("feed_biorxiv_plant_biology_rss1_rdf.xml", "feed", 30),
        ("feed_kc0011_gb2312_encoding.xml", "feed", 20),
    ],
)
def test_each_recorded_page_is_detected_and_read_whole(name, kind, count):
    body = (SHARED_FIXTURES / name).read_bytes()
    assert parsers.detect_format("", body) == kind
    page = parsers.parse(kind, body)
    assert len(page.papers) == count
    assert not page.degraded and page.notes == ""
    assert len({p.paper_id for p in page.papers}) == count
    for found in page.papers:
        assert found.title and found.title == found.title.strip()
        assert "  " not in found.title + found.abstract and "<" not in found.title


class TestHuggingFaceApi:
    def test_sotawhat_minimax_sparse_attention(self):
        found = paper("hf_daily_papers_sotawhat_2026-06-12.json", "2606.13392")
        assert_fields(
            found,
            title="MiniMax Sparse Attention",
            organization="MiniMax",
            published_at=datetime(2026, 6, 11, tzinfo=UTC),
            upvotes=103,
            num_comments=4,
            code_url="https://github.com/MiniMax-AI/MSA",
            project_url="",
            **hf("2606.13392"),
        )
        assert found.abstract.startswith("Ultra-long-context capability is becoming indispensable")
        assert found.abstract.endswith("released at: https://huggingface.co/MiniMaxAI/MiniMax-M3.")
        assert len(found.authors) == 11
        assert found.authors[:3] == ["Xunhao Lai", "Weiqi Xu", "Yufeng Yang"]
        assert found.authors[-1] == "Pengyu Zhao"

    def test_sotawhat_paper_with_no_upvotes_and_an_organisation(self):
        found = paper("hf_daily_papers_sotawhat_2026-06-12.json", "2606.00467")
        assert_fields(
            found,
            organization="California institute of technology",
            upvotes=0,
            num_comments=2,
            code_url="",
            authors=["Etienne Casanova", "Rafal Kocielnik", "R. Michael Alvarez"],
            published_at=datetime(2026, 5, 30, tzinfo=UTC),
        )
        assert "(partial r = +0.41)" in found.abstract

    def test_allnewsai_greek_title_and_user_authors(self):
        found = paper("hf_daily_papers_allnewsai_2026-07-31.json", "2607.27958")
        assert_fields(
            found,
            title="Σ-Mem: An Online Reliability Memory for LLM-based Multi-Agent Systems",
            organization="Nanyang Technological University",
            authors=["Peilin Feng", "Suorong Yang", "Soujanya Poria"],
            upvotes=11,
            num_comments=2,
            code_url="https://github.com/declare-lab/sigma-mem",
            **hf("2607.27958"),
        )
        first = paper("hf_daily_papers_allnewsai_2026-07-31.json", "2607.23193")
        assert first.authors[0] == "Jinsen Su"  # the name, not the user's handle

    def test_newsassistant_project_page_and_code(self):
        found = paper("hf_daily_papers_newsassistant_2026-08-03.json", "2607.26654")
        assert_fields(
            found,
            title="Constitutional Midtraining: Content Presence Drives Alignment Gains",
            organization="University of Oxford",
            upvotes=3,
            num_comments=1,
            code_url="https://github.com/desBugger/constitutional-mt",
            project_url="https://www.lesswrong.com/posts/n5htoDGvKKJFAjji2",
            published_at=datetime(2026, 7, 29, tzinfo=UTC),
            **hf("2607.26654"),
        )
        assert found.authors[0] == "Desiree Cho" and found.authors[-1] == "Nigel Shadbolt"


class TestHuggingFacePages:
    def test_2024_page_llama_3(self):
        found = paper("hf_papers_page_2024-08-01.html", "2407.21783")
        assert_fields(
            found,
            title="The Llama 3 Herd of Models",
            organization="",
            upvotes=94,
            num_comments=5,
            published_at=datetime(2024, 7, 31, 17, 54, 27, tzinfo=UTC),
            **hf("2407.21783"),
        )
        assert len(found.authors) == 533
        assert found.authors[:2] == ["Abhimanyu Dubey", "Abhinav Jauhri"]
        assert found.abstract.startswith("Modern artificial intelligence (AI) systems are powered")

    def test_2026_page_fusereg(self):
        found = paper("hf_papers_page_2026-09-28.html", "2609.31620")
        assert_fields(
            found,
            title="FuseReg: Regularizing Layer Fusion Mitigates the Reconstruction-Generation "
            "Gap in Representation Autoencoders",
            organization="USC Physical Superintelligence (PSI) Lab",
            upvotes=110,
            num_comments=2,
            code_url="https://github.com/Hongyang-Du/FuseReg",
            project_url="https://hongyang-du.github.io/FuseReg/",
            published_at=datetime(2026, 9, 25, tzinfo=UTC),
            **hf("2609.31620"),
        )
        assert len(found.authors) == 16
        assert (found.authors[0], found.authors[-1]) == ("Hongyang Du", "Yue Wang")

    def test_the_greek_delta_in_a_title_survives(self):
        found = paper("hf_papers_page_2026-09-28.html", "2609.31394")
        assert found.title.startswith("InternW0-Δ: A World Action Model")
        assert found.num_comments == 0

    def test_detail_page_mcpmark(self):
        found = paper("hf_paper_detail_page_2509.24002_prettified.html", "2509.24002")
        assert_fields(
            found,
            title="MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use",
            organization="National University of Singapore",
            upvotes=118,
            num_comments=2,
            code_url="https://github.com/eval-sys/mcpmark",
            project_url="https://mcpmark.ai/",
            published_at=datetime(2025, 9, 28, 17, 53, 27, tzinfo=UTC),
            hf_url="https://huggingface.co/papers/2509.24002",
            thumbnail_url="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/"
            "2509.24002/gradient.png",
            **arxiv("2509.24002"),
        )
        assert len(found.authors) == 15 and found.authors[-1] == "Michael Qizhe Shieh"
        assert "reaches only 52.56\\% pass@1 and 33.86\\% pass^4" in found.abstract

    @pytest.mark.parametrize(
        "name", ["hf_papers_page_2024-08-01.html", "hf_papers_page_2026-09-28.html"]
    )
    def test_without_hydration_the_real_cards_agree_with_the_json(self, name):
        body = (SHARED_FIXTURES / name).read_bytes()
        full = parsers.parse_hf_page(body).papers
        bare = re.sub(rb'(data-target="DailyPapers") data-props="[^"]*"', rb"\1", body)
        assert bare != body
        page = parsers.parse_hf_page(bare)
        assert page.degraded and "hydration JSON" in page.notes
        assert [p.paper_id for p in page.papers] == [p.paper_id for p in full]
        for card, whole in zip(page.papers, full, strict=True):
            assert (card.title, card.hf_url, card.arxiv_url) == (
                whole.title,
                whole.hf_url,
                whole.arxiv_url,
            )
            assert card.organization == whole.organization
            # A card may leave out what it doesn't show (a video instead of a thumbnail, no
            # comment link at zero); what it shows must be right.
            for field in ("upvotes", "num_comments", "thumbnail_url"):
                assert getattr(card, field) in (getattr(whole, field), None, "")
            assert (card.abstract, card.authors) == ("", [])


class TestArxiv:
    def test_new_format_api_mana(self):
        found = paper("arxiv_api_newformat_transformer_cs.LG_2026-06-14.xml", "2606.13677")
        assert_fields(
            found,
            title="Mana: Dexterous Manipulation of Articulated Tools",
            authors=["Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"],
            published_at=datetime(2026, 6, 11, 17, 59, 49, tzinfo=UTC),
            project_url="https://zhaohengyin.github.io/mana",
            code_url="",
            hf_url="",
            upvotes=None,
            num_comments=None,
            **arxiv("2606.13677"),
        )
        assert "(<1 minute per tool)" in found.abstract

    def test_old_format_api_old_style_id(self):
        found = paper("arxiv_api_oldformat_au_del_maestro_2016-10-09.xml", "cond-mat/0412498")
        assert_fields(
            found,
            title="Thermal melting of density waves on the square lattice",
            authors=["Adrian Del Maestro", "Subir Sachdev"],
            published_at=datetime(2004, 12, 19, 16, 18, 24, tzinfo=UTC),
            **arxiv("cond-mat/0412498"),
        )
        assert found.abstract.startswith("We present the theory of the effect of thermal")
        assert '"p x p" density wave ordering' in found.abstract and "(p >= 3, integer)" in (
            found.abstract
        )

    def test_old_format_api_versioned_new_style_id(self):
        ids = [
            p.paper_id for p in parse("arxiv_api_oldformat_au_del_maestro_2016-10-09.xml").papers
        ]
        assert "1303.6954" in ids and "cond-mat/0607501" in ids
        assert not any(re.search(r"v\d+$", i) for i in ids)

    def test_rss_listing(self):
        found = paper("arxiv_rss_cs.LG_2026-04-27_trimmed3.xml", "2604.21952")
        assert_fields(
            found,
            title="Focus Session: Hardware and Software Techniques for Accelerating Multimodal "
            "Foundation Models",
            authors=[
                "Muhammad Shafique",
                "Abdul Basit",
                "Muhammad Abdullah Hanif",
                "Alberto Marchisio",
                "Rachmad Vidya Wicaksana Putra",
                "Minghao Shao",
            ],
            published_at=datetime(2026, 4, 27, 4, 0, tzinfo=UTC),
            **arxiv("2604.21952"),
        )
        assert found.abstract.startswith("This work presents a multi-layered methodology")
        assert "visual resolution & stride" in found.abstract
        assert "Announce Type" not in found.abstract


class TestFeeds:
    def test_wordpress_rss2_entities(self):
        found = paper(
            "feed_natasha_wordpress_rss2_entities.xml", "https://www.natashatherobot.com/?p=6578"
        )
        assert_fields(
            found,
            title="Swift: Why You Shouldn’t Use Default Implementations in Protocols",
            abstract="Why I decided against a nice refactor...",
            authors=["Natasha Murashev"],
            published_at=datetime(2017, 3, 24, 13, 19, 34, tzinfo=UTC),
            project_url="https://www.natashatherobot.com/swift-use-default-implementations-protocols/",
            arxiv_url="",
        )

    def test_macworld_leading_newlines_duplicate_authors_and_enclosure(self):
        link = "https://www.techhive.com/article/3212828/connected-home/best-smart-lock.html#tk.rss_all"
        found = paper("feed_macworld_rss2_entities_leading_newlines.xml", link)
        assert_fields(
            found,
            title="Best smart lock",
            abstract="Keys are yesterday’s tech, your smart home needs a smart lock.",
            authors=["Christopher Null"],
            published_at=datetime(2017, 11, 28, 23, 40, tzinfo=UTC),
            project_url=link,
            thumbnail_url="https://images.idgesg.net/images/article/2017/08/"
            "best-smart-locks-100730768-medium.jpg",
        )

    def test_blogger_atom(self):
        found = paper(
            "feed_4fsodonline_blogger_atom.xml",
            "tag:blogger.com,1999:blog-3905741845175603023.post-425541125763448592",
        )
        assert_fields(
            found,
            title="4FSOD Documentary: Bloopers and Stuff",
            abstract="Even the 4 Fighting Serpents of Death don't always get it right on the "
            "first take!",
            authors=["Anthony"],
            published_at=datetime(2007, 12, 15, 7, 15, tzinfo=UTC),
            project_url="http://4fsodonline.blogspot.com/2007/12/4fsod-documentary-bloopers-and-stuff.html",
        )

    def test_biorxiv_rss1_rdf(self):
        found = paper(
            "feed_biorxiv_plant_biology_rss1_rdf.xml",
            "http://biorxiv.org/cgi/content/short/743294v1?rss=1",
        )
        assert found.title.startswith("Wheat inositol pyrophosphate kinase (TaVIH2-3B)")
        assert len(found.authors) == 13
        assert found.authors[:2] == ["Kaur, M.", "Shukla, A."]
        assert found.authors[-1] == "Pandey, A. K."
        assert found.published_at == datetime(2019, 8, 27, tzinfo=UTC)
        assert found.abstract.startswith("Inositol pyrophosphates (PPx-InsPs) are of key interest")

    def test_gb2312_forum(self):
        link = "http://www.kc0011.net/dispbbs.asp?BoardID=10&ID=25164257&Page=1"
        found = paper("feed_kc0011_gb2312_encoding.xml", link)
        assert_fields(
            found,
            title="建国35周年纪念，华表，和平鸽",
            authors=["大鱼儿"],
            published_at=datetime(2020, 1, 10, 14, 33, tzinfo=UTC),
            project_url=link,
        )
        assert found.abstract.startswith("建国35周年纪念，华表，和平鸽 35周年1套520")


@pytest.mark.django_db
class TestThroughHttp:
    """The recorded pages served over real HTTP into the database."""

    def test_hugging_face_and_arxiv_agree_on_one_paper(self, shared_fixture_server):
        hf_source = make_source("HF", shared_fixture_server.url("hf_papers_page_2026-09-28.html"))
        run = services.scrape_url(url=hf_source.url, source=hf_source)
        assert (run.status, run.fetched, run.new, run.kind) == ("ok", 28, 28, "hf_page")
        run = services.scrape_url(
            url=shared_fixture_server.url("hf_daily_papers_sotawhat_2026-06-12.json")
        )
        assert (run.status, run.fetched, run.new) == ("ok", 30, 30)
        run = services.scrape_url(
            url=shared_fixture_server.url("arxiv_api_newformat_transformer_cs.LG_2026-06-14.xml")
        )
        assert (run.status, run.fetched, run.kind) == ("ok", 5, "arxiv_api")
        assert Paper.objects.count() == 28 + 30 + run.new
        stored = Paper.objects.get(paper_id="2609.31620")
        assert stored.upvotes == 110 and list(stored.sources.all()) == [hf_source]

    def test_every_recorded_page_scrapes_into_runs(self, shared_fixture_server):
        names = sorted(p.name for p in SHARED_FIXTURES.iterdir() if p.suffix != ".md")
        for name in names:
            run = services.scrape_url(url=shared_fixture_server.url(name))
            assert run.status == ScrapeRun.Status.OK, (name, run.error)
        assert ScrapeRun.objects.filter(status="ok").count() == len(names)
