"""Signed, per-purpose tokens for the links Paperboy puts in emails."""

from django.conf import settings
from django.core import signing

from .models import Subscriber

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
