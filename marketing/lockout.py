"""What a locked-out user is told, on the login page and by the token endpoint alike."""

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

LOCKED_OUT = gettext_noop(
    "Too many failed login attempts. Try again in %(minutes)s minutes, "
    "or ask an administrator to unlock your account."
)


def locked_out_message(*, translate: bool = False) -> str:
    """In English (the API's answer), or in the reader's language with ``translate``."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (gettext(LOCKED_OUT) if translate else LOCKED_OUT) % {"minutes": minutes}
