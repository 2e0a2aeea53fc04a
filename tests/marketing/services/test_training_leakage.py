"""The leakage check of a training run: planted copies of the outcome are flagged, left out
of both models, named on the run, and kept only when the marketer asks."""

from datetime import timedelta

import pytest
from django.urls import reverse

from marketing.models import Customer, Interaction, ProfileField
from marketing.services.training_params import TrainingSetupError, train_params
from tests.marketing.services.test_training import train
from tests.marketing.training_helpers import make_click_customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaky_customers(term_deposit):
    customers = make_click_customers(240, term_deposit)
    converted = set(
        Interaction.objects.filter(kind="conversion").values_list("customer_id", flat=True)
    )
    shown_at = Interaction.objects.filter(kind="impression").first().occurred_at
    for customer in customers:
        bought = customer.pk in converted
        customer.attributes.update(
            # The outcome uploaded as a profile column under another name.
            purchased="yes" if bought else "no",
            # A date recorded after the response: when the account was upgraded.
            upgraded_on=(shown_at + timedelta(days=3 + customer.pk % 20)).date().isoformat(),
        )
    Customer.objects.bulk_update(customers, ["attributes"])
    ProfileField.objects.create(name="purchased", data_type="text")
    ProfileField.objects.create(name="upgraded_on", data_type="date")
    return customers


def test_a_planted_label_copy_and_a_post_outcome_date_are_flagged_and_left_out(
    marketer, tiny_bert, term_deposit, leaky_customers, django_capture_on_commit_callbacks, client
):
    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})

    assert run.job.status == "succeeded", run.job.error
    flags = {flag["field"]: flag for flag in run.leakage}
    assert set(flags) == {"purchased", "upgraded_on"}
    assert flags["purchased"]["reason"] == "predicts_outcome"
    assert flags["purchased"]["value"] >= 0.98
    assert flags["upgraded_on"]["reason"] == "after_response"
    assert all(flag["left_out"] for flag in flags.values())
    # Neither model read them: the BERT text and the baseline's columns.
    assert "purchased" not in run.example_text and "upgraded" not in run.example_text
    assert run.metrics["baseline"]["roc_auc"] < 0.98
    from marketing.filestore import model_registry

    baseline = model_registry(run.model_id).load_part(run.model_id, "baseline")
    assert "purchased" not in baseline.columns_ and "age" in baseline.columns_

    client.force_login(marketer)
    page = client.get(reverse("model-detail", args=[run.pk])).content.decode()
    assert "purchased" in page and "left out" in page
    form = client.get(reverse("model-create")).content.decode()
    assert "data-last-leaks" in form and "upgraded_on" in form


def test_a_flagged_field_is_kept_when_the_marketer_names_it(
    marketer, tiny_bert, term_deposit, leaky_customers, django_capture_on_commit_callbacks
):
    run = train(
        django_capture_on_commit_callbacks,
        marketer,
        term_deposit,
        params={"epochs": 1, "keep_fields": ["purchased"]},
    )

    flags = {flag["field"]: flag["left_out"] for flag in run.leakage}
    assert flags == {"purchased": False, "upgraded_on": True}
    # Kept knowingly: the baseline reads the copy of the label and scores (too) well.
    assert run.metrics["baseline"]["roc_auc"] > 0.98


def test_keep_fields_takes_a_list_or_comma_separated_names():
    assert train_params({"keep_fields": "b, a,a"}).keep_fields == ["a", "b"]
    with pytest.raises(TrainingSetupError, match="keep_fields"):
        train_params({"keep_fields": [1, 2]})
