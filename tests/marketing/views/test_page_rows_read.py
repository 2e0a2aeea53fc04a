"""No page reads a share of the customer base: on PostgreSQL, with 100,000 customers (each
with an identity, a consent history, responses, scores, recommendations and an audience
membership), every SELECT a page runs is run again under EXPLAIN ANALYZE, and no scan of a
large table may read more than ``ROWS_READ_LIMIT`` rows.

Why rows read and not time or plan estimates: a page that does a fixed amount of work reads
the same rows at 100,000 customers as at 10,000,000, so any scan that reads thousands of rows
here is one that grows with the base (a count, an aggregate, a filter without its index, a
deep OFFSET). Rows read are measured, not estimated (an index scan under a LIMIT stops early
however large its estimate), and do not depend on how busy the machine is. A scan reads the
rows it returns plus those its filter and index recheck threw away, in each of its loops.

Run on PostgreSQL: ``DATABASE_URL=postgres://... pytest -m slow tests/marketing/views/``.
"""

import re
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from marketing.roles import DATA_STEWARD, MARKETER, VIEWER, sync_role_groups
from tests.marketing.views.page_world import PAGES, analyze, build_world, grow_by_sql

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

BASE = 100_000
# A table counts as large when it holds at least half as many rows as there are customers.
LARGE_TABLE_SHARE = 0.5
# 5 % of the base: far above what a page of 25 or 50 rows with its lookups reads, far below
# any scan that covers a share of the base.
ROWS_READ_LIMIT = 5_000
USER_FIXTURE = {MARKETER: "marketer", DATA_STEWARD: "steward", VIEWER: "viewer"}
# ``QuerySet.iterator()`` on PostgreSQL reads through a server-side cursor: its query is
# recorded as "DECLARE <name> ... CURSOR ... FOR SELECT ...".
SERVER_SIDE_CURSOR = re.compile(r"^\s*DECLARE\s+\S+\s.*?\bCURSOR\b.*?\bFOR\s+", re.I | re.S)
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


@pytest.fixture(scope="module")
def big_world(django_db_setup, django_db_blocker, tmp_path_factory):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL plans; set DATABASE_URL to a PostgreSQL server")
    files = tmp_path_factory.mktemp("big-world")
    with (
        django_db_blocker.unblock(),
        override_settings(
            JOB_QUEUE="inline", MEDIA_ROOT=files / "media", MODEL_REGISTRY_DIR=files / "models"
        ),
    ):
        sync_role_groups()
        owner = User.objects.create_user(username="big-world-owner")
        world = build_world(owner)
        grow_by_sql(world, BASE)
        analyze()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples >= %s",
                [BASE * LARGE_TABLE_SHARE],
            )
            large = {name for (name,) in cursor.fetchall()}
        try:
            yield world, large, files / "media"
        finally:
            tables = [table for table in connection.introspection.table_names() if _ours(table)]
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            sync_role_groups()


@pytest.fixture(autouse=True)
def _world_files(settings, big_world):
    """The world's uploaded files, where each test would otherwise get a folder of its own."""
    settings.MEDIA_ROOT = big_world[2]


def _ours(table: str) -> bool:
    return table.startswith("marketing_") or table in ("auth_user", "django_session")


def rows_read(plan: dict, large: set[str]) -> list[tuple[str, str, int]]:
    """(table, node type, rows read) for each scan of a large table in an analysed plan."""
    found = []
    if plan.get("Node Type") in SCANS and plan.get("Relation Name") in large:
        per_loop = (
            plan.get("Actual Rows", 0)
            + plan.get("Rows Removed by Filter", 0)
            + plan.get("Rows Removed by Index Recheck", 0)
        )
        found.append(
            (plan["Relation Name"], plan["Node Type"], int(per_loop * plan["Actual Loops"]))
        )
    for child in plan.get("Plans", []):
        found.extend(rows_read(child, large))
    return found


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_it_reads_no_share_of_a_100000_customer_base(client, request, big_world, page):
    world, large, _ = big_world
    role = page.roles[0]
    client.force_login(request.getfixturevalue(USER_FIXTURE[role]))
    url = page.url(world)
    client.get(url)  # the user's first visit fills the session and caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, f"{url}: HTTP {response.status_code}"

    heavy = []
    for query in captured.captured_queries:
        sql = SERVER_SIDE_CURSOR.sub("", query["sql"])
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]["Plan"]
        heavy.extend(
            (rows, table, node, sql[:160])
            for table, node, rows in rows_read(plan, large)
            if rows > ROWS_READ_LIMIT
        )
    scans = Counter((node, table, rows, sql) for rows, table, node, sql in heavy)
    assert not heavy, (
        f"{url} as {role}: {len(heavy)} scans read more than {ROWS_READ_LIMIT:,} rows of a "
        f"{BASE:,}-customer base: "
        + "; ".join(
            f"{count} x {node} of {table} read {rows:,} rows in {sql!r}"
            for (node, table, rows, sql), count in sorted(scans.items(), key=lambda s: -s[0][2])
        )
    )
