"""Queries built once and run again with new values (``marketing.prepared``)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import BooleanField, DateTimeField, Exists, ExpressionWrapper, OuterRef
from django.db.models.expressions import RawSQL
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing.models import Customer, Purpose, Suppression
from marketing.prepared import PreparedQuery, _statement
from marketing.selectors.consent import profiling_use_q
from tests.factories import make_customer, record_consent

pytestmark = pytest.mark.django_db

EXTERNAL_ID = Customer._meta.get_field("external_id")


def people(external_id: str, now):
    return (
        Customer.objects.filter(external_id=external_id)
        .annotate(
            may_profile=ExpressionWrapper(
                profiling_use_q(customer="pk", now=now), output_field=BooleanField()
            ),
            suppressed=Exists(Suppression.objects.filter(customer=OuterRef("pk"))),
        )
        .order_by("pk")
        .values_list("pk", "attributes", "may_profile", "suppressed")
    )


def test_it_returns_what_the_queryset_returns_for_each_set_of_values():
    now = timezone.now()
    ada = make_customer("ADA", age=36, region="north")
    record_consent(ada, Purpose.PROFILING, expires_at=now + timedelta(days=2))
    bob = make_customer("BOB", tags=["a", "b"])
    Suppression.objects.create(customer=bob, reason="asked")
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())

    for external_id, at in [
        ("ADA", now),
        ("BOB", now),
        ("ADA", now + timedelta(days=3)),  # past the consent's expiry
        ("NOBODY", now),
    ]:
        assert read.rows(external_id=external_id, now=at) == list(people(external_id, at))
    # The rows are converted as the queryset converts them: JSON, booleans.
    assert read.rows(external_id="ADA", now=now) == [
        (ada.pk, {"age": 36, "region": "north"}, True, False)
    ]
    assert read.rows(external_id="ADA", now=now + timedelta(days=3))[0][2] is False
    assert read.rows(external_id="BOB", now=now) == [(bob.pk, {"tags": ["a", "b"]}, False, True)]


def test_it_sees_rows_written_after_it_was_built():
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    assert read.rows(external_id="LATE", now=timezone.now()) == []

    late = make_customer("LATE")
    record_consent(late, Purpose.PROFILING)

    assert read.rows(external_id="LATE", now=timezone.now()) == [(late.pk, {}, True, False)]


def test_it_refuses_a_value_the_query_does_not_use():
    read = PreparedQuery(
        lambda external_id, now: people(external_id, None),
        external_id=EXTERNAL_ID,
        now=DateTimeField(),
    )
    with pytest.raises(ImproperlyConfigured, match="'now'"):
        read.rows(external_id="ADA", now=timezone.now())


def test_it_asks_for_every_value_and_only_those():
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    with pytest.raises(TypeError):
        read.rows(external_id="ADA")
    with pytest.raises(TypeError):
        read.rows(external_id="ADA", now=timezone.now(), extra=1)


def test_it_reads_only_values_lists():
    read = PreparedQuery(
        lambda external_id: Customer.objects.filter(external_id=external_id),
        external_id=EXTERNAL_ID,
    )
    with pytest.raises(ImproperlyConfigured, match="values_list"):
        read.rows(external_id="ADA")


def test_it_writes_the_querys_constants_into_the_statement_and_numbers_each_value():
    sql = "SELECT a FROM t WHERE b = %s AND c LIKE '5%%' AND d = %s AND e > %s AND f < %s"
    # b and f take the value "now", e the value "since"; d is the query's own constant.
    statement = _statement("q_7", sql, ["N", "granted", "S", "N"], {"now": [0, 3], "since": [2]})

    assert statement.prepare == (
        "PREPARE q_7 AS SELECT a FROM t WHERE b = $1 AND c LIKE '5%%' AND d = %s AND e > $2 "
        "AND f < $1"
    )
    assert statement.constants == ["granted"]
    assert statement.execute == "EXECUTE q_7(%s, %s)"
    assert statement.names == ["now", "since"]


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="server-side prepared statements: PostgreSQL"
)


@postgres_only
def test_postgresql_prepares_it_once_per_database_session():
    now = timezone.now()
    ada = make_customer("ADA", age=36)
    record_consent(ada, Purpose.PROFILING)
    make_customer("BOB")
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    bob = list(people("BOB", now))

    with CaptureQueriesContext(connection) as first:
        assert read.rows(external_id="ADA", now=now) == [(ada.pk, {"age": 36}, True, False)]
    with CaptureQueriesContext(connection) as again:
        assert read.rows(external_id="BOB", now=now) == bob
        assert read.rows(external_id="NOBODY", now=now) == []

    assert [query["sql"].split()[0] for query in first] == ["PREPARE", "EXECUTE"]
    assert [query["sql"].split()[0] for query in again] == ["EXECUTE", "EXECUTE"]
    # Planned once for every value: the server does not plan each run again.
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements")
        plans = cursor.fetchall()
    assert plans and all(custom == 0 for _, custom in plans)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_prepares_it_again_on_a_new_database_session():
    now = timezone.now()
    ada = make_customer("ADA", age=36)
    record_consent(ada, Purpose.PROFILING)
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    expected = [(ada.pk, {"age": 36}, True, False)]
    assert read.rows(external_id="ADA", now=now) == expected

    connection.close()  # the session and its prepared statements end
    with CaptureQueriesContext(connection) as read_again:
        assert read.rows(external_id="ADA", now=now) == expected

    assert [query["sql"].split()[0] for query in read_again] == ["PREPARE", "EXECUTE"]


@postgres_only
def test_postgresql_runs_a_literal_percent_sign_as_written():
    make_customer("ADA")
    read = PreparedQuery(
        lambda external_id: (
            Customer.objects.filter(external_id=external_id)
            .annotate(label=RawSQL("'100%%'", ()))
            .values_list("external_id", "label")
        ),
        external_id=EXTERNAL_ID,
    )

    assert read.rows(external_id="ADA") == [("ADA", "100%")]


def test_it_sends_the_sql_each_time_when_prepared_statements_are_off(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    make_customer("ADA")
    read = PreparedQuery(
        lambda external_id: Customer.objects.filter(external_id=external_id).values_list("pk"),
        external_id=EXTERNAL_ID,
    )

    with CaptureQueriesContext(connection) as sent:
        read.rows(external_id="ADA")
        read.rows(external_id="ADA")

    assert [query["sql"].split()[0] for query in sent] == ["SELECT", "SELECT"]
