"""Click-model test data: customers whose conversion depends on their profile, a tiny random
BERT, a small trained model in a registry, and finished runs for page and API tests."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from marketing.models import (
    ConsentRecord,
    Customer,
    Interaction,
    Job,
    Offer,
    ProfileField,
    Purpose,
    ScoringRun,
    TrainingRun,
)
from marketing.pseudonyms import pseudonym_for
from marketing.services.current_consent import current_consent_refresh
from tests.factories import make_offer

JOBS = ["admin.", "technician", "student", "retired", "services"]
# Small and quick: a few seconds per training on one thread.
FAST_PARAMS = {
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "max_length": 32,
    "frozen_layers": 0,
    "threads": 1,
}


def make_click_customers(
    n: int,
    offer: Offer,
    *,
    purposes=(Purpose.MODEL_TRAINING, Purpose.PROFILING),
    seed: int = 0,
    prefix: str = "K",
) -> list[Customer]:
    """Customers shown ``offer``; students and high balances convert more often."""
    rng = np.random.default_rng(seed)
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{prefix}{i:05d}",
                pseudonym=pseudonym_for(f"{prefix}{i:05d}"),
                attributes={
                    "age": int(rng.integers(18, 80)),
                    "job": JOBS[i % len(JOBS)],
                    "balance": round(float(rng.normal()), 2),
                },
            )
            for i in range(n)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))
    add_consent(customers, *purposes)
    shown_at = timezone.now() - timedelta(days=10)
    interactions = []
    for customer in customers:
        a = customer.attributes
        logit = 2.5 * (a["job"] == "student") + 1.5 * a["balance"] - 1.0
        interactions.append(
            Interaction(customer=customer, offer=offer, kind="impression", occurred_at=shown_at)
        )
        if rng.random() < 1 / (1 + np.exp(-logit)):
            interactions.append(
                Interaction(
                    customer=customer,
                    offer=offer,
                    kind="conversion",
                    occurred_at=shown_at + timedelta(hours=1),
                )
            )
    Interaction.objects.bulk_create(interactions)
    for name, data_type in (("age", "number"), ("job", "text"), ("balance", "number")):
        ProfileField.objects.get_or_create(name=name, defaults={"data_type": data_type})
    return customers


def add_consent(customers, *purposes, status="granted", days_ago: float = 30, expires_at=None):
    effective = timezone.now() - timedelta(days=days_ago)
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                customer=c,
                purpose=p,
                status=status,
                effective_at=effective,
                expires_at=expires_at,
                source="form",
                notice_version="v1",
            )
            for c in customers
            for p in purposes
        ]
    )
    current_consent_refresh(customer_ids=[c.pk for c in customers])


@pytest.fixture
def term_deposit(db) -> Offer:
    return make_offer("TERM-DEPOSIT", title="Term deposit", category="savings")


@pytest.fixture
def click_customers(term_deposit) -> list[Customer]:
    return make_click_customers(240, term_deposit)


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory) -> str:
    from recengine.models_base import build_tiny_bert

    texts = [f"job {job} || term deposit | category savings" for job in JOBS]
    return str(build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts))


@pytest.fixture
def tiny_bert(settings, tiny_bert_path) -> str:
    """The tiny BERT is the configured base model."""
    settings.CLICK_MODEL_BASE = tiny_bert_path
    return tiny_bert_path


@pytest.fixture(scope="session")
def registry_with_model(tmp_path_factory, tiny_bert_path) -> tuple[str, str]:
    """(registry folder, model id) of a tiny click model trained on age, job and balance."""
    from recengine.registry import ModelRegistry
    from recengine.serialize import SerializeConfig, TextSerializer
    from recengine.train import ClickModel, TrainConfig

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 200),
            "job": rng.choice(JOBS, 200),
            "balance": rng.normal(0, 1, 200).round(2),
        }
    )
    y = ((frame["job"] == "student") | (frame["balance"] > 1)).astype(int).to_numpy()
    serializer = TextSerializer(SerializeConfig(numeric_text="omit")).fit(frame)
    config = TrainConfig(base_model=tiny_bert_path, mode="lora", epochs=1, batch_size=32, threads=1)
    model = ClickModel(config, serializer).fit(frame, y)
    root = tmp_path_factory.mktemp("registry")
    model_id = ModelRegistry(root).save(
        model, name="tiny", fingerprint="0" * 64, pseudonyms=[], consent_snapshot={}
    )
    return str(root), model_id


def finished_run(offer: Offer | None = None, *, by=None, **fields) -> TrainingRun:
    """A succeeded training run with realistic metrics and curves (nothing trained)."""
    from recengine.metrics import click_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    bert = click_metrics(y, np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1)).as_dict()
    baseline = click_metrics(y, np.clip(0.2 * y + rng.random(400) * 0.8, 0, 1)).as_dict()
    job = Job.objects.create(
        kind=Job.Kind.TRAIN,
        title="Train",
        status=Job.Status.SUCCEEDED,
        progress=100,
        message="Done",
        created_by=by,
    )
    defaults = {
        "name": "Term deposit · conversion",
        "offer": offer,
        "target": "conversion",
        "base_model": "packaged:all-MiniLM-L6-v2",
        "mode": "lora",
        "params": {"epochs": 1, "batch_size": 32, "max_rows": 6000},
        "metrics": {"bert": bert, "baseline": baseline},
        "curves": {
            "loss": [[10, 0.6], [20, 0.45], [30, 0.4]],
            "val_auc": [[15, 0.7], [30, 0.75]],
            "total_steps": 30,
            "steps_per_epoch": 30,
        },
        "rows": {"examples": 500, "positives": 60, "train": 360, "val": 40, "test": 100},
        "customers_used": 500,
        "customers_excluded": {"no_record": 40, "denied": 12, "withdrawn": 5, "expired": 3},
        "consent_snapshot": {
            "purpose": "model_training",
            "at": timezone.now().isoformat(),
            "consented_customers": 500,
            "notice_versions": {"v1": 500},
        },
        "fingerprint": "f" * 64,
        "model_id": "20260101-000000-abcdef12",
        "example_text": "job student",
        "created_by": by,
    }
    return TrainingRun.objects.create(job=job, **{**defaults, **fields})


def _bar_counts(scores: list[float]) -> list[int]:
    counts = [0] * 10
    for score in scores:
        counts[min(int(score * 10), 9)] += 1
    return counts


def finished_scoring(run: TrainingRun, customers, *, by=None) -> ScoringRun:
    """A succeeded scoring run with one score per customer (0.1, 0.2, ...)."""
    job = Job.objects.create(
        kind=Job.Kind.SCORE,
        title="Score",
        status=Job.Status.SUCCEEDED,
        progress=100,
        message="Done",
        created_by=by,
    )
    scoring = ScoringRun.objects.create(
        job=job,
        training_run=run,
        rows_scored=len(customers),
        customers_scored=len(customers),
        customers_excluded={"no_record": 0, "denied": 0, "withdrawn": 0, "expired": 0},
        distribution={
            "count": len(customers),
            "mean": 0.3,
            # Ten bars of 0.1; the histogram of the scores written below.
            "edges": [i / 10 for i in range(11)],
            "counts": _bar_counts(
                [round(0.9 * (i + 1) / len(customers), 4) for i in range(len(customers))]
            ),
            "quantiles": {"p10": 0.1, "p50": 0.3, "p90": 0.5},
        },
        created_by=by,
    )
    scoring.scores.bulk_create(
        [
            scoring.scores.model(
                scoring_run=scoring,
                customer=c,
                offer=run.offer,
                score=round(0.9 * (i + 1) / len(customers), 4),
            )
            for i, c in enumerate(customers)
        ]
    )
    return scoring


@pytest.fixture
def trained(settings, registry_with_model, term_deposit, marketer):
    """A finished run whose model (tiny BERT on age, job, balance) is in the registry."""
    root, model_id = registry_with_model
    settings.MODEL_REGISTRY_DIR = root
    return finished_run(term_deposit, model_id=model_id, by=marketer)
