"""Jobs: create, enqueue, run with progress, cancel.

A job runner is a plain function ``runner(job, progress)`` registered for a job kind. It
reports progress through ``progress(percent, message)``, which also raises ``JobCancelled``
once a user asked to cancel. Status changes are conditional UPDATEs so that a job is run at
most once even when a broker redelivers it.
"""

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from marketing.models import Job
from marketing.services.audit import Actor, stored_user

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Runner = Callable[[Job, Progress], dict[str, Any] | None]

_RUNNERS: dict[str, Runner] = {}
FollowUp = Callable[[Job], None]
_FOLLOW_UPS: dict[str, list[FollowUp]] = {}
# Queue per kind when a GPU worker exists (training and scoring want the accelerator).
GPU_KINDS = {Job.Kind.TRAIN, Job.Kind.SCORE, Job.Kind.EXPLAIN}


class JobCancelled(Exception):
    """Raised inside a runner when the user cancelled the job."""


def register_runner(kind: str) -> Callable[[Runner], Runner]:
    def decorator(func: Runner) -> Runner:
        _RUNNERS[kind] = func
        return func

    return decorator


def register_follow_up(kind: str) -> Callable[[FollowUp], FollowUp]:
    """Work to start once a job of ``kind`` has succeeded (after its row says so, so that the
    work it starts sees a finished job)."""

    def decorator(func: FollowUp) -> FollowUp:
        _FOLLOW_UPS.setdefault(kind, []).append(func)
        return func

    return decorator


def job_create(*, kind: str, title: str, params: dict[str, Any], by: Actor) -> Job:
    """Create a job and enqueue it once the surrounding transaction commits."""
    job = Job.objects.create(
        kind=kind,
        title=title,
        params=params,
        created_by=stored_user(by),
        message="Waiting for a worker",
    )
    transaction.on_commit(lambda: enqueue(job))
    return job


GPU_QUEUE = "gpu"
# How long one look at the workers' queues is trusted (seconds), and its cache key.
GPU_PROBE_TTL_S = 60
GPU_PROBE_KEY = "jobs:gpu-worker-listening"


def gpu_worker_listening() -> bool:
    """Whether a Celery worker consumes the GPU queue now: asked of the running workers
    (they answer within settings.GPU_PROBE_TIMEOUT_S), the answer kept GPU_PROBE_TTL_S."""
    from django.core.cache import cache

    listening = cache.get(GPU_PROBE_KEY)
    if listening is None:
        from marketing.celery import app

        replies = app.control.inspect(timeout=settings.GPU_PROBE_TIMEOUT_S).active_queues()
        listening = any(
            queue.get("name") == GPU_QUEUE
            for queues in (replies or {}).values()
            for queue in queues
        )
        cache.set(GPU_PROBE_KEY, listening, GPU_PROBE_TTL_S)
    return listening


def wants_gpu(kind: str) -> bool:
    """Whether jobs of this kind should run on a GPU worker when one is running."""
    return settings.USE_GPU and kind in GPU_KINDS


def queue_for(kind: str) -> str:
    """Training, scoring and explanations go to a GPU worker when USE_GPU is set and one is
    running, to the default queue (CPU workers) otherwise; everything else to the default."""
    if wants_gpu(kind) and gpu_worker_listening():
        return GPU_QUEUE
    return settings.CELERY_TASK_DEFAULT_QUEUE


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _in_process_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-worker")
        return _executor


def _run_in_thread(job_id: int) -> None:
    try:
        run_job(job_id)
    finally:
        close_old_connections()


def enqueue(job: Job) -> None:
    mode = settings.JOB_QUEUE
    if mode == "celery":
        from marketing.tasks import run_job_task

        queue = queue_for(job.kind)
        fields: dict[str, Any] = {"params": {**job.params, "queue": queue}}
        if wants_gpu(job.kind) and queue != GPU_QUEUE:
            logger.warning(
                "job %s: no worker listens on the %r queue; sent to %r", job.pk, GPU_QUEUE, queue
            )
            fields["message"] = "Waiting for a CPU worker: no GPU worker is running"
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(**fields)
        run_job_task.apply_async(args=[job.pk], queue=queue)
    elif mode == "thread":
        _in_process_executor().submit(_run_in_thread, job.pk)
    elif mode == "inline":
        run_job(job.pk)
    else:
        raise ValueError(f"JOB_QUEUE must be celery, thread or inline, not {mode!r}")


def _claim(job_id: int) -> bool:
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=timezone.now(), message="Started"
        )
    )


def _finish(job_id: int, **fields: Any) -> None:
    Job.objects.filter(pk=job_id).update(finished_at=timezone.now(), **fields)


def make_progress(job_id: int) -> Progress:
    def progress(percent: float, message: str = "") -> None:
        pct = max(0, min(100, int(percent)))
        updated = Job.objects.filter(
            pk=job_id, status=Job.Status.RUNNING, cancel_requested=False
        ).update(progress=pct, message=message[:255])
        if not updated:
            raise JobCancelled()

    return progress


def run_job(job_id: int) -> Job | None:
    """Run one job to its end; returns the finished row (None when another worker has it)."""
    if not _claim(job_id):
        logger.info("job %s not claimed: already taken or not queued", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    runner = _RUNNERS.get(job.kind)
    try:
        if runner is None:
            raise LookupError(f"No runner registered for job kind {job.kind!r}")
        result = runner(job, make_progress(job_id)) or {}
    except JobCancelled:
        _finish(job_id, status=Job.Status.CANCELLED, message="Cancelled")
    except Exception as exc:  # the job row must record any failure, whatever it is
        # The log gets where it failed (the stack, for the operator) but no exception's message:
        # messages may quote the rows being processed, and a log cannot be erased. The row
        # keeps the readable message, where an erasure reaches it; never the traceback.
        logger.error(
            "job %s (%s) failed with %s; its error is on the job row\n%s",
            job_id,
            job.kind,
            type(exc).__name__,
            stack_without_messages(exc),
        )
        _finish(
            job_id,
            status=Job.Status.FAILED,
            message=str(exc)[:255],
            error=f"{type(exc).__name__}: {exc}"[:20000],
        )
    else:
        _finish(job_id, status=Job.Status.SUCCEEDED, progress=100, message="Done", result=result)
        for follow_up in _FOLLOW_UPS.get(job.kind, []):
            follow_up(job)
    return Job.objects.get(pk=job_id)


def stack_without_messages(exc: BaseException) -> str:
    """The frames of ``exc`` and of the exceptions that caused it (file, line and function),
    each closed by its type's name alone: no message, no source line, no local value."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # Where, not what: a frame's source line can hold a literal value too.
        frames = "".join(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(current.__traceback__)
        )
        parts.append(f"{frames}{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    return "\nwhich was raised while handling:\n".join(parts)


def job_cancel(*, job: Job, by: Actor) -> Job:
    """Ask a job to stop. A queued job stops at once; a running one at its next progress call."""
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED,
        cancel_requested=True,
        finished_at=timezone.now(),
        message="Cancelled before it started",
    )
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        cancel_requested=True, message="Cancelling"
    )
    job.refresh_from_db()
    return job
