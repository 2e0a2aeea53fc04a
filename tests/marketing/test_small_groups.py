"""A group below the minimum size stays hidden also when two shown counts are subtracted:
"everyone" minus "everyone but them" must not reveal how many they are."""

import pytest
from django.urls import reverse

from marketing.models import Customer, ProfileField, Purpose
from marketing.selectors.audiences import audience_preview
from marketing.selectors.segments import segment_customers, suppressed_count
from tests.factories import make_customer
from tests.marketing.figures_helpers import counted_overview
from tests.marketing.services.audience_helpers import make_people

EVERYONE = {"op": "and", "rules": []}
NOT_GOLD = {"op": "and", "rules": [{"field": "attr:plan", "operator": "ne", "value": "gold"}]}
GOLD = {"op": "and", "rules": [{"field": "attr:plan", "operator": "eq", "value": "gold"}]}


@pytest.mark.parametrize("k", [5, 10, 25])
def test_it_never_lets_a_difference_of_shown_counts_reveal_a_hidden_group(settings, k):
    settings.MIN_GROUP_SIZE = k
    for total in range(k, 40 * k):
        for hidden in range(1, k):
            if total - hidden < k:
                continue
            shown_total = suppressed_count(total)["count"]
            difference = shown_total - suppressed_count(total - hidden)["count"]
            # 0 (as if nobody) or k (as if a group big enough to be shown): never the hidden size.
            assert difference in (0, k), (total, hidden, difference)


def test_it_shows_counts_at_or_above_the_minimum_rounded_and_hides_the_rest(settings):
    settings.MIN_GROUP_SIZE = 10
    assert [suppressed_count(n)["count"] for n in (0, 9, 10, 14, 15, 1234)] == [
        None,
        None,
        10,
        10,
        20,
        1230,
    ]
    assert suppressed_count(1234)["display"] == "1,230"


def _gold_and_others(n_others: int = 29) -> None:
    ProfileField.objects.create(name="plan", data_type="text")
    for _ in range(2):
        make_customer(plan="gold")
    for _ in range(n_others):
        make_customer(plan="basic")


@pytest.mark.django_db
def test_it_hides_a_group_of_two_from_the_total_minus_its_complement_in_the_api(marketer_client):
    _gold_and_others()

    def count(rules) -> int | None:
        response = marketer_client.post(
            "/api/segments/preview/", {"rules": rules}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()["count"]

    assert count(GOLD) is None
    assert segment_customers(NOT_GOLD).count() == Customer.objects.count() - 2
    assert count(EVERYONE) - count(NOT_GOLD) != 2


@pytest.mark.django_db
def test_it_hides_a_group_of_two_from_the_overview_total_minus_its_complement(marketer_client):
    _gold_and_others()
    counted_overview()
    overview = marketer_client.get(reverse("overview")).content.decode()
    complement = marketer_client.post(
        "/api/segments/preview/", {"rules": NOT_GOLD}, content_type="application/json"
    ).json()["count"]

    assert f'data-testid="customer-count">{complement}<' in overview.replace(",", "")


@pytest.mark.django_db
def test_it_hides_a_small_left_out_group_in_an_audience_preview():
    make_people(31, purposes=(Purpose.AD_TARGETING,))
    make_people(2, purposes=(Purpose.AD_TARGETING,), withdrawn=True)

    preview = audience_preview(members=Customer.objects.all(), formats=["generic_csv"])
    row = preview["formats"][0]

    assert preview["size"] == 30
    assert row["exportable"] == 30 and row["left_out"].get("withdrawn") is None
    assert preview["size"] - row["exportable"] != 2
