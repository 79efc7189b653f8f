from django.core.management.base import BaseCommand, CommandError

from scraper import services
from scraper.models import Source


class Command(BaseCommand):
    help = "Manage scraper sources: add, list, disable, enable."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="add|list|disable|enable")
        add = sub.add_parser("add", help="add a source")
        add.add_argument("url")
        add.add_argument(
            "--kind",
            choices=Source.Kind.values,
            help="default: guessed from the URL (feed when nothing more specific fits)",
        )
        add.add_argument("--name", help="default: the URL's host and path")
        add.add_argument("--interval", type=int, default=60, metavar="MINUTES")
        add.add_argument("--disabled", action="store_true", help="add it disabled")
        sub.add_parser("list", help="list every source with its health")
        for action in ("disable", "enable"):
            one = sub.add_parser(action, help=f"{action} a source")
            one.add_argument("source", help="the source's id or URL")

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_add(self, *, url, kind, name, interval, disabled, **options):
        try:
            source = services.source_add(
                url=url, kind=kind, name=name, interval_minutes=interval, enabled=not disabled
            )
        except services.SourceInvalid as err:
            raise CommandError(str(err)) from err
        self.stdout.write(
            f"Added source {source.pk}: {source.name} ({source.kind}, every "
            f"{source.interval_minutes} min{'' if source.enabled else ', disabled'}) {source.url}"
        )

    def handle_list(self, **options):
        sources = list(Source.objects.order_by("pk"))
        if not sources:
            self.stdout.write("No sources. Add one with: manage.py sources add URL")
            return
        for s in sources:
            if not s.enabled:
                health = "disabled"
            elif s.last_run_at is None:
                health = "never run"
            elif s.healthy:
                health = f"healthy ({s.last_status})"
            else:
                health = f"UNHEALTHY: {s.consecutive_failures} failures in a row"
            self.stdout.write(f"{s.pk:>4}  {s.kind:<9}  {s.interval_minutes:>5} min  {health}")
            self.stdout.write(f"      {s.name}: {s.url}")
            if s.last_error and not s.healthy:
                self.stdout.write(f"      last error: {s.last_error[:300]}")

    def _get(self, ref: str) -> Source:
        source = (
            Source.objects.filter(pk=int(ref)).first()
            if ref.isdigit()
            else Source.objects.filter(url=ref).first()
        )
        if source is None:
            raise CommandError(f"no source with id or URL {ref!r} (see: manage.py sources list)")
        return source

    def handle_disable(self, *, source, **options):
        found = self._get(source)
        Source.objects.filter(pk=found.pk).update(enabled=False)
        self.stdout.write(f"Disabled source {found.pk}: {found.name}")

    def handle_enable(self, *, source, **options):
        found = self._get(source)
        Source.objects.filter(pk=found.pk).update(enabled=True, next_run_at=None)
        self.stdout.write(f"Enabled source {found.pk}: {found.name}")
