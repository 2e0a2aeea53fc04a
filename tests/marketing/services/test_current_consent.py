"""The current consent table follows every change to the consent history: appends through
the service (API, admin), CSV imports, the demo loader, erasure; the scheduled refresh and
the rebuild command."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from marketing.ingest.demo import load_demo_data
from marketing.models import ConsentRecord, CurrentConsent, Job, LawfulBasis, Purpose
from marketing.selectors.consent import consented_counts, customers_with_consent, has_consent
from marketing.services.consent import consent_record_append
from marketing.services.current_consent import (
    current_consent_rebuild,
    current_consent_refresh,
    current_consent_refresh_due,
)
from marketing.services.erasure import customer_erase
from marketing.tasks import refresh_current_consent_task
from tests.factories import make_customer
from tests.marketing.services.current_consent_helpers import (
    assert_in_step_with_history,
    current_table,
)
from tests.marketing.services.ingest_helpers import import_text

pytestmark = pytest.mark.django_db
TRAIN = Purpose.MODEL_TRAINING
G, W, D = (ConsentRecord.Status.GRANTED, ConsentRecord.Status.WITHDRAWN, "denied")


def append(customer, status, *, days_ago=0.0, expires_at=None, purpose=TRAIN):
    return consent_record_append(
        customer=customer,
        purpose=purpose,
        status=status,
        lawful_basis=LawfulBasis.CONSENT,
        source=ConsentRecord.Source.API,
        notice_version="v1",
        effective_at=timezone.now() - timedelta(days=days_ago),
        expires_at=expires_at,
        by=None,
    )


def current(customer, purpose=TRAIN) -> CurrentConsent:
    return CurrentConsent.objects.get(customer=customer, purpose=purpose)


def test_it_follows_a_later_record():
    c = make_customer()
    append(c, G, days_ago=10)
    withdrawal = append(c, W, days_ago=1)
    row = current(c)
    assert (row.status, row.record_id, row.effective_at) == (
        W,
        withdrawal.pk,
        withdrawal.effective_at,
    )
    assert not has_consent(c, TRAIN)


def test_it_keeps_the_later_record_when_an_earlier_one_is_added_afterwards():
    c = make_customer()
    grant = append(c, G, days_ago=1)
    append(c, W, days_ago=10)  # back-dated: recorded now, in effect before the grant
    assert (current(c).status, current(c).record_id) == (G, grant.pk)
    assert has_consent(c, TRAIN)


def test_it_breaks_a_tie_of_times_by_the_later_record():
    c = make_customer()
    when = timezone.now() - timedelta(days=2)
    ConsentRecord.objects.create(
        customer=c, purpose=TRAIN, status=G, effective_at=when, source="form"
    )
    second = ConsentRecord.objects.create(
        customer=c, purpose=TRAIN, status=W, effective_at=when, source="form"
    )
    current_consent_refresh(customer_ids=[c.pk])
    assert (current(c).status, current(c).record_id) == (W, second.pk)
    assert not has_consent(c, TRAIN)


def test_it_keeps_one_row_per_purpose():
    c = make_customer()
    append(c, G, days_ago=3)
    append(c, D, days_ago=2, purpose=Purpose.PROFILING)
    append(c, W, days_ago=1)
    assert sorted(c.current_consents.values_list("purpose", "status")) == [
        ("model_training", W),
        ("profiling", D),
    ]


def test_it_stops_counting_a_grant_when_it_expires_before_the_refresh_runs():
    c = make_customer()
    now = timezone.now()
    record = ConsentRecord.objects.create(
        customer=c,
        purpose=TRAIN,
        status=G,
        effective_at=now - timedelta(days=5),
        expires_at=now - timedelta(seconds=1),
        source="form",
    )
    # Written while the grant still held; it has expired since.
    current_consent_refresh(customer_ids=[c.pk], now=now - timedelta(minutes=1))
    assert current(c).status == G
    assert not has_consent(c, TRAIN)
    assert list(customers_with_consent(TRAIN)) == []

    assert current_consent_refresh_due() == {"promoted": 0, "expired": 1}
    assert (current(c).status, current(c).record_id) == (CurrentConsent.Status.EXPIRED, record.pk)
    assert_in_step_with_history()


def test_it_honours_a_withdrawal_dated_ahead_from_its_date_and_puts_it_in_effect_on_refresh():
    c = make_customer()
    append(c, G, days_ago=5)
    now = timezone.now()
    withdrawal = ConsentRecord.objects.create(
        customer=c, purpose=TRAIN, status=W, effective_at=now, source="form"
    )
    # Written before the withdrawal's date: the grant is in effect, the withdrawal ahead.
    current_consent_refresh(customer_ids=[c.pk], now=now - timedelta(minutes=1))
    assert (current(c).status, current(c).pending_at) == (G, now)
    assert not has_consent(c, TRAIN)

    assert current_consent_refresh_due() == {"promoted": 1, "expired": 0}
    row = current(c)
    assert (row.status, row.record_id, row.pending_at) == (W, withdrawal.pk, None)
    assert_in_step_with_history()


def test_it_counts_a_grant_dated_ahead_once_the_refresh_puts_it_in_effect():
    c = make_customer()
    grant = append(c, G, days_ago=-1)  # tomorrow
    row = current(c)
    assert (row.status, row.record_id, row.pending_at) == (
        CurrentConsent.Status.PENDING,
        None,
        grant.effective_at,
    )
    assert not has_consent(c, TRAIN)

    current_consent_refresh_due(now=timezone.now() + timedelta(days=2))
    assert (current(c).status, current(c).record_id) == (G, grant.pk)


def test_it_runs_the_refresh_on_a_schedule():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert refresh_current_consent_task.name in tasks
    assert refresh_current_consent_task() == {"promoted": 0, "expired": 0}


def test_an_erasure_leaves_no_current_consent(steward):
    erased, kept = make_customer(), make_customer()
    for c in (erased, kept):
        append(c, G, days_ago=3)
        append(c, W, days_ago=1, purpose=Purpose.PROFILING)
    customer_erase(customer=erased, by=steward)
    assert not CurrentConsent.objects.filter(customer_id=erased.pk).exists()
    assert CurrentConsent.objects.filter(customer=kept).count() == 2
    assert_in_step_with_history()


def consent_csv(*rows: tuple[str, str, str]) -> str:
    lines = ["customer_id,consent_model_training,consent_date"]
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def test_an_import_writes_the_current_consent_of_each_customer(
    marketer, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    first = consent_csv(("A1", "granted", "2024-03-01"), ("A2", "denied", "2024-03-01"))
    assert import_text(capture, first, by=marketer).status == Job.Status.SUCCEEDED
    assert sorted(CurrentConsent.objects.values_list("customer__external_id", "status")) == [
        ("A1", G),
        ("A2", D),
    ]
    # An earlier-dated denial does not override A1's grant; a later-dated grant does A2's.
    second = consent_csv(("A1", "denied", "2023-01-01"), ("A2", "granted", "2024-06-01"))
    job = import_text(capture, second, by=marketer)
    assert job.status == Job.Status.SUCCEEDED and job.result["consents_added"] == 2
    assert sorted(CurrentConsent.objects.values_list("customer__external_id", "status")) == [
        ("A1", G),
        ("A2", G),
    ]
    assert_in_step_with_history()


def test_the_demo_data_comes_with_its_current_consent():
    load_demo_data(limit=60)
    assert CurrentConsent.objects.filter(status=G).exists()
    assert_in_step_with_history()


def test_the_rebuild_puts_the_table_back_in_step_and_says_what_it_did(capsys):
    a, b, c = make_customer(), make_customer(), make_customer()
    append(a, G, days_ago=2)
    append(b, G, days_ago=2)
    append(b, W, days_ago=1, purpose=Purpose.PROFILING)
    right = current_table()
    CurrentConsent.objects.filter(customer=a).delete()  # missing
    CurrentConsent.objects.filter(customer=b, purpose=TRAIN).update(status=D)  # wrong
    CurrentConsent.objects.create(  # without history
        customer=c, purpose=TRAIN, status=G, updated_at=timezone.now()
    )

    call_command("rebuild_current_consent", "--batch-size", "2")

    assert capsys.readouterr().out.splitlines() == [
        "customers: 3 in 2 batches",
        "current consent rows: 3",
        "rows added or corrected: 2",
        "rows without history removed: 1",
    ]
    assert current_table() == right


def test_a_rebuild_of_a_table_in_step_writes_nothing():
    for days_ago in (3, 2, 1):
        append(make_customer(), G, days_ago=days_ago)
    counts = current_consent_rebuild(batch_size=2)
    assert (counts.customers, counts.rows, counts.written, counts.removed) == (3, 3, 0, 0)
    assert counts.batches == 2


def test_it_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="batch_size"):
        current_consent_rebuild(batch_size=0)


def test_the_selector_answers_now_as_the_history_does():
    now = timezone.now()
    people = [make_customer() for _ in range(6)]
    append(people[0], G, days_ago=5)
    append(people[1], G, days_ago=5, expires_at=now + timedelta(days=1))
    append(people[2], G, days_ago=5, expires_at=now - timedelta(days=1))
    append(people[3], G, days_ago=5)
    append(people[3], W, days_ago=1)
    append(people[4], D, days_ago=5)
    append(people[5], G, days_ago=-3)
    from_table = set(customers_with_consent(TRAIN))
    from_history = set(customers_with_consent(TRAIN, at=timezone.now()))
    assert from_table == from_history == {people[0], people[1]}

    assert consented_counts()[TRAIN] == 2
    assert consented_counts()[Purpose.PROFILING] == 0
