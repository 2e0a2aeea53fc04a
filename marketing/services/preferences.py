from django.conf import settings
from django.contrib.auth.models import User

from marketing.models import UserSettings

LANGUAGE_SESSION_KEY = "interface_language"


def user_language(user: User) -> str:
    """The interface language the user chose, or "" when they never chose one."""
    chosen = UserSettings.objects.filter(user=user).values_list("language", flat=True).first()
    return chosen or ""


def user_language_set(user: User, language: str) -> UserSettings:
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"Unknown language {language!r}")
    row, _ = UserSettings.objects.update_or_create(user=user, defaults={"language": language})
    return row
