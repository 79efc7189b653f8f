from celery import shared_task

from . import emails


@shared_task
def send_confirmation(subscriber_id: int):
    emails.send_confirmation(subscriber_id=subscriber_id)


@shared_task
def send_manage_link(subscriber_id: int):
    emails.send_manage_link(subscriber_id=subscriber_id)


@shared_task
def send_preview(subscriber_id: int, requested_at: str):
    from datetime import datetime

    from digest.services import digests_send_chunk

    now = datetime.fromisoformat(requested_at)
    digests_send_chunk(
        subscriber_ids=[subscriber_id], now=now, period_key=f"preview-{now:%Y%m%dT%H%M%S}"
    )
