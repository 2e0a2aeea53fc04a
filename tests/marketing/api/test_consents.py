from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.models import AuditEvent, ConsentRecord, Purpose
from marketing.selectors.consent import has_consent
from marketing.services.consent import consent_record_append, consent_withdraw
from tests.factories import make_customer, record_consent
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db
EMAIL = Purpose.EMAIL_MARKETING


def grant(customer, **extra) -> dict:
    return {
        "customer": customer.pk,
        "purpose": EMAIL,
        "status": "granted",
        "lawful_basis": "a",
        "notice_version": "2024-05",
        **extra,
    }


def test_it_appends_a_consent_record_through_the_api(steward_client, steward):
    customer = make_customer()
    response = steward_client.post(
        "/api/consents/", grant(customer), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "api"
    assert body["recorded_by"] == "stew"
    record = ConsentRecord.objects.get()
    assert record.recorded_by == steward
    assert has_consent(customer, EMAIL)
    event = AuditEvent.objects.get(action="consent_change")
    assert event.target_ref == customer.pseudonym
    assert event.details["status"] == "granted"


def test_it_refuses_an_expiry_before_the_grant(steward_client):
    customer = make_customer()
    now = timezone.now()
    payload = grant(
        customer, effective_at=now.isoformat(), expires_at=(now - timedelta(days=1)).isoformat()
    )
    response = steward_client.post("/api/consents/", payload, content_type="application/json")
    assert response.status_code == 400
    assert "expires_at" in response.json()
    assert not ConsentRecord.objects.exists()


def test_it_never_updates_or_deletes_a_consent_record(steward_client):
    record = record_consent(make_customer(), EMAIL)
    url = f"/api/consents/{record.pk}/"
    assert steward_client.put(url, {}, content_type="application/json").status_code in (404, 405)
    assert steward_client.patch(url, {}, content_type="application/json").status_code in (404, 405)
    assert steward_client.delete(url).status_code in (404, 405)
    assert ConsentRecord.objects.get().status == "granted"


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_it_keeps_consent_endpoints_for_stewards(request, role):
    client = logged_in(request.getfixturevalue(role))
    customer = make_customer()
    assert client.get("/api/consents/").status_code == 403
    response = client.post("/api/consents/", grant(customer), content_type="application/json")
    assert response.status_code == 403
    assert not ConsentRecord.objects.exists()


def test_it_filters_consent_records(steward_client):
    a, b = make_customer(), make_customer()
    record_consent(a, EMAIL)
    record_consent(b, Purpose.PROFILING, ConsentRecord.Status.DENIED)
    body = steward_client.get("/api/consents/", {"purpose": "profiling"}).json()
    assert [r["customer"] for r in body["results"]] == [b.pk]


def test_it_withdraws_by_appending_to_the_history(steward):
    customer = make_customer()
    granted = consent_record_append(
        customer=customer,
        purpose=EMAIL,
        status="granted",
        lawful_basis="a",
        source="form",
        notice_version="v3",
        effective_at=timezone.now() - timedelta(days=3),
        by=steward,
    )
    withdrawn = consent_withdraw(customer=customer, purpose=EMAIL, by=steward, note="phone call")
    assert not has_consent(customer, EMAIL)
    assert list(customer.consents.order_by("effective_at")) == [granted, withdrawn]
    assert (withdrawn.status, withdrawn.notice_version, withdrawn.note) == (
        "withdrawn",
        "v3",
        "phone call",
    )
    assert AuditEvent.objects.filter(action="consent_change").count() == 2


def test_it_rejects_an_unknown_purpose(steward):
    with pytest.raises(ValueError, match="purpose"):
        consent_record_append(
            customer=make_customer(),
            purpose="newsletter",
            status="granted",
            lawful_basis="a",
            source="api",
            notice_version="",
            by=steward,
        )


@pytest.mark.parametrize(
    "missing", [("lawful_basis",), ("notice_version",), ("lawful_basis", "notice_version")]
)
def test_it_asks_for_the_lawful_basis_and_notice_version(steward_client, missing):
    payload = {k: v for k, v in grant(make_customer()).items() if k not in missing}
    response = steward_client.post("/api/consents/", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert set(missing) <= set(response.json())
    assert not ConsentRecord.objects.exists()


def test_it_accepts_an_empty_notice_version_when_none_was_shown(steward_client):
    payload = grant(make_customer(), status="withdrawn", notice_version="")
    response = steward_client.post("/api/consents/", payload, content_type="application/json")
    assert response.status_code == 201, response.content


def test_it_refuses_an_expiry_before_now_when_the_record_takes_effect_now(steward_client):
    payload = grant(make_customer(), expires_at=(timezone.now() - timedelta(days=1)).isoformat())
    response = steward_client.post("/api/consents/", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "expires_at" in response.json()
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"effective_at": "yesterday"},
        {"expires_at": "2026-13-45"},
        {"customer": 987654},
        {"customer": "abc"},
        {"purpose": "newsletter"},
        {"status": "maybe"},
        {"lawful_basis": "z"},
        {"source": "fax"},
        {"notice_version": "x" * 40},
    ],
)
def test_it_answers_bad_consent_input_with_a_400(steward_client, bad):
    payload = {**grant(make_customer()), **bad}
    response = steward_client.post("/api/consents/", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert set(bad) <= set(response.json())
    assert not ConsentRecord.objects.exists()
