from django.core.management.base import BaseCommand

from digest import services


class Command(BaseCommand):
    help = "Send every digest that is due now; with --all, every active subscriber's digest now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            dest="everyone",
            help="send to every active subscriber now, whatever their schedule",
        )

    def handle(self, *args, everyone, **options):
        considered, result = services.digest_run(everyone=everyone)
        self.stdout.write(
            f"{considered} subscriber(s) considered: {result.sent} sent, "
            f"{result.empty} with nothing new, {result.retrying} to retry, "
            f"{result.failed} failed, {result.skipped} skipped"
        )
