"""A digest's papers move from one DigestItem row each into two JSON fields of the digest."""

from django.db import migrations, models


def items_to_digests(apps, schema_editor):
    Digest = apps.get_model("digest", "Digest")
    DigestItem = apps.get_model("digest", "DigestItem")
    for digest in Digest.objects.filter(pk__in=DigestItem.objects.values("digest_id")):
        items = list(DigestItem.objects.filter(digest=digest).order_by("rank"))
        topics = list(dict.fromkeys(t for i in items for t in i.topics))
        terms = sorted({t for i in items for t in i.terms})
        digest.papers = {
            "topics": topics,
            "terms": terms,
            "items": [
                [i.paper_id, [topics.index(t) for t in i.topics], [terms.index(t) for t in i.terms]]
                for i in items
            ],
        }
        digest.paper_ids = [i.paper_id for i in items]
        digest.save(update_fields=["papers", "paper_ids"])


class Migration(migrations.Migration):
    dependencies = [
        ("digest", "0002_deliveryevent_digest_run_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="digest",
            name="papers",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="digest",
            name="paper_ids",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(items_to_digests, migrations.RunPython.noop),
        migrations.DeleteModel(name="DigestItem"),
    ]
