from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from marketing.models import ConsentRecord, Purpose
from marketing.selectors.consent import customers_with_consent, has_consent
from tests.factories import make_customer, record_consent

pytestmark = pytest.mark.django_db
W = ConsentRecord.Status.WITHDRAWN
D = ConsentRecord.Status.DENIED
TRAIN = Purpose.MODEL_TRAINING


def test_it_includes_a_granted_consent():
    c = make_customer()
    record_consent(c, TRAIN)
    assert list(customers_with_consent(TRAIN)) == [c]


def test_it_honours_a_later_withdrawal():
    c = make_customer()
    record_consent(c, TRAIN, days_ago=30)
    record_consent(c, TRAIN, W, days_ago=1)
    assert not has_consent(c, TRAIN)
    # ...but the grant was valid before the withdrawal.
    assert has_consent(c, TRAIN, at=timezone.now() - timedelta(days=10))


def test_it_honours_a_regrant_after_withdrawal():
    c = make_customer()
    record_consent(c, TRAIN, days_ago=30)
    record_consent(c, TRAIN, W, days_ago=20)
    record_consent(c, TRAIN, days_ago=2)
    assert has_consent(c, TRAIN)


def test_it_honours_expiry():
    c = make_customer()
    record_consent(c, TRAIN, days_ago=400, expires_at=timezone.now() - timedelta(days=35))
    assert not has_consent(c, TRAIN)
    assert has_consent(c, TRAIN, at=timezone.now() - timedelta(days=40))


def test_it_keeps_purposes_apart_and_excludes_denials():
    a, b, c = make_customer(), make_customer(), make_customer()
    record_consent(a, TRAIN)
    record_consent(b, Purpose.AD_TARGETING)
    record_consent(c, TRAIN, D)
    assert list(customers_with_consent(TRAIN)) == [a]
    assert list(customers_with_consent(Purpose.AD_TARGETING)) == [b]


def test_it_ignores_records_that_take_effect_in_the_future():
    c = make_customer()
    record_consent(c, TRAIN, effective_at=timezone.now() + timedelta(days=3))
    assert not has_consent(c, TRAIN)


def test_it_keeps_consent_history_append_only():
    c = make_customer()
    rec = record_consent(c, TRAIN)
    rec.status = W
    with pytest.raises(ValidationError):
        rec.save()
    with pytest.raises(ValidationError):
        rec.delete()
    assert ConsentRecord.objects.get(pk=rec.pk).status == ConsentRecord.Status.GRANTED
