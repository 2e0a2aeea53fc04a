"""Whatever happens to the consent history, through any path and in any order, the current
consent table is what a rebuild from the history makes of it, and the selector's answer for
now is the history's. PostgreSQL only: the statements that keep the table differ there
(locks, the import's single statement), and it is the database the product runs on."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from marketing.models import ConsentRecord, Customer, LawfulBasis, Purpose, Upload
from marketing.selectors.consent import customers_with_consent
from marketing.services.consent import consent_record_append
from marketing.services.current_consent import current_consent_refresh_due
from marketing.services.erasure import customer_erase
from tests.factories import make_customer
from tests.marketing.services.current_consent_helpers import assert_in_step_with_history
from tests.marketing.services.ingest_helpers import import_text

pytestmark = pytest.mark.django_db
PEOPLE = ["P0", "P1", "P2", "P3"]
PURPOSES = [Purpose.MODEL_TRAINING, Purpose.PROFILING]
STATUSES = [s.value for s in ConsentRecord.Status]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")


# Times are whole hours from the start of an example: none falls between two statements of
# it, so "in effect", "expired" and "ahead" mean the same to each write and each check.
hours_before = st.integers(min_value=-24 * 30, max_value=0)
hours_ahead_or_before = st.integers(min_value=-24 * 30, max_value=48)
expiry = st.none() | st.integers(min_value=1, max_value=24 * 40)

append_op = st.tuples(
    st.just("append"),
    st.sampled_from(PEOPLE),
    st.sampled_from(PURPOSES),
    st.sampled_from(STATUSES),
    hours_ahead_or_before,
    expiry,
)
import_row = st.tuples(
    st.sampled_from(STATUSES + [""]),  # model_training
    st.sampled_from(STATUSES + [""]),  # profiling
    st.none() | st.integers(min_value=-24 * 30, max_value=20),  # consent date; None: undated
    expiry,
)
import_op = st.tuples(
    st.just("import"),
    st.dictionaries(st.sampled_from(PEOPLE), import_row, min_size=1, max_size=4),
)
refresh_op = st.tuples(st.just("refresh"))
erase_op = st.tuples(st.just("erase"), st.sampled_from(PEOPLE))
operations = st.lists(
    st.one_of(append_op, import_op, refresh_op, erase_op), min_size=1, max_size=12
)


def _csv(rows: dict, start) -> str:
    lines = ["customer_id,consent_model_training,consent_profiling,consent_date,consent_expires"]
    for person, (training, profiling, date_hours, expires_hours) in rows.items():
        given_at = None if date_hours is None else start + timedelta(hours=date_hours)
        expires = ""
        if expires_hours is not None:
            expires = ((given_at or start) + timedelta(hours=expires_hours)).isoformat()
        date = given_at.isoformat() if given_at else ""
        lines.append(f"{person},{training},{profiling},{date},{expires}")
    return "\n".join(lines) + "\n"


def _apply(op: tuple, start, *, steward, marketer, capture) -> None:
    kind = op[0]
    if kind == "append":
        _, person, purpose, status, hours, expires_hours = op
        customer = Customer.objects.filter(external_id=person).first()
        if customer is None:
            customer = make_customer(person)
        effective_at = start + timedelta(hours=hours)
        consent_record_append(
            customer=customer,
            purpose=purpose,
            status=status,
            lawful_basis=LawfulBasis.CONSENT,
            source=ConsentRecord.Source.API,
            notice_version="v1",
            effective_at=effective_at,
            expires_at=None
            if expires_hours is None
            else effective_at + timedelta(hours=expires_hours),
            by=None,
        )
    elif kind == "import":
        # Valid rows mode: a grant refused over a standing withdrawal leaves the others.
        import_text(capture, _csv(op[1], start), by=marketer, mode=Upload.Mode.VALID_ROWS)
    elif kind == "refresh":
        current_consent_refresh_due()
    else:
        customer = Customer.objects.filter(external_id=op[1]).first()
        if customer is not None:
            customer_erase(customer=customer, by=steward)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_the_table_is_what_a_rebuild_from_the_history_makes_of_it(
    ops, steward, marketer, django_capture_on_commit_callbacks
):
    with transaction.atomic():
        start = timezone.now().replace(microsecond=0)
        for op in ops:
            _apply(
                op,
                start,
                steward=steward,
                marketer=marketer,
                capture=django_capture_on_commit_callbacks,
            )
            assert_in_step_with_history()
        for purpose in PURPOSES:
            now = timezone.now()
            from_table = set(customers_with_consent(purpose).values_list("pk", flat=True))
            from_history = set(customers_with_consent(purpose, at=now).values_list("pk", flat=True))
            assert from_table == from_history
        transaction.set_rollback(True)
