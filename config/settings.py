"""posinv settings: every value that differs between machines comes from the
environment, read here once. See docs/operations.md for the variables."""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("POSINV_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return value


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (DEBUG=1 allows a development key)."
        )
    SECRET_KEY = "posinv-development-key-not-for-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Behind a reverse proxy that terminates HTTPS (docs/operations.md): trust its
# X-Forwarded-Proto so Django knows the request was secure, and keep cookies
# on HTTPS only.
if env_bool("POSINV_BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# "main" is the back office; "register" is a cash-register node with its own
# database that records sales and ships them to MAIN_URL (docs/registers.md).
POSINV_NODE = os.environ.get("POSINV_NODE", "main").strip().lower()
if POSINV_NODE not in {"main", "register"}:
    raise ImproperlyConfigured(f"POSINV_NODE must be 'main' or 'register', not {POSINV_NODE!r}.")
MAIN_URL = os.environ.get("MAIN_URL", "").rstrip("/")
POSINV_REGISTER_CODE = os.environ.get("POSINV_REGISTER_CODE", "")
POSINV_REGISTER_TOKEN = os.environ.get("POSINV_REGISTER_TOKEN", "")
if POSINV_NODE == "register" and not (MAIN_URL and POSINV_REGISTER_CODE and POSINV_REGISTER_TOKEN):
    raise ImproperlyConfigured(
        "A register node needs MAIN_URL, POSINV_REGISTER_CODE and POSINV_REGISTER_TOKEN."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "import_export",
    "posinv",
    "pos",
    "cabinets",
    "carts",
    "backoffice",
    "retail",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # One JSON log line per device/integration API call (ops).
    "ops.middleware.SyncCallLogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # conn_health_checks: a kept connection is checked (SELECT 1) at the first
    # query of each request or job, so a database restart or a terminated
    # backend costs one reconnect, not one 500 per process (docs/operations.md).
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes SQLite's write lock when a transaction starts, so a
    # read-compute-write in the ledger cannot interleave with another writer
    # (SQLite ignores SELECT ... FOR UPDATE).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Password logins (the admin and every authenticate() call) go through the
# failed-login throttle (posinv/services/login_throttle.py).
AUTHENTICATION_BACKENDS = ["posinv.auth_backends.ThrottledModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "assets"]

LOGIN_URL = "admin:login"

# Background work: with REDIS_URL jobs go to RQ and run in rqworker processes
# (any number, on any host); without it they run in-process after commit.
REDIS_URL = os.environ.get("REDIS_URL", "")
POSINV_JOBS_INLINE = not REDIS_URL or env_bool("POSINV_JOBS_INLINE", False)
RQ_QUEUE_NAMES = ("high", "default", "low")
RQ_QUEUES = {
    name: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 900}
    for name in RQ_QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True
# Enqueue at once: our services already enqueue from transaction.on_commit
# where it matters, and django-rq's default (defer to commit) would make
# `enqueue` return None inside a transaction and strand a unique key.
RQ = {"COMMIT_MODE": "auto", "WORKER_CLASS": "posinv.worker.PosinvWorker"}
# Liveness (posinv/heartbeat.py): every process running a job run, and every
# worker, beats this often; silent this long, it counts as dead: its runs are
# marked failed, the worker leaves the registry and Sync health says so.
POSINV_HEARTBEAT_SECONDS = float(os.environ.get("POSINV_HEARTBEAT_SECONDS", "5"))
POSINV_DEAD_AFTER_SECONDS = float(os.environ.get("POSINV_DEAD_AFTER_SECONDS", "30"))
if not 0 < POSINV_HEARTBEAT_SECONDS < POSINV_DEAD_AFTER_SECONDS:
    raise ImproperlyConfigured(
        "POSINV_HEARTBEAT_SECONDS must be above 0 and below POSINV_DEAD_AFTER_SECONDS "
        f"(now {POSINV_HEARTBEAT_SECONDS:g} and {POSINV_DEAD_AFTER_SECONDS:g})."
    )
# While Redis is down, wake-ups after a sale skip Redis for this long after a
# failed attempt (posinv.queueing.enqueue_wake): a sale never waits on it.
POSINV_REDIS_RETRY_SECONDS = float(os.environ.get("POSINV_REDIS_RETRY_SECONDS", "5"))

# Change consumers, schedule providers and demo loaders are declared on each
# app's AppConfig (posinv/plugins.py); POSINV_CHANGE_CONSUMERS and friends
# override them (tests do).
POSINV_SCHEDULER_TICK_SECONDS = float(os.environ.get("POSINV_SCHEDULER_TICK_SECONDS", "2"))
POSINV_CHANGES_SWEEP_SECONDS = float(os.environ.get("POSINV_CHANGES_SWEEP_SECONDS", "10"))
# A failed scheduled run is retried after its interval, doubled per failure in
# a row, but never later than this (or the interval, when that is longer);
# docs/operations.md "When a scheduled run fails".
POSINV_SCHEDULE_BACKOFF_MAX_SECONDS = float(os.environ.get("POSINV_SCHEDULE_BACKOFF_MAX_SECONDS", "3600"))
# Sync health: a failing schedule is amber after one failure and red after
# this many in a row (or once its retry waits longer than the backoff bound).
POSINV_HEALTH_SCHEDULE_RED_FAILURES = int(os.environ.get("POSINV_HEALTH_SCHEDULE_RED_FAILURES", "3"))
# How long a woken dispatcher waits for more changes before it runs: one run
# per this period at most, however many sales a second arrive (docs/ledger.md).
POSINV_CHANGES_GATHER_SECONDS = float(os.environ.get("POSINV_CHANGES_GATHER_SECONDS", "0.1"))
# Live sales on PostgreSQL write in one statement (posinv_live_sale_write,
# docs/adr/0009); off, every sale takes the general path of the Python ledger.
POSINV_LIVE_SALE_ONE_STATEMENT = os.environ.get("POSINV_LIVE_SALE_ONE_STATEMENT", "1") != "0"
# Retail: days a live sale's Idempotency-Key keeps answering retries (docs/retail.md).
POSINV_LIVE_SALE_KEY_DAYS = int(os.environ.get("POSINV_LIVE_SALE_KEY_DAYS", "30"))
# Register push/pull: the lease a worker holds on a register while it syncs,
# renewed on every call, so a killed worker blocks the next one this long at most.
POSINV_SYNC_LEASE_SECONDS = float(os.environ.get("POSINV_SYNC_LEASE_SECONDS", "60"))
# Store runs (superior-store downloads): the lease a worker holds on a store's
# run, renewed on every page, so a killed worker blocks the next one this long at most.
POSINV_STORE_LEASE_SECONDS = float(os.environ.get("POSINV_STORE_LEASE_SECONDS", "120"))
# Platform rate budgets (carts/ratelimit.py): a wait up to this long is slept
# in the worker; a longer one ends the job and schedules its continuation, so
# one throttled store never occupies a worker that other stores need.
POSINV_RATE_INLINE_WAIT_SECONDS = float(os.environ.get("POSINV_RATE_INLINE_WAIT_SECONDS", "5"))
# Time scale of the platforms' rate windows (BaseLinker's minute becomes 60 x
# this). Only for tests and benches against a time-scaled fake; never set it
# in production, where the platform's real minute applies.
POSINV_RATE_WINDOW_SCALE = float(os.environ.get("POSINV_RATE_WINDOW_SCALE", "1"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "posinv.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["posinv.api.permissions.IsStaffUser"],
    # drf-spectacular plus the error answers every operation can give (401/403/404/429...).
    "DEFAULT_SCHEMA_CLASS": "posinv.api.schema.ErrorAnswersAutoSchema",
    # JSON with text no database can store (NUL, unpaired surrogates) is a 400 naming where.
    "DEFAULT_PARSER_CLASSES": [
        "posinv.api.parsers.StorableJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "posinv.api.errors.exception_handler",
    # limit/offset as DRF's, but a bad value is a 400 instead of the first page.
    "DEFAULT_PAGINATION_CLASS": "posinv.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "posinv API",
    "DESCRIPTION": "Stock ledger, registers, cabinets and carts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Structured logs (docs/operations.md): one JSON object per line on stderr,
# credentials redacted by a filter on the handler; LOG_FORMAT=text for humans.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "ops.logging.RedactFilter"}},
    "formatters": {
        "json": {"()": "ops.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact"],
            "formatter": "text" if LOG_FORMAT == "text" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# Prometheus scrapes /metrics; with a token set it must send it as a bearer.
POSINV_METRICS_TOKEN = os.environ.get("POSINV_METRICS_TOKEN", "")
# Hours between recorded ledger verifications (0: off).
POSINV_VERIFY_LEDGER_HOURS = float(os.environ.get("POSINV_VERIFY_LEDGER_HOURS", "24"))
# Minutes between runs of the sales rollup the reports read (0: off; docs/backoffice.md).
POSINV_REPORTS_ROLLUP_MINUTES = float(os.environ.get("POSINV_REPORTS_ROLLUP_MINUTES", "5"))
# Sync-health dashboard (docs/operations.md): its reload period and the ages
# at which a pending register entry turns red and a waiting cart record
# amber / red.
POSINV_DASHBOARD_REFRESH_SECONDS = int(os.environ.get("POSINV_DASHBOARD_REFRESH_SECONDS", "15"))
POSINV_HEALTH_PENDING_RED_SECONDS = float(os.environ.get("POSINV_HEALTH_PENDING_RED_SECONDS", "900"))
POSINV_HEALTH_STACK_AMBER_SECONDS = float(os.environ.get("POSINV_HEALTH_STACK_AMBER_SECONDS", "20"))
POSINV_HEALTH_STACK_RED_SECONDS = float(os.environ.get("POSINV_HEALTH_STACK_RED_SECONDS", "300"))
# Bad API tokens per client address and minute before 429 (posinv/api/throttling.py).
POSINV_AUTH_FAILURES_PER_MINUTE = int(os.environ.get("POSINV_AUTH_FAILURES_PER_MINUTE", "20"))
# Failed password logins (posinv/services/login_throttle.py): this many per
# username (any address) or per client address (any username) within the
# lockout time lock that username or address out for the lockout time.
POSINV_LOGIN_FAILURES_PER_USER = env_positive_int("POSINV_LOGIN_FAILURES_PER_USER", 5)
POSINV_LOGIN_FAILURES_PER_ADDRESS = env_positive_int("POSINV_LOGIN_FAILURES_PER_ADDRESS", 20)
POSINV_LOGIN_LOCKOUT_SECONDS = env_positive_int("POSINV_LOGIN_LOCKOUT_SECONDS", 900)
