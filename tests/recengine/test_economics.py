import math

import pytest

from recengine.economics import (
    ECONOMICS_DEFAULTS,
    ECONOMICS_FIELDS,
    CampaignEconomics,
    economics_problems,
)


def test_it_lists_the_fields_and_the_defaults_of_the_dataclass():
    assert ECONOMICS_FIELDS == ("cost_per_contact", "value_per_conversion", "fixed_cost", "budget")
    assert ECONOMICS_DEFAULTS == {"fixed_cost": 0.0, "budget": None}


def test_it_names_every_field_that_breaks_a_rule():
    problems = economics_problems(
        {
            "cost_per_contact": -1,
            "value_per_conversion": 0,
            "fixed_cost": math.inf,
            "budget": "lots",
        }
    )

    assert problems == {
        "cost_per_contact": "cannot be negative",
        "value_per_conversion": (
            "must be above 0: a conversion that earns nothing cannot pay for any contact"
        ),
        "fixed_cost": "must be a finite number",
        "budget": "must be a number",
    }


def test_it_finds_no_problem_in_economics_the_dataclass_accepts():
    values = {"cost_per_contact": 0, "value_per_conversion": 80.5, "fixed_cost": 0, "budget": None}

    assert economics_problems(values) == {}
    assert CampaignEconomics(**values).budget is None


def test_it_refuses_the_first_field_that_breaks_a_rule_with_its_value():
    with pytest.raises(ValueError, match=r"^cost_per_contact cannot be negative, got -1\.$"):
        CampaignEconomics(cost_per_contact=-1, value_per_conversion=0)
