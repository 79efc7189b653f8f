import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("paperboy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _use_embedded_redis_when_unset(sender, **kwargs):
    """Without REDIS_URL, start (or join) an embedded Redis under var/ so that `make run`
    needs no server. Every process that opens the same file shares one server."""
    from django.conf import settings

    if settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from config.embedded_redis import broker_url, embedded_redis_url

    sender.conf.broker_url = broker_url(embedded_redis_url())
