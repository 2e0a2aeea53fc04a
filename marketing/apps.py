from django.apps import AppConfig
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
