"""What a locked-out user is told, on the login page and by the token endpoint alike."""

from django.conf import settings


def locked_out_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed login attempts. Try again in {minutes} minutes, "
        "or ask an administrator to unlock your account."
    )
