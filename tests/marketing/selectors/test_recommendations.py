import pytest

from marketing.models import Purpose
from marketing.selectors.recommendations import customer_latest_recommendations, run_lists
from tests.factories import record_consent
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    recommend,
)

pytestmark = pytest.mark.django_db


def test_it_hides_a_customers_recommendations_once_their_consent_is_withdrawn():
    customers = make_customers(3)
    recommend(multi_offer_scoring(customers, make_catalogue()), k=2)
    shown = customer_latest_recommendations(customers[0])
    assert [item["rank"] for item in shown["items"]] == [1, 2] and not shown["refused"]
    record_consent(customers[0], Purpose.PROFILING, "withdrawn", days_ago=0.001)
    hidden = customer_latest_recommendations(customers[0])
    assert hidden["refused"] and hidden["items"] == []


def test_it_samples_the_lists_of_consented_customers_first_by_id_best_first_score_on_top():
    customers = make_customers(5)
    offers = make_catalogue()
    # Customer 3 gets the best first score, customer 0 the worst.
    scoring = multi_offer_scoring(customers, offers, {(3, 0): 0.99, (0, 0): 0.01})
    run = recommend(scoring, k=2)
    record_consent(customers[1], Purpose.PROFILING, "withdrawn", days_ago=0.001)

    lists = run_lists(run, customers=3)

    # The three first by id among those who may be profiled now: 0, 2 and 3 (1 withdrew).
    ids = [entry["customer_id"] for entry in lists]
    assert sorted(ids) == sorted(customers[i].pk for i in (0, 2, 3))
    assert ids[0] == customers[3].pk and ids[-1] == customers[0].pk
    assert all([item["rank"] for item in entry["offers"]] == [1, 2] for entry in lists)
