"""The preferences centre: topics and previews, schedule, pause, preview email, history, feed,
data export, deletion."""

import html
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from digest.models import Digest
from subscriptions.models import Subscriber, Topic
from tests.factories import make_paper, make_source, make_subscriber

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_ratelimit_cache", "tasks_at_once"),
]
UTC = ZoneInfo("UTC")


@pytest.fixture
def reader():
    return make_subscriber("ada@example.org", ["LoRA"])


def text(response) -> str:
    return html.unescape(response.content.decode())


def url(subscriber, path=""):
    return f"/manage/{subscriber.key}/{path}"


# --- Topics ----------------------------------------------------------------------------------


def test_it_lists_topics_with_recent_matches_and_counts(client, reader):
    make_paper("LoRA adapters for everyone", "We adapt with LoRA.", upvotes=12)
    make_paper("Old LoRA", "LoRA.", seen_at=timezone.now() - timedelta(days=40))
    make_paper("Unrelated", "Nothing here.")
    page = client.get(url(reader))
    assert page.status_code == 200
    body = text(page)
    assert "1 paper in the last 30 days" in body
    assert "LoRA adapters for everyone" in body
    assert "Old LoRA" not in body
    assert page["X-Robots-Tag"] == "noindex"
    assert "no-cache" in page["Cache-Control"]


def test_an_unknown_key_gets_the_friendly_404(client):
    page = client.get("/manage/not-a-real-key/")
    assert page.status_code == 404
    assert "Ask for a fresh link" in text(page)


def test_it_adds_a_topic(client, reader):
    page = client.post(url(reader, "topics/"), {"query": '  "continual   pre-training"  '})
    assert page.status_code == 302
    assert list(reader.topics.values_list("query", flat=True)) == [
        "LoRA",
        '"continual pre-training"',
    ]
    assert 'Added “"continual pre-training"”.' in text(client.get(url(reader)))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Write a topic first"),
        ("   ", "Write a topic first"),
        ("x" * 301, "A topic can be at most 300 characters."),
        ('"unclosed', "(at character"),
        ("LoRA", "You already follow “LoRA”."),
    ],
)
def test_a_bad_topic_is_explained_inline_and_nothing_is_stored(client, reader, query, message):
    page = client.post(url(reader, "topics/"), {"query": query})
    assert page.status_code == 400
    assert message in text(page)
    assert 'aria-invalid="true"' in text(page)
    assert reader.topics.count() == 1


def test_it_edits_a_topic(client, reader):
    topic = reader.topics.get()
    page = client.post(url(reader, f"topics/{topic.pk}/"), {"query": "LoRA OR QLoRA"})
    assert page.status_code == 302
    topic.refresh_from_db()
    assert topic.query == "LoRA OR QLoRA"


def test_a_bad_edit_reopens_the_form_with_the_message(client, reader):
    topic = reader.topics.get()
    page = client.post(url(reader, f"topics/{topic.pk}/"), {"query": "(unbalanced"})
    assert page.status_code == 400
    assert "(at character" in text(page)
    assert "<details open>" in page.content.decode()
    topic.refresh_from_db()
    assert topic.query == "LoRA"


def test_nobody_edits_or_deletes_someone_elses_topic(client, reader):
    other = make_subscriber("grace@example.org", ["secret topic"])
    theirs = other.topics.get()
    assert client.post(url(reader, f"topics/{theirs.pk}/"), {"query": "x"}).status_code == 404
    client.post(url(reader, f"topics/{theirs.pk}/delete/"))
    assert Topic.objects.filter(pk=theirs.pk).exists()


def test_it_deletes_a_topic(client, reader):
    topic = reader.topics.get()
    assert client.post(url(reader, f"topics/{topic.pk}/delete/")).status_code == 302
    assert reader.topics.count() == 0


def test_the_live_preview_counts_and_shows_matches(client, reader):
    make_paper("Diffusion for video", "A diffusion model.", upvotes=3)
    make_paper("Diffusion for audio", "Another diffusion model.", upvotes=9)
    page = client.get(url(reader, "preview/"), {"query": "diffusion"})
    assert page.status_code == 200
    body = text(page)
    assert "2 papers" in body
    assert body.index("Diffusion for audio") < body.index("Diffusion for video")


def test_the_live_preview_explains_a_bad_query_in_words(client, reader):
    body = text(client.get(url(reader, "preview/"), {"query": 'title:"open'}))
    assert "(at character" in body
    body = text(client.get(url(reader, "preview/"), {"query": "x" * 400}))
    assert "at most 300 characters" in body
    assert client.get(url(reader, "preview/"), {"query": ""}).content.strip() == b""


def test_the_preview_button_works_without_javascript(client, reader):
    make_paper("Sparse attention", "Attention, but sparse.")
    page = client.post(url(reader, "topics/"), {"query": "attention", "action": "preview"})
    assert page.status_code == 200
    assert "1 paper" in text(page) and "Sparse attention" in text(page)
    assert reader.topics.count() == 1, "previewing adds nothing"


def test_live_previews_are_rate_limited_per_client(client, reader):
    for _ in range(120):
        client.get(url(reader, "preview/"), {"query": "x"})
    assert client.get(url(reader, "preview/"), {"query": "x"}).status_code == 429


def test_scraped_text_is_escaped_in_previews_and_topic_lists(client, reader):
    make_paper('<script>alert("x")</script> LoRA', "<img src=x onerror=alert(1)> LoRA")
    for response in (
        client.get(url(reader)),
        client.get(url(reader, "preview/"), {"query": "LoRA"}),
    ):
        raw = response.content.decode()
        assert "<script>alert" not in raw
        assert "&lt;script&gt;" in raw


# --- Schedule, pause, preview email ------------------------------------------------------------


def schedule_data(**overrides):
    data = {
        "frequency": "weekly",
        "weekday": "2",
        "delivery_hour": "7",
        "timezone": "Europe/Paris",
        "max_papers": "10",
        "min_upvotes": "5",
    }
    data.update(overrides)
    return data


@time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # a Monday
def test_it_saves_the_schedule_and_reschedules(client, reader):
    source = make_source("arXiv cs.CL")
    page = client.post(url(reader, "schedule/"), schedule_data(sources=[source.pk]))
    assert page.status_code == 302
    reader.refresh_from_db()
    assert (reader.frequency, reader.weekday, reader.delivery_hour) == ("weekly", 2, 7)
    assert (reader.timezone, reader.max_papers, reader.min_upvotes) == ("Europe/Paris", 10, 5)
    assert list(reader.sources.all()) == [source]
    # Wednesday 07:00 in Paris is 06:00 UTC.
    assert reader.next_digest_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert "Schedule saved." in text(client.get(url(reader, "schedule/")))


def test_the_time_zone_is_matched_without_regard_to_case(client, reader):
    client.post(url(reader, "schedule/"), schedule_data(timezone="europe/paris"))
    reader.refresh_from_db()
    assert reader.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("delivery_hour", "25", "Choose an hour between 00:00 and 23:00."),
        ("delivery_hour", "seven", "Choose an hour between 00:00 and 23:00."),
        ("timezone", "Mars/Olympus", "is not a time zone we know"),
        ("timezone", "", "Choose a time zone"),
        ("max_papers", "0", "At least 1 paper."),
        ("max_papers", "1000", "At most 100 papers per digest."),
        ("max_papers", "ten", "Enter a whole number of papers."),
        ("min_upvotes", "-1", "Upvotes cannot be negative"),
        ("weekday", "9", "Choose a day of the week."),
        ("frequency", "monthly", "Choose daily or weekly."),
        ("sources", "999999", "That source is not offered any more."),
    ],
)
def test_bad_schedule_values_are_explained_and_nothing_changes(
    client, reader, field, value, message
):
    page = client.post(url(reader, "schedule/"), schedule_data(**{field: value}))
    assert page.status_code == 400
    assert message in text(page)
    reader.refresh_from_db()
    assert (reader.frequency, reader.timezone, reader.max_papers) == ("daily", "UTC", 20)


@time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
def test_it_pauses_until_a_date_and_the_next_digest_comes_the_day_after(client, reader):
    page = client.post(url(reader, "pause/"), {"until": "2026-12-01"})
    assert page.status_code == 302
    reader.refresh_from_db()
    assert reader.paused_until == date(2026, 12, 1)
    assert reader.is_paused
    assert reader.next_digest_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert "Paused until" in text(client.get(url(reader, "schedule/")))

    client.post(url(reader, "resume/"))
    reader.refresh_from_db()
    assert reader.paused_until is None
    # Today's 08:00 has passed with no digest yet: today's comes at the next sweep.
    assert reader.next_digest_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2026-11-01", "That day has passed"),
        ("2028-01-01", "at most a year"),
        ("31/12/2026", "Enter a date like 2026-12-31."),
        ("2026-02-30", "Enter a date like 2026-12-31."),
        ("", "Choose the last day of your pause."),
    ],
)
def test_bad_pause_dates_are_explained(client, reader, until, message):
    page = client.post(url(reader, "pause/"), {"until": until})
    assert page.status_code == 400
    assert message in text(page)
    reader.refresh_from_db()
    assert reader.paused_until is None


def test_send_me_a_preview_now_emails_the_current_matches(client, reader):
    make_paper("LoRA for all", "LoRA.")
    page = client.post(url(reader, "send-preview/"))
    assert page.status_code == 302
    [message] = mail.outbox
    assert message.to == ["ada@example.org"]
    assert "LoRA for all" in message.subject
    [digest] = reader.digests.all()
    assert digest.period_key.startswith("preview-")
    history = text(client.get(url(reader, "history/")))
    assert "preview" in history and "Sent 1 paper(s)." in history


def test_preview_emails_are_rate_limited(client, reader):
    for _ in range(3):
        client.post(url(reader, "send-preview/"))
    assert client.post(url(reader, "send-preview/")).status_code == 429


def test_no_preview_for_an_unsubscribed_reader(client, reader):
    reader.status = Subscriber.Status.UNSUBSCRIBED
    reader.save()
    client.post(url(reader, "send-preview/"))
    assert mail.outbox == []
    assert "Previews go only to" in text(client.get(url(reader, "schedule/")))


# --- History, feed ---------------------------------------------------------------------------


def make_digest(subscriber, status, *, period="2026-11-20", papers=(), **fields):
    digest = Digest.objects.create(
        subscriber=subscriber,
        period_key=period,
        status=status,
        subject=fields.pop("subject", ""),
        papers={"topics": ["LoRA"], "terms": [], "items": [[p.pk, [0], []] for p in papers]},
        paper_ids=[p.pk for p in papers],
        **fields,
    )
    return digest


def test_history_explains_why_there_was_no_email(client, reader):
    make_digest(reader, Digest.Status.EMPTY, period="2026-11-20")
    make_digest(reader, Digest.Status.FAILED, period="2026-11-21", error="550 mailbox full")
    source = make_source("Hugging Face")
    source.consecutive_failures = 4
    source.last_error = "HTTP 503"
    source.save()
    body = text(client.get(url(reader, "history/")))
    assert "Not sent: nothing new matched your topics." in body
    assert "Not delivered: 550 mailbox full." in body
    assert "Hugging Face has failed its last 4 fetches: HTTP 503" in body
    assert "No new papers arrived from any source in the last 24 hours." in body


def test_history_says_paused_suppressed_or_unsubscribed(client, reader):
    reader.paused_until = timezone.localdate() + timedelta(days=3)
    reader.save()
    assert "Paused until" in text(client.get(url(reader, "history/")))
    reader.status = Subscriber.Status.SUPPRESSED
    reader.suppressed_reason = "hard bounce: 550 no such user"
    reader.save()
    assert "We stopped sending: hard bounce: 550 no such user." in text(
        client.get(url(reader, "history/"))
    )
    reader.status = Subscriber.Status.UNSUBSCRIBED
    reader.save()
    assert "You are unsubscribed" in text(client.get(url(reader, "history/")))


def test_past_digests_are_readable_in_the_browser(client, reader):
    paper = make_paper("<b>Bold</b> LoRA", "Abstract.")
    digest = make_digest(reader, Digest.Status.SENT, papers=[paper], subject="1 new paper: LoRA")
    body = text(client.get(url(reader, "history/")))
    assert f"/manage/{reader.key}/digests/{digest.pk}/" in body
    page = client.get(f"/manage/{reader.key}/digests/{digest.pk}/")
    assert page.status_code == 200
    assert "&lt;b&gt;Bold&lt;/b&gt; LoRA" in page.content.decode()


def test_the_private_feed_lists_sent_digests_with_their_papers(client, reader):
    paper = make_paper("LoRA & friends <3", "Abstract.")
    make_digest(reader, Digest.Status.SENT, papers=[paper], subject="1 new paper: LoRA & friends")
    make_digest(reader, Digest.Status.EMPTY, period="2026-11-21")
    page = client.get(url(reader, "feed/"))
    assert page.status_code == 200
    assert page["Content-Type"].startswith("application/atom+xml")
    raw = page.content.decode()
    assert raw.count("<entry>") == 1
    assert "1 new paper: LoRA &amp; friends" in raw
    assert "&amp;lt;3" in raw, "titles are escaped inside the escaped HTML content"


# --- Your data -------------------------------------------------------------------------------


def test_it_downloads_everything_as_json(client, reader):
    paper = make_paper("LoRA paper", "Abstract.")
    make_digest(reader, Digest.Status.SENT, papers=[paper], subject="1 new paper")
    page = client.get(url(reader, "data.json"))
    assert page.status_code == 200
    assert "attachment" in page["Content-Disposition"]
    data = json.loads(page.content)
    assert data["email"] == "ada@example.org"
    assert data["topics"][0]["query"] == "LoRA"
    assert data["digests"][0]["papers"][0]["title"] == "LoRA paper"
    assert data["schedule"]["timezone"] == "UTC"


def test_deleting_needs_the_confirmation_box(client, reader):
    page = client.post(url(reader, "delete/"), {})
    assert page.status_code == 400
    assert "Tick the box" in text(page)
    assert Subscriber.objects.filter(pk=reader.pk).exists()


def test_it_deletes_the_subscriber_for_good(client, reader):
    make_digest(reader, Digest.Status.SENT, papers=[make_paper("P", "")])
    page = client.post(url(reader, "delete/"), {"confirm": "yes"})
    assert page.status_code == 200
    assert "Everything is deleted" in text(page)
    assert not Subscriber.objects.exists()
    assert not Digest.objects.exists() and not Topic.objects.exists()
    assert client.get(url(reader)).status_code == 404


def test_every_preferences_form_needs_a_csrf_token(reader):
    strict = Client(enforce_csrf_checks=True)
    topic = reader.topics.get()
    for path, data in [
        ("topics/", {"query": "x"}),
        (f"topics/{topic.pk}/", {"query": "x"}),
        (f"topics/{topic.pk}/delete/", {}),
        ("schedule/", schedule_data()),
        ("pause/", {"until": "2030-01-01"}),
        ("resume/", {}),
        ("send-preview/", {}),
        ("delete/", {"confirm": "yes"}),
    ]:
        assert strict.post(url(reader, path), data).status_code == 403, path
    assert Subscriber.objects.filter(pk=reader.pk).exists()


def test_every_page_of_the_centre_renders(client, reader):
    for path in ["", "schedule/", "history/", "account/", "feed/", "data.json"]:
        assert client.get(url(reader, path)).status_code == 200, path


def test_history_shows_times_in_the_readers_zone_and_soft_bounces(client, reader):
    reader.timezone = "Asia/Tokyo"
    reader.soft_bounces = 2
    reader.save()
    with time_machine.travel(datetime(2026, 11, 20, 23, 30, tzinfo=UTC)):
        make_digest(reader, Digest.Status.EMPTY)
    body = text(client.get(url(reader, "history/")))
    assert "Sat 21 Nov 2026, 08:30" in body
    assert "turned away our last 2 message(s)" in body


def test_nobody_reads_someone_elses_digest(client, reader):
    other = make_subscriber("grace@example.org")
    theirs = make_digest(other, Digest.Status.SENT, subject="Grace's papers")
    page = client.get(f"/manage/{reader.key}/digests/{theirs.pk}/")
    assert page.status_code == 404
    assert "Grace's papers" not in page.content.decode()
