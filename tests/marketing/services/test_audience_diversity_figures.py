"""The audience diversity of a single-offer scoring run as a job: its stored figures, and the
job a successful single-offer scoring starts."""

import pytest

from marketing.models import AudienceDiversityFigures, Job, ProfileField, Purpose
from marketing.selectors.figures import audience_diversity_figures
from marketing.services import jobs
from marketing.services.audience_diversity import AudienceDiversityError, audience_diversity
from marketing.services.figures import audience_diversity_refresh
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    scored_base,
)

pytestmark = pytest.mark.django_db

# A small group (hidden by the small-group rule) next to larger ones.
GROUPS = [("admin.", 50, 40), ("pilot", 4, 50), ("retired", 20, 70), ("student", 26, 25)]


def without_timing(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "seconds"}


@pytest.mark.parametrize(
    "settings_",
    [
        {"top_share": 0.15},
        {"top_share": 0.3, "attributes": ["job"]},
        {"top_n": 25},
    ],
)
def test_it_stores_the_figures_the_request_used_to_compute(
    settings_, marketer, django_capture_on_commit_callbacks
):
    scoring, customers = scored_base(GROUPS)
    # Consent rule: withdrawn and never-granted customers are out of the base.
    for customer in customers[::7]:
        record_consent(customer, Purpose.PROFILING, "withdrawn", days_ago=1)
    in_request = audience_diversity(scoring_run=scoring, **settings_)
    with django_capture_on_commit_callbacks(execute=True):
        job = audience_diversity_refresh(scoring_run=scoring, by=marketer, **settings_)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    stored = audience_diversity_figures(scoring)
    assert stored["computed_at"] is not None and stored["running_job"] is None
    assert without_timing(stored["report"]) == without_timing(in_request)
    assert stored["report"]["base_size"] == len(customers) - len(customers[::7])
    job_groups = next(a for a in stored["report"]["attributes"] if a["attribute"] == "job")
    assert "pilot" not in {g["group"] for g in job_groups["groups"]}


def test_it_keeps_the_last_figures_when_a_later_computation_fails(
    marketer, django_capture_on_commit_callbacks
):
    scoring, customers = scored_base()
    with django_capture_on_commit_callbacks(execute=True):
        audience_diversity_refresh(scoring_run=scoring, top_share=0.1, by=marketer)
    first = audience_diversity_figures(scoring)["report"]
    for customer in customers:
        record_consent(customer, Purpose.PROFILING, "withdrawn", days_ago=0.001)
    with django_capture_on_commit_callbacks(execute=True):
        audience_diversity_refresh(scoring_run=scoring, top_share=0.1, by=marketer)
    after = audience_diversity_figures(scoring)
    assert after["report"] == first
    assert "has a valid profiling consent now" in after["failed_job"].message


def test_it_starts_one_computation_while_one_is_unfinished(marketer):
    scoring, _ = scored_base()
    first = audience_diversity_refresh(scoring_run=scoring, top_share=0.1, by=marketer)
    again = audience_diversity_refresh(scoring_run=scoring, top_n=40, by=marketer)
    assert again.pk == first.pk and first.params["top_share"] == 0.1
    assert Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).count() == 1


@pytest.mark.parametrize(
    "arguments", [{"top_share": 0}, {"top_n": 0}, {"attributes": ["shoe_size"]}]
)
def test_it_refuses_bad_settings_before_any_job(arguments, marketer):
    scoring, _ = scored_base()
    with pytest.raises(AudienceDiversityError):
        audience_diversity_refresh(scoring_run=scoring, by=marketer, **arguments)
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()


def succeed_scoring(scoring, monkeypatch, capture) -> None:
    """Run the scoring run's job to success through ``run_job`` (its scores already in)."""
    monkeypatch.setitem(jobs._RUNNERS, Job.Kind.SCORE, lambda job, progress: {})
    Job.objects.filter(pk=scoring.job_id).update(status=Job.Status.QUEUED)
    with capture(execute=True):
        jobs.run_job(scoring.job_id)


def test_it_computes_the_audience_diversity_after_a_single_offer_scoring(
    monkeypatch, django_capture_on_commit_callbacks
):
    scoring, _ = scored_base()
    succeed_scoring(scoring, monkeypatch, django_capture_on_commit_callbacks)
    job = Job.objects.get(kind=Job.Kind.AUDIENCE_DIVERSITY)
    assert job.status == Job.Status.SUCCEEDED, job.error
    report = audience_diversity_figures(scoring)["report"]
    assert report["top_label"] == "top 10%" and report["base_size"] == 100


def test_it_computes_nothing_after_a_multi_offer_scoring(
    monkeypatch, django_capture_on_commit_callbacks
):
    scoring = multi_offer_scoring(make_customers(3), make_catalogue())
    succeed_scoring(scoring, monkeypatch, django_capture_on_commit_callbacks)
    assert Job.objects.get(pk=scoring.job_id).status == Job.Status.SUCCEEDED
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()
    assert not AudienceDiversityFigures.objects.exists()


def test_it_starts_nothing_after_a_scoring_without_profile_attributes(
    monkeypatch, django_capture_on_commit_callbacks
):
    scoring, _ = scored_base()
    ProfileField.objects.all().delete()
    succeed_scoring(scoring, monkeypatch, django_capture_on_commit_callbacks)
    assert Job.objects.get(pk=scoring.job_id).status == Job.Status.SUCCEEDED
    assert not Job.objects.filter(kind=Job.Kind.AUDIENCE_DIVERSITY).exists()
