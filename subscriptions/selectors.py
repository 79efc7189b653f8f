from datetime import timedelta

from django.utils import timezone

from digest.matching import TopicIndex
from digest.query import document_for
from scraper.models import Paper

from .models import Subscriber

PREVIEW_DAYS = 30


def topics_with_recent_counts(*, subscriber: Subscriber) -> list[dict]:
    """The subscriber's topics, each with how many papers of the last 30 days it matches."""
    topics = list(subscriber.topics.all())
    if not topics:
        return []
    index = TopicIndex()
    for topic in topics:
        index.add(topic.pk, topic.query)
    counts = dict.fromkeys((t.pk for t in topics), 0)
    since = timezone.now() - timedelta(days=PREVIEW_DAYS)
    for title, abstract, authors in Paper.objects.filter(first_seen_at__gte=since).values_list(
        "title", "abstract", "authors"
    ):
        for hit in index.match(document_for(title=title, abstract=abstract, authors=authors)):
            counts[hit.topic_id] += 1
    return [{"topic": t, "recent_count": counts[t.pk]} for t in topics]
