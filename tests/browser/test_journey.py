"""A new reader's whole journey in a real browser: sign up, confirm from the email, add a
topic while watching the preview, change the schedule, pause, get a preview digest, read it,
unsubscribe in one click, come back, and finally delete everything."""

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from scraper import parsers, services
from scraper.models import Source
from subscriptions.models import Subscriber
from subscriptions.selectors import SAMPLE
from tests.browser.conftest import link_in, shoot, wait_for_mail
from tests.servers import html_part

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def papers():
    source = Source.objects.create(
        name="Hugging Face Daily Papers", url="https://huggingface.co/papers", kind="hf_page"
    )
    services.papers_upsert(items=parsers.parse_hf_api(SAMPLE.read_bytes()).papers, source=source)


def test_a_new_reader_from_sign_up_to_one_click_unsubscribe_and_back(page, site, smtp, papers):
    page.goto(site + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("New research papers")
    # Keyboard first: the first Tab lands on the skip link.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    shoot(page, "01-landing")

    page.get_by_role("link", name="See a sample digest").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("A sample digest")
    shoot(page, "02-sample")
    page.go_back()

    # A typo first: the message says what is wrong, on the field.
    page.get_by_label("Your email address").first.fill("ada@example")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#email-error")).to_contain_text("not valid")
    shoot(page, "03-signup-error")

    page.get_by_label("Your email address").first.fill("Ada@Example.org")
    page.get_by_label("A first topic").fill("diffusion")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    shoot(page, "04-check-inbox")

    confirmation = wait_for_mail(smtp, 1)
    assert confirmation["Subject"] == "Confirm your Paperboy subscription"
    page.goto(link_in(confirmation, site, "confirm"))
    expect(page.get_by_role("button", name="Confirm my subscription")).to_be_visible()
    shoot(page, "05-confirm")
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.locator(".flash")).to_contain_text("You're subscribed")
    subscriber = Subscriber.objects.get()
    assert subscriber.status == "active"
    assert subscriber.timezone == "Europe/Paris", "proposed by the browser at sign-up"
    expect(page.locator("#topics-title + .topics")).to_contain_text("diffusion")
    shoot(page, "06-topics")

    # The live preview follows the typing; a mistake is explained in words.
    field = page.get_by_label("Topic", exact=True)
    field.press_sequentially('"language model', delay=20)
    expect(page.locator("#preview")).to_contain_text("at character")
    field.fill("")
    field.press_sequentially("agents", delay=20)
    expect(page.locator("#preview")).to_contain_text(re.compile(r"\d+ papers? of the last 30 days"))
    shoot(page, "07-topic-preview")
    page.get_by_role("button", name="Add topic").click()
    expect(page.locator(".flash")).to_contain_text("Added “agents”")
    assert list(subscriber.topics.values_list("query", flat=True)) == ["diffusion", "agents"]

    # Schedule: weekly on Wednesdays at 07:00, five papers at most.
    page.get_by_role("link", name="Schedule").click()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    page.get_by_role("radio", name="Weekly").check()
    page.get_by_label("Day (for weekly digests)").select_option("Wednesday")
    page.get_by_label("Hour").select_option("07:00")
    page.get_by_label("Most papers per digest").fill("5")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.locator(".flash")).to_contain_text("Schedule saved.")
    subscriber.refresh_from_db()
    assert (subscriber.frequency, subscriber.weekday, subscriber.delivery_hour) == ("weekly", 2, 7)
    assert subscriber.max_papers == 5 and subscriber.next_digest_at is not None
    shoot(page, "08-schedule")

    # A bad value is refused with a message, and nothing changes.
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.locator("#id_timezone-error")).to_contain_text("not a time zone we know")
    shoot(page, "09-schedule-error")

    # Pause for a week, then resume.
    page.get_by_role("link", name="Schedule").click()
    until = date.today() + timedelta(days=7)
    page.get_by_label("No digests up to and including").fill(until.isoformat())
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Paused until")
    expect(page.locator(".manage-head")).to_contain_text("Paused until")
    subscriber.refresh_from_db()
    assert subscriber.paused_until == until
    shoot(page, "10-paused")
    page.get_by_role("button", name="Resume now").click()
    expect(page.locator(".flash")).to_contain_text("Welcome back")

    # A preview digest now, read in the browser from the history.
    page.get_by_role("button", name="Send me a preview now").click()
    expect(page.locator(".flash")).to_contain_text("A preview is on its way")
    digest_mail = wait_for_mail(smtp, 2)
    assert "diffusion" in html_part(digest_mail).lower()
    page.get_by_role("link", name="History").click()
    expect(page.locator(".log")).to_contain_text("preview")
    shoot(page, "11-history")
    page.locator(".log a").first.click()
    expect(page.locator(".paper").first).to_be_visible()
    shoot(page, "12-digest-in-browser")

    page.get_by_role("link", name="← All your digests").click()
    page.get_by_role("link", name="Your data").click()
    shoot(page, "13-your-data")

    # One click from the email: the RFC 8058 POST, with no cookie and no CSRF token.
    unsubscribe_url = re.search(r"<(http[^>]+)>", digest_mail["List-Unsubscribe"]).group(1)
    response = page.context.request.post(
        unsubscribe_url,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": ""},
    )
    assert response.status == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"

    # The same link in the browser says so, and offers the way back in.
    page.goto(unsubscribe_url)
    expect(page.locator("main")).to_contain_text("is already unsubscribed")
    shoot(page, "14-unsubscribe-already")
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.locator(".flash")).to_contain_text("Welcome back")
    subscriber.refresh_from_db()
    assert subscriber.status == "active"

    # The page's own button, then "oops".
    page.goto(unsubscribe_url)
    shoot(page, "15-unsubscribe")
    page.get_by_role("button", name="Unsubscribe from everything").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
    shoot(page, "16-unsubscribed")
    page.get_by_role("button", name="Oops, subscribe me again").click()
    expect(page.locator(".flash")).to_contain_text("Welcome back")

    # Stop a single topic from the unsubscribe page.
    page.goto(unsubscribe_url)
    page.get_by_role("button", name="Stop topic agents").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Topic stopped")
    shoot(page, "17-topic-stopped")
    page.get_by_role("button", name="Undo: follow it again").click()
    expect(page.locator(".flash")).to_contain_text("Added “agents”")

    # Delete for good, with a confirmation step.
    page.get_by_role("link", name="Your data").click()
    page.get_by_role("button", name="Delete everything").click()
    expect(page.locator("#id_confirm-error")).to_contain_text("Tick the box")
    page.get_by_label(re.compile("Yes, delete")).check()
    page.get_by_role("button", name="Delete everything").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Everything is deleted")
    shoot(page, "18-deleted")
    assert not Subscriber.objects.exists()


def test_it_works_without_javascript(chromium, site, smtp, papers):
    context = chromium.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(site + "/")
        page.get_by_label("Your email address").first.fill("grace@example.org")
        page.get_by_role("button", name="Subscribe").click()
        page.goto(link_in(wait_for_mail(smtp, 1), site, "confirm"))
        page.get_by_role("button", name="Confirm my subscription").click()
        page.get_by_label("Topic", exact=True).fill("diffusion")
        page.get_by_role("button", name="Preview matches").click()
        expect(page.locator("#preview")).to_contain_text("of the last 30 days match")
        shoot(page, "19-preview-without-js")
        page.get_by_role("button", name="Add topic").click()
        expect(page.locator(".flash")).to_contain_text("Added “diffusion”")

        # Edit without JavaScript: <details> opens natively.
        page.locator("summary", has_text="Edit").first.click()
        page.get_by_label("New wording").fill("diffusion -video")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".flash")).to_contain_text("Topic saved.")
    finally:
        context.close()


def test_the_other_pages_look_right(page, site, smtp):
    page.goto(site + "/")
    link_form = page.locator("#link")
    link_form.get_by_label("Your email address").fill("nobody@example.org")
    link_form.get_by_role("button", name="Send me my link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    shoot(page, "20-link-sent")

    page.goto(site + "/confirm/not-a-token/")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")
    shoot(page, "21-link-invalid")

    page.goto(site + "/manage/NoSuchKeyNoSuchKeyNoSuchKey/")
    expect(page.get_by_role("heading", level=1)).to_have_text("We couldn't find that page")
    shoot(page, "22-not-found")

    page.emulate_media(color_scheme="dark")
    page.goto(site + "/sample/")
    shoot(page, "24-sample-dark")
    page.emulate_media(color_scheme="light")

    for _ in range(6):
        page.goto(site + "/")
        link_form.get_by_label("Your email address").fill("nobody@example.org")
        link_form.get_by_role("button", name="Send me my link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("That's a lot of requests")
    shoot(page, "23-rate-limited")
