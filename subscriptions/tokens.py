"""Signed, per-purpose tokens for the links Paperboy puts in emails."""

from django.conf import settings
from django.core import signing

from .models import Subscriber, Topic

_CONFIRM = "subscriptions.confirm"
_UNSUBSCRIBE = "subscriptions.unsubscribe"


def confirm_token(subscriber: Subscriber) -> str:
    return signing.TimestampSigner(salt=_CONFIRM).sign(subscriber.key)


def unsubscribe_token(subscriber: Subscriber) -> str:
    return signing.Signer(salt=_UNSUBSCRIBE).sign(subscriber.key)


class TokenExpired(Exception):
    pass


def subscriber_for_confirm_token(token: str) -> Subscriber | None:
    """The subscriber a confirmation token names. Raises TokenExpired for a genuine token
    past CONFIRM_MAX_AGE_DAYS; returns None for a tampered or unknown one."""
    signer = signing.TimestampSigner(salt=_CONFIRM)
    try:
        key = signer.unsign(token, max_age=settings.CONFIRM_MAX_AGE_DAYS * 86400)
    except signing.SignatureExpired as err:
        raise TokenExpired from err
    except signing.BadSignature:
        return None
    return Subscriber.objects.filter(key=key).first()


def subscriber_for_unsubscribe_token(token: str) -> Subscriber | None:
    try:
        key = signing.Signer(salt=_UNSUBSCRIBE).unsign(token)
    except signing.BadSignature:
        return None
    return Subscriber.objects.filter(key=key).first()


_TOPIC_UNSUBSCRIBE = "subscriptions.topic-unsubscribe"


def topic_unsubscribe_token(topic: Topic) -> str:
    return signing.Signer(salt=_TOPIC_UNSUBSCRIBE).sign(f"{topic.subscriber.key}.{topic.pk}")


def topic_for_unsubscribe_token(token: str) -> tuple[Subscriber | None, Topic | None]:
    """(subscriber, topic) a per-topic unsubscribe token names. The topic is None when it is
    already gone; both are None for a tampered or unknown token."""
    try:
        value = signing.Signer(salt=_TOPIC_UNSUBSCRIBE).unsign(token)
    except signing.BadSignature:
        return None, None
    key, _, topic_id = value.rpartition(".")
    subscriber = Subscriber.objects.filter(key=key).first()
    if subscriber is None or not topic_id.isdigit():
        return None, None
    return subscriber, subscriber.topics.filter(pk=int(topic_id)).first()
