"""Column types chosen on the mapping step: a code written as a number becomes a category,
is stored as text, and reaches the segment builder, the serialiser and the baseline as one."""

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse

from marketing.ingest.values import suggest_type
from marketing.models import Customer, Interaction, ProfileField, Purpose, Upload
from marketing.segments import available_fields, compile_rules
from marketing.services.model_inputs import known_values_only, learnable
from tests.marketing.training_helpers import add_consent
from tests.marketing.views.test_upload_wizard import mapping_form, upload

pytestmark = pytest.mark.django_db


def test_it_suggests_categories_for_integer_codes_and_numbers_for_amounts_and_counts():
    assert suggest_type(["12", "7", "12", "33"], "Region") == "category"
    assert suggest_type(["101", "205", "330", "101"], "shop") == "category"
    # Scattered codes without a telling name, repeated over the rows.
    assert suggest_type(["101", "205", "330"] * 4, "x") == "category"
    # A few scattered numbers that do not repeat are amounts (three ages in three rows).
    assert suggest_type(["34", "51", "29"], "x") == "number"
    # A count from 0 up is a number; so are amounts with many values.
    assert suggest_type(["0", "1", "2", "3", "1"], "previous") == "number"
    assert suggest_type([str(v) for v in range(18, 80)], "age") == "number"
    assert suggest_type(["1.5", "2.25"], "region") == "number"
    ids = [f"A{i:05d}" for i in range(60)]
    assert suggest_type(ids, "account_number") == "identifier"
    assert suggest_type(["yes", "no"], "loan") == "boolean"


def people(n: int) -> str:
    rng = np.random.default_rng(0)
    lines = ["Customer ID,Age,Band,Store"]
    for i in range(n):
        lines.append(
            f"R{i:04d},{rng.integers(18, 80)},{rng.integers(1, 6)},{[101, 205, 330][i % 3]}"
        )
    return "\n".join(lines) + "\n"


def test_a_column_the_user_sets_to_category_is_stored_and_segmented_as_one(
    marketer_client, django_capture_on_commit_callbacks
):
    upload(marketer_client, people(30))
    created = Upload.objects.get()
    page = marketer_client.get(reverse("upload-mapping", args=[created.pk]))
    rows = {row["header"]: row for row in page.context["rows"]}
    # Band 1..5 reads as a count; Store 101/205/330 as a code. Examples are shown.
    assert rows["Band"]["type"] == "number" and rows["Store"]["type"] == "category"
    assert rows["Age"]["examples"] and not rows["Customer ID"]["examples"]
    body = page.content.decode()
    assert 'name="type-2"' in body and "Category" in body

    data = mapping_form(page)
    data["type-2"] = "category"  # the user says Band is a code
    response = marketer_client.post(page.request["PATH_INFO"], data)
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        marketer_client.post(reverse("upload-preview", args=[created.pk]))

    types = dict(ProfileField.objects.values_list("name", "data_type"))
    assert types == {"age": "number", "band": "category", "store": "category"}
    customer = Customer.objects.get(external_id="R0000")
    assert isinstance(customer.attributes["band"], str) and isinstance(
        customer.attributes["age"], int
    )
    builder = {f["field"]: f for f in available_fields()}
    assert builder["attr:band"]["operators"][:2] == ["eq", "ne"]
    assert set(builder["attr:band"]["values"]) <= {"1", "2", "3", "4", "5"}
    value = customer.attributes["band"]
    rule = {"op": "and", "rules": [{"field": "attr:band", "operator": "in", "value": [value]}]}
    assert Customer.objects.filter(compile_rules(rule)).filter(pk=customer.pk).exists()


def test_a_category_reaches_the_serialiser_and_the_baseline_as_a_category(
    marketer, tiny_bert, term_deposit, django_capture_on_commit_callbacks
):
    from recengine.baseline import BaselineConfig, TabularBaseline
    from recengine.serialize import SerializeConfig, TextSerializer
    from tests.marketing.services.test_training import train

    rng = np.random.default_rng(1)
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"G{i:04d}",
                pseudonym=f"pseudo-G{i:04d}",
                # A code stored as a number before the column became a category.
                attributes={"age": int(rng.integers(18, 80)), "region": int(rng.integers(1, 4))},
            )
            for i in range(200)
        ]
    )
    add_consent(customers, Purpose.MODEL_TRAINING, Purpose.PROFILING)
    from django.utils import timezone

    now = timezone.now()
    Interaction.objects.bulk_create(
        [
            Interaction(customer=c, offer=term_deposit, kind="impression", occurred_at=now)
            for c in customers
        ]
        + [
            Interaction(customer=c, offer=term_deposit, kind="conversion", occurred_at=now)
            for c in customers
            if c.attributes["region"] == 2 or rng.random() < 0.2
        ]
    )
    ProfileField.objects.create(name="age", data_type="number")
    ProfileField.objects.create(name="region", data_type="category")

    types = dict(ProfileField.objects.values_list("name", "data_type"))
    frame = pd.DataFrame([learnable(c.attributes, types) for c in customers])
    assert frame["region"].map(type).eq(str).all()
    serializer = TextSerializer(SerializeConfig(numeric_text="omit")).fit(frame)
    assert serializer.numeric_fields_ == ["age"]
    assert "region 2" in " ".join(serializer.texts(frame)) or "region 1" in " ".join(
        serializer.texts(frame)
    )
    baseline = TabularBaseline(BaselineConfig(n_estimators=20)).fit(
        frame, np.array([c.attributes["region"] == 2 for c in customers], dtype=int)
    )
    assert baseline.categorical_ == ["region"]

    # The product's training: the run's model reads region as text, the baseline as a category.
    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})
    assert run.job.status == "succeeded", run.job.error
    from marketing.filestore import model_registry

    registry = model_registry(run.model_id)
    assert "region" in registry.record(run.model_id).manifest["config"]["text_values"]
    assert registry.load_part(run.model_id, "baseline").categorical_ == ["region"]
    assert "region" in run.example_text
    # Scoring reads the stored number 2 as the learned code "2".
    known = {"region": {"1", "2", "3"}}
    assert known_values_only({"region": 2, "age": 40}, known) == {"region": "2", "age": 40}
