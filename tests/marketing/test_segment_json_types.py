"""Segment rules read profile values by their JSON type: JSON numbers are compared as they
are, numbers stored as text still count, and anything else is "not set", as before the
rules stopped matching every value against a pattern."""

import pytest

from marketing.models import Customer, ProfileField
from marketing.segments import compile_rules
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

SCORES = {
    "int": 42,
    "float": 42.5,
    "text": "42",
    "spaced": " 7 ",
    "exponent": "1e3",
    "stray": "n/a",
    "empty": "",
    "yes": True,
    "null": None,
    "object": {"x": 1},
    "list": [1],
}
SINCE = {
    "int": "2021-05-01",
    "float": "2021-05-01T10:00:00",
    "text": 20210501,
    "spaced": "soon",
    "exponent": "1999-12-31",
}


@pytest.fixture
def people() -> dict[str, int]:
    ProfileField.objects.create(name="score", data_type="number")
    ProfileField.objects.create(name="since", data_type="date")
    ids = {}
    for name, value in SCORES.items():
        attributes = {"score": value}
        if name in SINCE:
            attributes["since"] = SINCE[name]
        ids[name] = make_customer(name, **attributes).pk
    ids["missing"] = make_customer("missing").pk
    return ids


def matching(field: str, operator: str, value=None) -> set[str]:
    rule = {"field": field, "operator": operator, "value": value}
    q = compile_rules({"op": "and", "rules": [rule]})
    return set(Customer.objects.filter(q).values_list("external_id", flat=True))


def test_it_compares_json_numbers_and_numbers_stored_as_text(people):
    assert matching("attr:score", "gt", 10) == {"int", "float", "text", "exponent"}
    assert matching("attr:score", "eq", 42) == {"int", "text"}
    assert matching("attr:score", "between", [0, 10]) == {"spaced"}
    assert matching("attr:score", "lte", 1000) == {"int", "float", "text", "spaced", "exponent"}


def test_it_leaves_values_of_other_types_and_missing_ones_out_of_comparisons(people):
    compared = matching("attr:score", "gte", -1e9)
    assert compared.isdisjoint({"stray", "empty", "yes", "null", "object", "list", "missing"})


def test_ne_is_the_complement_of_eq_whatever_the_types(people):
    everyone = set(Customer.objects.values_list("external_id", flat=True))
    assert matching("attr:score", "ne", 42) == everyone - {"int", "text"}


def test_is_set_counts_any_value_but_empty_text(people):
    # (A JSON null is "not set" on PostgreSQL and "set" on SQLite, as it always was.)
    assert matching("attr:score", "is_set") - {"null"} == set(SCORES) - {"empty", "null"}
    assert matching("attr:score", "is_not_set") - {"null"} == {"empty", "missing"}


def test_it_reads_dates_only_from_text_that_starts_as_one(people):
    assert matching("attr:since", "after", "2021-01-01") == {"int", "float"}
    assert matching("attr:since", "before", "2021-05-02") == {"int", "float", "exponent"}
