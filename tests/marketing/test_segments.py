"""Segment rules against a hand count over ~60 customers built with known data."""

from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from django.utils import timezone

from marketing.models import ConsentRecord, Interaction, ProfileField, Purpose
from marketing.segments import SegmentRuleError, available_fields, compile_rules
from marketing.selectors.segments import segment_count_preview, segment_customers
from tests.factories import make_customer, make_offer, record_consent

pytestmark = pytest.mark.django_db

EMAIL = Purpose.EMAIL_MARKETING
ADS = Purpose.AD_TARGETING
JOBS = ["admin", "student", "retired", "technician"]


@dataclass
class Person:
    """What the test knows about one customer, to count by hand."""

    i: int
    attributes: dict
    identity: dict | None
    email_consent: bool
    ads_consent: bool
    clicks_on_a: int
    converted_on_b: bool
    recent_impression: bool
    old_impression: bool
    pk: int = field(default=0)


def _person(i: int) -> Person:
    attributes: dict = {
        "age": 20 + i,
        "job": JOBS[i % 4],
        "member": i % 3 == 0,
        "joined": (date(2020, 1, 1) + timedelta(days=15 * i)).isoformat(),
        "balance": i * 100.5,
    }
    if i % 10 == 7:
        del attributes["job"]
    if i % 11 == 5:
        del attributes["age"]
    if i == 13:
        attributes["balance"] = "n/a"  # a stray value must not break the number cast
    identity = None
    if i % 7 != 6:
        identity = {
            "email": f"person{i}@example.com" if i % 2 == 0 else "",
            "phone": f"+3519100000{i:02d}" if i % 5 == 0 else "",
            "country": ["PT", "DE", "FR"][i % 3],
        }
    granted = i % 3 != 2
    withdrawn = i % 9 == 0
    expired = i % 8 == 1
    return Person(
        i=i,
        attributes=attributes,
        identity=identity,
        email_consent=granted and not withdrawn and not expired,
        ads_consent=i % 4 == 0,
        clicks_on_a=i % 5,
        converted_on_b=i % 6 == 0,
        recent_impression=i % 4 == 2,
        old_impression=i % 4 == 1,
    )


@pytest.fixture
def people() -> list[Person]:
    ProfileField.objects.bulk_create(
        [
            ProfileField(name="age", data_type="number"),
            ProfileField(name="balance", data_type="number"),
            ProfileField(name="job", data_type="text", sample_values=JOBS),
            ProfileField(name="member", data_type="boolean"),
            ProfileField(name="joined", data_type="date"),
        ]
    )
    offer_a, offer_b = make_offer("A"), make_offer("B")
    now = timezone.now()
    result = []
    for i in range(60):
        p = _person(i)
        customer = make_customer(f"S{i:03d}", identity=p.identity, **p.attributes)
        p.pk = customer.pk
        if i % 3 != 2:
            expires = now - timedelta(days=1) if i % 8 == 1 else None
            record_consent(customer, EMAIL, days_ago=60, expires_at=expires)
        if i % 9 == 0 and i % 3 != 2:
            record_consent(customer, EMAIL, ConsentRecord.Status.WITHDRAWN, days_ago=5)
        if p.ads_consent:
            record_consent(customer, ADS, days_ago=10)
        events = [
            Interaction(
                customer=customer,
                offer=offer_a,
                kind="click",
                occurred_at=now - timedelta(days=n + 0.5),
            )
            for n in range(p.clicks_on_a)
        ]
        if p.converted_on_b:
            events.append(
                Interaction(
                    customer=customer,
                    offer=offer_b,
                    kind="conversion",
                    occurred_at=now - timedelta(days=2),
                )
            )
        if p.recent_impression:
            events.append(
                Interaction(
                    customer=customer,
                    offer=offer_b,
                    kind="impression",
                    occurred_at=now - timedelta(days=3),
                )
            )
        if p.old_impression:
            events.append(
                Interaction(
                    customer=customer,
                    offer=offer_a,
                    kind="impression",
                    occurred_at=now - timedelta(days=100),
                )
            )
        Interaction.objects.bulk_create(events)
        result.append(p)
    return result


def rule(field: str, operator: str, value=None, **extra) -> dict:
    return {"field": field, "operator": operator, "value": value, **extra}


def all_of(*rules) -> dict:
    return {"op": "and", "rules": list(rules)}


def any_of(*rules) -> dict:
    return {"op": "or", "rules": list(rules)}


def age(p):
    return p.attributes.get("age")


def balance(p):
    value = p.attributes.get("balance")
    return value if isinstance(value, float) else None


CASES = {
    "number and text": (
        all_of(rule("attr:age", "gte", 40), rule("attr:job", "in", ["admin", "student"])),
        lambda p: (
            age(p) is not None and age(p) >= 40 and p.attributes.get("job") in ("admin", "student")
        ),
    ),
    "nested or of ands with consent": (
        any_of(
            all_of(rule("attr:age", "between", [30, 50]), rule("attr:member", "is_true")),
            all_of(rule("attr:job", "eq", "retired"), rule(f"consent:{EMAIL}", "has_consent")),
        ),
        lambda p: (
            (age(p) is not None and 30 <= age(p) <= 50 and p.attributes["member"])
            or (p.attributes.get("job") == "retired" and p.email_consent)
        ),
    ),
    "and of ors, three levels": (
        all_of(
            any_of(rule(f"consent:{EMAIL}", "has_consent"), rule(f"consent:{ADS}", "has_consent")),
            any_of(
                rule("attr:member", "is_false"),
                all_of(rule("attr:age", "lt", 35), rule("attr:job", "ne", "student")),
            ),
        ),
        lambda p: (
            (p.email_consent or p.ads_consent)
            and (
                not p.attributes["member"]
                or (age(p) is not None and age(p) < 35 and p.attributes.get("job") != "student")
            )
        ),
    ),
    "no consent": (
        all_of(rule(f"consent:{EMAIL}", "no_consent")),
        lambda p: not p.email_consent,
    ),
    "clicks on one offer": (
        all_of(rule("interactions:click", "gte", 3, offer="A")),
        lambda p: p.clicks_on_a >= 3,
    ),
    "clicks within days": (
        all_of(rule("interactions:click", "gte", 2, within_days=2)),
        lambda p: p.clicks_on_a >= 2,
    ),
    "no conversions": (
        all_of(rule("interactions:conversion", "eq", 0)),
        lambda p: not p.converted_on_b,
    ),
    "recent impressions only": (
        all_of(rule("interactions:impression", "gte", 1, within_days=30)),
        lambda p: p.recent_impression,
    ),
    "at most one click and consent": (
        all_of(rule("interactions:click", "lte", 1), rule(f"consent:{ADS}", "has_consent")),
        lambda p: p.clicks_on_a <= 1 and p.ads_consent,
    ),
    "not in includes unknown": (
        all_of(rule("attr:job", "not_in", ["admin", "retired"])),
        lambda p: p.attributes.get("job") not in ("admin", "retired"),
    ),
    "number ne includes unknown": (
        all_of(rule("attr:age", "ne", 30)),
        lambda p: age(p) != 30,
    ),
    "is not set": (
        any_of(rule("attr:age", "is_not_set"), rule("attr:job", "is_not_set")),
        lambda p: "age" not in p.attributes or "job" not in p.attributes,
    ),
    "stray number is not set": (
        all_of(rule("attr:balance", "gt", 1000.25)),
        lambda p: balance(p) is not None and balance(p) > 1000.25,
    ),
    "dates": (
        all_of(
            rule("attr:joined", "after", "2020-06-01"),
            rule("attr:joined", "before", "2021-01-01"),
        ),
        lambda p: "2020-06-01" < p.attributes["joined"] < "2021-01-01",
    ),
    "date between": (
        all_of(rule("attr:joined", "between", ["2020-03-01", "2020-12-31"])),
        lambda p: "2020-03-01" <= p.attributes["joined"] <= "2020-12-31",
    ),
    "text contains, case-insensitive": (
        all_of(rule("attr:job", "contains", "TECH")),
        lambda p: "tech" in p.attributes.get("job", ""),
    ),
    "identity flags and country": (
        all_of(
            rule("identity:has_email", "is_true"),
            rule("identity:country", "in", ["pt", "DE"]),
        ),
        lambda p: (
            p.identity is not None
            and bool(p.identity["email"])
            and p.identity["country"] in ("PT", "DE")
        ),
    ),
    "no phone": (
        all_of(rule("identity:has_phone", "is_false")),
        lambda p: p.identity is None or not p.identity["phone"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_matches_a_hand_count(people, case):
    rules, predicate = CASES[case]
    expected = {p.pk for p in people if predicate(p)}
    assert 0 < len(expected) < len(people), "the case should select a real subset"
    customers = segment_customers(rules)
    assert customers.count() == len(expected)
    assert set(customers.values_list("pk", flat=True)) == expected


def test_it_makes_eq_and_ne_complements(people):
    eq = segment_customers(all_of(rule("attr:job", "eq", "admin"))).count()
    ne = segment_customers(all_of(rule("attr:job", "ne", "admin"))).count()
    assert eq + ne == len(people)


def test_it_matches_everyone_with_an_empty_root_group(people):
    assert segment_customers({"op": "and", "rules": []}).count() == len(people)
    assert segment_customers({}).count() == len(people)


def test_it_hides_small_counts_including_zero(people, settings):
    settings.MIN_GROUP_SIZE = 10
    few = all_of(rule("attr:age", "lt", 25))  # ages 20..24, one of them unknown
    assert segment_customers(few).count() == 5
    assert segment_count_preview(few) == {
        "count": None,
        "display": "fewer than 10",
        "suppressed": True,
        "estimated": False,
    }
    none = all_of(rule("attr:age", "gt", 1000))
    assert segment_count_preview(none)["suppressed"] is True
    assert segment_count_preview(none)["count"] is None


def test_it_shows_counts_at_the_minimum_group_size(people, settings):
    settings.MIN_GROUP_SIZE = 5
    preview = segment_count_preview(all_of(rule("attr:age", "lt", 25)))
    assert preview == {"count": 5, "display": "5", "suppressed": False, "estimated": False}


@pytest.mark.parametrize(
    "rules, fragment",
    [
        (all_of(rule("attr:height", "gt", 1)), "rules[0] (attr:height): unknown field"),
        (all_of(rule("shoe:size", "gt", 1)), "rules[0] (shoe:size): unknown field"),
        (all_of(rule("attr:job", "gt", 1)), "operator 'gt' is not valid for a text field"),
        (all_of(rule("attr:age", "contains", "1")), "not valid for a number field"),
        (
            any_of(rule("attr:age", "gt", 1), all_of(rule("attr:age", "gt", "old"))),
            "rules[1].rules[0] (attr:age): the value must be a number, not 'old'",
        ),
        (all_of(rule("attr:age", "between", [50, 20])), "smaller value first"),
        (all_of(rule("attr:joined", "before", "31/12/2020")), "YYYY-MM-DD"),
        (all_of(rule("attr:job", "in", [])), "non-empty list"),
        (all_of(rule("consent:newsletter", "has_consent")), "unknown consent purpose"),
        (all_of(rule(f"consent:{EMAIL}", "eq", 1)), "not valid for a consent field"),
        (all_of(rule("interactions:click", "gte", -1)), "the count must be >= 0"),
        (all_of(rule("interactions:click", "gte", 1, offer="nope")), "no offer"),
        (all_of(rule("interactions:click", "gte", 1, within_days=0)), "within_days"),
        (all_of(rule("identity:email", "eq", "a@b.c")), "unknown field"),
        ({"op": "xor", "rules": []}, '"op" must be "and" or "or"'),
        (all_of({"op": "or", "rules": []}), "rules[0].rules: this group has no rules"),
        (all_of("age > 3"), "rules[0]: a rule must be an object"),
    ],
)
def test_it_names_the_bad_rule(people, rules, fragment):
    with pytest.raises(SegmentRuleError) as error:
        compile_rules(rules)
    assert fragment in str(error.value)
    assert isinstance(error.value, ValueError)


def test_it_limits_nesting_depth(people):
    tree = rule("attr:age", "gt", 1)
    for _ in range(6):
        tree = all_of(tree)
    with pytest.raises(SegmentRuleError, match="nested at most"):
        compile_rules(tree)


def test_it_lists_fields_for_the_builder(people):
    fields = {f["field"]: f for f in available_fields()}
    assert fields["attr:job"]["values"] == JOBS
    assert fields["attr:job"]["operators"] == [
        "eq",
        "ne",
        "in",
        "not_in",
        "contains",
        "is_set",
        "is_not_set",
    ]
    assert fields["attr:age"]["type"] == "number"
    assert "between" in fields["attr:age"]["operators"]
    assert fields[f"consent:{EMAIL}"]["operators"] == ["has_consent", "no_consent"]
    assert fields["interactions:click"]["operators"] == ["gte", "lte", "eq"]
    assert "identity:email" not in fields
    assert {"identity:country", "identity:has_email", "identity:has_phone"} <= set(fields)
