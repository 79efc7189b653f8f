import django.db.models.deletion
from django.db import migrations, models


def leave_room_for_updates(apps, schema_editor):
    """A digest row is updated twice right after it is written (claimed, then sent). With
    room left in its page and no index on the columns those updates change, PostgreSQL
    writes each new version beside the old one (a HOT update) and touches no index."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE digest_digest SET (fillfactor = 50)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE digest_digest RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("digest", "0003_digest_papers"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="digest",
            name="digest_dige_status_618dd4_idx",
        ),
        migrations.AlterField(
            model_name="digest",
            name="subscriber",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="digests",
                to="subscriptions.subscriber",
            ),
        ),
        migrations.RunPython(leave_room_for_updates, fill_pages),
    ]
