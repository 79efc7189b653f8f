"""Bounces and complaints from the provider's tracking webhooks (django-anymail).

The webhook view (anymail's, protected by ANYMAIL_WEBHOOK_SECRET) fires the tracking signal;
the receiver here only records the event, once per event id, and hands it to a task, so the
provider gets its answer fast."""

import hashlib
import logging

from anymail.signals import EventType, tracking
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone

from subscriptions.models import Subscriber

from .models import DeliveryEvent

log = logging.getLogger(__name__)

SOFT_BOUNCES_BEFORE_SUPPRESSION = 3
SUPPRESSING = {EventType.BOUNCED, EventType.COMPLAINED, EventType.REJECTED}
HANDLED = SUPPRESSING | {EventType.DEFERRED, EventType.UNSUBSCRIBED}


def _is_soft(event) -> bool:
    """Anymail reports every bounce as 'bounced'; the providers' own payloads say whether it
    was temporary (Postmark SoftBounce/Transient, Mailgun severity, SES Transient)."""
    if event.event_type == EventType.DEFERRED:
        return True
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    bounce = raw.get("bounce") if isinstance(raw.get("bounce"), dict) else {}
    return (
        raw.get("Type") in ("SoftBounce", "Transient", "DnsError")
        or raw.get("severity") == "temporary"
        or (raw.get("event-data") or {}).get("severity") == "temporary"
        or bounce.get("bounceType") == "Transient"
    )


def _event_id(event) -> str:
    if event.event_id:
        return str(event.event_id)
    basis = f"{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}"
    return "sha1:" + hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


@receiver(tracking, dispatch_uid="paperboy-delivery-events")
def on_tracking_event(sender, event, esp_name, **kwargs):
    if event.event_type not in HANDLED or not event.recipient:
        return
    delivery_event_record(event=event)


def delivery_event_record(*, event) -> DeliveryEvent | None:
    """Store the event unless its id was seen before; enqueue its processing after commit."""
    from . import tasks

    event_type = event.event_type
    if event_type == EventType.BOUNCED and _is_soft(event):
        event_type = EventType.DEFERRED
    try:
        with transaction.atomic():
            record = DeliveryEvent.objects.create(
                event_id=_event_id(event)[:300],
                event_type=event_type,
                recipient=(event.recipient or "")[:254],
                message_id=str(event.message_id or "")[:300],
                reject_reason=event.reject_reason or "",
                description=event.description or event.mta_response or "",
                occurred_at=event.timestamp,
            )
            transaction.on_commit(lambda: tasks.process_delivery_event.delay(record.pk))
    except IntegrityError:
        return None  # a duplicate delivery of the same event
    return record


def delivery_event_process(*, event_pk: int) -> None:
    """Suppress on a hard bounce, a complaint or a provider rejection; count soft bounces
    and suppress after several; an unsubscribe at the provider unsubscribes here too."""
    with transaction.atomic():
        event = DeliveryEvent.objects.select_for_update().filter(pk=event_pk).first()
        if event is None or event.processed_at is not None:
            return
        subscriber = (
            Subscriber.objects.select_for_update().filter(email__iexact=event.recipient).first()
        )
        if subscriber is not None:
            _apply(subscriber, event)
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])


def _apply(subscriber: Subscriber, event: DeliveryEvent) -> None:
    reason = f"{event.event_type}: {event.description or event.reject_reason or 'no detail'}"
    if event.event_type == EventType.DEFERRED:
        subscriber.soft_bounces += 1
        fields = ["soft_bounces"]
        if subscriber.soft_bounces >= SOFT_BOUNCES_BEFORE_SUPPRESSION:
            _suppress(subscriber, f"{subscriber.soft_bounces} soft bounces; last {reason}")
            fields += ["status", "suppressed_reason", "next_digest_at"]
        subscriber.save(update_fields=fields)
    elif event.event_type == EventType.UNSUBSCRIBED:
        if subscriber.status == Subscriber.Status.ACTIVE:
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
            subscriber.unsubscribed_at = timezone.now()
            subscriber.next_digest_at = None
            subscriber.save(update_fields=["status", "unsubscribed_at", "next_digest_at"])
    else:
        _suppress(subscriber, reason)
        subscriber.save(update_fields=["status", "suppressed_reason", "next_digest_at"])
    log.info("delivery event %s for subscriber %s", event.event_type, subscriber.pk)


def _suppress(subscriber: Subscriber, reason: str) -> None:
    subscriber.status = Subscriber.Status.SUPPRESSED
    subscriber.suppressed_reason = reason[:500]
    subscriber.next_digest_at = None
