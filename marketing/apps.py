from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Campaign Studio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from marketing import runners  # noqa: F401  (registers job runners)
