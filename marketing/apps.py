from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    from marketing.roles import sync_role_groups

    # Runs after every migrate, once all permissions exist, so that new models' permissions
    # reach the role groups without a migration of their own.
    sync_role_groups()


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Campaign Studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from marketing import runners  # noqa: F401  (registers job runners)

        post_migrate.connect(_sync_roles, sender=self)
        user_logged_in.connect(_remember_language, dispatch_uid="marketing-remember-language")


def _remember_language(sender, request, user, **kwargs) -> None:
    """A login reads the user's chosen language once, into the session (UserLanguageMiddleware
    reads it there on every page)."""
    if request is None or not hasattr(request, "session"):
        return
    from marketing.services.preferences import LANGUAGE_SESSION_KEY, user_language

    request.session[LANGUAGE_SESSION_KEY] = user_language(user)
