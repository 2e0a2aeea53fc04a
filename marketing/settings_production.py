"""Production settings: the base settings with every deploy check satisfied.

Secrets must come from the environment; starting without them is an error, not a default.
"""

from django.core.exceptions import ImproperlyConfigured

from marketing.settings import *  # noqa: F403
from marketing.settings import env

DEBUG = False


def _required_secret(name: str) -> str:
    value = env.str(name, default="")
    if len(value) < 32 or value.startswith("dev-only"):
        raise ImproperlyConfigured(f"{name} must be set to a random value of 32+ characters")
    return value


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY")
PSEUDONYM_KEY = _required_secret("PSEUDONYM_KEY")
SUPPRESSION_KEY = _required_secret("SUPPRESSION_KEY")
if SUPPRESSION_KEY == PSEUDONYM_KEY:
    raise ImproperlyConfigured("SUPPRESSION_KEY must differ from PSEUDONYM_KEY")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
