import pytest
from django.urls import reverse

from marketing.models import Job, Purpose, ScoringRun, Segment, TrainingRun
from marketing.services.training_params import PARAM_LIMITS
from marketing.views.models import TrainForm
from tests.factories import make_customer
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(term_deposit, marketer) -> TrainingRun:
    return finished_run(term_deposit, by=marketer)


def test_it_lists_runs_with_both_aucs_for_a_viewer(viewer_client, run):
    running = finished_run(None, name="Still training")
    Job.objects.filter(pk=running.job_id).update(
        status="running", progress=40, message="Epoch 1/1 · step 12/40"
    )

    body = viewer_client.get(reverse("model-list")).content.decode()

    assert run.name in body and "Still training" in body
    assert f"{run.metrics['bert']['roc_auc']:.3f}" in body
    assert f'data-job-id="{running.job_id}"' in body  # live progress bar while running
    assert "Train a model" not in body  # viewers cannot train


def test_it_shows_metrics_side_by_side_with_charts_and_consent(viewer_client, run):
    response = viewer_client.get(reverse("model-detail", args=[run.pk]))
    body = response.content.decode()

    assert response.status_code == 200
    rows = {row["label"]: row for row in response.context["metric_rows"]}
    bert, baseline = rows["Test ROC-AUC"]["cells"]
    assert bert["text"] == f"{run.metrics['bert']['roc_auc']:.3f}"
    assert baseline["text"] == f"{run.metrics['baseline']['roc_auc']:.3f}"
    assert bert["best"] == (run.metrics["bert"]["roc_auc"] > run.metrics["baseline"]["roc_auc"])
    for chart in (
        "curves-chart-data",
        "roc-chart-data",
        "calibration-chart-data",
        "gains-chart-data",
    ):
        assert f'data-plotly="{chart}"' in body and f'id="{chart}"' in body
    assert "vendor/plotly/plotly.min.js" in body and "cdn" not in body.lower()
    assert "Consent withdrawn" in body and run.model_id in body
    assert "Score a segment" not in body  # viewers read only
    assert " · on " not in body  # runs from before the device was recorded say nothing

    run.metrics["bert"]["trained_on"] = "GPU (NVIDIA H200)"
    run.save(update_fields=["metrics"])
    body = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert "steps · on GPU (NVIDIA H200)</div>" in body


def test_it_shows_live_progress_and_cancel_while_training(marketer_client, term_deposit):
    run = finished_run(term_deposit, metrics={}, model_id="")
    Job.objects.filter(pk=run.job_id).update(
        status="running", progress=42, message="Epoch 1/1 · step 120/400 · val AUC 0.771"
    )

    body = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()

    assert "Epoch 1/1 · step 120/400 · val AUC 0.771" in body
    assert 'data-refresh="model-page"' in body and f'data-cancel-job="{run.job_id}"' in body
    assert 'id="model-page"' in body


def test_it_shows_why_a_run_failed(viewer_client, term_deposit):
    run = finished_run(term_deposit, metrics={}, model_id="")
    Job.objects.filter(pk=run.job_id).update(status="failed", message="Only 0 of 60 examples")

    body = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()

    assert "Only 0 of 60 examples" in body and "alert-error" in body


def test_it_starts_training_from_the_form(
    marketer_client, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    form = marketer_client.get(reverse("model-create"))
    assert form.status_code == 200
    assert form.context["form"]["offer"].value() == term_deposit.pk  # the only offer
    # The form leads with the time budget; rows, layers and passes are picked for it.
    assert form.context["form"]["time_budget_minutes"].value() == 10
    assert form.context["form"]["max_rows"].value() is None
    assert "Runs on this server" in form.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("model-create"),
            {
                "name": "",
                "segment": "",
                "offer": term_deposit.pk,
                "target": "conversion",
                "base_model": tiny_bert,
                "mode": "lora",
                "epochs": 1,
                "batch_size": 16,
                "learning_rate": "",
                "max_rows": "",
                "num_layers": "",
                "max_length": 32,
                "frozen_layers": 0,
                "time_budget_minutes": 5,
            },
        )

    run = TrainingRun.objects.get()
    # What was left empty was picked for the 5-minute budget on this CPU; the rest as asked.
    assert run.params["max_rows"] is None and run.params["num_layers"] is None
    threads = run.settings["threads"]
    assert run.settings["max_rows"] == max(2000, 300 * 30 * threads)
    assert run.settings["num_layers"] == 3 and run.settings["frozen_layers"] == 0
    assert run.settings["epochs"] == 1
    assert response.status_code == 302
    assert response["Location"] == reverse("model-detail", args=[run.pk])
    assert run.name == "Term deposit · conversion" and run.params["frozen_layers"] == 0
    assert run.params["time_budget_s"] == 300 and run.params["learning_rate"] is None
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    body = marketer_client.get(response["Location"]).content.decode()
    assert "BERT beside the baseline" in body and "Score a segment" in body
    assert "picked for the budget" in body


def test_it_keeps_the_form_with_a_message_for_bad_settings(marketer_client, term_deposit):
    response = marketer_client.post(
        reverse("model-create"),
        {
            "offer": term_deposit.pk,
            "target": "conversion",
            "base_model": "/etc",
            "mode": "lora",
            "epochs": 0,
            "batch_size": 16,
            "max_rows": 6000,
            "max_length": 32,
            "frozen_layers": 0,
            "time_budget_minutes": 5,
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors.keys() >= {"base_model", "epochs"}
    assert not TrainingRun.objects.exists()


def test_it_takes_the_form_bounds_from_the_training_limits(term_deposit):
    fields = TrainForm().fields

    for name in (
        "epochs",
        "batch_size",
        "learning_rate",
        "max_rows",
        "max_length",
        "frozen_layers",
    ):
        assert (fields[name].min_value, fields[name].max_value) == PARAM_LIMITS[name]
    low, high = PARAM_LIMITS["time_budget_s"]
    minutes = fields["time_budget_minutes"]
    assert (minutes.min_value, minutes.max_value) == (1, high // 60) and low <= 60


def test_it_refuses_a_viewers_posts(viewer_client, run, term_deposit):
    assert viewer_client.get(reverse("model-create")).status_code == 403
    assert (
        viewer_client.post(reverse("model-create"), {"offer": term_deposit.pk}).status_code == 403
    )
    assert viewer_client.post(reverse("model-score", args=[run.pk])).status_code == 403
    assert not ScoringRun.objects.exists()


def test_it_starts_scoring_a_segment_from_the_run_page(marketer_client, marketer, run):
    segment = Segment.objects.create(name="Everyone", rules={"op": "and", "rules": []})
    Job.objects.update(status="succeeded")
    response = marketer_client.post(reverse("model-score", args=[run.pk]), {"segment": segment.pk})
    scoring = ScoringRun.objects.get()
    assert response["Location"] == reverse("model-scoring-detail", args=[scoring.pk])
    assert (scoring.training_run, scoring.segment, scoring.created_by) == (run, segment, marketer)


def test_it_shows_the_score_distribution_and_top_pseudonyms(viewer_client, run):
    customers = [make_customer(age=30 + i) for i in range(12)]
    add_consent(customers, Purpose.PROFILING)
    scoring = finished_scoring(run, customers)

    response = viewer_client.get(reverse("model-scoring-detail", args=[scoring.pk]))
    body = response.content.decode()

    assert response.status_code == 200
    assert 'data-plotly="histogram-chart-data"' in body
    assert customers[-1].pseudonym[:16] in body and customers[-1].external_id not in body
    assert f"/api/scoring-runs/{scoring.pk}/scores/?format=csv" in body
    run_page = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert "Score distribution" in run_page


def test_it_shows_a_customers_latest_scores(viewer_client, run):
    customers = [make_customer(age=30 + i) for i in range(10)]
    add_consent(customers, Purpose.PROFILING)
    finished_scoring(run, customers)

    body = viewer_client.get(reverse("customer-detail", args=[customers[-1].pk])).content.decode()

    assert "Scores" in body and run.name in body and "0.900" in body and "top 10%" in body


def test_it_hides_a_customers_scores_once_profiling_consent_is_withdrawn(viewer_client, run):
    customers = [make_customer(age=30 + i) for i in range(10)]
    add_consent(customers, Purpose.PROFILING)
    finished_scoring(run, customers)
    add_consent(customers[-1:], Purpose.PROFILING, status="withdrawn", days_ago=1)

    body = viewer_client.get(reverse("customer-detail", args=[customers[-1].pk])).content.decode()

    assert "0.900" not in body and "no valid profiling consent" in body


def test_it_shows_the_blend_beside_bert_and_marks_the_model_that_scores(viewer_client, run):
    blend = {**run.metrics["bert"], "roc_auc": 0.99, "served": True, "weights": [0.5, 0.5]}
    TrainingRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "blend": blend})

    response = viewer_client.get(reverse("model-detail", args=[run.pk]))

    columns = response.context["metric_columns"]
    assert [c["label"] for c in columns] == ["BERT", "LightGBM baseline", "Blend"]
    assert [c["served"] for c in columns] == [False, False, True]
    auc = {row["label"]: row for row in response.context["metric_rows"]}["Test ROC-AUC"]
    assert auc["cells"][2] == {"text": "0.990", "best": True}


def test_the_run_page_says_what_the_model_reads_why_it_stopped_and_accounts_for_everyone(
    viewer_client, term_deposit
):
    run = finished_run(
        term_deposit,
        example_text="job admin. marital married housing yes",
        rows={
            "examples": 900,
            "positives": 90,
            "train": 360,
            "val": 40,
            "test": 100,
            "consented_customers": 900,
        },
        customers_used=500,
        settings={"time_budget_s": 600, "max_rows": 360, "num_layers": 3, "epochs": 20},
        params={"time_budget_s": 600, "max_rows": None, "num_layers": None, "epochs": None},
    )
    run.metrics["inputs"] = {
        "numeric_fields": ["age", "balance", "pdays"],
        "numeric_encoding": "piecewise",
        "sentinels": {"pdays": 999.0},
    }
    run.curves.update(stopped_early=True, stop_reason="time_budget", steps=30)
    run.save(update_fields=["metrics", "curves"])

    response = viewer_client.get(reverse("model-detail", args=[run.pk]))
    body = response.content.decode()

    assert "age, balance, pdays" in body and "pdays = 999" in body
    assert "(stopped by the time budget)" in body
    # 900 consented with responses: 500 used, 400 left out by the row cap; 60 without consent.
    assert response.context["capped_customers"] == 400
    assert response.context["customers_with_responses"] == 960
    assert body.count("picked for the budget") == 3

    run.curves["stop_reason"] = "validation"
    run.save(update_fields=["curves"])
    body = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert "validation AUC stopped improving" in body


def test_a_scored_segment_leads_on_to_building_an_audience(marketer_client, run):
    customers = [make_customer(age=30 + i) for i in range(12)]
    add_consent(customers, Purpose.PROFILING)
    scoring = finished_scoring(run, customers)

    body = marketer_client.get(reverse("model-scoring-detail", args=[scoring.pk])).content
    link = f"/audiences/new/?scoring_run={scoring.pk}"
    assert link in body.decode()
    builder = marketer_client.get(link)
    assert builder.status_code == 200
    assert str(builder.context["form"]["scoring_run"].value()) == str(scoring.pk)
