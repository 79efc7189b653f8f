from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from digest.models import Digest

from . import services, tasks
from .models import Subscriber, Topic


class StateFilter(admin.SimpleListFilter):
    """Status as a reader would put it: "paused" is an active subscriber with a pause."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("pending", "Pending"),
            ("active", "Active"),
            ("paused", "Paused"),
            ("unsubscribed", "Unsubscribed"),
            ("suppressed", "Suppressed"),
        ]

    def queryset(self, request, queryset):
        paused = Q(paused_until__gte=timezone.localdate())
        value = self.value()
        if value == "paused":
            return queryset.filter(paused, status=Subscriber.Status.ACTIVE)
        if value == "active":
            return queryset.filter(status=Subscriber.Status.ACTIVE).exclude(paused)
        if value:
            return queryset.filter(status=value)
        return queryset


class TopicInline(admin.TabularInline):
    model = Topic
    fields = ("query", "min_upvotes", "created_at")
    readonly_fields = ("created_at",)
    extra = 0


class DigestInline(admin.TabularInline):
    model = Digest
    fields = ("period_key", "status", "subject", "paper_count", "sent_at", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ("email", "status", "frequency", "delivery_hour", "timezone", "paused_until",
                    "next_digest_at", "created_at")  # fmt: skip
    list_filter = (StateFilter, "frequency", "created_at")
    search_fields = ("email", "topics__query")
    readonly_fields = ("key", "created_at", "confirmed_at", "unsubscribed_at",
                       "confirmation_sent_at", "next_digest_at", "soft_bounces")  # fmt: skip
    filter_horizontal = ("sources",)
    inlines = [TopicInline, DigestInline]
    actions = ["resend_confirmation", "send_preview", "suppress"]
    date_hierarchy = "created_at"

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False if may_have_duplicates else may_have_duplicates

    @admin.action(description="Resend the confirmation email (pending only)")
    def resend_confirmation(self, request, queryset):
        pending = queryset.filter(status=Subscriber.Status.PENDING)
        pending = list(pending.values_list("pk", flat=True))
        for pk in pending:
            tasks.send_confirmation.delay(pk)
        self.message_user(request, f"Confirmation queued for {len(pending)} subscriber(s).")

    @admin.action(description="Send a preview digest now (active only)")
    def send_preview(self, request, queryset):
        sent = sum(services.subscriber_send_preview(subscriber=s) for s in queryset)
        self.message_user(request, f"Preview queued for {sent} subscriber(s).")

    @admin.action(description="Suppress: send nothing more to these addresses")
    def suppress(self, request, queryset):
        count = 0
        for subscriber in queryset.exclude(status=Subscriber.Status.SUPPRESSED):
            services.subscriber_suppress(
                subscriber=subscriber, reason=f"suppressed by {request.user.get_username()}"
            )
            count += 1
        self.message_user(request, f"Suppressed {count} subscriber(s).", messages.WARNING)
