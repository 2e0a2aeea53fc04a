"""On PostgreSQL, on 20,000 customers from one import: a deep page of the customer list and a
prefix search are read through an index, never by scanning the table, and a deep page reads
about as many blocks as the first."""

import hashlib
import json
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing.dbstats import analyze
from marketing.keyset import KeysetOrdering, encode_cursor
from marketing.models import Customer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL query plans"),
]

BASE = 20_000
CUSTOMER_TABLE = Customer._meta.db_table


@pytest.fixture
def base() -> None:
    """20,000 customers with one created_at and updated_at, as a single import leaves them."""
    moment = timezone.now()
    Customer.objects.bulk_create(
        (
            Customer(
                external_id=f"CUST-{i:06d}",
                pseudonym=hashlib.sha256(str(i).encode()).hexdigest(),
                attributes={"age": 20 + i % 50},
                created_at=moment,
                updated_at=moment,
            )
            for i in range(BASE)
        ),
        batch_size=5000,
    )
    # auto_now and auto_now_add stamp each row as it is made; one import stamps them alike.
    Customer.objects.update(created_at=moment, updated_at=moment)
    analyze(Customer)


def _list_query(client, url: str) -> str:
    """The SQL that read the page's customers (the one with the page's LIMIT)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and f'FROM "{CUSTOMER_TABLE}"' in q["sql"]
        and "LIMIT" in q["sql"]
    ]
    assert reads, [q["sql"] for q in queries.captured_queries]
    return reads[0]


def _plan(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        return cursor.fetchone()[0][0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans_of_customers(plan: dict) -> set[str]:
    return {
        node["Node Type"] for node in _nodes(plan) if node.get("Relation Name") == CUSTOMER_TABLE
    }


def _customer_rows_read(plan: dict) -> int:
    """Rows the scans of the customer table read: those they returned and those they read
    and dropped (a filter that is not an index condition). A keyset page reads its own rows;
    OFFSET reads every row before them too. (Rows, not blocks: the blocks a page touches
    vary with what earlier queries left in the heap's visibility map and hint bits.)"""
    return sum(
        node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        + node.get("Rows Removed by Filter", 0)
        for node in _nodes(plan)
        if node.get("Relation Name") == CUSTOMER_TABLE
    )


def _deep_cursor(key: str, depth: int) -> str:
    ordering = KeysetOrdering.of(Customer, key)
    row = Customer.objects.order_by(*ordering.order_by())[depth]
    return encode_cursor(ordering, ordering.position(row), backwards=False)


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("", "id"),
        ("newest", "-created_at"),
        ("external_id", "external_id"),
    ],
)
def test_a_deep_page_of_the_customer_list_reads_an_index_like_the_first(
    base, viewer_client, sort, key
):
    url = reverse("customer-list")
    first = _plan(_list_query(viewer_client, f"{url}?{urlencode({'sort': sort})}"))
    deep_url = f"{url}?{urlencode({'sort': sort, 'cursor': _deep_cursor(key, 19_000)})}"
    deep = _plan(_list_query(viewer_client, deep_url))

    assert "Seq Scan" not in _scans_of_customers(deep), json.dumps(deep, indent=1)
    assert _scans_of_customers(deep) & {"Index Scan", "Index Scan Backward", "Index Only Scan"}
    assert _customer_rows_read(deep) <= _customer_rows_read(first) + 1, (
        _customer_rows_read(first),
        _customer_rows_read(deep),
    )


def test_a_deep_page_of_the_api_list_reads_an_index_like_the_first(base, viewer_client):
    url = "/api/customers/?ordering=-created_at"
    first = _plan(_list_query(viewer_client, url))
    cursor = _deep_cursor("-created_at", 18_500)
    deep = _plan(_list_query(viewer_client, f"{url}&{urlencode({'cursor': cursor})}"))

    assert "Seq Scan" not in _scans_of_customers(deep), json.dumps(deep, indent=1)
    assert _customer_rows_read(deep) <= _customer_rows_read(first) + 1, (
        _customer_rows_read(first),
        _customer_rows_read(deep),
    )


@pytest.mark.parametrize("term", ["cust-01234", "CUST-0199", "5feceb66ffc8"])
def test_the_prefix_search_reads_the_prefix_indexes(base, viewer_client, term):
    sql = _list_query(viewer_client, reverse("customer-list") + "?" + urlencode({"q": term}))
    plan = _plan(sql)
    used = {node.get("Index Name") for node in _nodes(plan)}

    assert "Seq Scan" not in _scans_of_customers(plan), json.dumps(plan, indent=1)
    assert "customer_external_id_prefix_idx" in used
    if term == "5feceb66ffc8":  # hex: a pseudonym prefix too, a range on the unique index
        assert any("pseudonym" in (name or "") for name in used), used


def test_the_search_finds_by_prefix_on_the_large_base(base, viewer_client):
    response = viewer_client.get(reverse("customer-list"), {"q": "cust-01234"})
    found = [row["customer"].external_id for row in response.context["rows"]]
    assert found == [f"CUST-01234{i}" for i in range(10)]
