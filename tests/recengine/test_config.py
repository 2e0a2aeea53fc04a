import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from recengine.config import json_ready

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.none(),
    st.booleans(),
    st.text(max_size=5),
)
NESTED = st.recursive(
    NUMBERS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(NESTED)
def test_it_never_lets_nan_or_infinity_through(value):
    json.dumps(json_ready(value), allow_nan=False)  # raises on NaN or an infinity


def test_it_turns_nan_and_infinities_into_none_at_any_depth():
    value = {
        "auc": float("nan"),
        "lift": [np.float32("inf"), -math.inf, 0.5],
        "by_offer": {"a": np.array([np.nan, 1.0])},
    }
    assert json_ready(value) == {
        "auc": None,
        "lift": [None, None, 0.5],
        "by_offer": {"a": [None, 1.0]},
    }


def test_it_keeps_nan_for_files_that_python_reads_back_when_asked():
    ready = json_ready({"edges": [np.float64("nan"), 1.0]}, allow_nan=True)
    assert math.isnan(ready["edges"][0]) and type(ready["edges"][0]) is float


def test_it_turns_numpy_values_paths_and_other_objects_into_plain_json():
    value = {
        1: np.int64(3),
        "ok": np.bool_(True),
        "path": Path("/tmp/model"),
        "when": pd.Timestamp("2024-05-01"),
        "ids": np.arange(2),
    }
    ready = json_ready(value)
    assert ready == {
        "1": 3,
        "ok": True,
        "path": "/tmp/model",
        "when": "2024-05-01 00:00:00",
        "ids": [0, 1],
    }
    assert type(ready["1"]) is int and type(ready["ok"]) is bool
