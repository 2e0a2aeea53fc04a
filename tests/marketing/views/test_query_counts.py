"""Every page of the dashboard asks the database the same number of queries whatever the size
of the customer base: the same world with 10 and with 1,000 customers (each with an identity,
consents, responses, scores, recommendations and an audience membership).

The minimum group size is 1 here: with the default (10) the 10-customer world hides most of
its counts and skips what they would show, so the two sizes would not render the same page.
"""

import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing.roles import DATA_STEWARD, MARKETER, VIEWER
from tests.marketing.views.page_world import PAGE_ROLES, analyze, build_world, grow

pytestmark = pytest.mark.django_db

SMALL, LARGE = 10, 1000
USER_FIXTURE = {MARKETER: "marketer", DATA_STEWARD: "steward", VIEWER: "viewer"}


def page_queries(client, url: str) -> list[str]:
    """The SQL of one request of ``url``, after a first request that fills the caches (the
    session, content types) a user's first visit fills."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, f"{url}: HTTP {response.status_code}"
    return [query["sql"] for query in captured.captured_queries]


def shapes(queries: list[str]) -> Counter:
    """Queries with their numbers and quoted values blanked, so that the same query for
    another row reads the same."""
    return Counter(re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", sql)[:300] for sql in queries)


@pytest.mark.parametrize(
    ("page", "role"), PAGE_ROLES, ids=[f"{page}-{role}" for page, role in PAGE_ROLES]
)
def test_it_renders_the_page_in_as_many_queries_for_1000_customers_as_for_10(
    client, request, settings, marketer, page, role
):
    settings.MIN_GROUP_SIZE = 1
    world = build_world(marketer)
    grow(world, SMALL)
    client.force_login(request.getfixturevalue(USER_FIXTURE[role]))
    url = page.url(world)
    small = page_queries(client, url)

    grow(world, LARGE)
    analyze()
    large = page_queries(client, url)

    more = shapes(large) - shapes(small)
    fewer = shapes(small) - shapes(large)
    assert len(large) == len(small), (
        f"{url} as {role}: {len(small)} queries for {SMALL} customers, {len(large)} for "
        f"{LARGE}. More at {LARGE}: {dict(more)}. Fewer: {dict(fewer)}"
    )
