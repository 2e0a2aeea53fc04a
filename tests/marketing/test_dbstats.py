"""Statistics after bulk writes: ``analyze`` refreshes them on PostgreSQL (its estimate of a
table's size follows), and every job that writes many rows ends with it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing.dbstats import EstimatedCountPaginator, TableSize, analyze, table_size
from marketing.models import (
    AudienceMember,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    CustomerRecommendation,
    Purpose,
)
from marketing.services import audiences as audience_service
from marketing.services import ingest as ingest_service
from marketing.services import recommendations as recommendation_service
from tests.factories import make_customer
from tests.marketing.recommendation_helpers import (
    make_catalogue,
    make_customers,
    multi_offer_scoring,
    recommend,
)
from tests.marketing.services.audience_helpers import frozen_audience, make_people
from tests.marketing.services.ingest_helpers import customers_csv, import_text

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL keeps planner statistics"
)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite has no statistics")


@pytest.fixture
def analyzed(monkeypatch):
    """Records the tables each job asks to analyze; the real ``analyze`` still runs."""
    calls: list[set] = []

    def watch(module) -> None:
        real = module.analyze

        def record(*models) -> None:
            calls.append(set(models))
            real(*models)

        monkeypatch.setattr(module, "analyze", record)

    return calls, watch


@on_postgresql
def test_it_refreshes_the_planner_statistics_on_postgresql():
    for _ in range(30):
        make_customer()
    analyze(Customer)
    assert table_size(Customer) == TableSize(rows=30, approximate=True)


@on_sqlite
def test_it_does_nothing_on_sqlite_and_counts_instead():
    for _ in range(3):
        make_customer()
    with CaptureQueriesContext(connection) as queries:
        analyze(Customer, ConsentRecord)
    assert len(queries) == 0
    assert table_size(Customer) == TableSize(rows=3, approximate=False)


def test_the_admin_paginator_counts_a_filtered_list():
    for i in range(12):
        make_customer(f"P-{i}")
    analyze(Customer)
    paginator = EstimatedCountPaginator(Customer.objects.filter(external_id__startswith="P-1"), 5)
    assert paginator.count == 3  # P-1, P-10, P-11


def test_an_import_refreshes_the_tables_it_wrote(
    analyzed, marketer, django_capture_on_commit_callbacks
):
    calls, watch = analyzed
    watch(ingest_service)

    job = import_text(django_capture_on_commit_callbacks, customers_csv(30), by=marketer)

    assert job.status == "succeeded", job.error
    assert calls == [{Customer, CustomerIdentity, ConsentRecord}]
    if connection.vendor == "postgresql":
        assert table_size(Customer) == TableSize(rows=30, approximate=True)


def test_freezing_refreshes_the_members_table(analyzed, marketer):
    calls, watch = analyzed
    watch(audience_service)
    make_people(12, purposes=(Purpose.AD_TARGETING,))

    audience = frozen_audience(marketer)

    assert audience.size == 12
    assert calls == [{AudienceMember}]


def test_a_recommendation_run_refreshes_the_lists_table(analyzed, marketer):
    calls, watch = analyzed
    watch(recommendation_service)

    run = recommend(multi_offer_scoring(make_customers(6), make_catalogue()), k=3, by=marketer)

    assert run.items.count() == 18
    assert calls == [{CustomerRecommendation}]
