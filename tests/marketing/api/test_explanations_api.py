import pytest

from marketing.models import ExplanationRun, Job, Purpose
from tests.marketing.api.helpers import logged_in
from tests.marketing.explain_helpers import stored_explanation
from tests.marketing.training_helpers import add_consent, finished_run, make_click_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(term_deposit):
    return finished_run(term_deposit)


def test_it_computes_global_importance_and_returns_the_numbers(
    marketer, tiny_run, django_capture_on_commit_callbacks
):
    client = logged_in(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/training-runs/{tiny_run.pk}/explanations/",
            {"sample_size": 20},
            content_type="application/json",
        )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["scope"] == "global" and created["sample_size"] == 20

    body = client.get(f"/api/explanations/{created['id']}/").json()

    stored = ExplanationRun.objects.get(pk=created["id"])
    assert body["status"] == "succeeded" and body["progress"] == 100
    assert body["result"] == stored.result
    for key in ("bert", "baseline"):
        fields = body["result"][key]["fields"]
        assert {f["field"] for f in fields} == {"age", "job", "balance"}
        assert body["result"][key]["rows"] == 20


def test_it_explains_a_customer_whose_contributions_add_up(
    marketer, tiny_run, click_customers, django_capture_on_commit_callbacks
):
    customer = click_customers[7]
    client = logged_in(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/customers/{customer.pk}/explanations/",
            {"training_run": tiny_run.pk},
            content_type="application/json",
        )
    assert response.status_code == 201, response.json()

    body = client.get(f"/api/explanations/{response.json()['id']}/").json()

    assert body["customer"] == customer.pk and body["scope"] == "customer"
    for key in ("bert", "baseline"):
        part = body["result"][key]
        total = part["base_value"] + sum(c["contribution"] for c in part["contributions"])
        assert abs(total - part["logit"]) <= part["tolerance"]


def test_it_lets_viewers_read_but_not_start(viewer, run, click_customers):
    explanation = stored_explanation(run, customer=click_customers[0])
    client = logged_in(viewer)
    assert client.get(f"/api/explanations/{explanation.pk}/").status_code == 200
    assert (
        client.post(
            f"/api/training-runs/{run.pk}/explanations/", {}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/customers/{click_customers[0].pk}/explanations/",
            {"training_run": run.pk},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert ExplanationRun.objects.count() == 1


def test_it_requires_login(client, run):
    explanation = stored_explanation(run)
    assert client.get(f"/api/explanations/{explanation.pk}/").status_code in (401, 403)
    assert client.post(f"/api/training-runs/{run.pk}/explanations/").status_code in (401, 403)


def test_it_refuses_a_customer_without_profiling_consent(marketer, run, term_deposit):
    (customer,) = make_click_customers(
        1, term_deposit, purposes=(Purpose.MODEL_TRAINING,), prefix="NP"
    )
    response = logged_in(marketer).post(
        f"/api/customers/{customer.pk}/explanations/",
        {"training_run": run.pk},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "no valid profiling consent" in response.json()["detail"]


def test_it_refuses_an_unfinished_model_and_a_bad_sample(marketer, run):
    client = logged_in(marketer)
    response = client.post(
        f"/api/training-runs/{run.pk}/explanations/",
        {"sample_size": 2},
        content_type="application/json",
    )
    assert response.status_code == 400 and "sample_size" in response.json()
    Job.objects.filter(pk=run.job_id).update(status=Job.Status.RUNNING)
    response = client.post(
        f"/api/training-runs/{run.pk}/explanations/", {}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "Only a finished training run" in response.json()["detail"]


def test_it_lists_explanations_filtered_by_model_and_customer(
    viewer, term_deposit, click_customers
):
    first, second = finished_run(term_deposit), finished_run(term_deposit, name="Other")
    one = stored_explanation(first, customer=click_customers[0])
    stored_explanation(first)
    stored_explanation(second, customer=click_customers[1])
    client = logged_in(viewer)

    by_run = client.get(f"/api/explanations/?training_run={first.pk}").json()["results"]
    by_customer = client.get(f"/api/explanations/?customer={click_customers[0].pk}").json()[
        "results"
    ]

    assert len(by_run) == 2 and {r["training_run"] for r in by_run} == {first.pk}
    assert [r["id"] for r in by_customer] == [one.pk]
    assert by_customer[0]["result"]["bert"]["logit"] == one.result["bert"]["logit"]


def test_it_withholds_a_customer_explanation_once_profiling_consent_is_withdrawn(
    viewer, run, click_customers
):
    customer = click_customers[0]
    explanation = stored_explanation(run, customer=customer)
    add_consent([customer], Purpose.PROFILING, status="withdrawn", days_ago=0.001)

    body = logged_in(viewer).get(f"/api/explanations/{explanation.pk}/").json()

    assert body["status"] == "succeeded" and body["result"] is None
