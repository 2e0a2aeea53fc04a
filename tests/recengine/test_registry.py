import os
import stat

import numpy as np
import pytest

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.data import fingerprint
from recengine.registry import ModelRegistry
from recengine.train import ClickModel


def test_it_round_trips_a_click_model_with_its_lineage(
    customers, serializer, tiny_config, tmp_path
):
    tiny_config.mode, tiny_config.epochs = "lora", 1
    frame, y = customers
    model = ClickModel(tiny_config, serializer).fit(frame, y)
    registry = ModelRegistry(tmp_path)
    model_id = registry.save(
        model,
        name="students",
        fingerprint=fingerprint(frame),
        pseudonyms=["p2", "p1", "p1"],
        consent_snapshot={"purpose": "model_training", "excluded": 3},
        metrics={"roc_auc": 0.7},
    )
    manifest = registry.record(model_id).manifest
    assert manifest["n_customers"] == 2 and manifest["consent_snapshot"]["excluded"] == 3
    assert manifest["fingerprint"] == fingerprint(frame)
    np.testing.assert_allclose(
        registry.load(model_id, device=model.device_).predict_proba(frame),
        model.predict_proba(frame),
        atol=1e-6,
    )


def test_it_finds_the_models_trained_on_a_customer(customers, tmp_path):
    frame, y = customers
    baseline = TabularBaseline(BaselineConfig(kind="logistic")).fit(frame, y)
    registry = ModelRegistry(tmp_path)
    first = registry.save(
        baseline, name="a", fingerprint="f", pseudonyms=["p1", "p2"], consent_snapshot={}
    )
    registry.save(baseline, name="b", fingerprint="f", pseudonyms=["p3"], consent_snapshot={})
    assert registry.find_models_using("p2") == [first]
    assert registry.find_models_using("p9") == []
    np.testing.assert_allclose(
        registry.load(first).predict_proba(frame), baseline.predict_proba(frame)
    )


def test_it_refuses_an_unknown_model_id(tmp_path):
    with pytest.raises(KeyError):
        ModelRegistry(tmp_path).load("../etc")


def test_it_stores_parts_beside_the_model_and_says_when_one_is_missing(customers, tmp_path):
    frame, y = customers
    baseline = TabularBaseline(BaselineConfig(kind="logistic")).fit(frame, y)
    registry = ModelRegistry(tmp_path)
    with_part = registry.save(
        baseline,
        name="a",
        fingerprint="f",
        pseudonyms=["p1"],
        consent_snapshot={},
        parts={"baseline": baseline},
    )
    without = registry.save(
        baseline, name="b", fingerprint="f", pseudonyms=["p1"], consent_snapshot={}
    )

    np.testing.assert_allclose(
        registry.load_part(with_part, "baseline").predict_proba(frame),
        baseline.predict_proba(frame),
    )
    assert registry.record(with_part).manifest["parts"] == ["baseline"]
    with pytest.raises(KeyError, match="no 'baseline'"):
        registry.load_part(without, "baseline")
    with pytest.raises(ValueError):
        registry.save(
            baseline,
            name="c",
            fingerprint="f",
            pseudonyms=[],
            consent_snapshot={},
            parts={"../x": baseline},
        )


def test_it_writes_model_folders_readable_by_their_owner_only(customers, tmp_path):
    frame, y = customers
    baseline = TabularBaseline(BaselineConfig(kind="logistic")).fit(frame, y)
    previous = os.umask(0o022)  # the common default, which makes world-readable files
    try:
        model_id = ModelRegistry(tmp_path).save(
            baseline,
            name="a",
            fingerprint="f",
            pseudonyms=["p1"],
            consent_snapshot={},
            parts={"baseline": baseline},
        )
    finally:
        os.umask(previous)
    folder = tmp_path / model_id
    modes = {
        path.relative_to(folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [folder, *folder.rglob("*")]
    }
    assert modes == {
        ".": 0o700,
        "model": 0o700,
        "model/model.pkl": 0o600,
        "parts": 0o700,
        "parts/baseline.pkl": 0o600,
        "manifest.json": 0o600,
        "customers.txt": 0o600,
    }


def test_it_rekeys_a_models_customer_list_and_names_the_new_key(tmp_path):
    registry = ModelRegistry(tmp_path)
    model_id = registry.save(
        {"w": 1}, name="a", fingerprint="f", pseudonyms=["p1", "p2"], consent_snapshot={}
    )
    assert registry.customers_key(model_id) is None

    count = registry.rekey_customers(
        model_id, lambda chunk: {p: f"new-{p}" for p in chunk}, key_id="k2", chunk_size=1
    )

    assert count == 2 and registry.customers_key(model_id) == "k2"
    assert registry.find_models_using("new-p2") == [model_id]
    assert registry.find_models_using("p2") == []


def test_it_leaves_the_customer_list_whole_when_rekeying_fails(tmp_path):
    registry = ModelRegistry(tmp_path)
    model_id = registry.save(
        {"w": 1}, name="a", fingerprint="f", pseudonyms=["p1", "p2"], consent_snapshot={}
    )
    path = tmp_path / model_id / "customers.txt"
    before = path.read_text()

    def failing(chunk):
        raise ConnectionError("database went away")

    with pytest.raises(ConnectionError):
        registry.rekey_customers(model_id, failing, key_id="k2")

    assert path.read_text() == before and registry.customers_key(model_id) is None
