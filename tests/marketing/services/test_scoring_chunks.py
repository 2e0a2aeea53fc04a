"""Scoring in chunks: the plan, each chunk held by one attempt, a failed chunk taken again
alone, a restarted run keeping the chunks already done. Jobs run inline here; the same with
real Celery workers is in tests/integration/test_scoring_fanout.py."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from marketing import celery
from marketing.models import CustomerScore, Job, Purpose, ScoringChunk, ScoringRun
from marketing.services import scoring_chunks
from marketing.services.jobs import job_threads, run_job
from marketing.services.scoring import scoring_run_create
from marketing.services.scoring_chunks import ChunkLost, chunk_claim, chunk_score, chunk_task_run
from tests.marketing.services.test_scoring import score
from tests.marketing.training_helpers import make_click_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_chunks(settings):
    settings.SCORING_CHUNK_ROWS = 10
    return settings


def _each_scored_once(scoring: ScoringRun, customers) -> None:
    counts = dict(
        CustomerScore.objects.filter(scoring_run=scoring)
        .values_list("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )
    assert counts == {customer.pk: 1 for customer in customers}


def _queued_run(capture, run, by) -> ScoringRun:
    """A scoring run whose job is queued and not started."""
    with capture(execute=False):
        return scoring_run_create(training_run=run, segment=None, by=by)


def _as_a_worker_claimed(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempts=1, started_at=timezone.now()
    )


def test_a_run_is_split_into_parts_in_id_order_and_scores_each_customer_once(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks
):
    customers = make_click_customers(25, term_deposit, purposes=(Purpose.PROFILING,))

    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    chunks = list(scoring.chunks.order_by("number"))
    assert [(c.first_customer, c.last_customer) for c in chunks] == [
        (customers[0].pk, customers[9].pk),
        (customers[10].pk, customers[19].pk),
        (customers[20].pk, customers[24].pk),
    ]
    assert [(c.status, c.attempts, c.rows_scored) for c in chunks] == [
        ("done", 1, 10),
        ("done", 1, 10),
        ("done", 1, 5),
    ]
    _each_scored_once(scoring, customers)
    assert (scoring.rows_scored, scoring.customers_scored) == (25, 25)
    assert sum(scoring.distribution["counts"]) == 25
    assert scoring.job.result["parts"] == 3


def test_a_part_that_fails_once_is_taken_again_alone(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks, monkeypatch
):
    customers = make_click_customers(25, term_deposit, purposes=(Purpose.PROFILING,))
    real = scoring_chunks.chunk_score
    calls: list[tuple[int, int]] = []

    def fail_part_two_once(chunk, on_batch=None):
        calls.append((chunk.number, chunk.attempts))
        if chunk.number == 2 and chunk.attempts == 1:
            raise RuntimeError("the disk was full")
        return real(chunk, on_batch)

    monkeypatch.setattr(scoring_chunks, "chunk_score", fail_part_two_once)
    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    assert calls == [(1, 1), (2, 1), (2, 2), (3, 1)]
    assert list(scoring.chunks.order_by("number").values_list("attempts", "error")) == [
        (1, ""),
        (2, ""),
        (1, ""),
    ]
    _each_scored_once(scoring, customers)


def test_a_part_that_fails_on_every_attempt_fails_the_run_and_keeps_nothing(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks, monkeypatch
):
    make_click_customers(25, term_deposit, purposes=(Purpose.PROFILING,))
    real = scoring_chunks.chunk_score

    def part_three_always_fails(chunk, on_batch=None):
        if chunk.number == 3:
            raise RuntimeError("no space left on device")
        return real(chunk, on_batch)

    monkeypatch.setattr(scoring_chunks, "chunk_score", part_three_always_fails)
    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.FAILED
    assert "(part 3) could not be scored in 3 attempts" in scoring.job.message
    assert "no space left" not in scoring.job.message  # the raw text is for staff
    assert not scoring.scores.exists() and scoring.rows_scored == 0
    assert set(scoring.chunks.values_list("status", flat=True)) == {"cancelled"}


def test_an_attempt_that_lost_its_part_writes_nothing(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks
):
    make_click_customers(15, term_deposit, purposes=(Purpose.PROFILING,))
    scoring = _queued_run(django_capture_on_commit_callbacks, trained, marketer)
    _as_a_worker_claimed(scoring.job)
    scoring_chunks.chunks_plan(scoring, scoring_chunks.Customer.objects.all(), 1)
    first = chunk_claim(scoring.pk)
    # Its lease ran out and another attempt took the part.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ScoringChunk.objects.filter(pk=first.pk).update(heartbeat_at=an_hour_ago)
    second = chunk_claim(scoring.pk, first.pk)
    assert (second.pk, second.attempts) == (first.pk, 2)

    with pytest.raises(ChunkLost):
        chunk_score(first)
    assert not scoring.scores.exists()

    assert chunk_score(second) == 10
    assert scoring.scores.count() == 10


def test_a_restarted_run_keeps_the_parts_already_done(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks
):
    customers = make_click_customers(25, term_deposit, purposes=(Purpose.PROFILING,))
    scoring = _queued_run(django_capture_on_commit_callbacks, trained, marketer)
    # A first worker planned the run and scored part 1, then was lost; the sweep put the job
    # back in the queue.
    _as_a_worker_claimed(scoring.job)
    scoring_chunks.chunks_plan(scoring, scoring_chunks.Customer.objects.all(), 1)
    chunk_score(chunk_claim(scoring.pk))
    kept = set(scoring.scores.values_list("pk", flat=True))
    Job.objects.filter(pk=scoring.job_id).update(status=Job.Status.QUEUED)

    job = run_job(scoring.job_id)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert list(scoring.chunks.order_by("number").values_list("attempts", flat=True)) == [1, 1, 1]
    assert kept < set(scoring.scores.values_list("pk", flat=True))
    _each_scored_once(scoring, customers)


def test_a_part_whose_worker_was_lost_is_taken_again_after_its_lease(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks, settings
):
    make_click_customers(15, term_deposit, purposes=(Purpose.PROFILING,))
    scoring = _queued_run(django_capture_on_commit_callbacks, trained, marketer)
    _as_a_worker_claimed(scoring.job)
    scoring_chunks.chunks_plan(scoring, scoring_chunks.Customer.objects.all(), 1)
    held = chunk_claim(scoring.pk)

    assert chunk_claim(scoring.pk, held.pk) is None  # its lease holds
    ScoringChunk.objects.filter(pk=held.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    )
    assert chunk_claim(scoring.pk, held.pk).attempts == 2


def test_a_part_task_does_nothing_once_its_run_is_cancelled_or_the_part_taken(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks
):
    make_click_customers(15, term_deposit, purposes=(Purpose.PROFILING,))
    scoring = _queued_run(django_capture_on_commit_callbacks, trained, marketer)
    _as_a_worker_claimed(scoring.job)
    scoring_chunks.chunks_plan(scoring, scoring_chunks.Customer.objects.all(), 1)
    one, two = scoring.chunks.order_by("number")

    assert chunk_task_run(one.pk) == "done"
    assert chunk_task_run(one.pk) == "taken"
    Job.objects.filter(pk=scoring.job_id).update(cancel_requested=True)
    assert chunk_task_run(two.pk) == "run not running"
    assert scoring.scores.count() == 10


def test_job_processes_share_the_cores_among_the_workers_processes(settings, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr(celery, "worker_processes", 4)
    settings.WORKER_THREADS = 0
    assert job_threads() == 2
    monkeypatch.setattr(celery, "worker_processes", None)  # the in-process queue
    assert job_threads() == 8
    settings.WORKER_THREADS = 3
    assert job_threads() == 3


def test_a_run_without_a_consented_customer_ends_at_once_with_nothing_scored(
    trained, marketer, term_deposit, small_chunks, django_capture_on_commit_callbacks
):
    make_click_customers(5, term_deposit, purposes=(Purpose.MODEL_TRAINING,))

    scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    assert (scoring.rows_scored, scoring.job.result["parts"]) == (0, 0)
    assert scoring.customers_excluded["no_record"] == 5
    assert scoring.distribution == {"count": 0}


def test_a_part_reads_its_customers_a_batch_at_a_time_with_nothing_open_while_scoring(
    trained, marketer, term_deposit, django_capture_on_commit_callbacks, monkeypatch
):
    """Each batch is a query of its own, read to its end before the model scores it: a read
    left open across the scoring (one streaming cursor) blocks the job's heartbeat on SQLite,
    and the part's next write then fails with "database is locked"."""
    make_click_customers(10, term_deposit, purposes=(Purpose.PROFILING,))
    monkeypatch.setattr(scoring_chunks, "BATCH_ROWS", 4)
    events: list[str] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and '"pseudonym"' in sql:
            events.append("read")
        return execute(sql, params, many, context)

    from recengine import score as engine

    real = engine.score_in_chunks

    def scoring_in_batches(model, rows, config):
        for scores in real(model, rows, config):
            events.append(f"scored {len(scores)}")
            yield scores

    monkeypatch.setattr(engine, "score_in_chunks", scoring_in_batches)
    with connection.execute_wrapper(record):
        scoring = score(django_capture_on_commit_callbacks, trained, marketer)

    assert scoring.job.status == Job.Status.SUCCEEDED, scoring.job.error
    scored = [e for e in events if e.startswith("scored")]
    assert scored == ["scored 4", "scored 4", "scored 2"]
    # A read before each batch (the scorer reads one batch ahead at most), never one read for
    # the whole part.
    assert events.count("read") >= 3
    assert events.index("scored 4") > events.index("read")
