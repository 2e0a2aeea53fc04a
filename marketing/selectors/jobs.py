"""What a person waiting for a job wants to know: what is ahead of it in the queue, and
about how long it has left at the pace its own progress shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from marketing.models import Job
from marketing.services.jobs import QUEUE_PARAM, lane_of

# The pace of a running job is read once it has run this long and done this much.
MIN_ELAPSED_S = 5
MIN_PROGRESS = 2
# Jobs ahead that are named one by one.
NAMED_AHEAD = 3
# Unfinished jobs read at most (a queue is short; this bounds a pile-up of stale ones).
MAX_READ = 500


@dataclass
class JobOutlook:
    # Unfinished jobs that the same worker takes before this one (queued jobs only).
    ahead: int = 0
    # Seconds left: this job's own (running) or, when queued, those of the running jobs
    # ahead (None when no pace is known yet).
    seconds_left: int | None = None
    # Whether jobs ahead have no estimate, so the wait is longer than seconds_left.
    at_least: bool = False
    ahead_names: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """In English, as the API answers it; pages translate it (``marketing.stored_texts``)."""
        if self.ahead_names or self.ahead:
            names = "; ".join(self.ahead_names)
            more = self.ahead - len(self.ahead_names)
            if more > 0:
                names += f"; {more} more"
            jobs = "job" if self.ahead == 1 else "jobs"
            wait = ""
            if self.seconds_left is not None:
                wait = f" · {'at least ' if self.at_least else 'about '}"
                wait += f"{duration_words(self.seconds_left)} before it starts"
            return f"Waiting: {self.ahead} {jobs} ahead ({names}){wait}"
        if self.seconds_left is not None:
            return f"About {duration_words(self.seconds_left)} left at the current pace"
        return ""


def duration_words(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return "under a minute" if seconds >= 30 else f"{max(seconds, 1)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def seconds_left(job: Job, now: datetime | None = None) -> int | None:
    """A running job's time left at the pace of its progress so far; None before that pace
    can be read."""
    if job.status != Job.Status.RUNNING or job.started_at is None:
        return None
    elapsed = ((now or timezone.now()) - job.started_at).total_seconds()
    if elapsed < MIN_ELAPSED_S or job.progress < MIN_PROGRESS:
        return None
    return int(elapsed * (100 - job.progress) / job.progress)


def _same_worker(job: Job) -> dict[str, str]:
    if settings.JOB_QUEUE == "celery":
        return {"queue": str(job.params.get(QUEUE_PARAM, settings.CELERY_TASK_DEFAULT_QUEUE))}
    return {"lane": lane_of(job.kind)}


def job_outlook(job: Job) -> JobOutlook:
    """The outlook of one job. A queued job reads the unfinished jobs created before it (one
    query on the status index; unfinished jobs are few, whatever the size of the base)."""
    now = timezone.now()
    if job.status == Job.Status.RUNNING:
        return JobOutlook(seconds_left=seconds_left(job, now))
    if job.status != Job.Status.QUEUED or settings.JOB_QUEUE == "inline":
        return JobOutlook()
    worker = _same_worker(job)
    earlier = (
        Job.objects.filter(
            status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
            created_at__lte=job.created_at,
        )
        .exclude(pk=job.pk)
        .only("id", "kind", "title", "status", "progress", "params", "created_at", "started_at")
        .order_by("created_at", "id")[:MAX_READ]
    )
    outlook = JobOutlook()
    known = 0
    for other in earlier:
        if other.pk > job.pk and other.created_at == job.created_at:
            continue
        if _same_worker(other) != worker:
            continue
        outlook.ahead += 1
        left = seconds_left(other, now)
        if left is None:
            outlook.at_least = True
        else:
            known += left
        if len(outlook.ahead_names) < NAMED_AHEAD:
            state = (
                f"{other.progress} %"
                + (f", about {duration_words(left)} left" if left is not None else "")
                if other.status == Job.Status.RUNNING
                else "waiting"
            )
            outlook.ahead_names.append(f"{other.stored_title} – {state}")
    if known:
        outlook.seconds_left = known
    return outlook
