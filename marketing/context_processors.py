from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.roles import DATA_STEWARD, MARKETER, VIEWER, can_view_pii, user_roles

ROLE_LABELS = {
    MARKETER: gettext_lazy("Marketer"),
    DATA_STEWARD: gettext_lazy("Data steward"),
    VIEWER: gettext_lazy("Viewer"),
}


def roles(request) -> dict:
    """What every page needs: the user's roles, the sidebar section, the minimum group size."""
    held = user_roles(request.user)
    return {
        "user_roles": sorted(held),
        "role_label": _role_label(request.user, held),
        "is_marketer": MARKETER in held,
        "is_steward": DATA_STEWARD in held,
        "can_upload": bool(held & {MARKETER, DATA_STEWARD}),
        "can_view_pii": can_view_pii(request.user),
        "nav_section": _nav_section(request),
        "min_group_size": settings.MIN_GROUP_SIZE,
    }


def _role_label(user, held: set[str]) -> str:
    if getattr(user, "is_superuser", False):
        return _("Admin")
    return " · ".join(
        str(ROLE_LABELS[role]) for role in (MARKETER, DATA_STEWARD, VIEWER) if role in held
    )


def _nav_section(request) -> str:
    # Page URL names are "<section>-<action>" (upload-create, segment-detail, ...).
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    return url_name.split("-", 1)[0]
