import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")

app = Celery("marketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Processes of this worker (its --concurrency), known once it starts; job processes share
# the machine's cores among them (marketing.services.jobs.job_threads).
worker_processes: int | None = None


@worker_init.connect
def _remember_concurrency(sender=None, **_: object) -> None:
    global worker_processes
    worker_processes = getattr(sender, "concurrency", None)
