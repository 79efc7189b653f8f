from celery import shared_task

from . import services


@shared_task
def scrape_due_sources():
    """Beat's sweep: queue one task per source that is due and not running."""
    for source in services.sources_due():
        scrape_source.delay(source.pk)


@shared_task
def scrape_source(source_id: int):
    services.scrape_source(source_id=source_id)
