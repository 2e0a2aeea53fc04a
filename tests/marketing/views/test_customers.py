import pytest
from django.urls import reverse

from marketing.models import AuditEvent, ConsentRecord, Interaction, ProfileField, Purpose
from tests.factories import make_customer, make_offer, record_consent

pytestmark = pytest.mark.django_db

JANE = {
    "email": "jane.doe@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+44 20 7946 0958",
}


def test_it_invites_to_upload_when_there_are_no_customers(viewer_client):
    response = viewer_client.get(reverse("customer-list"))
    assert b"No customers yet" in response.content


def test_it_searches_by_external_id_and_pseudonym(viewer_client):
    alice = make_customer("ALICE-1")
    bob = make_customer("BOB-2")

    by_id = viewer_client.get(reverse("customer-list"), {"q": "alice"})
    by_pseudonym = viewer_client.get(reverse("customer-list"), {"q": bob.pseudonym[:10]})

    assert [r["customer"] for r in by_id.context["rows"]] == [alice]
    assert [r["customer"] for r in by_pseudonym.context["rows"]] == [bob]


def test_it_paginates(viewer_client):
    for _ in range(30):
        make_customer()
    first = viewer_client.get(reverse("customer-list"))
    second = viewer_client.get(reverse("customer-list"), {"page": 2})
    assert len(first.context["rows"]) == 25
    assert len(second.context["rows"]) == 5


def test_it_shows_attributes_as_columns_and_consent_badges(viewer_client):
    ProfileField.objects.create(name="age", label="Age", data_type="number")
    customer = make_customer(age=41)
    record_consent(customer, Purpose.EMAIL_MARKETING)
    record_consent(customer, Purpose.AD_TARGETING)
    record_consent(customer, Purpose.AD_TARGETING, ConsentRecord.Status.WITHDRAWN, days_ago=1)

    response = viewer_client.get(reverse("customer-list"))

    row = response.context["rows"][0]
    assert row["values"] == [("41", True)]
    assert [short for short, _ in row["consents"]] == ["Email"]


def test_it_masks_personal_identifiers_without_the_pii_permission(marketer_client):
    customer = make_customer(identity=JANE)
    for url in (reverse("customer-list"), reverse("customer-detail", args=[customer.pk])):
        content = marketer_client.get(url).content.decode()
        assert "jane.doe@example.com" not in content
        assert "Doe" not in content
        assert "j***@e***.com" in content
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PII_VIEW).exists()


def test_it_shows_identifiers_to_a_steward_and_records_the_view(steward_client, steward):
    customer = make_customer(identity=JANE)
    content = steward_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert "jane.doe@example.com" in content
    event = AuditEvent.objects.get(action=AuditEvent.Action.PII_VIEW)
    assert (event.actor, event.target_ref) == (steward, customer.pseudonym)


def test_it_shows_the_consent_history_and_current_state(viewer_client):
    customer = make_customer()
    record_consent(customer, Purpose.EMAIL_MARKETING, days_ago=30)
    record_consent(customer, Purpose.EMAIL_MARKETING, ConsentRecord.Status.WITHDRAWN, days_ago=2)
    record_consent(customer, Purpose.PROFILING, days_ago=5)

    response = viewer_client.get(reverse("customer-detail", args=[customer.pk]))

    state = {row["purpose"]: row["state"] for row in response.context["consent_state"]}
    assert state["Email marketing"] == "withdrawn"
    assert state["Profiling"] == "granted"
    assert state["Model training"] == "none"
    assert len(response.context["consent_history"]) == 3


def test_it_lists_the_customers_responses(viewer_client):
    customer = make_customer()
    offer = make_offer(title="Term deposit")
    Interaction.objects.create(
        customer=customer,
        offer=offer,
        kind=Interaction.Kind.CLICK,
        occurred_at="2024-05-01T10:00:00Z",
    )
    content = viewer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert "Term deposit" in content
    assert "Click" in content


def test_it_shows_the_columns_the_user_picks_across_pages(viewer_client):
    for name in ("age", "job", "city"):
        ProfileField.objects.create(name=name, data_type="text")
    make_customer(age=30, job="admin", city="Porto")

    picked = viewer_client.get(reverse("customer-list"), {"cols": ["city", "age"]})
    later = viewer_client.get(reverse("customer-list"), {"page": 1})

    assert [f.name for f in picked.context["columns"]] == ["age", "city"]
    assert [f.name for f in later.context["columns"]] == ["age", "city"]
    assert later.context["rows"][0]["values"] == [("30", False), ("Porto", False)]
