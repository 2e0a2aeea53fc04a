from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    Interaction,
    Offer,
    ProfileField,
    Segment,
)
from marketing.roles import DATA_STEWARD, MARKETER, VIEWER

pytestmark = pytest.mark.django_db


def test_it_creates_the_three_role_logins_and_nothing_else():
    out = StringIO()
    call_command("create_role_users", stdout=out)

    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"marketer", "steward", "viewer"}
    roles = {name: [g.name for g in u.groups.all()] for name, u in users.items()}
    assert roles == {"marketer": [MARKETER], "steward": [DATA_STEWARD], "viewer": [VIEWER]}
    assert users["steward"].is_staff and not users["marketer"].is_staff
    assert not any(u.is_superuser for u in users.values())
    # Random passwords, printed once, each one logs in.
    printed = dict(
        line.removeprefix("Login: ").split(" (")[0].split(" / ")
        for line in out.getvalue().splitlines()
    )
    assert len(set(printed.values())) == 3
    for username, password in printed.items():
        assert len(password) >= 12 and users[username].check_password(password)
    # No data: no customer, offer, response, consent, segment, field or audit trail.
    for model in (Customer, Offer, Interaction, ConsentRecord, Segment, ProfileField, AuditEvent):
        assert not model.objects.exists(), model.__name__
    assert set(Group.objects.values_list("name", flat=True)) == {MARKETER, DATA_STEWARD, VIEWER}


def test_running_it_again_leaves_existing_logins_alone_unless_reset():
    call_command("create_role_users", "--password", "first-password-1", stdout=StringIO())
    out = StringIO()
    call_command("create_role_users", stdout=out)
    assert User.objects.get(username="viewer").check_password("first-password-1")
    assert "exists" in out.getvalue()

    call_command("create_role_users", "--reset", "--password", "second-pw-22", stdout=StringIO())
    assert User.objects.get(username="viewer").check_password("second-pw-22")
    assert User.objects.count() == 3
