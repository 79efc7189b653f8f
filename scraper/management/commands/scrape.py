from django.core.management.base import BaseCommand, CommandError

from scraper import services
from scraper.models import ScrapeRun, Source


class Command(BaseCommand):
    help = "Fetch the given URLs once (or every enabled source) and store their papers."

    def add_arguments(self, parser):
        parser.add_argument("urls", nargs="*", metavar="URL")

    def handle(self, *args, urls, **options):
        if urls:
            runs = [services.scrape_url(url=url) for url in urls]
        else:
            sources = list(Source.objects.filter(enabled=True))
            if not sources:
                self.stdout.write("No enabled sources. Add one in the admin, or pass a URL.")
            runs = [services.scrape_url(url=s.url, source=s) for s in sources]
        failed = 0
        for run in runs:
            if run.status == ScrapeRun.Status.FAILED:
                failed += 1
                self.stderr.write(f"{run.url}: error: {run.error}")
            else:
                self.stdout.write(
                    f"{run.url}: fetched {run.fetched}, new {run.new}, updated {run.updated}"
                    + (f" ({run.get_status_display()})" if run.status != "ok" else "")
                )
        if failed:
            raise CommandError(f"{failed} of {len(runs)} failed", returncode=1)
