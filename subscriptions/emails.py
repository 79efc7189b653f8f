from django.conf import settings

from config.reverse import cached_reverse
from digest import mailer

from .models import Subscriber
from .services import manage_url
from .tokens import confirm_token


def send_confirmation(*, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status in (
        Subscriber.Status.ACTIVE,
        Subscriber.Status.SUPPRESSED,
    ):
        return
    url = settings.SITE_URL + cached_reverse("confirm", confirm_token(subscriber))
    message = mailer.build_email(
        to=subscriber.email,
        subject="Confirm your Paperboy subscription",
        template="confirm",
        context={
            "confirm_url": url,
            "max_age_days": settings.CONFIRM_MAX_AGE_DAYS,
            "topics": list(subscriber.topics.values_list("query", flat=True)),
        },
    )
    mailer.send(message)


def send_manage_link(*, subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status == Subscriber.Status.SUPPRESSED:
        return
    message = mailer.build_email(
        to=subscriber.email,
        subject="Your Paperboy preferences link",
        template="manage_link",
        context={"manage_url": manage_url(subscriber)},
    )
    mailer.send(message)
