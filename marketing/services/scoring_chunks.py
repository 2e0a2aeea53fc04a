"""A scoring run in chunks that any number of workers score in parallel.

The run's job plans the chunks (consecutive ranges of consented customer ids, about
SCORING_CHUNK_ROWS rows each), sends one Celery task per chunk, and then takes chunks itself
until none is left, so a run finishes on a single worker too. Each chunk is held by one
attempt at a time:

- it is taken by a conditional UPDATE (queued, failed with attempts left, or running with an
  expired lease), which counts the attempt;
- its scores are written in one transaction together with its "done", after locking the
  chunk and checking that this attempt still holds it; a rerun therefore writes each row once,
  and an attempt that lost its chunk writes nothing;
- it reports progress (its lease) after every batch; a chunk whose worker was lost is taken
  again once its lease has run out, and a failed chunk is taken again alone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from marketing.bulkwrite import append_rows
from marketing.models import (
    Customer,
    CustomerScore,
    Job,
    Offer,
    Purpose,
    ScoringChunk,
    ScoringRun,
)
from marketing.selectors.consent import customers_with_consent
from marketing.services.jobs import JobCancelled, job_threads, reset_broken_connection
from marketing.services.model_inputs import offer_columns, population
from marketing.services.scorers import ScoringModel, customer_row, scoring_model

logger = logging.getLogger(__name__)

Chunk = ScoringChunk
# Rows handed to the scorer at once (and between two lease renewals).
BATCH_ROWS = 2000
FINE_BINS = 1000
# How often the run's job looks at chunks that other workers score.
POLL_SECONDS = 0.5
# How often a chunk being scored renews its lease (and the run's job reports its progress):
# each is a write, so not after every batch of a fast scorer.
RENEW_SECONDS = 2.0


class ChunkLost(Exception):
    """The chunk is no longer this attempt's: its lease ran out and another attempt took it,
    or the run was cancelled or failed meanwhile."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def chunks_plan(scoring: ScoringRun, consented: QuerySet[Customer], offers: int) -> int:
    """Split the consented customers into chunks of about SCORING_CHUNK_ROWS rows (``offers``
    rows per customer), in id order, with one set-based query; returns how many."""
    size = max(1, settings.SCORING_CHUNK_ROWS // max(1, offers))
    sql, params = consented.order_by().values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MIN(members.id), MAX(members.id) FROM ("
            " SELECT ranked.id, (ROW_NUMBER() OVER (ORDER BY ranked.id) - 1) / %s AS part"
            f" FROM ({sql}) AS ranked) AS members GROUP BY members.part ORDER BY members.part",
            [size, *params],
        )
        bounds = cursor.fetchall()
    ScoringChunk.objects.bulk_create(
        ScoringChunk(scoring_run=scoring, number=number, first_customer=low, last_customer=high)
        for number, (low, high) in enumerate(bounds, start=1)
    )
    return len(bounds)


def _lease_expired() -> Q:
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return Q(status=Chunk.Status.RUNNING) & (
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    )


def _takeable() -> Q:
    return (
        Q(status=Chunk.Status.QUEUED)
        | Q(status=Chunk.Status.FAILED, attempts__lt=settings.JOB_MAX_ATTEMPTS)
        | (_lease_expired() & Q(attempts__lt=settings.JOB_MAX_ATTEMPTS))
    )


def chunk_claim(scoring_run_id: int, chunk_id: int | None = None) -> ScoringChunk | None:
    """Take a chunk of the run (``chunk_id``, or the first takeable one) for a new attempt."""
    candidates = ScoringChunk.objects.filter(_takeable(), scoring_run_id=scoring_run_id)
    if chunk_id is not None:
        candidates = candidates.filter(pk=chunk_id)
    for chunk in candidates.order_by("number").only("id", "status", "attempts")[:8]:
        taken = ScoringChunk.objects.filter(
            pk=chunk.pk, status=chunk.status, attempts=chunk.attempts
        ).update(
            status=Chunk.Status.RUNNING,
            attempts=F("attempts") + 1,
            heartbeat_at=timezone.now(),
            started_at=timezone.now(),
            rows_scored=0,
            worker=worker_name(),
            error="",
        )
        if taken:
            return ScoringChunk.objects.get(pk=chunk.pk)
    return None


@dataclass
class ChunkState:
    """Where a run's chunks stand."""

    total: int
    done: int
    rows_scored: int
    # A chunk that failed on every attempt it had (its error), if any.
    failed_for_good: ScoringChunk | None

    @property
    def finished(self) -> bool:
        """Every part is done (a run without a consented customer has none)."""
        return self.done == self.total


def chunks_state(scoring_run_id: int) -> ChunkState:
    chunks = ScoringChunk.objects.filter(scoring_run_id=scoring_run_id)
    figures = chunks.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=Chunk.Status.DONE)),
        rows=Sum("rows_scored"),
    )
    spent = Q(attempts__gte=settings.JOB_MAX_ATTEMPTS) & (
        Q(status=Chunk.Status.FAILED) | _lease_expired()
    )
    return ChunkState(
        total=figures["total"],
        done=figures["done"],
        rows_scored=figures["rows"] or 0,
        failed_for_good=chunks.filter(spent).order_by("number").first(),
    )


def chunks_abandon(scoring_run_id: int) -> None:
    """A cancelled or failed run keeps nothing: its chunks stop (an attempt still scoring one
    writes nothing), and the scores of those done are deleted."""
    ScoringChunk.objects.filter(scoring_run_id=scoring_run_id).exclude(
        status=Chunk.Status.CANCELLED
    ).update(status=Chunk.Status.CANCELLED, heartbeat_at=None)
    CustomerScore.objects.filter(scoring_run_id=scoring_run_id).delete()
    ScoringRun.objects.filter(pk=scoring_run_id).update(rows_scored=0, customers_scored=0)


# ---- scoring one chunk ------------------------------------------------------------------------

_models: dict[tuple[str, str], ScoringModel] = {}
_models_lock = threading.Lock()


def _model_for(scoring: ScoringRun) -> ScoringModel:
    """(scorer, text values the model learned, the customers it learned from) for the run,
    kept for the next chunk of the same model in this process (one model at a time)."""
    from recengine.config import pick_device
    from recengine.score import limit_threads

    key = (scoring.training_run.model_id, scoring.scorer)
    with _models_lock:
        if key not in _models:
            _models.clear()
            _models[key] = scoring_model(scoring.training_run, scoring.scorer, device=pick_device())
        loaded = _models[key]
    limit_threads(loaded.model, job_threads())
    return loaded


def _scoring_run(scoring_run_id: int) -> ScoringRun:
    return ScoringRun.objects.select_related("training_run__offer", "segment").get(
        pk=scoring_run_id
    )


def chunk_score(chunk: ScoringChunk, on_batch: Callable[[], None] | None = None) -> int:
    """Score the chunk for the attempt that holds it and write its scores with its "done";
    returns the rows written. Raises ``ChunkLost`` when the chunk was taken from it."""
    import numpy as np

    from recengine.score import ScoreConfig, score_in_chunks

    attempt = chunk.attempts
    mine = ScoringChunk.objects.filter(pk=chunk.pk, status=Chunk.Status.RUNNING, attempts=attempt)
    scoring = _scoring_run(chunk.scoring_run_id)
    training = scoring.training_run
    loaded = _model_for(scoring)
    offers = [training.offer] if training.offer else list(Offer.objects.filter(active=True))
    multi_offer = training.offer is None
    members = population(scoring.segment).filter(
        pk__gte=chunk.first_customer, pk__lte=chunk.last_customer
    )
    consented = customers_with_consent(Purpose.PROFILING, queryset=members)
    # Keys of the rows handed to the scorer, in order; score_in_chunks reads exactly one batch
    # of rows before it yields that batch's scores.
    keys: deque[tuple[int, int | None]] = deque()
    customers = 0

    def pages() -> Iterator[list[tuple[int, str, Any]]]:
        """The chunk's customers, a batch at a time, each batch its own short query (keyset on
        the primary key), so that no read stays open while scores are computed: on SQLite an
        open read keeps every other connection from writing (the job's heartbeat thread), and
        this attempt's own progress write then deadlocks with it ("database is locked").
        Read with a plain cursor: a profile is parsed once, without the ORM's per-row work."""
        after = chunk.first_customer - 1
        while True:
            sql, params = (
                consented.filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", "pseudonym", "attributes")[:BATCH_ROWS]
                .query.sql_with_params()
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                page = cursor.fetchall()
            if page:
                yield page
            if len(page) < BATCH_ROWS:
                return
            after = page[-1][0]

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal customers
        for profiles in pages():
            for customer_id, pseudonym, attributes in profiles:
                customers += 1
                row = customer_row(attributes, loaded, customer_id=customer_id, pseudonym=pseudonym)
                for offer in offers:
                    keys.append((customer_id, offer.pk))
                    yield {**row, **(offer_columns(offer) if multi_offer else {})}

    written: list[tuple[int, int, int | None, float]] = []
    fine = np.zeros(FINE_BINS, dtype=np.int64)
    score_sum = 0.0
    renewed = time.monotonic()
    for scores in score_in_chunks(loaded.model, rows(), ScoreConfig(chunk_size=BATCH_ROWS)):
        batch = [keys.popleft() for _ in range(len(scores))]
        written.extend(
            (scoring.pk, customer_id, offer_id, float(score))
            for (customer_id, offer_id), score in zip(batch, scores, strict=True)
        )
        fine += np.histogram(scores, bins=FINE_BINS, range=(0.0, 1.0))[0]
        score_sum += float(scores.sum())
        if time.monotonic() - renewed < RENEW_SECONDS:
            continue
        renewed = time.monotonic()
        if not mine.update(rows_scored=len(written), heartbeat_at=timezone.now()):
            raise ChunkLost()
        if on_batch is not None:
            on_batch()
    with transaction.atomic():
        if not mine.select_for_update().exists():
            raise ChunkLost()
        if connection.vendor == "postgresql":
            # The commit does not wait for the disk: should the database crash just after,
            # the chunk's scores and its "done" are lost together, and the chunk is scored
            # again once its lease runs out. Its rows are many; meanwhile the next chunk is
            # being scored.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        append_rows(CustomerScore, ["scoring_run", "customer", "offer", "score"], written)
        mine.update(
            status=Chunk.Status.DONE,
            rows_scored=len(written),
            customers_scored=customers,
            score_sum=score_sum,
            histogram={str(i): int(fine[i]) for i in np.flatnonzero(fine)},
            heartbeat_at=None,
            finished_at=timezone.now(),
        )
    return len(written)


def chunk_fail(chunk: ScoringChunk, exc: BaseException) -> None:
    """Record that this attempt failed; the chunk is taken again while it has attempts left."""
    if isinstance(exc, DatabaseError):
        reset_broken_connection()
    logger.warning(
        "scoring chunk %s (run %s) attempt %s failed with %s",
        chunk.number,
        chunk.scoring_run_id,
        chunk.attempts,
        type(exc).__name__,
    )
    ScoringChunk.objects.filter(
        pk=chunk.pk, status=Chunk.Status.RUNNING, attempts=chunk.attempts
    ).update(
        status=Chunk.Status.FAILED,
        heartbeat_at=None,
        error=f"{type(exc).__name__}: {exc}"[:2000],
    )


def chunk_task_run(chunk_id: int) -> str:
    """What a worker does with one chunk's task: score it if it is still to do and its run's
    job is running (a task that arrives late, after another worker took the chunk, does
    nothing)."""
    chunk = ScoringChunk.objects.filter(pk=chunk_id).only("scoring_run_id").first()
    if chunk is None:
        return "gone"
    running = Job.objects.filter(
        scoring_run__pk=chunk.scoring_run_id, status=Job.Status.RUNNING, cancel_requested=False
    ).exists()
    if not running:
        return "run not running"
    # The model is loaded before the chunk is taken, so that its lease runs while it scores.
    _model_for(_scoring_run(chunk.scoring_run_id))
    claimed = chunk_claim(chunk.scoring_run_id, chunk_id)
    if claimed is None:
        return "taken"
    try:
        chunk_score(claimed)
    except ChunkLost:
        return "lost"
    except Exception as exc:  # recorded on the chunk; the run takes it again
        chunk_fail(claimed, exc)
        return "failed"
    return "done"


def chunks_send(scoring_run_id: int, queue: str) -> int:
    """One Celery task per chunk still to score, on ``queue``; returns how many."""
    from marketing.tasks import score_chunk_task

    ids = list(
        ScoringChunk.objects.filter(_takeable(), scoring_run_id=scoring_run_id)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    for chunk_id in ids:
        score_chunk_task.apply_async(args=[chunk_id], queue=queue)
    return len(ids)


def chunks_work(scoring_run_id: int, report: Callable[[ChunkState], None]) -> ChunkState:
    """Take and score the run's chunks until all are done, waiting meanwhile for those other
    workers score; ``report`` is called after each batch and each wait (and raises to stop).
    Raises ``ScoringChunkFailed`` when a chunk failed on every attempt it had."""
    _model_for(_scoring_run(scoring_run_id))  # loaded before a chunk is taken
    while True:
        chunk = chunk_claim(scoring_run_id)
        if chunk is not None:
            try:
                chunk_score(chunk, on_batch=lambda: report(chunks_state(scoring_run_id)))
            except ChunkLost:
                pass
            except JobCancelled:  # from the progress report: the run ends, not one chunk
                raise
            except Exception as exc:
                chunk_fail(chunk, exc)
            report(chunks_state(scoring_run_id))
            continue
        state = chunks_state(scoring_run_id)
        if state.finished:
            return state
        if state.failed_for_good is not None:
            raise ScoringChunkFailed(state.failed_for_good)
        report(state)
        time.sleep(POLL_SECONDS)


class ScoringChunkFailed(Exception):
    def __init__(self, chunk: ScoringChunk) -> None:
        self.chunk = chunk
        super().__init__(
            f"Customers {chunk.first_customer}-{chunk.last_customer} (part {chunk.number}) "
            f"could not be scored in {chunk.attempts} attempts (the last ended with "
            f"{chunk.error.split(':', 1)[0] or 'its worker lost'}); the details are on the "
            "run's chunks for an administrator."
        )
