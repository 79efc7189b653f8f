from datetime import datetime

from celery import shared_task

from . import services


@shared_task
def send_due_digests():
    """Beat's sweep: split the due subscribers into chunks, one task each."""
    services.digest_run(enqueue=True)


@shared_task(acks_late=True)
def send_digest_chunk(subscriber_ids: list[int], now: str, period_key: str | None = None):
    services.digests_send_chunk(
        subscriber_ids=subscriber_ids, now=datetime.fromisoformat(now), period_key=period_key
    )


@shared_task
def process_delivery_event(event_pk: int):
    from . import bounces

    bounces.delivery_event_process(event_pk=event_pk)
