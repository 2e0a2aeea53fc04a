import pytest
from knox.models import AuthToken

from marketing.models import AuditEvent, ConsentRecord, Customer, CustomerIdentity, Interaction
from marketing.pseudonyms import erasure_token
from tests.factories import make_customer, make_offer, record_consent
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db

RAW = {
    "email": "jane.doe@example.com",
    "phone": "+351 912 345 678",
    "first_name": "Jane",
    "last_name": "Doebright",
    "country": "PT",
    "postal_code": "1100-148",
}


@pytest.fixture
def jane():
    return make_customer("CUST-1", identity=RAW, age=41, job="admin")


def assert_no_raw_pii(content: bytes) -> None:
    for name in ("email", "phone", "first_name", "last_name", "postal_code"):
        assert RAW[name].encode() not in content, name


@pytest.mark.parametrize("who", ["viewer_client", "marketer_client"])
def test_it_masks_identity_without_the_pii_permission(request, jane, who):
    client = request.getfixturevalue(who)
    detail = client.get(f"/api/customers/{jane.pk}/")
    listing = client.get("/api/customers/")
    assert detail.status_code == listing.status_code == 200
    assert_no_raw_pii(detail.content)
    assert_no_raw_pii(listing.content)
    assert detail.json()["identity"]["masked"] is True
    assert detail.json()["identity"]["email"] == "j***@e***.com"
    assert not AuditEvent.objects.filter(action="pii_view").exists()


def test_it_shows_identity_to_a_steward_and_audits_the_view(steward_client, jane):
    body = steward_client.get(f"/api/customers/{jane.pk}/").json()
    assert body["identity"] == {"masked": False, **RAW}
    assert body["attributes"] == {"age": 41, "job": "admin"}
    event = AuditEvent.objects.get(action="pii_view")
    assert event.target_ref == jane.pseudonym
    assert event.actor.username == "stew"


def test_it_audits_a_customer_list_once_not_per_row(steward_client):
    for i in range(5):
        make_customer(identity=RAW | {"email": f"p{i}@example.com"})
    make_customer()  # no identity: nothing to audit for this one
    assert steward_client.get("/api/customers/").status_code == 200
    event = AuditEvent.objects.get(action="pii_view")
    assert len(event.details["customers"]) == 5


def test_it_searches_by_external_id_and_pseudonym_prefix(viewer_client, jane):
    make_customer("OTHER-9")
    by_id = viewer_client.get("/api/customers/", {"search": "CUST-1"}).json()
    by_pseudonym = viewer_client.get("/api/customers/", {"search": jane.pseudonym[:12]}).json()
    assert [c["id"] for c in by_id["results"]] == [jane.pk]
    assert [c["id"] for c in by_pseudonym["results"]] == [jane.pk]


def test_it_does_not_search_by_email(viewer_client, jane):
    assert viewer_client.get("/api/customers/", {"search": "jane.doe"}).json()["results"] == []


def test_it_keeps_customers_read_only(marketer, steward, jane):
    for client in (logged_in(marketer), logged_in(steward)):
        assert client.post("/api/customers/", {"external_id": "X"}).status_code in (403, 405)
        assert client.patch(f"/api/customers/{jane.pk}/", {}).status_code in (403, 405)
        assert client.delete(f"/api/customers/{jane.pk}/").status_code in (403, 405)
    assert Customer.objects.count() == 1


def test_it_erases_a_customer_with_everything_about_them(steward_client, jane):
    offer = make_offer()
    record_consent(jane, "email_marketing")
    Interaction.objects.create(
        customer=jane, offer=offer, kind="click", occurred_at=jane.created_at
    )
    other = make_customer(identity={"email": "other@example.com"})
    record_consent(other, "email_marketing")

    response = steward_client.post(f"/api/customers/{jane.pk}/erase/")

    assert response.status_code == 200
    assert response.json() | {"records_scrubbed": 0, "sample_values": 0} == {
        "erased": jane.pseudonym,
        "identity": 1,
        "interactions": 1,
        "consent_records": 1,
        "upload_rows": 0,
        "export_files": 0,
        "records_scrubbed": 0,
        "sample_values": 0,
        "scores": 0,
        "explanations": 0,
        "recommendations": 0,
        "suppressions": 0,
        "audience_memberships": 0,
        "models_flagged": 0,
        "flagged_runs": [],
    }
    assert not Customer.objects.filter(pk=jane.pk).exists()
    assert not CustomerIdentity.objects.filter(customer_id=jane.pk).exists()
    assert not ConsentRecord.objects.filter(customer_id=jane.pk).exists()
    assert not Interaction.objects.filter(customer_id=jane.pk).exists()
    assert ConsentRecord.objects.filter(customer=other).count() == 1
    event = AuditEvent.objects.get(action="erasure")
    assert event.target_ref == erasure_token(jane.pseudonym)
    logged = str(event.details) + event.target_ref
    assert "CUST-1" not in logged and "jane" not in logged.lower()


def test_it_lets_only_stewards_erase(marketer, viewer, jane):
    for user in (marketer, viewer):
        assert logged_in(user).post(f"/api/customers/{jane.pk}/erase/").status_code == 403
    assert Customer.objects.filter(pk=jane.pk).exists()


def test_it_shows_consent_history_to_stewards_only(steward_client, marketer, jane):
    record_consent(jane, "email_marketing", days_ago=20)
    record_consent(jane, "email_marketing", ConsentRecord.Status.WITHDRAWN, days_ago=2)
    history = steward_client.get(f"/api/customers/{jane.pk}/consents/")
    assert history.status_code == 200
    assert [r["status"] for r in history.json()] == ["withdrawn", "granted"]
    assert history.json()[0]["withdrawn_at"] is not None
    assert logged_in(marketer).get(f"/api/customers/{jane.pk}/consents/").status_code == 403


def test_it_accepts_token_authentication(client, steward, jane):
    _, token = AuthToken.objects.create(user=steward)
    response = client.get(f"/api/customers/{jane.pk}/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert response.json()["identity"]["email"] == RAW["email"]


def test_it_issues_a_token_for_a_username_and_password(client, steward):
    response = client.post(
        "/api/auth/token/", {"username": "stew", "password": "pw-for-tests-only-123"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.get("/api/customers/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
