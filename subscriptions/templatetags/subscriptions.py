from django import template
from django.conf import settings

from config.reverse import cached_reverse

from ..tokens import topic_unsubscribe_token

register = template.Library()


@register.simple_tag
def topic_stop_path(subscriber, query: str) -> str:
    """The signed "stop this topic" path for the subscriber's topic with this query, or "" if
    they no longer follow it (a digest outlives its topics)."""
    topic = subscriber.topics.filter(query=query).first()
    if topic is None:
        return ""
    return cached_reverse("topic_unsubscribe", topic_unsubscribe_token(topic))


@register.simple_tag
def topic_stop_url(subscriber, query: str) -> str:
    """topic_stop_path as an absolute link, for emails."""
    path = topic_stop_path(subscriber, query)
    return settings.SITE_URL + path if path else ""


@register.simple_tag
def excerpt(abstract: str, terms=()) -> str:
    """An abstract's excerpt as in the email: its first words, with the matched `terms`
    highlighted (none for the sample's papers: just escaped)."""
    from digest import rendering

    return rendering.excerpt_html(abstract, tuple(terms or ()))
