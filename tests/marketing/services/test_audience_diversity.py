import pytest

from marketing.models import Purpose
from marketing.services.audience_diversity import AudienceDiversityError, audience_diversity
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    scored_base,
)

pytestmark = pytest.mark.django_db


def spread(report, attribute):
    return next(a for a in report["attributes"] if a["attribute"] == attribute)


def test_it_compares_the_top_share_with_the_base_and_names_left_out_groups():
    scoring, _ = scored_base()
    report = audience_diversity(scoring_run=scoring, top_share=0.1)
    assert report["base_size"] == 100 and report["audience_size"] == 10
    jobs = {g["group"]: g for g in spread(report, "job")["groups"]}
    assert jobs["student"]["audience_share"] == pytest.approx(1.0)
    assert jobs["retired"]["base_share"] == pytest.approx(0.2)
    assert jobs["retired"]["audience_count"] == 0
    assert jobs["retired"]["flag"] == "left out"
    texts = [f["text"] for f in report["under_represented"]]
    assert "Customers with job “retired” are 20% of the base but none of the top 10%." in texts


def test_it_takes_a_top_n_and_reports_partial_shares_in_words():
    scoring, _ = scored_base()
    # The best 40: all 30 students and the 10 best-scored retired customers.
    report = audience_diversity(scoring_run=scoring, top_n=40, attributes=["job"])
    jobs = {g["group"]: g for g in spread(report, "job")["groups"]}
    assert jobs["retired"]["audience_share"] == pytest.approx(10 / 40)
    assert jobs["retired"]["flag"] == ""  # 25 % of the top vs 20 % of the base
    assert jobs["admin."]["flag"] == "left out"
    assert [a["attribute"] for a in report["attributes"]] == ["job"]
    assert report["top_label"] == "top 40"


def test_it_counts_only_customers_with_profiling_consent_now():
    scoring, customers = scored_base()
    for customer in customers[:10]:
        record_consent(customer, Purpose.PROFILING, "withdrawn", days_ago=1)
    report = audience_diversity(scoring_run=scoring, top_share=0.5)
    assert report["base_size"] == 90
    jobs = {g["group"]: g for g in spread(report, "job")["groups"]}
    assert jobs["admin."]["base_count"] == 40


def test_it_hides_groups_smaller_than_the_minimum_group_size(settings):
    settings.MIN_GROUP_SIZE = 10
    scoring, _ = scored_base([("admin.", 50, 40), ("pilot", 4, 50), ("student", 46, 25)])
    report = audience_diversity(scoring_run=scoring, top_share=0.2, attributes=["job"])
    job = spread(report, "job")
    assert {g["group"] for g in job["groups"]} == {"admin.", "student"}
    assert job["hidden_groups"] == 1


def test_it_refuses_a_multi_offer_scoring_run():
    scoring = multi_offer_scoring(make_customers(3), make_catalogue())
    with pytest.raises(AudienceDiversityError, match="Recommendations"):
        audience_diversity(scoring_run=scoring, top_share=0.1)


@pytest.mark.parametrize(
    "arguments",
    [
        {"top_share": 0},
        {"top_share": 1.5},
        {"top_n": 0},
        {"top_n": 101},
        {"attributes": ["shoe_size"]},
    ],
)
def test_it_refuses_bad_settings_with_a_clear_message(arguments):
    scoring, _ = scored_base()
    with pytest.raises(AudienceDiversityError):
        audience_diversity(scoring_run=scoring, **arguments)


@pytest.mark.parametrize("arguments", [{"top_n": 1}, {"top_n": 9}, {"top_share": 0.05}])
def test_it_refuses_a_top_smaller_than_the_minimum_group_size(arguments):
    # A top of one customer would tell that customer's attributes, group by group.
    scoring, _ = scored_base()
    with pytest.raises(AudienceDiversityError, match="at least 10 customers"):
        audience_diversity(scoring_run=scoring, **arguments)
