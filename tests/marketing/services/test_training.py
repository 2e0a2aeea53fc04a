import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.utils import timezone

from marketing.models import Customer, Interaction, Job, Purpose, TrainingRun
from marketing.pseudonyms import erasure_token
from marketing.services import jobs
from marketing.services.erasure import customer_erase
from marketing.services.training import (
    INCREMENTAL_LEARNING_RATE_SHARE,
    INCREMENTAL_TIME_SHARE,
    training_run_create,
    training_run_retrain,
    without_rare_values,
)
from marketing.services.training_params import TrainingSetupError
from recengine.registry import ModelRegistry
from tests.factories import make_offer, record_consent
from tests.marketing.training_helpers import (
    FAST_PARAMS,
    JOBS,
    add_consent,
    finished_run,
    make_click_customers,
)

pytestmark = pytest.mark.django_db


def train(capture, by, offer, *, mode="full", params=None, segment=None, **kwargs) -> TrainingRun:
    with capture(execute=True):
        run = training_run_create(
            name=kwargs.pop("name", "Test run"),
            segment=segment,
            offer=offer,
            target=kwargs.pop("target", "conversion"),
            base_model=kwargs.pop("base_model", ""),
            mode=mode,
            params={**FAST_PARAMS, **(params or {})},
            by=by,
        )
    run.refresh_from_db()
    run.job.refresh_from_db()
    return run


def registry_folder(settings, run: TrainingRun) -> Path:
    return Path(settings.MODEL_REGISTRY_DIR) / run.model_id


def test_it_trains_bert_beside_the_baseline_and_records_everything(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    settings,
    django_capture_on_commit_callbacks,
):
    run = train(
        django_capture_on_commit_callbacks,
        marketer,
        term_deposit,
        params={"epochs": 3, "patience": 100},
    )

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    assert run.job.progress == 100
    assert run.job.result["training_run"] == run.pk
    for model in ("bert", "baseline"):
        metrics = run.metrics[model]
        assert 0 <= metrics["roc_auc"] <= 1 and metrics["log_loss"] > 0
        assert {"pr_auc", "brier", "calibration", "lift", "gains", "roc"} <= set(metrics)
    assert run.metrics["bert"]["roc_auc"] > 0.6
    per_epoch = run.curves["steps_per_epoch"]
    first = [loss for step, loss in run.curves["loss"] if step <= per_epoch]
    last = [loss for step, loss in run.curves["loss"] if step > 2 * per_epoch]
    assert sum(last) / len(last) < sum(first) / len(first)  # the loss went down
    assert run.curves["val_auc"] and run.curves["total_steps"] == run.curves["steps"]
    assert run.rows["train"] + run.rows["val"] + run.rows["test"] == run.rows["examples"] == 240
    assert run.customers_used == 240 and len(run.fingerprint) == 64
    assert run.example_text.startswith("job ")
    manifest = json.loads((registry_folder(settings, run) / "manifest.json").read_text())
    assert manifest["fingerprint"] == run.fingerprint
    assert manifest["config"]["training_run"] == run.pk
    assert manifest["consent_snapshot"]["consented_customers"] == 240
    assert manifest["consent_snapshot"]["notice_versions"] == {"v1": 240}


def test_it_stacks_bert_and_the_baseline_on_validation_rows_and_serves_the_better(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    settings,
    django_capture_on_commit_callbacks,
):
    from recengine.ensemble import StackedModel
    from recengine.registry import ModelRegistry

    run = train(
        django_capture_on_commit_callbacks,
        marketer,
        term_deposit,
        params={"epochs": 2, "patience": 100},
    )

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    blend = run.metrics["blend"]
    assert 0 <= blend["roc_auc"] <= 1 and set(blend["weights"]) == {"model", "baseline"}
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    manifest = registry.record(run.model_id).manifest
    assert manifest["parts"] == ["baseline", "blend", "crossfit", "student"]
    assert manifest["served"] == ("blend" if blend["served"] else "model")
    import torch

    trained_on = run.metrics["bert"]["trained_on"]
    assert trained_on.startswith("GPU (") if torch.cuda.is_available() else trained_on == "CPU"
    # Judged out of fold; the in-sample figure is kept beside it for the record.
    assert blend["val_auc"] is not None and 0 <= blend["val_auc_in_sample"] <= 1
    margin = blend["bert_val_auc_standard_error"]
    assert 0 < margin < 0.2
    assert blend["served"] == (blend["val_auc"] >= run.metrics["bert"]["best_val_auc"] - margin)
    assert run.job.result["served"] == ("blend" if blend["served"] else "bert")
    stacked = registry.load_part(run.model_id, "blend")
    assert isinstance(stacked, StackedModel) and stacked.val_rows_ == run.rows["val"]
    served = registry.load_served(run.model_id)
    assert isinstance(served, StackedModel) == blend["served"]


def test_it_trains_only_on_customers_with_a_valid_training_consent(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    settings,
    django_capture_on_commit_callbacks,
):
    left_out = make_click_customers(14, term_deposit, purposes=(), prefix="X", seed=3)
    no_record = left_out[:4]
    add_consent(no_record, Purpose.PROFILING)  # another purpose does not count
    add_consent(left_out[4:7], Purpose.MODEL_TRAINING, status="denied")
    add_consent(left_out[7:12], Purpose.MODEL_TRAINING, days_ago=60)
    for customer in left_out[7:12]:
        record_consent(customer, Purpose.MODEL_TRAINING, "withdrawn", days_ago=5)
    add_consent(
        left_out[12:], Purpose.MODEL_TRAINING, expires_at=timezone.now() - timedelta(days=1)
    )

    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    assert run.customers_excluded == {"no_record": 4, "denied": 3, "withdrawn": 5, "expired": 2}
    assert run.customers_used == 240 and run.rows["examples"] == 240
    used = set((registry_folder(settings, run) / "customers.txt").read_text().split())
    assert used == {c.pseudonym for c in click_customers}
    assert run.consent_snapshot["excluded"] == run.customers_excluded


def test_it_learns_from_every_offer_with_the_offer_in_the_text(
    marketer, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    loan = make_offer("LOAN", title="Car loan", category="credit")
    make_click_customers(120, loan, prefix="L", seed=5)

    run = train(
        django_capture_on_commit_callbacks, marketer, None, params={"epochs": 1}, target="click"
    )

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    assert run.rows["examples"] == 360
    offer_part = run.example_text.split(" || ")[1]
    assert offer_part.startswith(("Term deposit category", "Car loan category"))


def test_it_stops_cleanly_when_cancelled_during_training(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    real = jobs.make_progress

    def cancel_once_training(job_id, attempt=None):
        progress = real(job_id, attempt)

        def wrapped(percent, message=""):
            if message.startswith("Epoch"):
                Job.objects.filter(pk=job_id).update(cancel_requested=True)
            progress(percent, message)

        return wrapped

    monkeypatch.setattr(jobs, "make_progress", cancel_once_training)
    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 5})

    assert run.job.status == Job.Status.CANCELLED
    assert run.model_id == "" and run.metrics == {}
    assert len(run.curves["loss"]) < run.curves["total_steps"]
    assert not Path(settings.MODEL_REGISTRY_DIR).exists() or not any(
        Path(settings.MODEL_REGISTRY_DIR).iterdir()
    )


def test_it_fails_with_a_clear_message_when_nobody_converted(
    marketer, tiny_bert, django_capture_on_commit_callbacks
):
    quiet = make_offer("QUIET", title="Quiet offer")
    customers = make_click_customers(60, quiet, prefix="Q")
    Interaction.objects.filter(kind="conversion").delete()

    run = train(django_capture_on_commit_callbacks, marketer, quiet)

    assert run.job.status == Job.Status.FAILED
    assert "Only 0 of 60 examples of “Quiet offer” are with a conversion" in run.job.message
    assert "TrainingDataError" in run.job.error
    assert run.customers_excluded == {"no_record": 0, "denied": 0, "withdrawn": 0, "expired": 0}
    assert len(customers) == 60


def test_it_fails_with_the_error_when_the_base_model_is_missing(
    marketer,
    term_deposit,
    click_customers,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    settings.CLICK_MODEL_BASE = str(tmp_path / "no-such-model")

    run = train(django_capture_on_commit_callbacks, marketer, term_deposit)

    assert run.job.status == Job.Status.FAILED
    assert "no-such-model" in run.job.error
    assert run.model_id == ""


def test_it_refuses_unknown_settings_before_creating_a_job(marketer, term_deposit, tiny_bert):
    common = {
        "name": "x",
        "segment": None,
        "offer": term_deposit,
        "target": "conversion",
        "mode": "lora",
        "by": marketer,
    }
    with pytest.raises(TrainingSetupError, match="Unknown base model"):
        training_run_create(base_model="/etc", params={}, **common)
    with pytest.raises(TrainingSetupError, match="epochs must be between"):
        training_run_create(base_model="", params={"epochs": 0}, **common)
    with pytest.raises(TrainingSetupError, match="Unknown training parameter"):
        training_run_create(base_model="", params={"dropout": 0.5}, **common)
    assert not Job.objects.exists()


def test_it_sends_training_to_the_gpu_queue_when_a_gpu_worker_exists(
    marketer, term_deposit, tiny_bert, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from marketing import tasks
    from marketing.services import jobs

    sent = []
    monkeypatch.setattr(
        tasks.run_job_task, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    settings.JOB_QUEUE = "celery"
    for use_gpu, gpu_worker in ((True, True), (True, False), (False, True)):
        settings.USE_GPU = use_gpu
        monkeypatch.setattr(jobs, "gpu_worker_listening", lambda answer=gpu_worker: answer)
        # A request of its own each time (the same one again would return the first job).
        run = train(
            django_capture_on_commit_callbacks,
            marketer,
            term_deposit,
            name=f"GPU {use_gpu}, worker {gpu_worker}",
        )
        assert run.job.status == Job.Status.QUEUED
    assert [queue for _, queue in sent] == ["gpu", "default", "default"]


def test_it_flags_the_run_when_a_customer_it_learned_from_is_erased(
    marketer,
    steward,
    tiny_bert,
    term_deposit,
    click_customers,
    django_capture_on_commit_callbacks,
):
    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})
    stranger = Customer.objects.create(external_id="NEW", pseudonym="p-new")

    customer_erase(customer=click_customers[0], by=steward)
    customer_erase(customer=stranger, by=steward)

    run.refresh_from_db()
    assert (run.flagged_erasure, run.erased_customers) == (True, 1)
    # The model's customer list keeps that someone was erased, not who.
    registry = ModelRegistry(settings.MODEL_REGISTRY_DIR)
    assert registry.find_models_using(click_customers[0].pseudonym) == []
    assert registry.find_models_using(erasure_token(click_customers[0].pseudonym)) == [run.model_id]


def test_it_keeps_a_value_only_two_customers_have_out_of_the_model(
    marketer,
    tiny_bert,
    term_deposit,
    click_customers,
    django_capture_on_commit_callbacks,
):
    for customer in make_click_customers(2, term_deposit, prefix="Z", seed=9):
        customer.attributes["job"] = "Zeppelin-Pilot"
        customer.save(update_fields=["attributes"])

    run = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})

    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    manifest = ModelRegistry(settings.MODEL_REGISTRY_DIR).record(run.model_id).manifest
    assert manifest["config"]["text_values"]["job"] == sorted(JOBS)
    folder = registry_folder(settings, run)
    assert not [p for p in folder.rglob("*") if p.is_file() and b"Zeppelin" in p.read_bytes()]


def test_it_leaves_text_values_fewer_than_min_group_size_customers_have_out_of_the_model():
    frame = pd.DataFrame(
        {
            "job": ["student"] * 3 + ["Zeppelin-Pilot"] * 2 + [None],
            "age": [20, 21, 22, 23, 23, 24],
        }
    )
    # Six rows of four customers: the student rows belong to three of them.
    owners = [1, 2, 3, 4, 4, 1]

    kept = without_rare_values(frame, ["job", "age"], owners, k=3)

    assert kept["job"].tolist()[:3] == ["student"] * 3
    assert kept["job"].isna().tolist()[3:] == [True, True, True]
    assert kept["age"].tolist() == frame["age"].tolist()


def test_a_re_training_goes_on_from_the_model_on_the_newer_responses_and_counts_who_left(
    marketer,
    steward,
    tiny_bert,
    term_deposit,
    click_customers,
    django_capture_on_commit_callbacks,
):
    parent = train(django_capture_on_commit_callbacks, marketer, term_deposit)
    assert parent.job.status == Job.Status.SUCCEEDED, parent.job.error
    newer = make_click_customers(200, term_deposit, prefix="N", seed=5)
    record_consent(click_customers[1], Purpose.MODEL_TRAINING, "withdrawn", days_ago=1)
    record_consent(newer[0], Purpose.MODEL_TRAINING, "withdrawn", days_ago=1)

    with django_capture_on_commit_callbacks(execute=True):
        continued = training_run_retrain(run=parent, by=marketer, start="incremental")
    # Once a customer it learned from is erased, it only re-trains from scratch.
    customer_erase(customer=click_customers[0], by=steward)
    parent.refresh_from_db()
    with pytest.raises(TrainingSetupError, match="re-train it from scratch"):
        training_run_retrain(run=parent, by=marketer, start="incremental")
    with django_capture_on_commit_callbacks(execute=True):
        again = training_run_retrain(run=parent, by=marketer, start="scratch")
    continued.refresh_from_db()
    again.refresh_from_db()

    assert continued.job.status == Job.Status.SUCCEEDED, continued.job.error
    assert again.job.status == Job.Status.SUCCEEDED, again.job.error
    assert (continued.parent, continued.start) == (parent, "incremental")
    assert continued.data_since.isoformat() == parent.rows["latest_response_at"]
    # Only the responses after the parent's newest, of customers still consenting.
    assert continued.rows["examples"] == 199
    assert again.rows["examples"] == 240 - 2 + 199
    assert continued.left_out_since_parent == {"erased": 0, "withdrawn": 1}
    assert again.left_out_since_parent == {"erased": 1, "withdrawn": 1}
    assert again.customers_excluded["withdrawn"] >= 1
    # Continued from the parent's weights: the same text serialiser, the parent's settings.
    saved = json.loads((registry_folder(settings, continued) / "model" / "model.json").read_text())
    parent_saved = json.loads(
        (registry_folder(settings, parent) / "model" / "model.json").read_text()
    )
    assert saved["serializer_state"] == parent_saved["serializer_state"]
    # More gently and briefly than a first training: a share of the rates and of the time.
    child_config, parent_config = saved["train_config"], parent_saved["train_config"]
    assert child_config["learning_rate"] == pytest.approx(
        parent_config["learning_rate"] * INCREMENTAL_LEARNING_RATE_SHARE
    )
    assert child_config["time_budget_s"] == pytest.approx(
        parent_config["time_budget_s"] * INCREMENTAL_TIME_SHARE
    )
    assert "continued" in continued.name and "retrained" in again.name
    # The drift reference: every customer field and the served model's test scores.
    assert {f["field"] for f in continued.reference["fields"]} == {"age", "job", "balance"}
    assert continued.reference["score"]["kind"] == "number"


def test_an_incremental_re_training_with_nothing_new_fails_clearly(
    marketer, tiny_bert, term_deposit, click_customers, django_capture_on_commit_callbacks
):
    parent = train(django_capture_on_commit_callbacks, marketer, term_deposit, params={"epochs": 1})
    with django_capture_on_commit_callbacks(execute=True):
        continued = training_run_retrain(run=parent, by=marketer, start="incremental")
    continued.refresh_from_db()
    assert continued.job.status == Job.Status.FAILED
    assert "No response with a valid model-training consent arrived after" in continued.job.message
    unfinished = finished_run(term_deposit, model_id="", name="unfinished")
    with pytest.raises(TrainingSetupError, match="no finished model to go on from"):
        training_run_retrain(run=unfinished, by=marketer, start="incremental")
    with pytest.raises(TrainingSetupError, match="scratch or incremental"):
        training_run_retrain(run=parent, by=marketer, start="sideways")
