from celery import shared_task

from marketing.services.jobs import run_job


@shared_task(
    name="marketing.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    # Jobs are idempotent by their conditional claim; a redelivered one is a no-op.
    autoretry_for=(),
    max_retries=0,
)
def run_job_task(job_id: int) -> str:
    job = run_job(job_id)
    return job.status if job else "skipped"
