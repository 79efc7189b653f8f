from django.contrib import admin

from .models import DeliveryEvent, Digest, OutboxMessage


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("subscriber", "period_key", "status", "paper_count", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("subscriber__email", "period_key", "message_id", "provider_message_id")
    list_select_related = ("subscriber",)
    readonly_fields = [f.name for f in Digest._meta.fields]
    date_hierarchy = "created_at"


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event_type", "recipient", "reject_reason", "processed_at")
    list_filter = ("event_type",)
    search_fields = ("recipient", "event_id", "message_id")
    readonly_fields = [f.name for f in DeliveryEvent._meta.fields]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to", "subject")
    search_fields = ("to", "subject")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
