import csv
import io
import json

import pytest

from marketing.models import AuditEvent, Job, Purpose, ScoringRun, TrainingRun
from tests.factories import make_customer
from tests.marketing.api.helpers import logged_in
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_it_creates_a_training_run_and_returns_its_job(
    marketer_client, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            "/api/training-runs/",
            {
                "offer": term_deposit.pk,
                "mode": "lora",
                "epochs": 1,
                "batch_size": 16,
                "frozen_layers": 0,
                "max_length": 32,
            },
            content_type="application/json",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    run = TrainingRun.objects.get()
    assert body["id"] == run.pk and body["job"] == run.job_id
    assert body["params"]["epochs"] == 1 and body["base_model"] == tiny_bert
    detail = marketer_client.get(f"/api/training-runs/{run.pk}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert detail["metrics"]["bert"]["roc_auc"] == detail["test_auc"]["bert"]
    assert detail["curves"]["loss"] and detail["model_id"]


def test_it_refuses_settings_out_of_range(marketer_client, term_deposit):
    response = marketer_client.post(
        "/api/training-runs/",
        {"offer": term_deposit.pk, "base_model": "/etc"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "Unknown base model" in response.json()["detail"]
    assert not Job.objects.exists()


def test_it_names_each_parameter_outside_the_training_limits(marketer_client, term_deposit):
    response = marketer_client.post(
        "/api/training-runs/",
        {"offer": term_deposit.pk, "epochs": 51, "learning_rate": 0.5, "batch_size": 1},
        content_type="application/json",
    )

    assert response.status_code == 400
    errors = response.json()
    assert "less than or equal to 50" in errors["epochs"][0]
    assert "less than or equal to 0.1" in errors["learning_rate"][0]
    assert "greater than or equal to 2" in errors["batch_size"][0]
    assert not Job.objects.exists()


def test_it_lists_runs_for_viewers_but_lets_only_marketers_train(viewer, term_deposit):
    run = finished_run(term_deposit)
    client = logged_in(viewer)

    listed = client.get("/api/training-runs/").json()["results"]

    assert [r["id"] for r in listed] == [run.pk]
    assert listed[0]["test_auc"]["bert"] == run.metrics["bert"]["roc_auc"]
    assert "metrics" not in listed[0]  # the list stays light
    assert client.post("/api/training-runs/", {"offer": term_deposit.pk}).status_code == 403
    assert client.post(f"/api/training-runs/{run.pk}/cancel/").status_code == 403


def test_it_cancels_a_training_run(marketer_client, term_deposit):
    run = finished_run(term_deposit, metrics={}, model_id="")
    Job.objects.filter(pk=run.job_id).update(status="running")

    response = marketer_client.post(f"/api/training-runs/{run.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["message"] == "Cancelling"
    assert Job.objects.get(pk=run.job_id).cancel_requested


def test_it_creates_and_lists_scoring_runs(marketer_client, term_deposit):
    run = finished_run(term_deposit)
    unfinished = finished_run(term_deposit, model_id="")

    refused = marketer_client.post(
        "/api/scoring-runs/", {"training_run": unfinished.pk}, content_type="application/json"
    )
    created = marketer_client.post(
        "/api/scoring-runs/", {"training_run": run.pk}, content_type="application/json"
    )

    assert refused.status_code == 400
    assert created.status_code == 201
    scoring = ScoringRun.objects.get()
    assert created.json()["job"] == scoring.job_id
    assert [s["id"] for s in marketer_client.get("/api/scoring-runs/").json()["results"]] == [
        scoring.pk
    ]


def test_it_streams_scores_as_csv_by_pseudonym_without_identifiers(viewer_client, term_deposit):
    customers = [make_customer(identity={"email": f"p{i}@example.com"}) for i in range(5)]
    add_consent(customers, Purpose.PROFILING)
    scoring = finished_scoring(finished_run(term_deposit), customers)

    response = viewer_client.get(f"/api/scoring-runs/{scoring.pk}/scores/", {"format": "csv"})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    text = _body(response).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["pseudonym"] for r in rows] == [c.pseudonym for c in reversed(customers)]
    assert rows[0] == {
        "pseudonym": customers[-1].pseudonym,
        "offer": "TERM-DEPOSIT",
        "score": "0.900000",
    }
    assert "@example.com" not in text and customers[0].external_id not in text
    assert AuditEvent.objects.filter(action="export", target_type="scoring_run").exists()


def test_it_streams_scores_as_json(viewer_client, term_deposit):
    customers = [make_customer() for _ in range(3)]
    add_consent(customers, Purpose.PROFILING)
    scoring = finished_scoring(finished_run(term_deposit), customers)

    response = viewer_client.get(f"/api/scoring-runs/{scoring.pk}/scores/?format=json")

    assert response.status_code == 200 and response.streaming
    data = json.loads(_body(response))
    assert data[0] == {"pseudonym": customers[-1].pseudonym, "offer": "TERM-DEPOSIT", "score": 0.9}
    assert len(data) == 3


@pytest.mark.parametrize("role_client", ["marketer_client", "steward_client"])
def test_marketers_and_stewards_get_the_external_id_with_each_score(
    request, role_client, term_deposit
):
    client = request.getfixturevalue(role_client)
    customers = [make_customer(identity={"email": f"q{i}@example.com"}) for i in range(3)]
    add_consent(customers, Purpose.PROFILING)
    scoring = finished_scoring(finished_run(term_deposit), customers)

    as_csv = _body(client.get(f"/api/scoring-runs/{scoring.pk}/scores/", {"format": "csv"}))
    as_json = json.loads(_body(client.get(f"/api/scoring-runs/{scoring.pk}/scores/?format=json")))

    rows = list(csv.DictReader(io.StringIO(as_csv.decode())))
    assert rows[0] == {
        "pseudonym": customers[-1].pseudonym,
        "external_id": customers[-1].external_id,
        "offer": "TERM-DEPOSIT",
        "score": "0.900000",
    }
    assert [r["external_id"] for r in as_json] == [c.external_id for c in reversed(customers)]
    assert b"@example.com" not in as_csv
    event = AuditEvent.objects.filter(action="export", target_type="scoring_run").first()
    assert event.details["external_ids"] is True


def test_list_endpoints_take_a_page_size_up_to_the_maximum(marketer_client, term_deposit):
    from marketing.api.pagination import MAX_PAGE_SIZE

    for i in range(3):
        make_customer(external_id=f"PS{i}")
    assert len(marketer_client.get("/api/customers/?page_size=2").json()["results"]) == 2
    for _ in range(3):
        finished_run(term_deposit)
    runs = marketer_client.get("/api/training-runs/?page_size=2").json()
    assert len(runs["results"]) == 2 and runs["count"] == 3
    # More than the maximum is cut to it, never refused.
    assert (
        marketer_client.get(f"/api/training-runs/?page_size={MAX_PAGE_SIZE * 10}").status_code
        == 200
    )
