"""Settings for Campaign Studio.

Everything comes from environment variables with embedded defaults that work on a fresh
machine: SQLite, an in-process job queue and the packaged model. One switch each turns on
PostgreSQL (DATABASE_URL), Redis + Celery workers (CELERY_BROKER_URL) and a GPU (USE_GPU).
Production hardening lives in ``marketing.settings_production``.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for (``./dev demo`` asks): Django's debug pages show settings and the
# values a request carried, a login's password included.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A development-only key; settings_production refuses to start without a real one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Key for the internal customer pseudonyms (HMAC-SHA256). Kept outside the database so that a
# database dump alone cannot link pseudonyms back to external ids.
PSEUDONYM_KEY = env.str("PSEUDONYM_KEY", default="dev-only-pseudonym-key")
# For teams that only need audience matching: customer uploads keep email, phone, names and
# postal code only as the ad platforms' SHA-256 digests, made at import; the plain values are
# never stored (nor kept in the stored upload file once it is imported).
HASH_IDENTIFIERS_ON_UPLOAD = env.bool("HASH_IDENTIFIERS_ON_UPLOAD", default=False)
# Key for what an erasure keeps of a person (the token that replaces their pseudonym in audit
# events, frozen audience members, export exclusions and model registries). A second key, so
# that whoever holds PSEUDONYM_KEY and guesses the external id format cannot find the erased.
SUPPRESSION_KEY = env.str("SUPPRESSION_KEY", default="dev-only-suppression-key")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "marketing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "marketing.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "marketing.middleware.LoginRequiredEverywhereMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "marketing.urls"
WSGI_APPLICATION = "marketing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "marketing.context_processors.roles",
            ],
        },
    },
]

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))

# An empty DATABASE_URL means "not configured", like an unset one.
DATABASES = {
    "default": environ.Env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'campaign-studio.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The in-process job queue writes from a worker thread while pages read: wait for the
    # lock instead of failing, and take the write lock up front to avoid upgrade deadlocks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    )
# A web process keeps its database connection between requests (seconds; 0 closes it after
# each): opening one costs more than the queries of a small request (PostgreSQL's
# connection start, SQLite's reading of the schema).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
# PostgreSQL: the reads asked on every API request (token, roles, model in use, customer)
# are prepared once per database session (``marketing.prepared``). Off behind a pooler that
# shares a session between clients (PgBouncer in transaction mode).
DATABASE_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS and "postgresql" in DATABASES["default"]["ENGINE"]:
    # Planned once for every value: the server would otherwise plan each run again whenever
    # a value's estimate (a moment, a range) makes the plan for any value look costlier,
    # and these reads are lookups of keys, whose plan suits every value. Only statements
    # prepared by name follow it: Django sends its own queries with the values written in.
    connect_options = DATABASES["default"].setdefault("OPTIONS", {})
    connect_options["options"] = " ".join(
        filter(None, [connect_options.get("options"), "-c plan_cache_mode=force_generic_plan"])
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses a locked-out user before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins (form and API token) lock the username out for a while, whatever address the
# guesses come from. Locking the address too is a switch: behind a reverse proxy every client
# has the proxy's address, and one guesser would lock everybody out.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
LOGIN_LOCKOUT_BY_ADDRESS = env.bool("LOGIN_LOCKOUT_BY_ADDRESS", default=False)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"] if LOGIN_LOCKOUT_BY_ADDRESS else ["username"]
# axes.W006 asks for the address lockout, which is off by choice (above).
SILENCED_SYSTEM_CHECKS = [] if LOGIN_LOCKOUT_BY_ADDRESS else ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "marketing.views.auth.locked_out_page"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# The interface speaks these languages; each user picks one on their own (UserSettings), and
# a visitor who has not logged in gets the browser's choice. Catalogues live in locale/.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# How dates and times are written in each language (marketing/formats/<language>/formats.py).
FORMAT_MODULE_PATH = ["marketing.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"


def _plotly_js_dir() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data"


# plotly.js is served from the installed plotly package as static/vendor/plotly/plotly.min.js.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", _plotly_js_dir())]
STATIC_ROOT = DATA_DIR / "staticfiles"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"
# Uploads, error files and exports hold customer data: readable by the app's own user only.
# The export writer uses the same modes for the files it writes itself.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Where uploads, error files, exports and model artefacts live (marketing/filestore.py):
# empty, the folders above on this machine; s3://bucket/prefix, an S3-compatible object
# store that every web and worker machine reaches (AWS S3, MinIO), with S3_ENDPOINT_URL for
# a store other than AWS and the keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. The
# folders above are then this machine's cache.
FILE_STORE_URL = env.str("FILE_STORE_URL", default="")
FILE_STORE_PREFIX = ""
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if FILE_STORE_URL:
    _store = urlsplit(FILE_STORE_URL)
    if _store.scheme != "s3" or not _store.netloc:
        raise ImproperlyConfigured(
            "FILE_STORE_URL must look like s3://bucket or s3://bucket/prefix"
        )
    AWS_STORAGE_BUCKET_NAME = _store.netloc
    FILE_STORE_PREFIX = _store.path.strip("/")
    AWS_S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="") or None
    AWS_S3_REGION_NAME = env.str("S3_REGION", default="") or None
    # Private objects; a name already taken gets another, as on a disk.
    AWS_DEFAULT_ACL = None
    AWS_S3_FILE_OVERWRITE = False
    AWS_QUERYSTRING_AUTH = True
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"location": f"{FILE_STORE_PREFIX}/media".strip("/")},
    }

# Uploads: files above this size are refused with a clear message before parsing.
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
# Files with more columns are refused at upload (each column is a row of the mapping page).
MAX_UPLOAD_COLUMNS = env.int("MAX_UPLOAD_COLUMNS", default=500)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Currency the campaign pages show costs, values and profits in (a symbol or a code).
CURRENCY_SYMBOL = env.str("CURRENCY_SYMBOL", default="€")

# Segment previews and aggregate reports hide counts below this group size (k-anonymity).
MIN_GROUP_SIZE = env.int("MIN_GROUP_SIZE", default=10)
# Matched people a platform needs before it serves an uploaded audience, as the platforms
# document them (Google: 1,000 for Search and YouTube, 100 for Display; Meta: about 100;
# TikTok: about 1,000). Smaller audiences are warned about, never refused.
PLATFORM_MIN_MATCHED = {
    "Google Ads": env.int("MIN_MATCHED_GOOGLE", default=1000),
    "Meta": env.int("MIN_MATCHED_META", default=100),
    "TikTok": env.int("MIN_MATCHED_TIKTOK", default=1000),
}
# The low end of the match rates of hashed customer lists (commonly 30-70 %).
LOW_MATCH_RATE = env.float("LOW_MATCH_RATE", default=0.3)

# Job queue. Without a broker, jobs run on a thread inside the web process ("in-process
# queue"); with CELERY_BROKER_URL they go to separate Celery workers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
JOB_QUEUE = env.str("JOB_QUEUE", default="celery" if CELERY_BROKER_URL else "thread")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600 - 60)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Set where jobs are created (the web app) when a GPU worker may run (`WORKER_QUEUES=gpu`):
# training, scoring and explanations then go to the "gpu" queue.
USE_GPU = env.bool("USE_GPU", default=False)
# With USE_GPU, each routing asks the workers whether one consumes the "gpu" queue (the answer
# is kept a minute); without one, GPU jobs go to the CPU workers instead of waiting.
GPU_PROBE_TIMEOUT_S = env.float("GPU_PROBE_TIMEOUT_S", default=1.0)

# The purge of data past its retention period runs daily (celery beat: `./dev beat`).
# The current consent table is refreshed every few minutes: grants past their expiry are
# marked expired, and records dated ahead are put in effect once their time has come. The
# consent selector never waits for it to stop counting a grant; a grant dated ahead starts
# counting at the first run after its date.
CURRENT_CONSENT_REFRESH_MINUTES = env.int("CURRENT_CONSENT_REFRESH_MINUTES", default=5)
# Jobs that never get lost (marketing.services.jobs): a running job's worker marks it alive
# every JOB_HEARTBEAT_SECONDS; one silent for JOB_LEASE_SECONDS has lost its worker and is
# restarted (up to JOB_MAX_ATTEMPTS runs in all, for the kinds that can start over) or ended
# with a message. A job queued for JOB_RESEND_AFTER_SECONDS without a worker taking it is sent
# to the broker again (a broker restarted without its queue). The sweep runs every
# JOB_SWEEP_SECONDS.
JOB_HEARTBEAT_SECONDS = env.int("JOB_HEARTBEAT_SECONDS", default=30)
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=180)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
JOB_RESEND_AFTER_SECONDS = env.int("JOB_RESEND_AFTER_SECONDS", default=900)
JOB_SWEEP_SECONDS = env.int("JOB_SWEEP_SECONDS", default=60)
# The same training or scoring request again within this time, while its job has not
# finished, returns that job (a double click, a client's retry).
JOB_DUPLICATE_WINDOW_SECONDS = env.int("JOB_DUPLICATE_WINDOW_SECONDS", default=120)
# Scoring fans out: a run is split into chunks of about SCORING_CHUNK_ROWS rows (customers x
# offers) that any worker takes in parallel; the run's own job takes chunks too, so one
# worker is enough. A chunk that fails is taken again (up to JOB_MAX_ATTEMPTS times).
SCORING_CHUNK_ROWS = env.int("SCORING_CHUNK_ROWS", default=50_000)
# Next best offers (POST /api/next-best-offers/): an offer shown to the customer
# NBO_FREQUENCY_CAP times or more in the last NBO_FREQUENCY_DAYS days is not offered again.
NBO_FREQUENCY_CAP = env.int("NBO_FREQUENCY_CAP", default=3)
NBO_FREQUENCY_DAYS = env.float("NBO_FREQUENCY_DAYS", default=7.0)
if NBO_FREQUENCY_CAP < 1 or not NBO_FREQUENCY_DAYS > 0:
    raise ImproperlyConfigured(
        "NBO_FREQUENCY_CAP must be at least 1 and NBO_FREQUENCY_DAYS above 0"
    )
# CPU threads of torch and LightGBM in each job process. 0: the machine's cores shared
# among the worker's processes (its --concurrency), or all of them on the in-process queue.
WORKER_THREADS = env.int("WORKER_THREADS", default=0)
if JOB_LEASE_SECONDS < 3 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("JOB_LEASE_SECONDS must be at least 3 x JOB_HEARTBEAT_SECONDS")
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {
        "task": "marketing.reconcile_jobs",
        "schedule": timedelta(seconds=JOB_SWEEP_SECONDS),
    },
    "purge-expired-data": {
        "task": "marketing.purge_expired_data",
        "schedule": crontab(hour=env.int("RETENTION_PURGE_HOUR", default=3), minute=30),
    },
    # The overview's and the segments' counts, made again besides after each import (for
    # consents that expire, and changes made outside imports).
    "refresh-figures": {
        "task": "marketing.refresh_figures",
        "schedule": crontab(minute=env.int("FIGURES_REFRESH_MINUTE", default=15)),
    },
    "refresh-current-consent": {
        "task": "marketing.refresh_current_consent",
        "schedule": timedelta(minutes=CURRENT_CONSENT_REFRESH_MINUTES),
    },
    # Re-train schedules (edited in the admin) that are due start their runs.
    "retrain-due": {
        "task": "marketing.retrain_due",
        "schedule": timedelta(minutes=env.int("RETRAIN_CHECK_MINUTES", default=15)),
    },
    # A drift check of every model in use, daily.
    "check-drift": {
        "task": "marketing.check_drift",
        "schedule": crontab(hour=env.int("DRIFT_CHECK_HOUR", default=4), minute=45),
    },
}
# Drift checks: the PSI at which a field (or the score) is watched and raises an alert, the
# drop of live AUC below the test AUC that raises one, the responses a live AUC needs, and
# the scored customers a check compares at most.
DRIFT_PSI_WATCH = env.float("DRIFT_PSI_WATCH", default=0.1)
DRIFT_PSI_ALERT = env.float("DRIFT_PSI_ALERT", default=0.25)
DRIFT_AUC_DROP = env.float("DRIFT_AUC_DROP", default=0.05)
DRIFT_MIN_RESPONSES = env.int("DRIFT_MIN_RESPONSES", default=200)
DRIFT_SAMPLE_ROWS = env.int("DRIFT_SAMPLE_ROWS", default=20_000)
if not 0 < DRIFT_PSI_WATCH <= DRIFT_PSI_ALERT:
    raise ImproperlyConfigured("DRIFT_PSI_WATCH must be above 0 and at most DRIFT_PSI_ALERT")


def _retention_days(name: str, default: int) -> int:
    """Days to keep a kind of data; 0 or empty keeps it forever."""
    value = env.str(name, default=str(default)).strip() or "0"
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a number of days, 0 to keep forever")
    return int(value)


# Retention per kind of data (manage.py purge_expired_data, or the daily scheduled purge).
# Copies of customer data that left the app or were refused (export files, import error
# files) go after 90 days unless told otherwise; everything else is kept until a period is set.
RETENTION_DAYS = {
    "interactions": _retention_days("RETENTION_DAYS_INTERACTIONS", 0),
    "uploads": _retention_days("RETENTION_DAYS_UPLOADS", 0),
    "upload_error_files": _retention_days("RETENTION_DAYS_UPLOAD_ERROR_FILES", 90),
    "export_files": _retention_days("RETENTION_DAYS_EXPORT_FILES", 90),
    "job_logs": _retention_days("RETENTION_DAYS_JOB_LOGS", 0),
}

# The click model's base encoder: a local path or a hub id. The default is the packaged
# all-MiniLM-L6-v2, which loads offline.
CLICK_MODEL_BASE = env.str("CLICK_MODEL_BASE", default="packaged:all-MiniLM-L6-v2")
# Weight of the cross-fitted LightGBM baselines' out-of-fold probabilities in the click
# model's training targets (0 = labels only, 1 = the baselines' probabilities only). 0.8 gave
# the default run on the bank demo its best BERT test AUC (with a tenth of the non-test rows
# for validation: 0.5 gave 0.788, 0.8 0.790, 1.0 0.789; bench/train_default.py).
CLICK_MODEL_TEACHER_WEIGHT = env.float("CLICK_MODEL_TEACHER_WEIGHT", default=0.8)
if not 0 <= CLICK_MODEL_TEACHER_WEIGHT <= 1:
    raise ImproperlyConfigured("CLICK_MODEL_TEACHER_WEIGHT must be between 0 and 1")
MODEL_REGISTRY_DIR = Path(env.str("MODEL_REGISTRY_DIR", default=str(DATA_DIR / "models")))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "marketing.api.tokens.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["marketing.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "marketing.api.pagination.NumberedPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Services raise ApplicationError; the API answers it as a 400 (or the error's status).
    "EXCEPTION_HANDLER": "marketing.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "export": env.str("EXPORT_THROTTLE_RATE", default="30/hour"),
        # Per user: a site or app asking for each visitor's offers asks often.
        "next_best_offers": env.str("NBO_THROTTLE_RATE", default="6000/min"),
    },
}

# API tokens (django-rest-knox): only a digest is stored and each token expires.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=24)),
    "AUTH_HEADER_PREFIX": "Token",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Campaign Studio API",
    "DESCRIPTION": "Customers, consent, segments, uploads and jobs for targeted campaigns.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "kind" and a "status"; each choice set gets its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "InteractionKindEnum": "marketing.models.offers.Interaction.Kind",
        "JobKindEnum": "marketing.models.jobs.Job.Kind",
        "UploadKindEnum": "marketing.models.uploads.Upload.Kind",
        "JobStatusEnum": "marketing.models.jobs.Job.Status",
        "UploadStatusEnum": "marketing.models.uploads.Upload.Status",
        "ConsentStatusEnum": "marketing.models.consent.ConsentRecord.Status",
        "TrainingModeEnum": "marketing.models.training.TrainingRun.Mode",
        "UploadModeEnum": "marketing.models.uploads.Upload.Mode",
        "TrainingTargetEnum": "marketing.models.training.TrainingRun.Target",
        "ExportPlatformEnum": "marketing.exporters.formats.PLATFORM_CHOICES",
    },
    # Swagger UI is served from the app itself (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp): scripts, style sheets, fonts and data only from the app
# itself (plotly.js and Swagger UI are served from it too); no inline or injected script, no
# framing, no plugins. Inline styles stay allowed: plotly.js writes <style> elements and style
# attributes while it draws, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Logs cannot be edited after an erasure, so they never get external ids or personal data:
# request lines lose their query strings (searches and API filters carry ids), and the
# product's own messages name rows by primary key only.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_query_strings": {"()": "marketing.logfilters.DropQueryStrings"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_query_strings"]},
        # runserver's request log, as Django configures it, with the filter added.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["no_query_strings"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.request": {"filters": ["no_query_strings"]},
        # django-axes reports every login at INFO; lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
