from django.conf import settings
from django.db import models


class Source(models.Model):
    class Kind(models.TextChoices):
        HF_PAGE = "hf_page", "Hugging Face Daily Papers page"
        HF_API = "hf_api", "Hugging Face daily papers API"
        ARXIV_API = "arxiv_api", "arXiv API (Atom)"
        ARXIV_RSS = "arxiv_rss", "arXiv RSS listing"
        FEED = "feed", "RSS / Atom feed"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    url = models.URLField(max_length=1000, unique=True)
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(auto_now_add=True)

    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    # Beat's sweep scrapes the rows due by this; empty means due now.
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set while a run holds this source (the overlap lock); stale after SCRAPER_RUN_STALE_SECONDS.
    running_since = models.DateTimeField(null=True, blank=True)

    UNHEALTHY_AFTER = 3

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def healthy(self) -> bool:
        limit = getattr(settings, "SCRAPER_UNHEALTHY_AFTER", self.UNHEALTHY_AFTER)
        return self.consecutive_failures < limit


class Paper(models.Model):
    """One work, whichever sources carry it. `paper_id` is the arXiv id without version, or
    the feed entry's GUID / link when the work has no arXiv id."""

    paper_id = models.CharField(max_length=500, unique=True)
    title = models.TextField()
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    organization = models.CharField(max_length=300, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    upvotes = models.IntegerField(default=0)
    num_comments = models.IntegerField(default=0)
    hf_url = models.URLField(max_length=1000, blank=True)
    arxiv_url = models.URLField(max_length=1000, blank=True)
    pdf_url = models.URLField(max_length=1000, blank=True)
    code_url = models.URLField(max_length=1000, blank=True)
    project_url = models.URLField(max_length=1000, blank=True)
    thumbnail_url = models.URLField(max_length=1000, blank=True)
    sources = models.ManyToManyField(Source, related_name="papers", blank=True)

    class Meta:
        ordering = ["-first_seen_at", "-upvotes"]

    def __str__(self):
        return f"{self.paper_id}: {self.title[:80]}"

    @property
    def url(self) -> str:
        return self.hf_url or self.arxiv_url or self.project_url or self.pdf_url


class ScrapeRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        DEGRADED = "degraded", "ok, parsed degraded"
        NOT_MODIFIED = "not_modified", "not modified"
        FAILED = "failed"
        SKIPPED = "skipped", "skipped (already running)"

    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    url = models.URLField(max_length=1000)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    fetched = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    kind = models.CharField(max_length=20, blank=True, help_text="The parser used.")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True, help_text="Why the page was parsed degraded, etc.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.url} @ {self.started_at:%Y-%m-%d %H:%M}: {self.status}"

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None


class Backfill(models.Model):
    """Where a `scrape --since` walk over the Hugging Face date pages stands, so an
    interrupted walk resumes at the day it stopped."""

    name = models.CharField(max_length=50, unique=True)
    since = models.DateField()
    until = models.DateField()
    next_date = models.DateField(help_text="The first day not yet scraped.")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name}: {self.since} → {self.until}, at {self.next_date}"
