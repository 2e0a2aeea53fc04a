"""Jobs: create, enqueue, run with progress, cancel.

A job runner is a plain function ``runner(job, progress)`` registered for a job kind. It
reports progress through ``progress(percent, message)``, which also raises ``JobCancelled``
once a user asked to cancel. Status changes are conditional UPDATEs so that a job is run at
most once even when a broker redelivers it.
"""

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation

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
# The key of a job's parameters that says which Celery queue it was sent to.
QUEUE_PARAM = "queue"


class JobCancelled(Exception):
    """Raised inside a runner when the user cancelled the job."""


# Kinds whose runner starts over cleanly when its worker was lost midway (it writes in one
# transaction, or clears what an earlier attempt wrote): such a job is restarted; any other
# is ended with a message.
_RESTARTABLE: set[str] = set()
Ended = Callable[[Job, str], None]
_ENDED: dict[str, list[Ended]] = {}


def register_runner(kind: str, *, restartable: bool = False) -> Callable[[Runner], Runner]:
    def decorator(func: Runner) -> Runner:
        _RUNNERS[kind] = func
        if restartable:
            _RESTARTABLE.add(kind)
        return func

    return decorator


def register_ended(kind: str) -> Callable[[Ended], Ended]:
    """Work to do when a job of ``kind`` ends without its runner finishing it (cancelled
    while queued, or its worker lost): ``func(job, message)`` puts right what the job's
    start changed (an upload marked as importing, say)."""

    def decorator(func: Ended) -> Ended:
        _ENDED.setdefault(kind, []).append(func)
        return func

    return decorator


def _ended(job: Job, message: str) -> None:
    for func in _ENDED.get(job.kind, []):
        func(job, message)


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


def job_create_once(
    *, kind: str, title: str, params: dict[str, Any], by: Actor
) -> tuple[Job, bool]:
    """``job_create``, unless the same person asked for the same job (kind, title and
    parameters) within JOB_DUPLICATE_WINDOW_SECONDS and it has not finished: then that job,
    and False. A double click or a client's retry starts one job. Call inside the
    transaction that records the job's subject; the person's row is locked meanwhile, so
    that two requests at once are taken one after the other."""
    user = stored_user(by)
    if user is not None:
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        since = timezone.now() - timedelta(seconds=settings.JOB_DUPLICATE_WINDOW_SECONDS)
        recent = Job.objects.filter(
            kind=kind,
            title=title,
            created_by=user,
            created_at__gte=since,
            status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
        ).order_by("-pk")
        for same in recent[:20]:
            # Sending a job adds the queue it went to to its parameters.
            if {k: v for k, v in same.params.items() if k != QUEUE_PARAM} == params:
                return same, False
    return job_create(kind=kind, title=title, params=params, by=by), True


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


# The in-process queue (JOB_QUEUE=thread) has two lanes of one thread each: short jobs (a
# count, a preview, one customer's explanation) never wait behind a training run or an import.
SHORT_KINDS = frozenset(
    {
        Job.Kind.EXPLAIN,
        Job.Kind.AUDIENCE_PREVIEW,
        Job.Kind.AUDIENCE_RESULTS,
        Job.Kind.SEGMENT_COUNT,
        Job.Kind.OVERVIEW,
    }
)
_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()


def lane_of(kind: str) -> str:
    """ "short" or "long": the in-process queue's lane a job of this kind waits in."""
    return "short" if kind in SHORT_KINDS else "long"


def _in_process_executor(lane: str) -> ThreadPoolExecutor:
    with _executor_lock:
        if lane not in _executors:
            _executors[lane] = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"job-worker-{lane}"
            )
        return _executors[lane]


def _run_in_thread(job_id: int) -> None:
    try:
        run_job(job_id)
    finally:
        # The worker thread may wait long for its next job: it holds no connection meanwhile.
        connection.close()


def enqueue(job: Job) -> None:
    mode = settings.JOB_QUEUE
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(sent_at=timezone.now())
    if mode == "celery":
        from marketing.tasks import run_job_task

        queue = queue_for(job.kind)
        fields: dict[str, Any] = {"params": {**job.params, QUEUE_PARAM: queue}}
        if wants_gpu(job.kind) and queue != GPU_QUEUE:
            logger.warning(
                "job %s: no worker listens on the %r queue; sent to %r", job.pk, GPU_QUEUE, queue
            )
            fields["message"] = "Waiting for a CPU worker: no GPU worker is running"
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(**fields)
        run_job_task.apply_async(args=[job.pk], queue=queue)
    elif mode == "thread":
        _in_process_executor(lane_of(job.kind)).submit(_run_in_thread, job.pk)
    elif mode == "inline":
        run_job(job.pk)
    else:
        raise ValueError(f"JOB_QUEUE must be celery, thread or inline, not {mode!r}")


def _claim(job_id: int) -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            message="Started",
        )
    )


@contextmanager
def _heartbeat(job_id: int) -> Iterator[None]:
    """Mark the job alive every JOB_HEARTBEAT_SECONDS while the runner works, from a thread
    of its own (and its own connection), so that a long step without progress reports, or a
    long SQL statement, keeps the lease. Inside a caller's transaction (jobs run inline in
    tests) another connection could not see the row: no thread."""
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # a busy or unreachable database: the next beat again
                    logger.warning("job %s: a heartbeat failed", job_id, exc_info=True)
                    reset_broken_connection()
        finally:
            connection.close()

    beater = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join()


def _finish(job_id: int, attempt: int, **fields: Any) -> bool:
    """End this attempt's run. False, and nothing written, when the job is no longer this
    attempt's (the sweep restarted or ended it after the lease ran out)."""
    finished = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=attempt).update(
        finished_at=timezone.now(), heartbeat_at=None, **fields
    )
    if not finished:
        logger.warning("job %s: attempt %s ended after the job was taken from it", job_id, attempt)
    return bool(finished)


def make_progress(job_id: int, attempt: int | None = None) -> Progress:
    """The runner's progress report; it raises JobCancelled once the job is cancelled, or is
    no longer this ``attempt``'s (a later attempt took it over)."""
    mine = Q() if attempt is None else Q(attempts=attempt)

    def progress(percent: float, message: str = "") -> None:
        pct = max(0, min(100, int(percent)))
        updated = Job.objects.filter(
            mine, pk=job_id, status=Job.Status.RUNNING, cancel_requested=False
        ).update(progress=pct, message=message[:255], heartbeat_at=timezone.now())
        if not updated:
            raise JobCancelled()

    return progress


def job_threads() -> int:
    """CPU threads one job process may use: WORKER_THREADS, or the machine's cores shared
    among the Celery worker's processes (all of them on the in-process queue), at least 1."""
    import os

    if settings.WORKER_THREADS:
        return settings.WORKER_THREADS
    from marketing import celery

    return max(1, (os.cpu_count() or 1) // max(1, celery.worker_processes or 1))


def reset_broken_connection() -> None:
    """After a database error outside any transaction: a connection the server cut is closed,
    so that the next query (recording the failure) opens a new one."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def failure_message(exc: BaseException, job_id: int) -> str:
    """What the job's page says of a failure. A database error's text is the driver's (and
    may quote values): people read what happened, staff find the text on the job's error."""
    if isinstance(exc, DatabaseError):
        return (
            f"The job stopped on a database error ({type(exc).__name__}): the connection to the "
            f"database was lost or a statement failed. Start it again; if it fails again, an "
            f"administrator finds the details on job {job_id}."
        )
    return str(exc)


def run_job(job_id: int) -> Job | None:
    """Run one job to its end; returns the finished row (None when another worker has it).

    It runs in English whoever started it (a job run inline runs in the request's thread):
    what it stores (messages, titles of the jobs it starts) is English, and pages translate
    it where they show it (``marketing.stored_texts``)."""
    with translation.override("en"):
        return _run_job(job_id)


def _run_job(job_id: int) -> Job | None:
    if not _claim(job_id):
        logger.info("job %s not claimed: already taken or not queued", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    attempt = job.attempts
    runner = _RUNNERS.get(job.kind)
    try:
        if runner is None:
            raise LookupError(f"No runner registered for job kind {job.kind!r}")
        with _heartbeat(job_id):
            result = runner(job, make_progress(job_id, attempt)) or {}
    except JobCancelled:
        _finish(job_id, attempt, status=Job.Status.CANCELLED, message="Cancelled")
    except Exception as exc:  # the job row must record any failure, whatever it is
        if isinstance(exc, DatabaseError):
            reset_broken_connection()
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
            attempt,
            status=Job.Status.FAILED,
            message=failure_message(exc, job_id)[:255],
            error=f"{type(exc).__name__}: {exc}"[:20000],
        )
    else:
        done = _finish(
            job_id,
            attempt,
            status=Job.Status.SUCCEEDED,
            progress=100,
            message="Done",
            result=result,
        )
        for follow_up in _FOLLOW_UPS.get(job.kind, []) if done else []:
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
    """Ask a job to stop. A queued job stops at once, and so does a running one whose worker
    was lost (its lease ran out); a running one stops at its next progress call."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        message=CANCELLED_QUEUED,
    ):
        _ended(job, CANCELLED_QUEUED)
    elif (
        _orphans(now)
        .filter(pk=job.pk)
        .update(
            status=Job.Status.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            message=CANCELLED_ORPHAN,
        )
    ):
        _ended(job, CANCELLED_ORPHAN)
    else:
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            cancel_requested=True, message="Cancelling"
        )
    job.refresh_from_db()
    return job


# ---- jobs that lost their worker, and jobs the broker lost ------------------------------------

CANCELLED_QUEUED = "Cancelled before it started"
CANCELLED_ORPHAN = "Cancelled (its worker had stopped)"
RESTARTING = "Its worker stopped before the job finished: restarting"


def _worker_lost(job: Job) -> str:
    if job.kind in _RESTARTABLE:
        return (
            f"Its worker stopped before the job finished, {job.attempts} times (a worker or "
            "its machine was restarted or ran out of memory); it is not restarted again. "
            "Start it again once the workers are healthy."
        )
    return (
        "Its worker stopped before the job finished (a worker or its machine was restarted "
        "or ran out of memory). Start it again."
    )


def _orphans(now):
    """Running jobs whose lease has run out: no sign of their worker for JOB_LEASE_SECONDS."""
    stale = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )


def jobs_reconcile(*, resend: bool = True) -> dict[str, int]:
    """Put right the jobs that workers or the broker lost (celery beat runs it every
    JOB_SWEEP_SECONDS; the in-process queue has a thread of its own for it):

    - a running job whose lease ran out is restarted when its kind can start over and it has
      runs left (JOB_MAX_ATTEMPTS), cancelled when someone asked to cancel it, and otherwise
      failed with a message; never left running;
    - with ``resend``, a job queued for JOB_RESEND_AFTER_SECONDS without a worker taking it
      is sent to the queue again (a copy that arrives after another took it does nothing).

    Each change is a conditional UPDATE on what was read, so that two sweeps, or a sweep and
    a late worker, never both act on one job.
    """
    now = timezone.now()
    counts = {"restarted": 0, "failed": 0, "cancelled": 0, "resent": 0}
    for job in _orphans(now).only(
        "id", "kind", "params", "attempts", "cancel_requested", "heartbeat_at"
    ):
        fields: dict[str, Any]
        if job.cancel_requested:
            outcome, fields = "cancelled", {"status": Job.Status.CANCELLED}
            message = CANCELLED_ORPHAN
        elif job.kind in _RESTARTABLE and job.attempts < settings.JOB_MAX_ATTEMPTS:
            outcome, fields = "restarted", {"status": Job.Status.QUEUED, "progress": 0}
            message = RESTARTING
        else:
            outcome, fields = "failed", {"status": Job.Status.FAILED}
            message = _worker_lost(job)
        if outcome != "restarted":
            fields["finished_at"] = now
        changed = Job.objects.filter(
            pk=job.pk, status=Job.Status.RUNNING, heartbeat_at=job.heartbeat_at
        ).update(message=message, heartbeat_at=None, **fields)
        if not changed:
            continue
        counts[outcome] += 1
        logger.warning("job %s (%s) lost its worker: %s", job.pk, job.kind, outcome)
        if outcome == "restarted":
            enqueue(job)
        else:
            _ended(job, message)
    if resend:
        waited = now - timedelta(seconds=settings.JOB_RESEND_AFTER_SECONDS)
        lost = Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False).filter(
            Q(sent_at__lt=waited) | Q(sent_at__isnull=True, created_at__lt=waited)
        )
        for job in lost.only("id", "kind", "params", "sent_at"):
            if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, sent_at=job.sent_at).update(
                sent_at=now
            ):
                logger.warning("job %s (%s) queued too long: sent again", job.pk, job.kind)
                enqueue(job)
                counts["resent"] += 1
    return counts


_sweeper: threading.Thread | None = None
_sweeper_stop = threading.Event()


def in_process_sweeper_start() -> None:
    """The in-process queue's sweep, on a thread of this process (once; the web server
    starts it, see marketing/wsgi.py). Its first run takes
    over what an earlier server process left: jobs queued in its memory, and jobs it was
    running. Later runs only look for lost runs: this process holds its own queue."""
    global _sweeper
    with _executor_lock:
        if _sweeper is not None:
            return
        _sweeper_stop.clear()
        _sweeper = threading.Thread(target=_sweep_in_process, name="job-sweeper", daemon=True)
    _sweeper.start()


def in_process_sweeper_stop() -> None:
    """Stop the sweep thread (tests; a server's ends with its process)."""
    global _sweeper
    with _executor_lock:
        sweeper, _sweeper = _sweeper, None
    if sweeper is not None:
        _sweeper_stop.set()
        sweeper.join()


def _sweep_in_process() -> None:
    first = True
    while not _sweeper_stop.is_set():
        try:
            if first:
                _requeue_all_waiting()
            jobs_reconcile(resend=False)
            first = False
        except Exception:
            logger.exception("the in-process job sweep failed; it runs again")
        finally:
            close_old_connections()
        _sweeper_stop.wait(settings.JOB_SWEEP_SECONDS)
    connection.close()


def _requeue_all_waiting() -> None:
    for job in Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False).only(
        "id", "kind", "params"
    ):
        enqueue(job)
