"""A CSV import never undoes a withdrawal or denial that a data steward or the person
recorded: such a grant is refused with a reason, shown in the upload's problems and audited."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from marketing.ingest.rows import CustomerRows
from marketing.models import AuditEvent, ConsentRecord, Purpose, Upload
from marketing.selectors.consent import customers_with_consent, has_consent
from marketing.services import ingest
from marketing.services.consent import consent_withdraw
from marketing.services.ingest import upload_create, upload_import, upload_set_mapping
from tests.factories import make_customer, record_consent
from tests.marketing.services.ingest_helpers import csv_file, import_text

pytestmark = pytest.mark.django_db

PROFILING = Purpose.PROFILING
VALID_ROWS = Upload.Mode.VALID_ROWS


@pytest.fixture
def withdrawn_by_steward(steward):
    """C001 granted profiling by a form a month ago, then a steward withdrew it."""
    customer = make_customer("C001")
    record_consent(customer, PROFILING, days_ago=30)
    consent_withdraw(customer=customer, purpose=PROFILING, by=steward, note="phone call")
    return customer


def _import(capture, text, by):
    return import_text(capture, text, by=by, mode=VALID_ROWS)


def test_it_refuses_an_undated_grant_after_a_stewards_withdrawal(
    marketer,
    withdrawn_by_steward,
    django_capture_on_commit_callbacks,
):
    text = "customer_id,consent_profiling\nC001,granted\nC002,granted\n"

    job = _import(django_capture_on_commit_callbacks, text, marketer)

    assert not has_consent(withdrawn_by_steward, PROFILING)
    assert not withdrawn_by_steward.consents.filter(source="csv_import").exists()
    messages = [e["message"] for e in job.result["errors"]]
    assert len(messages) == 1
    assert messages[0].startswith("Row 1 (line 2), column 'consent_profiling': 'granted'")
    assert "withdrawal" in messages[0] and "undated" in messages[0]
    assert customers_with_consent(PROFILING).filter(external_id="C002").exists()


def test_it_refuses_a_dated_grant_later_than_a_denial_from_a_form(
    marketer,
    django_capture_on_commit_callbacks,
):
    customer = make_customer("C001")
    record_consent(customer, PROFILING, ConsentRecord.Status.DENIED, days_ago=10)
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    text = (
        f"customer_id,consent_profiling,consent_date\nC001,granted,{yesterday}\n"
        f"C002,granted,{yesterday}\n"
    )

    job = _import(django_capture_on_commit_callbacks, text, marketer)

    assert not has_consent(customer, PROFILING)
    (error,) = job.result["errors"]
    assert error["row"] == 1 and error["column"] == "consent_profiling"
    assert "denial" in error["message"]


def test_it_keeps_an_older_grant_as_history_below_the_withdrawal(
    marketer,
    withdrawn_by_steward,
    django_capture_on_commit_callbacks,
):
    long_ago = (timezone.now() - timedelta(days=300)).date().isoformat()
    text = f"customer_id,consent_profiling,consent_date\nC001,granted,{long_ago}\n"

    job = _import(django_capture_on_commit_callbacks, text, marketer)

    assert job.result["errors"] == [] and job.result["consents_added"] == 1
    assert not has_consent(withdrawn_by_steward, PROFILING)


def test_it_lets_an_import_update_what_an_import_recorded(
    marketer,
    django_capture_on_commit_callbacks,
):
    customer = make_customer("C001")
    record_consent(
        customer,
        PROFILING,
        ConsentRecord.Status.WITHDRAWN,
        days_ago=5,
        source=ConsentRecord.Source.CSV_IMPORT,
    )

    job = _import(
        django_capture_on_commit_callbacks,
        "customer_id,consent_profiling\nC001,granted\n",
        marketer,
    )

    assert job.result["errors"] == [] and has_consent(customer, PROFILING)


def test_it_records_refused_statements_where_a_steward_finds_them(
    marketer,
    withdrawn_by_steward,
    django_capture_on_commit_callbacks,
):
    text = "customer_id,consent_profiling\nC001,granted\nC002,granted\n"

    job = _import(django_capture_on_commit_callbacks, text, marketer)

    upload = Upload.objects.get()
    assert "C001" not in str(upload.summary["errors"])  # the row, not the id, is named
    assert upload.summary["errors"][0]["row"] == 1 and upload.error_file
    event = AuditEvent.objects.get(action=AuditEvent.Action.CONSENT_CHANGE, target_type="upload")
    assert event.target_ref == str(upload.pk) and event.actor == marketer
    assert event.details["change"] == "import_refused" and event.details["statements"] == 1
    assert event.details["rows"] == [1] and event.details["job"] == job.pk


def test_it_checks_a_chunk_against_the_history_in_one_query(
    withdrawn_by_steward,
    django_assert_num_queries,
):
    for i in range(2, 60):
        record_consent(make_customer(f"C{i:03d}"), PROFILING, ConsentRecord.Status.DENIED)
    checker = CustomerRows(
        ["customer_id", "consent_profiling"],
        {"external_id": "customer_id", "consent_profiling": "consent_profiling"},
    )
    checked = [(i, i + 1, checker.check(i, i + 1, [f"C{i:03d}", "granted"])) for i in range(1, 60)]

    with django_assert_num_queries(1):
        kept, errors = checker.check_chunk(checked)

    assert kept == [] and len(errors) == 59


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_committed_import_checks_chunks_on_the_reading_thread_and_still_refuses(
    marketer, steward, monkeypatch
):
    """Outside a caller's transaction on PostgreSQL the check reads on the reading thread's
    own connection, while the previous chunk is written; that connection is closed after."""
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 2)
    customer = make_customer("C004")
    record_consent(customer, PROFILING, days_ago=30)
    consent_withdraw(customer=customer, purpose=PROFILING, by=steward, note="phone call")
    threads = []
    check_chunk = CustomerRows.check_chunk

    def spy(self, checked):
        threads.append(threading.current_thread().name)
        return check_chunk(self, checked)

    monkeypatch.setattr(CustomerRows, "check_chunk", spy)
    postgres = connection.vendor == "postgresql"
    backends = _backends() if postgres else 0
    text = "customer_id,consent_profiling\n" + "".join(f"C00{n},granted\n" for n in range(1, 7))

    upload = upload_create(kind="customers", file=csv_file(text), by=marketer)
    upload_set_mapping(upload=upload, mapping=upload.mapping, mode=VALID_ROWS, by=marketer)
    job = upload_import(upload=upload, by=marketer)
    job.refresh_from_db()

    assert job.status == "succeeded", job.message
    (error,) = job.result["errors"]
    assert error["row"] == 4 and "withdrawal" in error["message"]
    assert not has_consent(customer, PROFILING)
    assert customers_with_consent(PROFILING).count() == 5
    assert len(threads) == 3
    if postgres:
        assert set(threads) == {"ingest-reader"}
        assert _backends() == backends
    else:
        assert set(threads) == {threading.current_thread().name}
