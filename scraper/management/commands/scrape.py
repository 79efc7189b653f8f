from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scraper import services
from scraper.models import ScrapeRun, Source


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from err


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Command(BaseCommand):
    help = (
        "Fetch the given URLs once (or every enabled source) and store their papers. With "
        "--since, walk the Hugging Face date pages day by day instead (resumable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("urls", nargs="*", metavar="URL")
        parser.add_argument(
            "--since", metavar="YYYY-MM-DD", help="backfill Hugging Face date pages from this day"
        )
        parser.add_argument("--until", metavar="YYYY-MM-DD", help="last day of the backfill")
        parser.add_argument(
            "--restart", action="store_true", help="start the backfill over from --since"
        )

    def handle(self, *args, urls, since, until, restart, **options):
        if since:
            if urls:
                raise CommandError("pass either URLs or --since, not both")
            return self.backfill(since, until, restart)
        if until or restart:
            raise CommandError("--until and --restart go with --since")
        if urls:
            runs = [services.scrape_url(url=url) for url in urls]
        else:
            sources = list(Source.objects.filter(enabled=True))
            if not sources:
                self.stdout.write("No enabled sources. Add one in the admin, or pass a URL.")
            runs = [services.scrape_source(source_id=s.pk) for s in sources]
        failed = 0
        for run in filter(None, runs):
            if run.status == ScrapeRun.Status.FAILED:
                failed += 1
                self.stderr.write(f"{run.url}: error: {run.error}")
            else:
                self.stdout.write(self.summary(run))
        if failed:
            raise CommandError(f"{failed} of {len(runs)} failed", returncode=1)

    @staticmethod
    def summary(run: ScrapeRun) -> str:
        line = f"{run.url}: fetched {run.fetched}, new {run.new}, updated {run.updated}"
        if run.status != ScrapeRun.Status.OK:
            line += f" ({run.get_status_display()})"
        return line

    def backfill(self, since_text: str, until_text: str | None, restart: bool):
        since = _date(since_text)
        until = _date(until_text) if until_text else timezone.now().date()
        if since > until:
            raise CommandError(f"--since {since} is after --until {until}")
        state = services.backfill_position(since=since, until=until, restart=restart)
        if state.next_date > since:
            self.stdout.write(f"Resuming the backfill at {state.next_date} (--restart to redo).")

        def on_day(day: services.BackfillDay):
            run = day.run
            if run.status == ScrapeRun.Status.FAILED:
                self.stderr.write(f"{_bar(day.index, day.total)} {day.day}: error: {run.error}")
            else:
                self.stdout.write(f"{_bar(day.index, day.total)} {self.summary(run)}")
            self.stdout.flush()

        state, runs = services.backfill_hf(since=since, until=until, on_day=on_day)
        if state.finished_at is None:
            raise CommandError(
                f"backfill stopped at {state.next_date}; run the same command again to resume",
                returncode=1,
            )
        new = sum(r.new for r in runs)
        self.stdout.write(f"Backfill {since} → {until} done: {new} new papers.")
        failed = [r for r in runs if r.status == ScrapeRun.Status.FAILED]
        if failed:
            raise CommandError(
                f"{len(failed)} day(s) could not be fetched and were passed (see the errors "
                "above and Scrape runs)",
                returncode=1,
            )
