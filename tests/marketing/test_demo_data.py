"""The bundled demo data loader (on a slice of the bank file)."""

import gzip
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from marketing.ingest.demo import DEMO_FILE, call_times
from marketing.models import (
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    Offer,
    ProfileField,
)
from marketing.roles import user_roles
from tests.marketing.services.ingest_helpers import stored

pytestmark = pytest.mark.django_db

SLICE = 400


def test_it_ships_the_bank_file_with_its_attribution():
    with gzip.open(DEMO_FILE, "rt") as handle:
        assert sum(1 for _ in handle) == 41_188 + 1
    attribution = (DEMO_FILE.parent / "ATTRIBUTION.txt").read_text()
    assert "CC BY 4.0" in attribution and "Moro" in attribution


def test_it_loads_customers_an_offer_responses_and_consent(capsys):
    call_command("load_demo", "--limit", str(SLICE))
    assert "400 customers (400 new)" in capsys.readouterr().out

    assert Customer.objects.count() == SLICE
    first = Customer.objects.get(external_id="BANK-000001")
    assert first.attributes["age"] == 56 and first.attributes["job"] == "housemaid"
    assert "duration" not in first.attributes and "y" not in first.attributes
    assert first.attributes["emp_var_rate"] == 1.1
    assert not CustomerIdentity.objects.exists()  # no invented personal data

    offer = Offer.objects.get()
    assert (offer.title, offer.category) == ("Term deposit", "savings")
    assert Interaction.objects.filter(kind="impression").count() == SLICE
    with gzip.open(DEMO_FILE, "rt") as handle:
        subscribed = sum(
            1 for line in list(handle)[1 : SLICE + 1] if line.strip().endswith('"yes"')
        )
    assert Interaction.objects.filter(kind="conversion").count() == subscribed

    records = ConsentRecord.objects.all()
    assert set(records.values_list("source", flat=True)) == {"demo"}
    granted = records.filter(purpose="model_training", status="granted").count()
    assert 0.75 * SLICE < granted < 0.95 * SLICE
    assert records.filter(status="withdrawn").exists()
    assert records.filter(status="denied").exists()
    assert records.exclude(expires_at=None).exists()
    assert ProfileField.objects.get(name="job").data_type == "text"
    assert "housemaid" in ProfileField.objects.get(name="job").sample_values
    assert ProfileField.objects.get(name="age").data_type == "number"
    assert not ProfileField.objects.filter(name__in=["duration", "y"]).exists()


def test_it_leaves_the_same_rows_when_loaded_twice():
    call_command("load_demo", "--limit", "150")
    first = stored()
    call_command("load_demo", "--limit", "150")
    assert stored() == first


def test_it_dates_the_calls_from_may_2008_in_file_order():
    rows = [
        {"month": m, "day_of_week": d}
        for m, d in [("may", "mon"), ("may", "tue"), ("may", "mon"), ("dec", "fri"), ("mar", "wed")]
    ]
    times = list(call_times(rows))
    assert [t.date().isoformat() for t in times] == [
        "2008-05-05",
        "2008-05-06",
        "2008-05-12",
        "2008-12-05",
        "2009-03-04",
    ]
    assert times[0] == datetime(2008, 5, 5, 9, 0, tzinfo=UTC)


def test_it_creates_the_demo_logins(capsys):
    call_command("load_demo", "--limit", "5", "--users", "--password", "another-pw-456")
    out = capsys.readouterr().out
    assert "Login: marketer / another-pw-456 (role marketer)" in out
    for username, role in [
        ("marketer", "marketer"),
        ("steward", "data_steward"),
        ("viewer", "viewer"),
    ]:
        user = User.objects.get(username=username)
        assert user.check_password("another-pw-456")
        assert user_roles(user) == {role}
        assert user.is_staff is (role == "data_steward"), "the admin console is the steward's"


@pytest.mark.django_db(transaction=True)
def test_the_command_counts_the_base_so_the_overview_shows_the_demo_at_once(
    settings, marketer_client
):
    """On the in-process queue the command's threads end with it: it counts in its own
    process, and the overview shows the loaded customers without a "Count now"."""
    from marketing.models import OverviewFigures

    settings.JOB_QUEUE = "thread"
    call_command("load_demo", "--limit", "60")
    figures = OverviewFigures.objects.get()
    assert figures.figures["customers"] == 60 and figures.computed_at is not None
    page = marketer_client.get("/").content.decode()
    assert "The customer base has not been counted yet." not in page
