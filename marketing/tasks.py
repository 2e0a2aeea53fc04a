from celery import shared_task
from django.conf import settings

from marketing.services.current_consent import current_consent_refresh_due
from marketing.services.figures import figures_refresh_all
from marketing.services.jobs import jobs_reconcile, run_job
from marketing.services.monitoring import drift_checks_start_all, retrain_schedules_run_due
from marketing.services.retention import expired_tokens_purge, retention_purge
from marketing.services.scoring_chunks import chunk_task_run

# Tasks that do a job's work: acknowledged once done, and redelivered when their worker is
# lost. Their work is taken by a conditional claim (a redelivered copy of work already taken
# is a no-op, and the sweep takes over what a lost worker held), so Celery never retries
# them. Training can take hours; the soft limit fails the work with a message before the kill.
CLAIMED_WORK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (),
    "max_retries": 0,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
}


@shared_task(name="marketing.run_job", **CLAIMED_WORK)
def run_job_task(job_id: int) -> str:
    job = run_job(job_id)
    return job.status if job else "skipped"


# Scheduled tasks that only start jobs (or do a few seconds of bookkeeping): the next scheduled
# run does what a failed one left, so they are never retried.
STARTS_JOBS = {
    "acks_late": True,
    "autoretry_for": (),
    "max_retries": 0,
    "time_limit": 300,
    "soft_time_limit": 240,
}


@shared_task(
    name="marketing.purge_expired_data",
    acks_late=True,
    # The next scheduled run does the same work; a failure shows in the worker's log.
    autoretry_for=(),
    max_retries=0,
    time_limit=2 * 3600,
    soft_time_limit=2 * 3600 - 60,
)
def purge_expired_data_task() -> dict[str, int]:
    purged = retention_purge()
    purged["expired_api_tokens"] = expired_tokens_purge()
    return purged


@shared_task(name="marketing.refresh_figures", **STARTS_JOBS)
def refresh_figures_task() -> list[int]:
    """Start counting the overview and every segment again (the jobs do the counting)."""
    return [job.pk for job in figures_refresh_all(by=None)]


@shared_task(
    name="marketing.refresh_current_consent",
    acks_late=True,
    # Runs every few minutes; the next run does what a failed one left.
    autoretry_for=(),
    max_retries=0,
    time_limit=30 * 60,
    soft_time_limit=30 * 60 - 60,
)
def refresh_current_consent_task() -> dict[str, int]:
    return current_consent_refresh_due()


@shared_task(name="marketing.reconcile_jobs", **STARTS_JOBS)
def reconcile_jobs_task() -> dict[str, int]:
    """Restart or end the jobs whose worker was lost; send again those the broker lost."""
    return jobs_reconcile()


# The run's job takes again a chunk whose task failed or whose worker was lost.
@shared_task(name="marketing.score_chunk", **CLAIMED_WORK)
def score_chunk_task(chunk_id: int) -> str:
    """Score one chunk of a scoring run (marketing.services.scoring_chunks)."""
    return chunk_task_run(chunk_id)


@shared_task(name="marketing.retrain_due", **STARTS_JOBS)
def retrain_due_task() -> list[int]:
    """Start the re-training runs whose schedules are due."""
    return retrain_schedules_run_due()


@shared_task(name="marketing.check_drift", **STARTS_JOBS)
def check_drift_task() -> list[int]:
    """Start a drift check of every model in use."""
    return [check.pk for check in drift_checks_start_all()]
