"""The three roles of the product and what each may do.

Roles are Django groups (created by a data migration). A superuser holds every role.
"""

from collections.abc import Iterable
from functools import cache

MARKETER = "marketer"
DATA_STEWARD = "data_steward"
VIEWER = "viewer"
ALL_ROLES = (MARKETER, DATA_STEWARD, VIEWER)

# Model permissions each group gets; the role checks in views and the API use the group
# itself, these make the Django admin console behave the same way.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    MARKETER: [
        "view_customer",
        "view_offer",
        "add_offer",
        "change_offer",
        "view_interaction",
        "view_segment",
        "add_segment",
        "change_segment",
        "delete_segment",
        "view_upload",
        "add_upload",
        "view_job",
        "view_profilefield",
        "view_consentrecord",
        "view_trainingrun",
        "add_trainingrun",
        "view_scoringrun",
        "add_scoringrun",
        "view_customerscore",
        "view_audience",
        "add_audience",
        "change_audience",
        "view_audiencemember",
        "view_export",
        "add_export",
        "view_suppression",
        "view_explanationrun",
        "add_explanationrun",
        "view_campaignplan",
        "add_campaignplan",
        "change_campaignplan",
        "view_recommendationrun",
        "add_recommendationrun",
        "view_customerrecommendation",
        "view_modelpromotion",
        "view_retrainschedule",
        "add_retrainschedule",
        "change_retrainschedule",
        "delete_retrainschedule",
        "view_driftcheck",
    ],
    DATA_STEWARD: [
        "view_customer",
        "change_customer",
        "view_customeridentity",
        "change_customeridentity",
        "view_pii",
        "erase_customer",
        "view_consentrecord",
        "add_consentrecord",
        "view_offer",
        "view_interaction",
        "view_segment",
        "view_upload",
        "add_upload",
        "view_job",
        "view_auditevent",
        "view_profilefield",
        "view_trainingrun",
        "view_scoringrun",
        "view_audience",
        "view_audiencemember",
        "view_export",
        "view_exportexclusion",
        "view_suppression",
        "add_suppression",
        "change_suppression",
        "delete_suppression",
        "view_explanationrun",
        "view_campaignplan",
        "view_recommendationrun",
    ],
    VIEWER: [
        "view_customer",
        "view_offer",
        "view_interaction",
        "view_segment",
        "view_job",
        "view_profilefield",
        "view_trainingrun",
        "view_scoringrun",
        "view_audience",
        "view_explanationrun",
        "view_campaignplan",
        "view_recommendationrun",
    ],
}


@cache
def _roles_read():
    """The user's roles among ALL_ROLES, built into SQL once (asked on every request)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from marketing.prepared import PreparedQuery

    return PreparedQuery(
        lambda user: Group.objects.filter(user=user, name__in=ALL_ROLES).values_list("name"),
        user=get_user_model()._meta.pk,
    )


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ALL_ROLES)
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        cached = {name for (name,) in _roles_read().rows(user=user.pk)}
        user._role_cache = cached
    return cached


def remember_roles(user, roles: set[str]) -> None:
    """The user's roles among ALL_ROLES, read with the user (the API's token check reads
    them in the same query), so that the request's role checks read nothing more."""
    user._role_cache = roles & set(ALL_ROLES)


def has_role(user, roles: Iterable[str]) -> bool:
    return bool(user_roles(user) & set(roles))


# Roles whose downloads carry customers' external ids (the key back into the CRM), so that
# scores can be used elsewhere; the viewer's carry pseudonyms only.
LINKING_ROLES = (MARKETER, DATA_STEWARD)


def can_link_customers(user) -> bool:
    """Whether the user's downloads may carry customers' external ids."""
    return has_role(user, LINKING_ROLES)


def can_view_pii(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.has_perm("marketing.view_pii")


def sync_role_groups(group_model=None, permission_model=None) -> None:
    """Create the role groups with their permissions (idempotent).

    The migration passes its historical models; tests that flush the database call it plain.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for role, codenames in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(
            permission_model.objects.filter(
                content_type__app_label="marketing", codename__in=codenames
            )
        )


# One login per role: the demo's, and the start of a base loaded with a team's own data.
ROLE_USERS = (("marketer", MARKETER), ("steward", DATA_STEWARD), ("viewer", VIEWER))


def role_users_create(
    passwords: dict[str, str], *, reset: bool = True
) -> list[tuple[str, str, bool]]:
    """Create the ROLE_USERS logins, each in its role's group only (an existing one gets the
    password and role again when ``reset``, else is left alone); returns (username, role,
    whether its password was set) of each. Nothing else is created or changed."""
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    done = []
    with transaction.atomic():
        sync_role_groups()
        for username, role in ROLE_USERS:
            user, created = User.objects.get_or_create(username=username)
            if not (created or reset):
                done.append((username, role, False))
                continue
            user.set_password(passwords[username])
            # The admin console is the data steward's (data and consent); marketers and
            # viewers work in the app, which shows them what their role allows.
            user.is_staff = role == DATA_STEWARD
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            done.append((username, role, True))
    return done
