"""`manage.py preview_topic "QUERY" [--json] [--limit N] [--days N]`."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from digest.selectors import papers_matching_query
from tests.factories import make_paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def papers():
    now = timezone.now()
    return [
        make_paper(
            "Efficient Continual Pre-training by Mitigating the Stability Gap",
            "We study continual pre-training of LLMs.",
            paper_id="2406.14833",
            seen_at=now - timedelta(days=40),
        ),
        make_paper(
            "Continual pretraining for code models",
            "A study of LLMs for code.",
            paper_id="2611.00002",
            seen_at=now - timedelta(days=2),
        ),
        make_paper(
            "Video diffusion at scale",
            "Diffusion models for video.",
            paper_id="2611.00003",
            seen_at=now - timedelta(days=1),
        ),
    ]


def run(*args) -> str:
    out = StringIO()
    call_command("preview_topic", *args, stdout=out)
    return out.getvalue()


def test_it_prints_each_matching_stored_paper_newest_first_as_id_and_title(papers):
    assert run('"continual pre-training"') == (
        "2611.00002  Continual pretraining for code models\n"
        "2406.14833  Efficient Continual Pre-training by Mitigating the Stability Gap\n"
    )


def test_it_prints_nothing_when_no_paper_matches(papers):
    assert run("robotics") == ""


def test_json_prints_an_array_of_objects_with_id_and_title(papers):
    found = json.loads(run("LLM", "--json"))
    assert [(paper["id"], paper["title"]) for paper in found] == [
        ("2611.00002", "Continual pretraining for code models"),
        ("2406.14833", "Efficient Continual Pre-training by Mitigating the Stability Gap"),
    ]
    assert found[0]["matched"] == ["LLM"]
    assert found[0]["url"] == "https://huggingface.co/papers/2611.00002"


def test_json_prints_an_empty_array_when_nothing_matches(papers):
    assert json.loads(run("robotics", "--json")) == []


def test_limit_keeps_the_newest(papers):
    assert run("LLM OR diffusion", "--limit", "2") == (
        "2611.00003  Video diffusion at scale\n2611.00002  Continual pretraining for code models\n"
    )
    assert len(json.loads(run("LLM OR diffusion", "--json", "--limit", "1"))) == 1


def test_days_keeps_the_papers_first_seen_recently(papers):
    assert run('"continual pre-training"', "--days", "30") == (
        "2611.00002  Continual pretraining for code models\n"
    )


def test_an_invalid_query_prints_the_message_and_a_caret_and_exits_with_2(papers, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("preview_topic", "(robot OR robotic manipulation")
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "Invalid query: this parenthesis is never closed\n(robot OR robotic manipulation\n^\n"
    )
    assert captured.out == ""


def test_a_query_starting_with_a_minus_comes_after_a_double_dash(papers, capsys):
    assert run("--", "-video diffusion") == ""
    assert [paper["id"] for paper in json.loads(run("--json", "--", "-code LLM"))] == ["2406.14833"]
    with pytest.raises(SystemExit) as exited:
        call_command("preview_topic", "--", '-video -"audio"')
    assert exited.value.code == 2
    assert "a query cannot only exclude" in capsys.readouterr().err


def test_the_selector_looks_at_the_last_30_days_by_default(papers):
    found = papers_matching_query(query='"continual pre-training"')
    assert [paper.paper_id for paper, _ in found] == ["2611.00002"]
    assert found[0][1].terms == {"continual pre-training"}
    assert [p.paper_id for p, _ in papers_matching_query(query="LLM", days=None, limit=1)] == [
        "2611.00002"
    ]
