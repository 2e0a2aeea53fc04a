import math

import pytest

from marketing.services.explanations import blend_explanation


def part(base, logit, contributions, method):
    return {
        "row_id": 7,
        "base_value": base,
        "logit": logit,
        "contributions": [
            {"field": f, "label": f, "value": v, "contribution": c} for f, v, c in contributions
        ],
        "method": method,
        "tolerance": 1e-3,
    }


def test_the_served_blend_is_explained_as_the_weighted_sum_of_its_members():
    result = {
        "bert": part(-1.0, 0.5, [("age", 41, 1.0), ("job", "student", 0.5)], "permutation"),
        "baseline": part(-0.8, -0.2, [("age", 41, 0.2), ("balance", 3.1, 0.4)], "tree"),
    }
    served = blend_explanation(result, {"model": 0.75, "baseline": 0.5}, intercept=0.1)

    contributions = {c["field"]: c["contribution"] for c in served["contributions"]}
    assert contributions == pytest.approx({"age": 0.85, "job": 0.375, "balance": 0.2})
    assert served["base_value"] == pytest.approx(0.1 - 0.75 - 0.4)
    assert served["logit"] == pytest.approx(0.1 + 0.375 - 0.1)
    assert served["probability"] == pytest.approx(1 / (1 + math.exp(-served["logit"])))
    # Base plus the contributions adds up to the blend's own log-odds.
    assert served["local_accuracy_error"] == pytest.approx(0.0, abs=1e-12)
    assert [c["field"] for c in served["contributions"]] == ["age", "job", "balance"]
    assert served["weights"] == {"bert": 0.75, "baseline": 0.5}
