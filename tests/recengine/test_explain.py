import json

import numpy as np
import pandas as pd
import pytest

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.explain import (
    PERMUTATION_TOLERANCE,
    BaselineExplainer,
    ExplainConfig,
    FieldExplainer,
    field_explainer,
    global_importance,
)
from recengine.models_base import build_tiny_bert
from recengine.serialize import SerializeConfig, TextSerializer
from recengine.train import ClickModel, TrainConfig

COLOURS = ["red", "green", "blue", "amber"]
JOBS = ["admin.", "technician", "student", "retired", "services"]


def planted_customers(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Clicks driven by `job` (student) and `balance` only; `age` and `colour` are noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "job": rng.choice(JOBS, n),
            "colour": rng.choice(COLOURS, n),
            "balance": rng.normal(0, 1, n).round(2),
        }
    )
    logit = 3.0 * (frame["job"] == "student") + 2.0 * frame["balance"] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


class AdditiveModel:
    """Known logit: a sum of one term per field, so its Shapley values are known exactly."""

    fields = ["age", "job", "colour", "balance"]

    @staticmethod
    def terms(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": 0.01 * frame["age"].astype(float),
                "job": frame["job"].map({j: i * 0.5 for i, j in enumerate(JOBS)}).astype(float),
                "colour": (frame["colour"] == "red").astype(float),
                "balance": -2.0 * frame["balance"].astype(float),
            }
        )

    def predict_logits(self, frame: pd.DataFrame) -> np.ndarray:
        return self.terms(frame).sum(axis=1).to_numpy()


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, np.ndarray]:
    return planted_customers(1500)


@pytest.fixture(scope="module")
def tiny_click_model(planted, tmp_path_factory) -> ClickModel:
    frame, y = planted
    serializer = TextSerializer(SerializeConfig(labels={"balance": "account balance"})).fit(frame)
    base = build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), serializer.texts(frame))
    config = TrainConfig(
        base_model=str(base),
        mode="full",
        epochs=4,
        batch_size=32,
        learning_rate=3e-3,
        head_learning_rate=1e-2,
        eval_batch_size=256,
        threads=1,
        seed=0,
    )
    return ClickModel(config, serializer).fit(
        frame.iloc[:1200], y[:1200], frame.iloc[1200:], y[1200:]
    )


def test_it_adds_bert_contributions_up_to_the_model_logit(planted, tiny_click_model):
    frame, _ = planted
    config = ExplainConfig(background_size=10, check_local_accuracy=False)
    explainer = FieldExplainer(tiny_click_model, config).fit(frame.iloc[:1200])
    rows = frame.iloc[1200:1230]
    explanations = explainer.explain(rows)
    logits = tiny_click_model.predict_logits(rows)
    for exp, logit in zip(explanations, logits, strict=True):
        total = exp.base_value + sum(c.contribution for c in exp.contributions)
        assert abs(total - logit) < PERMUTATION_TOLERANCE
        assert exp.probability == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-4)
    assert max(e.local_accuracy_error for e in explanations) < PERMUTATION_TOLERANCE


def test_it_gives_the_same_bert_explanations_with_text_embeddings_reused(planted, tiny_click_model):
    frame, _ = planted
    rows = frame.iloc[1200:1210]
    fast = FieldExplainer(tiny_click_model, ExplainConfig(background_size=6)).fit(frame)
    slow = FieldExplainer(
        tiny_click_model, ExplainConfig(background_size=6, reuse_text_embeddings=False)
    ).fit(frame)
    for a, b in zip(fast.explain(rows), slow.explain(rows), strict=True):
        assert a.logit == pytest.approx(b.logit, abs=1e-4)
        got = {c.field: c.contribution for c in b.contributions}
        for c in a.contributions:
            assert got[c.field] == pytest.approx(c.contribution, abs=1e-4)


def test_it_ranks_planted_signal_fields_first_for_a_tiny_bert_model(planted, tiny_click_model):
    frame, _ = planted
    explainer = FieldExplainer(tiny_click_model, ExplainConfig(background_size=10)).fit(
        frame.iloc[:1200]
    )
    importance = {
        f.field: f.mean_abs for f in global_importance(explainer, frame.iloc[1200:1300]).fields
    }
    assert set(sorted(importance, key=importance.get)[-2:]) == {"job", "balance"}
    signal = min(importance["job"], importance["balance"])
    assert importance["colour"] < 0.25 * signal
    assert importance["age"] < 0.25 * signal


def test_it_ranks_planted_signal_fields_first_for_the_lightgbm_baseline(planted):
    frame, y = planted
    model = TabularBaseline(BaselineConfig(n_estimators=300, threads=1)).fit(frame, y)
    explainer = field_explainer(model).fit(frame)
    assert isinstance(explainer, BaselineExplainer)
    result = global_importance(explainer, frame.iloc[:500])
    importance = {f.field: f.mean_abs for f in result.fields}
    assert result.top(2) == ["job", "balance"] or result.top(2) == ["balance", "job"]
    assert importance["colour"] < 0.15 * importance["job"]
    assert result.max_local_accuracy_error < 1e-6


def test_it_finds_the_exact_shapley_values_of_an_additive_model(planted):
    frame, _ = planted
    model = AdditiveModel()
    config = ExplainConfig(background_size=15, fields=AdditiveModel.fields)
    explainer = FieldExplainer(model, config).fit(frame)
    rows = frame.iloc[:20]
    expected = AdditiveModel.terms(rows) - AdditiveModel.terms(explainer.background_).mean()
    for exp, (_, want) in zip(explainer.explain(rows), expected.iterrows(), strict=True):
        got = {c.field: c.contribution for c in exp.contributions}
        for name in AdditiveModel.fields:
            assert got[name] == pytest.approx(want[name], abs=1e-9)


def test_it_agrees_with_linear_shap_on_the_logistic_baseline(planted):
    frame, y = planted
    model = TabularBaseline(BaselineConfig(kind="logistic")).fit(frame, y)
    config = ExplainConfig(background_size=12)
    linear = field_explainer(model, config).fit(frame)
    masked = FieldExplainer(model, config).fit(frame)
    rows = frame.iloc[:15]
    for a, b in zip(linear.explain(rows), masked.explain(rows), strict=True):
        assert a.method == "linear" and b.method == "permutation"
        assert a.base_value == pytest.approx(b.base_value, abs=1e-6)
        got = {c.field: c.contribution for c in b.contributions}
        for c in a.contributions:
            assert got[c.field] == pytest.approx(c.contribution, abs=1e-6)


def test_it_returns_json_ready_explanations_sorted_by_size(planted, tiny_click_model):
    frame, _ = planted
    explainer = FieldExplainer(tiny_click_model, ExplainConfig(background_size=5)).fit(frame)
    exp = explainer.explain(frame.iloc[:1], row_ids=["customer-7"])[0]
    data = json.loads(json.dumps(exp.to_dict()))
    assert data["row_id"] == "customer-7"
    sizes = [abs(c["contribution"]) for c in data["contributions"]]
    assert sizes == sorted(sizes, reverse=True)
    by_field = {c["field"]: c for c in data["contributions"]}
    assert set(by_field) == {"age", "job", "colour", "balance"}
    assert by_field["balance"]["label"] == "account balance"
    assert by_field["job"]["value"] == frame["job"].iloc[0]
    assert 0 < data["probability"] < 1 and data["tolerance"] == PERMUTATION_TOLERANCE


def test_it_scores_each_distinct_masked_row_once(planted):
    frame, _ = planted
    explainer = FieldExplainer(
        AdditiveModel(), ExplainConfig(background_size=8, fields=AdditiveModel.fields)
    ).fit(frame)
    first = explainer.explain(frame.iloc[:10])
    scored = explainer.rows_scored_
    again = explainer.explain(frame.iloc[:10])
    assert explainer.rows_scored_ == scored
    assert [e.to_dict() for e in again] == [e.to_dict() for e in first]


def test_it_reports_progress_while_computing_global_importance(planted):
    frame, _ = planted
    explainer = FieldExplainer(
        AdditiveModel(), ExplainConfig(background_size=5, fields=AdditiveModel.fields)
    ).fit(frame)
    seen: list[tuple[float, str]] = []
    result = global_importance(
        explainer, frame.iloc[:45], progress=lambda p, m: seen.append((p, m)), chunk_rows=20
    )
    assert [round(p) for p, _ in seen] == [44, 89, 100]
    assert seen[-1][1] == "Explained 45 of 45 customers"
    assert result.rows == 45


def test_it_names_the_missing_column(planted):
    frame, _ = planted
    explainer = FieldExplainer(
        AdditiveModel(), ExplainConfig(background_size=5, fields=AdditiveModel.fields)
    ).fit(frame)
    with pytest.raises(ValueError, match="colour"):
        explainer.explain(frame.drop(columns=["colour"]).iloc[:3])


def test_it_explains_customers_alike_together_or_alone(planted):
    frame, _ = planted
    config = ExplainConfig(background_size=6, fields=AdditiveModel.fields)
    together = FieldExplainer(AdditiveModel(), config).fit(frame)
    alone = FieldExplainer(AdditiveModel(), config).fit(frame)
    explained = together.explain(frame.iloc[:30])
    for i in range(30):
        assert alone.explain(frame.iloc[i : i + 1])[0].to_dict() == explained[i].to_dict()
    # Together, shap 0.51 would also evaluate every field's main effect from the second row on.
    assert together.rows_scored_ == alone.rows_scored_


def test_it_leaves_numpys_global_random_state_alone(planted):
    frame, _ = planted
    explainer = FieldExplainer(
        AdditiveModel(), ExplainConfig(background_size=4, fields=AdditiveModel.fields)
    ).fit(frame)
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    explainer.explain(frame.iloc[:3])
    assert np.random.random() == expected
