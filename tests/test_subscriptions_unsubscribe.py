"""Unsubscribing from everything (RFC 8058 one-click or the page's button) or from one topic,
and the way back in."""

import html

import pytest
from django.test import Client

from subscriptions import services, tokens
from subscriptions.models import Subscriber
from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def reader():
    return make_subscriber("ada@example.org", ["LoRA", "diffusion"])


def test_a_one_click_post_unsubscribes_without_cookie_or_csrf_token(reader):
    stranger = Client(enforce_csrf_checks=True)
    page = stranger.post(
        f"/unsubscribe/{tokens.unsubscribe_token(reader)}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert page.status_code == 200
    assert "You're unsubscribed" in text(page)
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    assert reader.next_digest_at is None


def test_a_get_only_shows_the_buttons(client, reader):
    page = client.get(f"/unsubscribe/{tokens.unsubscribe_token(reader)}/")
    assert "Unsubscribe from everything" in text(page)
    assert "Or stop just one topic" in text(page)
    reader.refresh_from_db()
    assert reader.status == "active"


def test_the_way_back_in_is_one_button(client, reader):
    token = tokens.unsubscribe_token(reader)
    client.post(f"/unsubscribe/{token}/")
    page = client.post(f"/unsubscribe/{token}/resubscribe/", follow=True)
    assert "Welcome back" in text(page)
    reader.refresh_from_db()
    assert reader.status == "active"
    assert reader.next_digest_at is not None


def test_a_suppressed_address_cannot_resubscribe_from_an_old_link(client, reader):
    services.subscriber_suppress(subscriber=reader, reason="hard bounce")
    page = client.post(f"/unsubscribe/{tokens.unsubscribe_token(reader)}/resubscribe/", follow=True)
    assert "This address bounced" in text(page)
    reader.refresh_from_db()
    assert reader.status == "suppressed"


@pytest.mark.parametrize("token", ["nonsense", "abc:def", "a" * 300])
def test_a_tampered_unsubscribe_link_gets_a_friendly_page(client, token):
    for response in (client.get(f"/unsubscribe/{token}/"), client.post(f"/unsubscribe/{token}/")):
        assert response.status_code == 400
        assert "This link is not valid" in text(response)
    assert client.post(f"/unsubscribe/{token}/resubscribe/").status_code == 400


def test_it_stops_a_single_topic_and_offers_to_undo(client, reader):
    topic = reader.topics.get(query="LoRA")
    link = f"/unsubscribe/topic/{tokens.topic_unsubscribe_token(topic)}/"
    page = client.get(link)
    assert "Stop sending papers matching <code>LoRA</code>" in text(page)
    assert reader.topics.count() == 2, "a GET changes nothing"
    page = client.post(link)
    assert "Topic stopped" in text(page)
    assert list(reader.topics.values_list("query", flat=True)) == ["diffusion"]
    reader.refresh_from_db()
    assert reader.status == "active", "the other topics keep coming"
    assert "Already stopped" in text(client.get(link))
    client.post(f"/manage/{reader.key}/topics/", {"query": "LoRA"})
    assert reader.topics.count() == 2


def test_the_topic_link_is_signed_per_subscriber(client, reader):
    other = make_subscriber("grace@example.org", ["LoRA"])
    theirs = other.topics.get()
    forged = tokens.topic_unsubscribe_token(theirs).replace(other.key, reader.key)
    assert client.post(f"/unsubscribe/topic/{forged}/").status_code == 400
    assert other.topics.count() == 1


def test_a_topic_link_url_is_absolute(reader):
    url = services.topic_unsubscribe_url(reader.topics.first())
    assert url.startswith("http://testserver/unsubscribe/topic/")


def test_a_pending_subscriber_cannot_resubscribe_without_confirming(client):
    pending = make_subscriber("new@example.org", status=Subscriber.Status.PENDING)
    client.post(f"/unsubscribe/{tokens.unsubscribe_token(pending)}/")
    page = client.post(
        f"/unsubscribe/{tokens.unsubscribe_token(pending)}/resubscribe/", follow=True
    )
    assert "Confirm your address first" in text(page)


def test_each_topic_of_a_digest_in_the_browser_has_a_stop_link(client, reader):
    from digest.models import Digest
    from tests.factories import make_paper

    paper = make_paper("P", "")
    Digest.objects.create(
        subscriber=reader,
        period_key="p",
        status="sent",
        subject="s",
        papers={"topics": ["LoRA"], "terms": [], "items": [[paper.pk, [0], []]]},
        paper_ids=[paper.pk],
    )
    digest = Digest.objects.get()
    page = client.get(f"/manage/{reader.key}/digests/{digest.pk}/")
    topic = reader.topics.get(query="LoRA")
    assert f"/unsubscribe/topic/{tokens.topic_unsubscribe_token(topic)}/" in page.content.decode()


def test_emails_can_link_each_topic_to_its_stop_page(reader):
    from django.template import Context, Template

    html = Template(
        "{% load subscriptions %}{% topic_stop_url s 'LoRA' %}|{% topic_stop_url s 'gone' %}"
    ).render(Context({"s": reader}))
    stop, missing = html.split("|")
    assert stop.startswith("http://testserver/unsubscribe/topic/")
    assert missing == ""
