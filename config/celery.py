import gc
import os

from celery import Celery, signals

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


def collect_garbage_less_often() -> None:
    """Run the cyclic garbage collector every 50,000 allocations instead of every 700.

    A digest run allocates many short-lived objects per reader while the process holds many
    long-lived ones (the recent papers, their documents, the run's matches). At the default
    thresholds the collector ran thousands of times a run and took a fifth of its time;
    reference counting frees nearly everything anyway, so collecting less often costs little
    memory. Measured in docs/delivery.md."""
    gc.set_threshold(50_000, 10, 10)


@signals.worker_init.connect
def _worker_gc(**kwargs):
    collect_garbage_less_often()  # forked pool processes inherit it
