"""What a reader receives, and that it arrives exactly once, over a real SMTP server."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from digest import mailer, services
from digest.models import Digest
from tests.factories import make_paper, make_source, make_subscriber
from tests.servers import html_part, text_part

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def due(**fields):
    fields.setdefault("due_at", NOW - timedelta(hours=1))
    return make_subscriber(**fields)


def test_it_sends_one_email_with_the_papers_headers_and_footer(smtp, now):
    make_paper(
        "Efficient Continual Pre-training by Mitigating the Stability Gap",
        "Continual pre-training adapts LLMs to new domains.",
        upvotes=14,
        paper_id="2406.14833",
        arxiv_url="https://arxiv.org/abs/2406.14833",
        pdf_url="https://arxiv.org/pdf/2406.14833",
        code_url="https://github.com/example/stability-gap",
        organization="Peking University",
        authors=["Yiduo Guo", "Jie Fu", "Huishuai Zhang", "Dongyan Zhao", "Yikang Shen"],
    )
    make_paper("Unrelated work on proteins")
    reader = due(email="ada@example.org", topics=['"continual pre-training"'])

    services.digest_run()

    [message] = smtp.messages
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == (
        "1 new paper: Efficient Continual Pre-training by Mitigating the Stability Gap"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        r"<http://testserver/unsubscribe/[^>]+/>", message["List-Unsubscribe"].strip()
    )
    assert message["List-Id"]
    digest = Digest.objects.get()
    assert message["Message-ID"] == f"<digest-{digest.pk}.2026-11-28@localhost>"
    assert message["Date"]

    text, html = text_part(message), html_part(message)
    for part in (text, html):
        assert "https://huggingface.co/papers/2406.14833" in part
        assert "https://arxiv.org/abs/2406.14833" in part
        assert "https://arxiv.org/pdf/2406.14833" in part
        assert "https://github.com/example/stability-gap" in part
        assert "Yiduo Guo, Jie Fu, Huishuai Zhang et al. (5 authors)" in part
        assert "Peking University" in part
        assert "Paperboy, 1 Example Street, Exampletown" in part
        assert f"/manage/{reader.key}/" in part
        assert f"/manage/{reader.key}/digests/{digest.pk}/" in part
        assert "continual pre-training" in part
    assert "Unrelated work" not in text
    # CSS is inlined for mail clients that drop <style>, on the tags code adds too.
    assert re.search(r'<h3 style="[^"]*font-size', html)
    assert re.search(r'<mark style="[^"]*background[^"]*">Continual pre-training</mark>', html)
    assert re.search(r'<code style="[^"]*">&quot;continual pre-training&quot;</code>', html)
    assert "@media (prefers-color-scheme: dark)" in html, "dark mode stays in <style>"
    assert digest.status == "sent"


def test_scraped_text_is_escaped_in_the_html_and_kept_out_of_headers(smtp, now):
    make_paper(
        "LoRA <script>alert(1)</script>\r\nBcc: victim@example.org",
        'Adapters <img src=x onerror="alert(2)"> & more',
    )
    due(topics=["LoRA"])

    services.digest_run()

    [message] = smtp.messages
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["Subject"].startswith("1 new paper: LoRA <script>alert(1)</script> Bcc:")
    html = html_part(message)
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_a_paper_matched_by_two_topics_appears_once_with_both(smtp, now):
    make_paper("Diffusion transformers for video generation")
    due(topics=["diffusion", "video"])

    services.digest_run()

    text = text_part(smtp.messages[0])
    assert text.count("Diffusion transformers for video generation") == 2  # subject + entry
    assert "Matched: diffusion, video" in text


def test_it_ranks_title_hits_before_abstract_hits_then_upvotes(smtp, now):
    make_paper("Robot cooking", "We study manipulation.", upvotes=1)
    make_paper("Grasping", "A robot learns to grasp.", upvotes=99)
    make_paper("Robot soccer", "Teams.", upvotes=50)
    due(topics=["robot"])

    services.digest_run()

    text = text_part(smtp.messages[0])
    titles = ["Robot soccer", "Robot cooking", "Grasping"]
    assert [text.index(f"* {title}") for title in titles] == sorted(
        text.index(f"* {title}") for title in titles
    )


def test_it_caps_the_email_at_the_readers_maximum_and_links_the_rest(smtp, now):
    for n in range(3):
        make_paper(f"Attention paper {n}", upvotes=n)
    reader = due(topics=["attention"], max_papers=2)

    services.digest_run()

    text = text_part(smtp.messages[0])
    assert "Attention paper 2" in text and "Attention paper 1" in text
    assert "Attention paper 0" not in text
    assert "And 1 more" in text
    digest = Digest.objects.get()
    page = Client().get(f"/manage/{reader.key}/digests/{digest.pk}/")
    assert "Attention paper 0" in page.content.decode()


def test_it_honours_minimum_upvotes_and_sends_a_paper_once_it_crosses_them(smtp, now):
    paper = make_paper("Sparse attention", upvotes=3)
    reader = due(topics=["attention"], min_upvotes=10)

    services.digest_run()
    assert smtp.messages == []

    paper.upvotes = 12
    paper.save()
    reader.refresh_from_db()
    with time_machine.travel(reader.next_digest_at + timedelta(minutes=1), tick=False):
        services.digest_run()
    [message] = smtp.messages
    assert "Sparse attention" in message["Subject"]


def test_recency_is_when_paperboy_first_saw_a_paper(smtp, now):
    make_paper(
        "Old attention paper seen today", published_at=NOW - timedelta(days=400), seen_at=NOW
    )
    make_paper("Attention paper seen long ago", seen_at=NOW - timedelta(days=8))
    due(topics=["attention"])

    services.digest_run()

    text = text_part(smtp.messages[0])
    assert "Old attention paper seen today" in text
    assert "seen long ago" not in text


def test_a_reader_can_limit_papers_to_some_sources(smtp, now):
    arxiv, hf = make_source("arXiv cs.LG"), make_source("Hugging Face")
    make_paper("Attention from arXiv", sources=[arxiv])
    make_paper("Attention from Hugging Face", sources=[hf])
    reader = due(topics=["attention"])
    reader.sources.add(hf)

    services.digest_run()

    text = text_part(smtp.messages[0])
    assert "Attention from Hugging Face" in text
    assert "Attention from arXiv" not in text


def test_an_empty_digest_is_recorded_but_not_sent(smtp, now):
    make_paper("Protein folding")
    reader = due(topics=["attention"])

    services.digest_run()

    assert smtp.messages == []
    assert Digest.objects.get().status == "empty"
    reader.refresh_from_db()
    assert reader.next_digest_at == datetime(2026, 11, 29, 8, tzinfo=UTC)


def test_running_twice_or_concurrently_sends_nothing_twice(smtp, now):
    make_paper("Attention is all you need")
    readers = [due(topics=["attention"]) for _ in range(3)]
    ids = [r.pk for r in readers]

    services.digests_send_chunk(subscriber_ids=ids, now=now)
    services.digests_send_chunk(subscriber_ids=ids, now=now)  # a task delivered twice
    services.digest_run()
    call_command("send_digests")

    assert sorted(m["To"] for m in smtp.messages) == sorted(r.email for r in readers)


def test_send_digests_all_sends_now_whatever_the_schedule_and_never_repeats(smtp, now):
    make_paper("Attention is all you need")
    make_subscriber(topics=["attention"], due_at=NOW + timedelta(hours=5))

    call_command("send_digests", "--all")
    call_command("send_digests", "--all")

    assert len(smtp.messages) == 1


def test_a_temporary_smtp_failure_is_retried_with_backoff_and_then_delivered(smtp, now):
    make_paper("Attention is all you need")
    reader = due(email="busy@example.org", topics=["attention"])
    smtp.refuse("busy@example.org", "451 4.3.0 Mailbox busy, try later")

    services.digest_run()
    digest = Digest.objects.get()
    assert (digest.status, digest.attempts) == ("pending", 1)
    assert "451" in digest.error
    reader.refresh_from_db()
    assert reader.next_digest_at <= NOW, "still due until the digest is out"

    smtp.collector.refuse.clear()
    services.digest_run()  # within the backoff: waits
    assert smtp.messages == []
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        services.digest_run()
    [message] = smtp.messages
    assert message["To"] == "busy@example.org"
    digest.refresh_from_db()
    assert (digest.status, digest.attempts) == ("sent", 2)


def test_a_permanent_failure_marks_the_digest_failed_frees_its_papers_and_alerts(
    smtp, now, settings
):
    settings.ADMINS = [("Ops", "ops@example.org")]
    make_paper("Attention is all you need")
    reader = due(email="gone@example.org", topics=["attention"])
    smtp.refuse("gone@example.org", "550 5.1.1 No such user")

    services.digest_run()

    digest = Digest.objects.get()
    assert digest.status == "failed"
    assert "550" in digest.error
    [alert] = smtp.messages
    assert alert["To"] == "ops@example.org"
    assert "failed" in alert["Subject"]

    # The mailbox works again: the paper the failed digest held was never received, so it comes.
    smtp.collector.refuse.clear()
    smtp.clear()
    call_command("send_digests", "--all")
    [digest] = [m for m in smtp.messages if m["To"] == reader.email]
    assert "Attention is all you need" in text_part(digest)


def test_each_topic_has_a_stop_link_that_works(smtp, now):
    make_paper("Diffusion for video")
    reader = due(topics=["diffusion"])

    services.digest_run()

    text = text_part(smtp.messages[0])
    stop = re.search(r"Stop this topic: http://testserver(/\S+)", text).group(1)
    assert "Stop this topic" in html_part(smtp.messages[0])
    client = Client()
    assert client.get(stop).status_code == 200
    client.post(stop)
    assert not reader.topics.exists()


def test_a_pause_lasts_to_the_end_of_its_date_in_the_readers_zone(smtp, now):
    make_paper("Attention is all you need")
    paused_date = NOW.date()  # 28 Nov: already over in Kiritimati (UTC+14), not in Honolulu
    ahead = due(topics=["attention"], timezone="Pacific/Kiritimati", paused_until=paused_date)
    behind = due(topics=["attention"], timezone="Pacific/Honolulu", paused_until=paused_date)

    services.digest_run()

    assert [m["To"] for m in smtp.messages] == [ahead.email]
    behind.refresh_from_db()
    assert behind.next_digest_at <= NOW, "still due once the pause is over"


def test_a_chunk_of_digests_goes_over_one_smtp_connection(smtp, now):
    make_paper("LoRA adapters")
    for n in range(3):
        due(email=f"reader{n}@example.org", topics=["LoRA"])

    services.digest_run()

    assert len(smtp.messages) == 3
    assert len(set(smtp.collector.peers)) == 1


def test_a_single_message_closes_the_connection_it_opened(smtp):
    message = mailer.build_email(to="ada@example.org", subject="Hello", text="Hi", html="<p>Hi</p>")

    mailer.send(message)

    assert len(smtp.messages) == 1
    assert smtp.collector.quits == 1, "no SMTP connection is left open"


def test_every_byte_of_an_awkward_message_survives_smtp(smtp):
    """Paperboy writes its messages' MIME itself (digest.mailer.Email): lines that SMTP or
    quoted-printable treat specially, long lines, non-ASCII names and subjects arrive intact."""
    text = (
        ".\n.leading dot\nFrom the start\ntrailing space \ttab\t\n= equals =3D\n"
        + "ünïcödé “quotes” — " * 40
        + "\r\nwindows line\n"
    )
    # The text has a line too long for SMTP (quoted-printable), the HTML none (8bit).
    html = f"<p>{'x' * 900}</p>\n.\n.<p>dot-led</p>\n<p>Zoë &amp; =_boundary-like</p>"
    message = mailer.build_email(
        to="Zoë Núñez <zoe@example.org>",
        subject="Naïve Bayes, revisited — " * 8,
        text=text,
        html=html,
        unsubscribe_url="https://paperboy.example.org/u/abc",
    )
    mailer.send(message)

    [received] = smtp.messages
    assert received["Subject"] == mailer.header_safe("Naïve Bayes, revisited — " * 8)
    assert received["To"].addresses[0].display_name == "Zoë Núñez"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert text_part(received).replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert "x" * 900 in html_part(received)
    assert html_part(received).replace("\r\n", "\n").strip() == html


def test_the_digest_in_the_browser_highlights_like_the_email_and_escapes(smtp, now):
    make_paper(
        "Continual pre-training <b>bold</b>", "We study continual pre-training & <i>more</i>."
    )
    reader = due(topics=['"continual pre-training"'])

    services.digest_run()

    digest = Digest.objects.get()
    page = Client().get(f"/manage/{reader.key}/digests/{digest.pk}/").content.decode()
    assert "<mark>continual pre-training</mark> &amp; &lt;i&gt;more&lt;/i&gt;." in page
    assert "<b>bold</b>" not in page and "<i>more</i>" not in page
