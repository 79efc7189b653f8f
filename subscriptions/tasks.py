from celery import shared_task

from . import emails


@shared_task
def send_confirmation(subscriber_id: int):
    emails.send_confirmation(subscriber_id=subscriber_id)


@shared_task
def send_manage_link(subscriber_id: int):
    emails.send_manage_link(subscriber_id=subscriber_id)
