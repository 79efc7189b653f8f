"""The whole loop through real parts: HTTP fixture server, PostgreSQL (in CI), SMTP server."""

import html as htmllib
import re

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from scraper.models import Paper
from subscriptions.models import Subscriber
from tests.servers import html_part, text_part

pytestmark = pytest.mark.django_db(transaction=True)


def link_in(message, pattern: str) -> str:
    match = re.search(rf"http://testserver(/{pattern}/[^\s\"<>]+/)", text_part(message))
    assert match, text_part(message)
    return match.group(1)


def test_a_new_reader_gets_one_digest_and_unsubscribes_in_one_click(smtp, fixture_server, capsys):
    call_command("scrape", fixture_server.url("hf_page_small.html"))
    assert "fetched 3, new 3, updated 0" in capsys.readouterr().out
    assert Paper.objects.count() == 3

    browser = Client()
    page = browser.post("/", {"email": "Ada.Lovelace@Example.ORG"})
    assert page.status_code == 200
    assert "Check your inbox" in page.content.decode()

    [confirmation] = smtp.messages
    assert confirmation["To"] == "Ada.Lovelace@example.org"
    confirm_path = link_in(confirmation, "confirm")
    page = browser.get(confirm_path)
    assert "Confirm my subscription" in page.content.decode()
    assert Subscriber.objects.get().status == "pending", "a GET alone must not confirm"

    page = browser.post(confirm_path, follow=True)
    manage_path = page.redirect_chain[-1][0]
    assert manage_path.startswith("/manage/")
    assert "You're subscribed" in htmllib.unescape(page.content.decode())

    page = browser.post(f"{manage_path}topics/", {"query": '"continual pre-training"'}, follow=True)
    assert "continual pre-training" in page.content.decode()
    page = browser.post(f"{manage_path}topics/", {"query": "LoRA"}, follow=True)

    smtp.clear()
    reader = Subscriber.objects.get()
    at_their_hour = max(reader.next_digest_at, timezone.now())
    with time_machine.travel(at_their_hour, tick=False):
        call_command("send_digests")
    [digest] = smtp.messages
    assert digest["To"] == "Ada.Lovelace@example.org"
    assert digest["Subject"].startswith("2 new papers: ")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.fullmatch(r"<(https?://[^>]+)>", digest["List-Unsubscribe"].strip()).group(
        1
    )
    text, html = text_part(digest), html_part(digest)
    assert "Efficient Continual Pre-training by Mitigating the Stability Gap" in text
    assert "https://huggingface.co/papers/2406.14833" in html
    assert "Visual Data-Type" not in text, "a paper no topic matches stays out"
    assert "<script" not in html and "onerror" not in html.replace("onerror=alert", "")
    assert manage_path in text

    smtp.clear()
    call_command("send_digests", "--all")
    assert smtp.messages == [], "no paper goes to the same reader twice"

    stranger = Client(enforce_csrf_checks=True)
    response = stranger.post(
        unsubscribe_url.removeprefix("http://testserver"),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "unsubscribed" in response.content.decode()
    assert Subscriber.objects.get().status == "unsubscribed"
