import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
application = get_wsgi_application()


def _start_in_process_jobs() -> None:
    """With the in-process queue, a (re)started server takes over at once the jobs an
    earlier server process left queued or running, without waiting for a new job."""
    from django.conf import settings

    if settings.JOB_QUEUE == "thread":
        from marketing.services.jobs import in_process_sweeper_start

        in_process_sweeper_start()


_start_in_process_jobs()
