from django.db import models


class Digest(models.Model):
    """One email for one subscriber and one period. The unique (subscriber, period_key) pair
    is the claim that keeps a second beat, a re-delivered task or a rerun from sending twice."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        EMPTY = "empty", "nothing new matched"

    subscriber = models.ForeignKey(
        "subscriptions.Subscriber",
        on_delete=models.CASCADE,
        related_name="digests",
        db_index=False,  # digest_once_per_period's index starts with it
    )
    period_key = models.CharField(max_length=40)
    run_id = models.CharField(max_length=32, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    subject = models.CharField(max_length=300, blank=True)
    paper_count = models.PositiveIntegerField(default=0)
    more_count = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(max_length=300, blank=True)
    provider_response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # The papers it holds, in rank order, as {"topics": [...], "terms": [...], "items":
    # [[paper pk, [topic index, ...], [term index, ...]], ...]}: the topics that matched each
    # paper and the words to highlight, each string written once
    # (digest.selectors.digest_entries reads them with their papers). And the same papers'
    # pks alone, which the run reads to skip what a reader already had. A row per paper would
    # cost the database more than the rest of a run together.
    papers = models.JSONField(default=dict, blank=True)
    paper_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "period_key"], name="digest_once_per_period"
            )
        ]
        # No index on status: a run finds digests by subscriber, and each index would cost
        # every digest's two status changes (claimed, sent) a write.

    def __str__(self):
        return f"{self.subscriber} {self.period_key} ({self.status})"


class DeliveryEvent(models.Model):
    """A provider's tracking event (bounce, complaint, ...), kept once per event id."""

    event_id = models.CharField(max_length=300, unique=True)
    event_type = models.CharField(max_length=30)
    recipient = models.EmailField(max_length=254, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    reject_reason = models.CharField(max_length=30, blank=True)
    description = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.event_type} for {self.recipient}"


class OutboxMessage(models.Model):
    """Mail kept by the default local backend, readable at /outbox/ while DEBUG is on."""

    created_at = models.DateTimeField(auto_now_add=True)
    from_email = models.CharField(max_length=300)
    to = models.TextField()
    subject = models.CharField(max_length=1000)
    headers = models.JSONField(default=dict)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    raw = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.to}: {self.subject}"
