import json
import re

import pytest
from django.urls import reverse

from marketing.models import ExplanationRun, Job, Purpose, TrainingRun
from tests.marketing.explain_helpers import stored_explanation
from tests.marketing.training_helpers import finished_run, finished_scoring, make_click_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(term_deposit, marketer) -> TrainingRun:
    return finished_run(term_deposit, by=marketer)


def explain(client, run, customer, capture) -> ExplanationRun:
    """Explain the customer's score from their page, as a marketer; the job runs at once."""
    with capture(execute=True):
        client.post(reverse("customer-explain", args=[customer.pk]), {"training_run": run.pk})
    explanation = ExplanationRun.objects.get()
    assert explanation.job.status == Job.Status.SUCCEEDED, explanation.job.error
    return explanation


def chart(body: str, name: str) -> dict:
    found = re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', body, re.S)
    assert found, f"no chart {name}"
    return json.loads(found.group(1))


def test_it_shows_global_importance_of_both_models_on_the_model_page(viewer_client, run):
    explanation = stored_explanation(run)

    body = viewer_client.get(reverse("model-detail", args=[run.pk])).content.decode()

    assert "Which fields matter" in body
    figure = chart(body, "importance-chart-data")
    bars = {
        trace["name"]: dict(zip(trace["y"], trace["x"], strict=True)) for trace in figure["data"]
    }
    for key, name in (("bert", "BERT"), ("baseline", "LightGBM baseline")):
        expected = {f["label"]: f["mean_abs"] for f in explanation.result[key]["fields"]}
        assert bars[name] == pytest.approx(expected)
    assert "2.0e-07" in body  # the local-accuracy figure
    assert "Compute again" not in body  # viewers look, marketers launch


def test_it_offers_the_computation_to_a_marketer_only(client, marketer, viewer, run):
    url = reverse("model-detail", args=[run.pk])
    client.force_login(marketer)
    assert "Compute field importance" in client.get(url).content.decode()
    client.force_login(viewer)
    body = client.get(url).content.decode()
    assert "Compute field importance" not in body and "A marketer can compute" in body


def test_it_shows_progress_while_the_importance_is_computed(marketer_client, run):
    explanation = stored_explanation(run)
    Job.objects.filter(pk=explanation.job_id).update(
        status=Job.Status.RUNNING, progress=37, message="BERT: Explained 20 of 200"
    )

    body = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()

    section = body[body.index('id="explain-global"') :]
    assert f'data-job-id="{explanation.job_id}"' in section
    assert 'data-refresh="explain-global"' in section and "37%" in section
    assert "importance-chart-data" not in body


def test_it_says_importance_waits_for_an_unfinished_training(marketer_client, term_deposit):
    run = finished_run(term_deposit, metrics={}, model_id="")
    Job.objects.filter(pk=run.job_id).update(status="running")
    body = marketer_client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert "Field importance can be computed once the training has finished" in body


def test_it_starts_global_importance_from_the_page_for_a_marketer_not_a_viewer(
    client, marketer, viewer, run, django_capture_on_commit_callbacks
):
    url = reverse("model-explain", args=[run.pk])
    client.force_login(viewer)
    assert client.post(url, {"sample_size": 50}).status_code == 403
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, {"sample_size": 50})
    assert response.status_code == 302 and response["Location"].endswith("#explain-global")
    created = ExplanationRun.objects.get()
    assert (created.scope, created.sample_size, created.job.kind) == ("global", 50, "explain")


def test_it_shows_the_waterfall_and_the_baseline_on_the_customer_page(
    viewer_client, run, click_customers
):
    customer = click_customers[0]
    explanation = stored_explanation(run, customer=customer)

    body = viewer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()

    assert "Why this score" in body and "vendor/plotly/plotly.min.js" in body
    bert = explanation.result["bert"]
    figure = chart(body, "waterfall-bert-data")["data"][0]
    assert figure["type"] == "waterfall"
    assert figure["measure"][0] == "absolute" and figure["measure"][-1] == "total"
    assert figure["x"][0] == pytest.approx(bert["base_value"])
    assert figure["x"][-1] == pytest.approx(bert["logit"])
    assert sum(figure["x"][1:-1]) == pytest.approx(bert["logit"] - bert["base_value"])
    assert f"job = {customer.attributes['job']}" in figure["y"]  # field values are shown
    assert chart(body, "waterfall-baseline-data")["data"][0]["type"] == "waterfall"
    percent = f"{100 * bert['probability']:.0f}%"
    assert f"gives this customer a {percent} chance" in body
    assert "Explain again" not in body  # viewers cannot launch


def test_it_explains_nothing_for_a_customer_without_profiling_consent(
    marketer_client, run, term_deposit
):
    (customer,) = make_click_customers(
        1, term_deposit, purposes=(Purpose.MODEL_TRAINING,), prefix="NP"
    )
    stored_explanation(run, customer=customer)  # computed before the consent changed

    body = marketer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()

    assert "No profiling consent" in body
    assert "waterfall-bert-data" not in body and "Explain this customer" not in body
    response = marketer_client.post(
        reverse("customer-explain", args=[customer.pk]), {"training_run": run.pk}, follow=True
    )
    assert "no valid profiling consent" in response.content.decode()
    assert ExplanationRun.objects.filter(customer=customer).count() == 1


def test_it_says_when_there_is_no_model_yet(marketer_client, click_customers):
    body = marketer_client.get(
        reverse("customer-detail", args=[click_customers[0].pk])
    ).content.decode()
    assert "No model yet" in body and reverse("model-create") in body


def test_it_defaults_to_the_model_that_scored_the_customer_and_lets_the_marketer_explain(
    marketer_client, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    customer = click_customers[0]
    scored = finished_run(term_deposit, name="Scored model")
    finished_run(term_deposit, name="Newer model")
    finished_scoring(scored, [customer])
    url = reverse("customer-detail", args=[customer.pk])

    body = marketer_client.get(url).content.decode()

    assert f'<option value="{scored.pk}" selected>' in body
    assert "Not explained yet with “Scored model”" in body and "Explain this customer" in body
    with django_capture_on_commit_callbacks(execute=False):
        response = marketer_client.post(
            reverse("customer-explain", args=[customer.pk]), {"training_run": scored.pk}
        )
    assert response["Location"] == f"{url}?explain_model={scored.pk}#explain-customer"
    created = ExplanationRun.objects.get()
    assert (created.customer, created.training_run, created.scope) == (customer, scored, "customer")
    body = marketer_client.get(f"{url}?explain_model={scored.pk}").content.decode()
    assert 'data-refresh="explain-customer"' in body


def test_it_refuses_to_start_an_explanation_for_a_viewer(viewer_client, run, click_customers):
    response = viewer_client.post(
        reverse("customer-explain", args=[click_customers[0].pk]), {"training_run": run.pk}
    )
    assert response.status_code == 403
    assert not ExplanationRun.objects.exists()


def test_it_draws_a_real_explanation_of_a_trained_model(
    marketer_client, tiny_run, click_customers, django_capture_on_commit_callbacks
):
    customer = click_customers[5]
    explanation = explain(marketer_client, tiny_run, customer, django_capture_on_commit_callbacks)

    body = marketer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()

    figure = chart(body, "waterfall-bert-data")["data"][0]
    assert figure["x"][-1] == pytest.approx(explanation.result["bert"]["logit"])
    assert len(figure["y"]) == 2 + len(explanation.result["bert"]["contributions"])


def test_the_customer_page_explains_the_served_blend_it_scores_with(
    marketer_client, tiny_run, click_customers, django_capture_on_commit_callbacks
):
    from marketing.filestore import model_registry
    from marketing.services.explanations import customer_frame
    from marketing.services.model_inputs import model_text_values

    tiny_run.metrics["blend"]["served"] = True
    tiny_run.save(update_fields=["metrics"])
    customer = click_customers[7]
    explanation = explain(marketer_client, tiny_run, customer, django_capture_on_commit_callbacks)
    served = explanation.result["served"]

    # The blend's own score of this customer, from the stored blend and its members.
    registry = model_registry(tiny_run.model_id)
    blend = registry.load_part(tiny_run.model_id, "blend").bind(
        {
            "model": registry.load(tiny_run.model_id),
            "baseline": registry.load_part(tiny_run.model_id, "baseline"),
        }
    )
    row = customer_frame([customer], tiny_run, None, model_text_values(tiny_run))
    assert served["probability"] == pytest.approx(float(blend.predict_proba(row)[0]), abs=1e-4)
    total = served["base_value"] + sum(c["contribution"] for c in served["contributions"])
    assert total == pytest.approx(served["logit"], abs=5e-3)

    body = marketer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    figure = chart(body, "waterfall-served-data")["data"][0]
    assert figure["x"][-1] == pytest.approx(served["logit"])
    assert "The served model (BERT and LightGBM blended) gives this customer" in body
    # The model learned from this customer: the page says where their scores come from.
    assert explanation.result["learned_from"] is True
    assert 'data-testid="learned-from"' in body
