from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from digest import services as digest_services
from scraper import parsers, services
from scraper.models import Source
from subscriptions import services as subscription_services
from subscriptions.models import Subscriber

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "daily_papers.json"
DEMO_EMAIL = "reader@example.org"
DEMO_TOPICS = ["LLM agents", '"diffusion"', "attention", "safety"]


class Command(BaseCommand):
    help = (
        "Load the bundled sample papers and a demo subscriber, and send the demo digest "
        "(into the outbox by default). Safe to run again."
    )

    def handle(self, *args, **options):
        page = parsers.parse_hf_api(SAMPLE.read_bytes())
        with transaction.atomic():
            source, _ = Source.objects.get_or_create(
                url="https://huggingface.co/papers",
                defaults={"name": "Hugging Face Daily Papers", "kind": Source.Kind.HF_PAGE},
            )
            new, updated = services.papers_upsert(items=page.papers, source=source)
            subscriber, created = Subscriber.objects.get_or_create(email=DEMO_EMAIL)
            if created:
                for query in DEMO_TOPICS:
                    subscription_services.topic_add(subscriber=subscriber, query=query)
                subscription_services.subscriber_confirm(subscriber=subscriber)
        self.stdout.write(f"sample: {len(page.papers)} papers ({new} new, {updated} updated)")
        if created:
            ids = [subscriber.pk]
            result = digest_services.digests_send_chunk(
                subscriber_ids=ids, now=subscriber.confirmed_at, period_key="sample"
            )
            self.stdout.write(f"demo digest for {DEMO_EMAIL}: {result.sent} sent")
