from django.apps import AppConfig


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digests"

    def ready(self):
        from . import bounces  # noqa: F401 - connects the anymail tracking receiver
