import secrets
import zoneinfo

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def new_key() -> str:
    return secrets.token_urlsafe(32)


TIMEZONE_CHOICES = sorted(zoneinfo.available_timezones())


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active"
        UNSUBSCRIBED = "unsubscribed"
        SUPPRESSED = "suppressed", "Suppressed (bounced or complained)"

    class Frequency(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    email = models.EmailField(max_length=254)
    key = models.CharField(max_length=64, unique=True, default=new_key, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    suppressed_reason = models.CharField(max_length=500, blank=True)
    soft_bounces = models.PositiveIntegerField(default=0)

    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, default=Weekday.MONDAY)
    delivery_hour = models.PositiveSmallIntegerField(default=8)
    timezone = models.CharField(max_length=64, default="UTC")
    max_papers = models.PositiveSmallIntegerField(default=20)
    min_upvotes = models.PositiveIntegerField(default=0)
    paused_until = models.DateField(null=True, blank=True)
    sources = models.ManyToManyField("scraper.Source", blank=True, related_name="+")
    # When the next scheduled digest is due (UTC); the digest sweep looks only at this.
    next_digest_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
        ]
        indexes = [models.Index(fields=["status", "next_digest_at"])]

    def __str__(self):
        return self.email

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def is_paused(self) -> bool:
        return self.paused_until is not None and self.paused_until >= timezone.localdate(
            timezone=self.tz
        )

    @property
    def is_receiving(self) -> bool:
        return self.status == self.Status.ACTIVE and not self.is_paused


class Topic(models.Model):
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="topics")
    query = models.CharField(max_length=300)
    min_upvotes = models.PositiveIntegerField(default=0)
    sources = models.ManyToManyField("scraper.Source", blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "query"], name="topic_unique_per_subscriber"
            )
        ]

    def __str__(self):
        return self.query

    @property
    def unsubscribe_token(self) -> str:
        from .tokens import topic_unsubscribe_token

        return topic_unsubscribe_token(self)
