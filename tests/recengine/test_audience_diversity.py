import json

import numpy as np
import pandas as pd
import pytest

from recengine.audience_diversity import AudienceConfig, audience_diversity


def make_base(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Customers whose score rises with age and is lowest in the east region."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], n, p=[0.4, 0.4, 0.2]),
            "age": rng.integers(18, 80, n),
            "tiny": np.where(np.arange(n) < 10, "rare", "common"),
        }
    )
    frame["score"] = frame["age"] / 80 + rng.normal(0, 0.05, n) - 0.5 * (frame["region"] == "east")
    return frame


def test_it_flags_a_group_left_out_of_the_audience():
    frame = make_base()
    result = audience_diversity(frame, AudienceConfig(top_n=100, attributes=["region", "age"]))
    region = next(a for a in result.attributes if a.attribute == "region")
    assert region.left_out == ["east"]
    east = next(g for g in region.groups if g.group == "east")
    assert east.audience_count == 0 and east.base_share == pytest.approx(
        (frame["region"] == "east").mean()
    )
    assert region.js_divergence > 0


def test_it_bins_numbers_into_quantiles_and_flags_the_young():
    frame = make_base()
    result = audience_diversity(
        frame, AudienceConfig(top_share=0.1, attributes=["age"], quantiles=4)
    )
    age = result.attributes[0]
    assert age.kind == "numeric" and len(age.groups) == 4
    assert sum(g.base_count for g in age.groups) == len(frame)
    assert age.groups[0].group in age.under_represented  # the youngest quarter
    assert age.groups[-1].flag == "over-represented"


def test_it_does_not_flag_groups_too_small_to_judge():
    frame = make_base()
    result = audience_diversity(
        frame, AudienceConfig(top_n=100, attributes=["tiny"], min_base_share=0.02)
    )
    rare = next(g for g in result.attributes[0].groups if g.group == "rare")
    assert rare.base_share == 0.01 and rare.flag == ""


def test_it_finds_nothing_to_flag_when_the_audience_is_a_random_sample():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"region": rng.choice(["north", "south"], 4000), "score": rng.random(4000)}
    )
    result = audience_diversity(frame, AudienceConfig(top_share=0.5))
    assert result.flagged() == []
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_it_names_the_row_of_an_empty_score_in_the_audience_frame():
    frame = pd.DataFrame({"region": ["a", "b"], "score": [0.3, None]})
    with pytest.raises(ValueError, match=r"Row 1, column 'score'"):
        audience_diversity(frame, AudienceConfig(top_n=1))


def test_it_counts_missing_values_as_their_own_group():
    frame = make_base()
    frame.loc[frame.index[:50], "age"] = np.nan
    frame.loc[frame.index[:50], "score"] = 0.0  # customers without an age are never targeted
    result = audience_diversity(frame, AudienceConfig(top_n=100, attributes=["age"]))
    missing = next(g for g in result.attributes[0].groups if g.group == "(missing)")
    assert missing.base_count == 50 and missing.flag == "left out"
    assert sum(g.base_count for g in result.attributes[0].groups) == len(frame)
