import pytest

from marketing.models import Purpose
from marketing.selectors.recommendations import customer_latest_recommendations
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
