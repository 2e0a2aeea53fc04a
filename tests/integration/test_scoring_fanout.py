"""A scoring run fanned out over real Celery workers (Redis, PostgreSQL): the parts are
shared among the workers, a worker killed while it scores a part (SIGKILL) loses nothing,
the run's own worker killed is taken over by the sweep and keeps the parts done, and a part
made to fail once is scored again alone. Every customer is scored exactly once."""

from collections import Counter

import pytest
from django.db.models import Count

from marketing.models import CustomerScore, Job, Purpose, ScoringChunk, ScoringRun
from marketing.services.scoring import scoring_run_create
from tests.integration.conftest import (
    nothing_left,
    stop_worker,
    sweep_after_the_lease,
    wait_for_job,
    wait_until,
)
from tests.marketing.training_helpers import make_click_customers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 1500
PART_ROWS = 100  # 15 parts
FAULTS = ("tests.integration.chunk_faults",)
SLOW = {"TEST_PART_SECONDS": "1.0", "SCORING_CHUNK_ROWS": str(PART_ROWS)}


@pytest.fixture
def fanout(workers, trained, term_deposit, settings):
    """Workers that read the trained model and make parts slow; ``CUSTOMERS`` customers."""
    settings.SCORING_CHUNK_ROWS = PART_ROWS
    customers = make_click_customers(CUSTOMERS, term_deposit, purposes=(Purpose.PROFILING,))
    env = {**SLOW, "MODEL_REGISTRY_DIR": str(settings.MODEL_REGISTRY_DIR)}
    return workers, env, customers


def _each_scored_once(scoring: ScoringRun, customers) -> None:
    counts = Counter(
        dict(
            CustomerScore.objects.filter(scoring_run=scoring)
            .values_list("customer_id")
            .annotate(n=Count("id"))
            .values_list("customer_id", "n")
        )
    )
    assert counts == Counter({customer.pk: 1 for customer in customers})


def _running_part_of(worker) -> ScoringChunk | None:
    return ScoringChunk.objects.filter(
        status=ScoringChunk.Status.RUNNING, worker__endswith=f":{worker.process.pid}"
    ).first()


def test_parts_are_shared_by_the_workers_and_a_worker_killed_midway_loses_nothing(
    fanout, trained, marketer
):
    pool, env, customers = fanout
    first = pool.start("first", include=FAULTS, **env)
    scoring = scoring_run_create(training_run=trained, segment=None, by=marketer)
    wait_until(
        lambda: Job.objects.get(pk=scoring.job_id).status == Job.Status.RUNNING,
        "the run did not start",
        pool,
    )
    second = pool.start("second", include=FAULTS, **env)
    wait_until(lambda: _running_part_of(second) is not None, "the second took no part", pool)
    killed = _running_part_of(second)

    stop_worker(second, kill=True)
    job = wait_for_job(scoring.job, first, timeout=180)

    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{pool.logs()}"
    # The part the second worker held when it was killed was taken again after its lease.
    killed.refresh_from_db()
    assert (killed.status, killed.attempts) == (ScoringChunk.Status.DONE, 2)
    assert killed.worker.endswith(f":{first.process.pid}")
    _each_scored_once(scoring, customers)
    assert job.result["rows_scored"] == CUSTOMERS
    wait_until(nothing_left, "jobs were left queued or running", pool)


def test_the_runs_own_worker_killed_is_taken_over_and_keeps_the_parts_done(
    fanout, trained, marketer
):
    pool, env, customers = fanout
    first = pool.start("first", include=FAULTS, **env)
    scoring = scoring_run_create(training_run=trained, segment=None, by=marketer)
    wait_until(
        lambda: scoring.chunks.filter(status=ScoringChunk.Status.DONE).count() >= 2,
        "no part was done",
        pool,
    )
    stop_worker(first, kill=True)
    done_before = set(
        scoring.chunks.filter(status=ScoringChunk.Status.DONE).values_list("pk", flat=True)
    )

    assert sweep_after_the_lease(pool)["restarted"] == 1
    second = pool.start("second", include=FAULTS, **env)
    job = wait_for_job(scoring.job, second, timeout=180)

    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{pool.logs()}"
    assert job.attempts == 2
    kept = scoring.chunks.filter(pk__in=done_before)
    assert set(kept.values_list("attempts", flat=True)) == {1}  # not scored again
    _each_scored_once(scoring, customers)
    wait_until(nothing_left, "jobs were left queued or running", pool)


def test_a_part_made_to_fail_once_is_scored_again_alone(fanout, trained, marketer, tmp_path):
    pool, env, customers = fanout
    faults = {**env, "TEST_PART_SECONDS": "0", "TEST_FAIL_PART": "3"}
    faults["TEST_FAIL_MARKER"] = str(tmp_path / "part-3-failed")
    first = pool.start("first", include=FAULTS, **faults)
    pool.start("second", include=FAULTS, **faults)

    scoring = scoring_run_create(training_run=trained, segment=None, by=marketer)
    job = wait_for_job(scoring.job, first, timeout=180)

    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{pool.logs()}"
    attempts = dict(scoring.chunks.values_list("number", "attempts"))
    assert attempts.pop(3) == 2
    assert set(attempts.values()) == {1}
    _each_scored_once(scoring, customers)
    wait_until(nothing_left, "jobs were left queued or running", pool)
