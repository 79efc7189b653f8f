import json

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from . import tasks
from .models import Backfill, Paper, ScrapeRun, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "enabled",
        "health",
        "last_status",
        "last_run_at",
        "next_run_at",
        "consecutive_failures",
        "paper_count",
        "runs_link",
    ]
    list_filter = ["kind", "enabled", "last_status"]
    search_fields = ["name", "url"]
    actions = ["scrape_now", "enable", "disable"]
    readonly_fields = [
        "created_at",
        "last_run_at",
        "last_status",
        "last_error",
        "consecutive_failures",
        "etag",
        "last_modified",
        "next_run_at",
        "running_since",
    ]
    fieldsets = [
        (None, {"fields": ["name", "kind", "url", "enabled", "interval_minutes"]}),
        ("Health", {"fields": readonly_fields}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_papers=Count("papers", distinct=True))

    @admin.display(boolean=True, description="healthy")
    def health(self, source: Source) -> bool:
        return source.healthy

    @admin.display(description="papers", ordering="_papers")
    def paper_count(self, source: Source) -> int:
        return source._papers

    @admin.display(description="runs")
    def runs_link(self, source: Source):
        url = reverse("admin:scraper_scraperun_changelist") + f"?source__id__exact={source.pk}"
        return format_html('<a href="{}">runs</a>', url)

    @admin.action(description="Scrape now")
    def scrape_now(self, request, queryset):
        ids = list(queryset.filter(enabled=True).values_list("pk", flat=True))
        for pk in ids:
            transaction.on_commit(lambda pk=pk: tasks.scrape_source.delay(pk))
        skipped = queryset.count() - len(ids)
        self.message_user(
            request,
            f"Queued {len(ids)} source(s) for scraping"
            + (f"; {skipped} disabled left out" if skipped else "")
            + ". Their runs appear under Scrape runs.",
            messages.SUCCESS,
        )

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(enabled=True, next_run_at=None)}.")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(enabled=False)}.")


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = [
        "paper_id",
        "title",
        "first_author",
        "organization",
        "upvotes",
        "num_comments",
        "published_at",
        "first_seen_at",
    ]
    list_filter = ["sources", "first_seen_at"]
    search_fields = ["title", "paper_id", "authors", "organization"]
    date_hierarchy = "first_seen_at"
    readonly_fields = ["first_seen_at", "updated_at"]
    filter_horizontal = ["sources"]

    @admin.display(description="first author")
    def first_author(self, paper: Paper) -> str:
        authors = paper.authors or []
        return authors[0] + (" et al." if len(authors) > 1 else "") if authors else ""

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        escaped = json.dumps(search_term)[1:-1]
        if search_term and escaped != search_term:
            # Where JSON is stored as text (SQLite), 'Łukasz' is kept as '\u0141ukasz'.
            results |= queryset.filter(authors__icontains=escaped)
        return results, may_have_duplicates


@admin.register(ScrapeRun)
class ScrapeRunAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "source",
        "status",
        "kind",
        "http_status",
        "fetched",
        "new",
        "updated",
        "took",
        "short_error",
    ]
    list_filter = ["status", "kind", "source"]
    search_fields = ["url", "error"]
    date_hierarchy = "started_at"
    list_select_related = ["source"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="took")
    def took(self, run: ScrapeRun) -> str:
        return f"{run.duration.total_seconds():.1f} s" if run.duration else "—"

    @admin.display(description="error / notes")
    def short_error(self, run: ScrapeRun) -> str:
        text = run.error or run.notes
        return text[:120] + ("…" if len(text) > 120 else "")


@admin.register(Backfill)
class BackfillAdmin(admin.ModelAdmin):
    list_display = ["name", "since", "until", "next_date", "updated_at", "finished_at"]
