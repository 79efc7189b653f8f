from django import template
from django.urls import reverse

from ..tokens import topic_unsubscribe_token

register = template.Library()


@register.simple_tag
def topic_stop_path(subscriber, query: str) -> str:
    """The signed "stop this topic" path for the subscriber's topic with this query, or "" if
    they no longer follow it (a digest outlives its topics)."""
    topic = subscriber.topics.filter(query=query).first()
    if topic is None:
        return ""
    return reverse("topic_unsubscribe", args=[topic_unsubscribe_token(topic)])
