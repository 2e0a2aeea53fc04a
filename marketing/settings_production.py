"""Production settings: the base settings with every deploy check satisfied.

Secrets must come from the environment; starting without them is an error, not a default.
"""

from marketing.keychecks import require_distinct_keys, require_strong_key
from marketing.settings import *  # noqa: F403
from marketing.settings import STORAGES as BASE_STORAGES
from marketing.settings import env

DEBUG = False


def _required_secret(name: str) -> str:
    return require_strong_key(name, env.str(name, default=""))


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY")
PSEUDONYM_KEY = _required_secret("PSEUDONYM_KEY")
SUPPRESSION_KEY = _required_secret("SUPPRESSION_KEY")
# Every key setting (by environment name), each required to differ from the others; a new
# key joins this list.
KEY_SETTINGS = {
    "DJANGO_SECRET_KEY": "SECRET_KEY",
    "PSEUDONYM_KEY": "PSEUDONYM_KEY",
    "SUPPRESSION_KEY": "SUPPRESSION_KEY",
}
require_distinct_keys({env_name: globals()[name] for env_name, name in KEY_SETTINGS.items()})

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Container and load-balancer health checks call the app directly over HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Cookies only over HTTPS. SECURE_COOKIES=false is for a plain local run on
# http://localhost (docker/compose.yml's default) and nothing else.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
# Uploads as the base settings say (this machine's disk, or the object store).
STORAGES = {
    **BASE_STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
