"""Landing page, sign-up, "send me my link", confirmation, rate limits."""

import html

import pytest
import time_machine
from django.core import mail

from subscriptions import tokens
from subscriptions.models import Subscriber
from tests.factories import make_subscriber

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_ratelimit_cache", "tasks_at_once"),
]


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_it_shows_what_paperboy_sends_a_sample_and_both_forms(client):
    page = client.get("/")
    assert page.status_code == 200
    body = text(page)
    assert "New research papers on" in body
    assert 'name="email"' in body and 'name="query"' in body
    assert "Send me my link" in body
    assert "A taste of a digest" in body and "See a sample digest" in body
    assert 'name="website"' in body, "honeypot"


def test_the_sample_digest_renders_bundled_papers_grouped_by_topic(client):
    page = client.get("/sample/")
    assert page.status_code == 200
    assert text(page).count('class="paper"') >= 3
    assert "Get your own" in text(page)


def test_it_signs_up_with_a_first_topic_and_the_browser_time_zone(client):
    page = client.post(
        "/",
        {
            "email": "Ada@Example.ORG",
            "query": '  "continual   pre-training" ',
            "timezone": "Europe/Paris",
        },
    )
    assert page.status_code == 200
    assert "Check your inbox" in text(page)
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "Ada@example.org"
    assert subscriber.timezone == "Europe/Paris"
    assert list(subscriber.topics.values_list("query", flat=True)) == ['"continual pre-training"']
    [message] = mail.outbox
    assert message.subject == "Confirm your Paperboy subscription"


def test_an_unknown_browser_time_zone_falls_back_to_utc(client):
    client.post("/", {"email": "ada@example.org", "timezone": "Mars/Olympus"})
    assert Subscriber.objects.get().timezone == "UTC"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter your email address."),
        ("not-an-address", "That email address is not valid"),
        ("ada@", "That email address is not valid"),
        ("a" * 250 + "@example.org", "That address is too long: at most 254 characters."),
        ("ada@exa mple.org", "That email address is not valid"),
    ],
)
def test_a_bad_address_gets_a_clear_message_and_400(client, email, message):
    page = client.post("/", {"email": email})
    assert page.status_code == 400
    assert message in text(page)
    assert 'aria-invalid="true"' in text(page)
    assert Subscriber.objects.count() == 0
    assert mail.outbox == []


def test_a_topic_that_does_not_parse_is_explained_where_it_goes_wrong(client):
    page = client.post("/", {"email": "ada@example.org", "query": '"unclosed phrase'})
    assert page.status_code == 400
    assert "(at character" in text(page)
    assert Subscriber.objects.count() == 0


def test_an_over_long_topic_is_refused(client):
    page = client.post("/", {"email": "ada@example.org", "query": "x" * 301})
    assert page.status_code == 400
    assert "A topic can be at most 300 characters." in text(page)


def test_a_duplicate_sign_up_answers_the_same_and_sends_no_second_confirmation(client):
    first = client.post("/", {"email": "ada@example.org"})
    second = client.post("/", {"email": "ADA@example.org"})
    assert first.status_code == second.status_code == 200
    assert "Check your inbox" in text(second)
    assert Subscriber.objects.count() == 1
    assert len(mail.outbox) == 1, "at most one confirmation every couple of minutes"


def test_an_active_subscriber_signing_up_again_gets_the_preferences_link(client):
    make_subscriber("ada@example.org")
    page = client.post("/", {"email": "ada@example.org"})
    assert "Check your inbox" in text(page)
    [message] = mail.outbox
    assert message.subject == "Your Paperboy preferences link"


def test_the_honeypot_pretends_success_and_does_nothing(client):
    page = client.post("/", {"email": "bot@example.org", "website": "http://spam.example"})
    assert page.status_code == 200
    assert "Check your inbox" in text(page)
    assert Subscriber.objects.count() == 0
    assert mail.outbox == []


def test_send_me_my_link_answers_the_same_for_known_and_unknown_addresses(client):
    subscriber = make_subscriber("ada@example.org")
    known = client.post("/link/", {"email": "ADA@example.org"})
    unknown = client.post("/link/", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    strip = lambda page, email: text(page).replace(email, "")  # noqa: E731
    assert strip(known, "ADA@example.org") == strip(unknown, "nobody@example.org")
    [message] = mail.outbox
    assert message.to == ["ada@example.org"]
    assert f"/manage/{subscriber.key}/" in message.body


def test_send_me_my_link_resends_the_confirmation_to_a_pending_address(client):
    make_subscriber("ada@example.org", status=Subscriber.Status.PENDING)
    client.post("/link/", {"email": "ada@example.org"})
    [message] = mail.outbox
    assert message.subject == "Confirm your Paperboy subscription"


def test_send_me_my_link_sends_nothing_to_a_suppressed_address(client):
    make_subscriber("ada@example.org", status=Subscriber.Status.SUPPRESSED)
    page = client.post("/link/", {"email": "ada@example.org"})
    assert page.status_code == 200
    assert mail.outbox == []


def test_send_me_my_link_validates_the_address(client):
    page = client.post("/link/", {"email": "nope"})
    assert page.status_code == 400
    assert "That email address is not valid" in text(page)
    assert client.get("/link/").status_code == 302


def test_the_confirm_link_shows_a_button_and_only_a_post_confirms(client):
    subscriber = make_subscriber("ada@example.org", status=Subscriber.Status.PENDING)
    url = f"/confirm/{tokens.confirm_token(subscriber)}/"
    page = client.get(url)
    assert "Confirm my subscription" in text(page)
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"
    page = client.post(url)
    assert page.status_code == 302
    assert page["Location"] == f"/manage/{subscriber.key}/"
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert subscriber.next_digest_at is not None


def test_an_expired_confirm_link_offers_a_fresh_one(client):
    subscriber = make_subscriber("ada@example.org", status=Subscriber.Status.PENDING)
    with time_machine.travel("2026-01-01 12:00Z"):
        token = tokens.confirm_token(subscriber)
    with time_machine.travel("2026-01-09 12:00Z"):
        page = client.post(f"/confirm/{token}/")
    assert page.status_code == 410
    assert "This link has expired" in text(page)
    assert 'name="email"' in text(page)
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"


@pytest.mark.parametrize("token", ["garbage", "abc:def:ghi", "x" * 500])
def test_a_tampered_confirm_link_gets_a_friendly_400(client, token):
    page = client.get(f"/confirm/{token}/")
    assert page.status_code == 400
    assert "This link is not valid" in text(page)


def test_a_confirm_token_for_a_deleted_subscriber_is_not_valid(client):
    subscriber = make_subscriber("ada@example.org", status=Subscriber.Status.PENDING)
    token = tokens.confirm_token(subscriber)
    subscriber.delete()
    assert client.post(f"/confirm/{token}/").status_code == 400


# --- Rate limits ------------------------------------------------------------------------------


def test_sign_ups_are_limited_per_address_with_a_friendly_429(client):
    for _ in range(5):
        assert client.post("/", {"email": "ada@example.org"}).status_code == 200
    page = client.post("/", {"email": "ada@example.org"})
    assert page.status_code == 429
    assert "That's a lot of requests" in text(page)
    assert int(page["Retry-After"]) > 0
    assert client.post("/", {"email": "grace@example.org"}).status_code == 200


def test_sign_ups_are_limited_per_client_ip(client):
    for n in range(30):
        client.post("/", {"email": f"reader{n}@example.org"}, REMOTE_ADDR="10.0.0.1")
    page = client.post("/", {"email": "one-more@example.org"}, REMOTE_ADDR="10.0.0.1")
    assert page.status_code == 429
    other = client.post("/", {"email": "one-more@example.org"}, REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 200


def test_link_requests_are_limited_per_address(client):
    for _ in range(5):
        client.post("/link/", {"email": "ada@example.org"})
    assert client.post("/link/", {"email": "ada@example.org"}).status_code == 429


def test_ratelimit_enable_false_turns_limits_off(client, settings):
    settings.RATELIMIT_ENABLE = False
    for _ in range(8):
        assert client.post("/", {"email": "ada@example.org"}).status_code == 200


def test_forms_need_a_csrf_token():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/", {"email": "ada@example.org"}).status_code == 403
    assert strict.post("/link/", {"email": "ada@example.org"}).status_code == 403
    assert Subscriber.objects.count() == 0
