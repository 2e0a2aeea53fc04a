from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from marketing.models import AuditEvent, Customer, Interaction, Job, RetrainSchedule, TrainingRun
from marketing.services.champions import model_promote
from marketing.services.monitoring import (
    MonitoringError,
    challenger_compare_start,
    drift_check_start,
    retrain_schedules_run_due,
)
from recengine.drift import fit_reference
from tests.factories import make_customer
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = pytest.mark.django_db


def _trained_on(offer, *, by, n=400, seed=0):
    """A finished run whose training profile holds ages around 40 and incomes around 30."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"age": rng.normal(40, 5, n).round(), "income": rng.normal(30, 5, n).round(1)}
    )
    scores = rng.uniform(0, 1, n)
    reference = fit_reference(frame, scores=scores).as_dict()
    learned_until = timezone.now() - timedelta(days=30)
    return finished_run(
        offer,
        by=by,
        reference=reference,
        rows={"train": n, "val": 40, "test": 100, "latest_response_at": learned_until.isoformat()},
    )


def _customers(n, *, age, income, prefix, seed=1):
    rng = np.random.default_rng(seed)
    return [
        make_customer(
            f"{prefix}{i:04d}",
            age=float(round(rng.normal(age, 5))),
            income=float(round(rng.normal(income, 5), 1)),
        )
        for i in range(n)
    ]


def _run_check(run, marketer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        check = drift_check_start(run=run, by=marketer)
    check.refresh_from_db()
    check.job.refresh_from_db()
    assert check.job.status == Job.Status.SUCCEEDED, check.job.error
    return check


def test_a_drift_check_flags_the_field_that_moved(
    marketer, term_deposit, django_capture_on_commit_callbacks
):
    run = _trained_on(term_deposit, by=marketer)
    # Incomes moved up by two standard deviations; ages as in training.
    customers = _customers(300, age=40, income=40, prefix="D")
    finished_scoring(run, customers)

    check = _run_check(run, marketer, django_capture_on_commit_callbacks)

    fields = {f["field"]: f for f in check.report["fields"]}
    assert fields["income"]["psi"] > 0.25 and fields["income"]["level"] == "major"
    assert fields["age"]["psi"] < 0.1
    assert check.report["moved"] == ["income"]
    assert check.alert and check.recent_rows == 300


def test_a_drift_check_of_a_model_whose_data_did_not_move_raises_no_alert(
    marketer, term_deposit, django_capture_on_commit_callbacks
):
    run = _trained_on(term_deposit, by=marketer)
    customers = _customers(300, age=40, income=30, prefix="S")
    scoring = finished_scoring(run, customers)
    # Scores spread as in training.
    rng = np.random.default_rng(3)
    for score in scoring.scores.all():
        score.score = float(rng.uniform())
        score.save()

    check = _run_check(run, marketer, django_capture_on_commit_callbacks)

    assert check.report["moved"] == [] and check.report["score"]["psi"] < 0.25
    assert not check.alert


def test_live_auc_on_responses_since_training_raises_an_alert_when_it_drops(
    marketer, term_deposit, django_capture_on_commit_callbacks, settings
):
    settings.DRIFT_MIN_RESPONSES = 50
    run = _trained_on(term_deposit, by=marketer)
    customers = _customers(300, age=40, income=30, prefix="L")
    scoring = finished_scoring(run, customers)
    rng = np.random.default_rng(4)
    since = timezone.now() - timedelta(days=5)
    responded = []
    for score in scoring.scores.select_related("customer"):
        # Responses unrelated to the scores: the model ranks them no better than chance.
        Interaction.objects.create(
            customer=score.customer, offer=term_deposit, kind="impression", occurred_at=since
        )
        if rng.uniform() < 0.3:
            Interaction.objects.create(
                customer=score.customer,
                offer=term_deposit,
                kind="conversion",
                occurred_at=since + timedelta(hours=1),
            )
            responded.append(score.customer_id)
    # A pair first met before the model's newest is not a new response.
    old = customers[0]
    Interaction.objects.filter(customer=old).update(occurred_at=since - timedelta(days=60))

    check = _run_check(run, marketer, django_capture_on_commit_callbacks)

    assert check.live["responses"] == 299
    assert abs(check.live["auc"] - 0.5) < 0.15
    assert check.live["auc_dropped"] and check.alert


def test_a_check_needs_a_training_profile_and_scores(marketer, term_deposit):
    old = finished_run(term_deposit, by=marketer)
    with pytest.raises(MonitoringError, match="re-train it to check its drift"):
        drift_check_start(run=old, by=marketer)
    run = _trained_on(term_deposit, by=marketer)
    with pytest.raises(MonitoringError, match="has not scored any customer yet"):
        drift_check_start(run=run, by=marketer)


def test_due_schedules_re_train_the_model_in_use_and_move_on(
    marketer, term_deposit, django_capture_on_commit_callbacks
):
    now = timezone.now()
    champion = finished_run(term_deposit, by=marketer, name="spring")
    due = RetrainSchedule.objects.create(
        offer=term_deposit, target="conversion", start="incremental", every_days=7,
        next_at=now - timedelta(days=15),
    )  # fmt: skip
    later = RetrainSchedule.objects.create(
        offer=term_deposit, target="conversion", next_at=now + timedelta(days=1)
    )
    nobody = RetrainSchedule.objects.create(
        offer=None, target="conversion", next_at=now - timedelta(minutes=1)
    )
    model_promote(run=champion, by=marketer)

    with django_capture_on_commit_callbacks(execute=False):
        started = retrain_schedules_run_due(now=now)

    due.refresh_from_db()
    later.refresh_from_db()
    nobody.refresh_from_db()
    child = TrainingRun.objects.get(pk__in=started)
    assert (child.parent, child.start, child.created_by) == (champion, "incremental", None)
    assert due.last_run == child and due.next_at > now
    assert due.next_at - (now - timedelta(days=15)) == timedelta(days=21)
    assert later.last_run is None and later.last_message == ""
    assert nobody.last_message == "No model is in use for this offer and target."
    assert AuditEvent.objects.filter(target_type="retrain_schedule").count() == 2
    # Nothing is due any more.
    assert retrain_schedules_run_due(now=now) == []


def test_a_schedule_says_why_it_could_not_re_train(marketer, term_deposit):
    champion = finished_run(term_deposit, by=marketer, name="spring")
    model_promote(run=champion, by=marketer)
    TrainingRun.objects.filter(pk=champion.pk).update(flagged_erasure=True)
    schedule = RetrainSchedule.objects.create(
        offer=term_deposit, start="incremental", next_at=timezone.now() - timedelta(hours=1)
    )
    assert retrain_schedules_run_due() == []
    schedule.refresh_from_db()
    assert "re-train it from scratch" in schedule.last_message
    assert Customer.objects.count() == 0


def test_the_pages_show_a_drift_alert_and_start_a_check(
    marketer, viewer, term_deposit, django_capture_on_commit_callbacks
):
    from django.test import Client
    from django.urls import reverse

    marketer_client, viewer_client = Client(), Client()
    marketer_client.force_login(marketer)
    viewer_client.force_login(viewer)
    run = _trained_on(term_deposit, by=marketer)
    page = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert 'data-testid="drift"' in page and "Not checked yet" in page
    assert 'data-testid="drift-check"' not in page
    assert viewer_client.post(reverse("model-drift", args=[run.pk])).status_code == 403

    refused = marketer_client.post(reverse("model-drift", args=[run.pk]), follow=True)
    assert "has not scored any customer yet" in refused.content.decode()
    finished_scoring(run, _customers(200, age=55, income=30, prefix="P"))
    model_promote(run=run, by=marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("model-drift", args=[run.pk]))
    assert response.status_code == 302

    page = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert 'data-testid="drift-alert"' in page and 'data-plotly="drift-chart-data"' in page
    assert 'Fields that moved: <span translate="no">age</span>' in page
    overview = viewer_client.get(reverse("overview")).content.decode()
    assert 'data-testid="drift-alert"' in overview and run.name in overview


def _comparison(run, marketer, capture):
    with capture(execute=True):
        job = challenger_compare_start(run=run, by=marketer)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job.result


def test_a_challenger_is_compared_with_the_model_in_use_on_the_same_recent_responses(
    marketer, viewer, term_deposit, django_capture_on_commit_callbacks, settings
):
    from django.test import Client
    from django.urls import reverse

    settings.DRIFT_MIN_RESPONSES = 50
    champion = _trained_on(term_deposit, by=marketer)
    challenger = _trained_on(term_deposit, by=marketer, seed=1)
    model_promote(run=champion, by=marketer)
    customers = _customers(300, age=40, income=30, prefix="C")
    rng = np.random.default_rng(6)
    converted = rng.uniform(size=len(customers)) < 0.3
    # The challenger's scores follow the outcomes, the champion's do not.
    champion_scoring = finished_scoring(champion, customers)
    challenger_scoring = finished_scoring(challenger, customers)
    for score in challenger_scoring.scores.all():
        index = customers.index(score.customer)
        score.score = float(0.6 * converted[index] + 0.4 * rng.uniform())
        score.save()
    for score in champion_scoring.scores.all():
        score.score = float(rng.uniform())
        score.save()
    since = timezone.now() - timedelta(days=5)
    for customer, outcome in zip(customers, converted, strict=True):
        Interaction.objects.create(
            customer=customer, offer=term_deposit, kind="impression", occurred_at=since
        )
        if outcome:
            Interaction.objects.create(
                customer=customer, offer=term_deposit, kind="conversion", occurred_at=since
            )
    # Learned by the challenger (its data runs later): not held out from both, left out.
    challenger.rows = {**challenger.rows, "latest_response_at": since.isoformat()}
    challenger.save()
    early = customers[:20]
    Interaction.objects.filter(customer__in=early).update(occurred_at=since - timedelta(days=1))

    marketer_client, viewer_client = Client(), Client()
    marketer_client.force_login(marketer)
    viewer_client.force_login(viewer)
    assert viewer_client.post(reverse("model-compare", args=[challenger.pk])).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("model-compare", args=[challenger.pk]))
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.COMPARE)
    assert job.status == Job.Status.SUCCEEDED, job.error
    result = job.result

    assert (result["champion"], result["challenger"]) == (champion.pk, challenger.pk)
    assert result["since"] == since.isoformat()
    assert result["responses"] == 0  # every pair was first met at `since`, not after it
    assert not result["enough"]

    # Met a day after the newest either model learned from: held out from both.
    Interaction.objects.exclude(customer__in=early).update(occurred_at=since + timedelta(days=1))
    result = _comparison(challenger, marketer, django_capture_on_commit_callbacks)

    assert result["enough"] and result["responses"] == 280
    assert result["positives"] == int(converted[20:].sum())
    assert result["auc_b"] > 0.9 and 0.35 < result["auc_a"] < 0.65
    assert result["verdict"] == "better" and result["low"] > 0
    page = viewer_client.get(reverse("model-detail", args=[challenger.pk])).content.decode()
    assert 'data-testid="comparison-table"' in page and "Better" in page
    assert 'data-testid="compare-button"' not in page  # viewers read, marketers start


def test_a_comparison_needs_a_model_in_use_and_scores_of_both(
    marketer, term_deposit, django_capture_on_commit_callbacks
):
    champion = _trained_on(term_deposit, by=marketer)
    challenger = _trained_on(term_deposit, by=marketer, seed=1)
    with pytest.raises(MonitoringError, match="No model is in use"):
        challenger_compare_start(run=challenger, by=marketer)
    model_promote(run=champion, by=marketer)
    with pytest.raises(MonitoringError, match="is the model in use"):
        challenger_compare_start(run=champion, by=marketer)
    with pytest.raises(MonitoringError, match="has not scored any customer yet"):
        challenger_compare_start(run=challenger, by=marketer)
    customers = _customers(10, age=40, income=30, prefix="N")
    finished_scoring(champion, customers)
    finished_scoring(challenger, customers)

    result = _comparison(challenger, marketer, django_capture_on_commit_callbacks)

    assert result == {**result, "responses": 0, "enough": False}
