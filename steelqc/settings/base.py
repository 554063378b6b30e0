"""Settings shared by every environment. Environment-specific modules import * from here.

Everything that differs between installations is read from environment variables through
``steelqc.settings.env``; the README's configuration table lists each one.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

from mlcore.anomaly_gate import AnomalyGateRule
from mlcore.gate import GateRule
from mlcore.readiness import ReadinessRule
from steelqc.observability import logging_config

from .env import env_bool, env_float, env_int, env_json_object, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("STEELQC_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # kept only for migration 0012, which hashed its keys into ApiToken
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "inspections",
]

MIDDLEWARE = [
    "steelqc.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "steelqc.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "inspections.access.audit.AuthAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "steelqc.urls"
WSGI_APPLICATION = "steelqc.wsgi.application"
ASGI_APPLICATION = "steelqc.asgi.application"

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
                "inspections.registry.pages.model_state.model_state",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'steelqc.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", DEFAULT_DATABASE_URL),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        # A reused connection is checked (one SELECT 1) before each request's first query, so a
        # dropped connection or a database restart fails no request. Kept by measurement: ~0.05
        # CPU-ms per request in the web process, ~0.03 in PostgreSQL (docs/benchmarks.md, profile-upload).
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# Sessions live in the database under a keyed hash of their key (inspections/access/sessions.py):
# a dump or backup holds no working login. django_session stays empty.
SESSION_ENGINE = "inspections.access.sessions"

# --- Login throttling (django-axes) ---------------------------------------------------------
# Failures are counted per (user name, address) pair: a plant terminal shared by a shift is not
# locked for everyone when one person mistypes, and nobody can lock a user out from elsewhere.
# A locked pair is refused even with the right password until the cool-off ends or someone
# unlocks it (the admin, `manage.py axes_reset_username`, or the Locked logins page).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("STEELQC_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STEELQC_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries while locked do not push the retry time back, so the time the page names stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "inspections.access.pages.logins.login_locked_out"
# Logins and failures are recorded once, in the auth audit trail (inspections.AuthEvent).
AXES_DISABLE_ACCESS_LOG = True
# Behind N reverse proxies the client address is the N-th from the right of X-Forwarded-For
# (0: the socket's address); lockouts and the audit trail use the same address.
STEELQC_TRUSTED_PROXY_COUNT = env_int("STEELQC_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "inspections.access.audit.client_address"

# --- Security headers (steelqc/security_headers.py) ------------------------------------------
# Strict by default: scripts, styles, images and requests only from this origin, no inline code,
# no plugins, never framed. Images may also be data: URLs (Swagger UI's icons).
STEELQC_CONTENT_SECURITY_POLICY = env_str(
    "STEELQC_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
)
STEELQC_PERMISSIONS_POLICY = env_str(
    "STEELQC_PERMISSIONS_POLICY",
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
    "accelerometer=(), gyroscope=(), magnetometer=()",
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# --- Static files and uploaded media --------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

STEELQC_STORAGE = env_str("STEELQC_STORAGE", "local")
if STEELQC_STORAGE == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STEELQC_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_STORAGE must be 'local' or 's3', got {STEELQC_STORAGE!r}.")

STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Backups (inspections/ops/services/backup.py) -------------------------------------------
# backup_installation signs its manifest with HMAC-SHA256 under this key, and restore_installation
# refuses a backup no key of this installation signed. Unset: a key derived from SECRET_KEY, so such
# backups restore only where the same SECRET_KEY is set. Keep it apart from the backups.
STEELQC_BACKUP_KEY = env_str("STEELQC_BACKUP_KEY", "")
# Earlier keys (comma-separated) a restore still accepts, until the backups they signed age out.
STEELQC_BACKUP_OLD_KEYS = env_list("STEELQC_BACKUP_OLD_KEYS", [])

# --- Uploads --------------------------------------------------------------------------------
STEELQC_MAX_UPLOAD_BYTES = env_int("STEELQC_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1)
STEELQC_MAX_IMAGE_PIXELS = env_int("STEELQC_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = STEELQC_MAX_UPLOAD_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Dataset splits -------------------------------------------------------------------------
STEELQC_SPLIT_SEED = env_int("STEELQC_SPLIT_SEED", 0)
STEELQC_SPLIT_FRACTIONS = {
    "train": env_float("STEELQC_SPLIT_TRAIN", 0.70),
    "val": env_float("STEELQC_SPLIT_VAL", 0.15),
    "test": env_float("STEELQC_SPLIT_TEST", 0.15),
}

# --- Machine learning -----------------------------------------------------------------------
STEELQC_BACKBONE = env_str("STEELQC_BACKBONE", "auto")
STEELQC_RESNET50_WEIGHTS = env_str("STEELQC_RESNET50_WEIGHTS", "")
STEELQC_CACHE_DIR = env_str("STEELQC_CACHE_DIR", str(Path.home() / ".cache" / "steelqc"))

# --- REST API -------------------------------------------------------------------------------
STEELQC_API_PAGE_SIZE = env_int("STEELQC_API_PAGE_SIZE", 50, minimum=1)
STEELQC_API_MAX_PAGE_SIZE = max(STEELQC_API_PAGE_SIZE, env_int("STEELQC_API_MAX_PAGE_SIZE", 200, minimum=1))
STEELQC_API_MAX_WAIT_SECONDS = env_int("STEELQC_API_MAX_WAIT_SECONDS", 30, minimum=0)
# Uploads waiting with ?wait= at once per web process; one more gets 503 too_many_waiters.
STEELQC_API_MAX_WAITERS = env_int("STEELQC_API_MAX_WAITERS", 16, minimum=1)
STEELQC_API_MAX_FILES_PER_REQUEST = env_int("STEELQC_API_MAX_FILES_PER_REQUEST", 20, minimum=1)
# Look-alike groups (inspections/services/similarity.py): images per POST reviews/bulk/, the most
# neighbours GET images/{id}/similar/ returns, and the likeness radius (0: the model's OOD threshold).
STEELQC_BULK_REVIEW_MAX_IMAGES = env_int("STEELQC_BULK_REVIEW_MAX_IMAGES", 1000, minimum=1)
STEELQC_SIMILAR_MAX_LIMIT = env_int("STEELQC_SIMILAR_MAX_LIMIT", 100, minimum=1)
STEELQC_NOVELTY_GROUP_RADIUS = env_float("STEELQC_NOVELTY_GROUP_RADIUS", 0.0)


def _throttle_rate(name: str, default: str) -> str:
    from django.core.exceptions import ImproperlyConfigured

    rate = env_str(name, default)
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"Environment variable {name} must look like 600/min, got {rate!r}.")
    return rate


# Generous by default: the limits protect the server from a runaway client, not ration normal use.
# Per user, except "anon": requests that end unauthenticated (no or refused credentials), per client
# address. Counted in Redis (STEELQC_EVENTS_REDIS_URL) for all web processes together when it is set.
STEELQC_API_THROTTLE_RATES = {
    "read": _throttle_rate("STEELQC_API_THROTTLE_READ", "6000/min"),
    "upload": _throttle_rate("STEELQC_API_THROTTLE_UPLOAD", "3000/min"),
    "write": _throttle_rate("STEELQC_API_THROTTLE_WRITE", "600/min"),
    "anon": _throttle_rate("STEELQC_API_THROTTLE_ANON", "120/min"),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inspections.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["inspections.api.permissions.ReadRole"],
    "DEFAULT_THROTTLE_CLASSES": ["inspections.api.throttling.ScopedThrottle"],
    "DEFAULT_THROTTLE_RATES": STEELQC_API_THROTTLE_RATES,
    "DEFAULT_PAGINATION_CLASS": "inspections.api.pagination.BoundedPageNumberPagination",
    "PAGE_SIZE": STEELQC_API_PAGE_SIZE,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "inspections.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "inspections.api.parsers.BoundedFormParser",
    ],
    "EXCEPTION_HANDLER": "inspections.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "steelqc API",
    "DESCRIPTION": (
        "Steel-surface inspection: images, predictions, reviews, model versions, training runs. "
        "Authenticate with `Authorization: Token KEY` (make one with `python manage.py create_api_token`) "
        "or a browser session. Every error body is `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["inspections.api.permissions.ReadRole"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "inspections.models.ImageStatus",
        "ModelVersionStatusEnum": "inspections.models.ModelVersionStatus",
        "TrainingRunStatusEnum": "inspections.models.TrainingRunStatus",
        "SplitEnum": "inspections.models.Split",
    },
    # Swagger UI's JavaScript and CSS come from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: no broker server needed for `make run`,
# and work still happens in a separate worker process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)}
# Waiting uploads (?wait=) are woken through this Redis's pub/sub (inspections/prediction_events.py);
# by default the broker's. Empty (the embedded filesystem broker): waiting polls the database slowly.
STEELQC_EVENTS_REDIS_URL = env_str(
    "STEELQC_EVENTS_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "inference"
CELERY_TASK_QUEUES = (
    Queue("inference", Exchange("inference"), routing_key="inference"),
    Queue("training", Exchange("training"), routing_key="training"),
    Queue("line", Exchange("line"), routing_key="line"),
)
CELERY_TASK_ROUTES = {
    "worker.tasks.inference.*": {"queue": "inference", "routing_key": "inference"},
    "worker.tasks.training.*": {"queue": "training", "routing_key": "training"},
    "worker.tasks.classify.*": {"queue": "line", "routing_key": "line"},
}
CELERY_IMPORTS = (
    "worker.tasks.health", "worker.tasks.inference", "worker.tasks.training", "worker.tasks.events",
    "worker.tasks.drift", "worker.tasks.classify", "worker.tasks.retention",
    "worker.tasks.line", "worker.tasks.access",
)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Time limits per task family (seconds); applied in worker/tasks/* and asserted by a test.
STEELQC_INFERENCE_SOFT_TIME_LIMIT = env_int("STEELQC_INFERENCE_SOFT_TIME_LIMIT", 120, minimum=1)
STEELQC_INFERENCE_TIME_LIMIT = env_int("STEELQC_INFERENCE_TIME_LIMIT", 180, minimum=1)
STEELQC_TRAINING_SOFT_TIME_LIMIT = env_int("STEELQC_TRAINING_SOFT_TIME_LIMIT", 4 * 3600, minimum=1)
STEELQC_TRAINING_TIME_LIMIT = env_int("STEELQC_TRAINING_TIME_LIMIT", 4 * 3600 + 300, minimum=1)

# Training parameters every run starts from — page, API, `train_model` and continuous learning —
# as a JSON object of the API's training parameters (e.g. {"input_size": 224, "head_epochs": 80});
# a run's own parameters win. Checked at start-up (`manage.py check`, inspections.E001).
STEELQC_TRAINING_DEFAULTS = env_json_object("STEELQC_TRAINING_DEFAULTS", {})

# Images per forward pass a worker takes at most when several are waiting.
STEELQC_INFERENCE_BATCH_SIZE = env_int("STEELQC_INFERENCE_BATCH_SIZE", 32, minimum=1)
# The sweeper re-queues images still pending after this many seconds.
STEELQC_PENDING_REQUEUE_AFTER_S = env_int("STEELQC_PENDING_REQUEUE_AFTER_S", 120, minimum=1)
STEELQC_SWEEP_INTERVAL_S = env_int("STEELQC_SWEEP_INTERVAL_S", 60, minimum=5)
# A JSON POST announcing each promotion goes here (empty: none); retried with back-off.
STEELQC_PROMOTION_WEBHOOK_URL = env_str("STEELQC_PROMOTION_WEBHOOK_URL", "")
if STEELQC_PROMOTION_WEBHOOK_URL and not STEELQC_PROMOTION_WEBHOOK_URL.startswith(("https://", "http://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_PROMOTION_WEBHOOK_URL must be an http:// or https:// URL.")
STEELQC_PROMOTION_WEBHOOK_TIMEOUT_S = env_int("STEELQC_PROMOTION_WEBHOOK_TIMEOUT_S", 5, minimum=1)
# Continuous learning: a run starts only when this many images got a human label since the last
# successful run; the check runs every STEELQC_RETRAIN_CHECK_INTERVAL_S (editable in the admin).
STEELQC_RETRAIN_MIN_NEW_LABELS = env_int("STEELQC_RETRAIN_MIN_NEW_LABELS", 50, minimum=1)
# ... and an active anomaly model's successor when this many images got a human no_defect label since
# the last successful anomaly run (its run's parameters again).
STEELQC_RETRAIN_MIN_NEW_GOOD_LABELS = env_int("STEELQC_RETRAIN_MIN_NEW_GOOD_LABELS", 100, minimum=1)
STEELQC_RETRAIN_CHECK_INTERVAL_S = env_int("STEELQC_RETRAIN_CHECK_INTERVAL_S", 3600, minimum=10)
# A running run whose worker has not reported for this long is marked failed.
STEELQC_TRAINING_STALE_AFTER_S = env_int("STEELQC_TRAINING_STALE_AFTER_S", 900, minimum=30)
# Class readiness (mlcore.readiness.ReadinessRule holds the defaults): a class is trained only once it
# has this many training and test images; until then it is collecting and kept out of training runs.
_READINESS_DEFAULTS = ReadinessRule()
STEELQC_CLASS_MIN_TRAIN_IMAGES = env_int("STEELQC_CLASS_MIN_TRAIN_IMAGES", _READINESS_DEFAULTS.min_train_images,
                                         minimum=1)
STEELQC_CLASS_MIN_TEST_IMAGES = env_int("STEELQC_CLASS_MIN_TEST_IMAGES", _READINESS_DEFAULTS.min_test_images,
                                        minimum=1)
try:
    ReadinessRule(min_train_images=STEELQC_CLASS_MIN_TRAIN_IMAGES, min_test_images=STEELQC_CLASS_MIN_TEST_IMAGES,
                  fractions=STEELQC_SPLIT_FRACTIONS)
except ValueError as error:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_CLASS_MIN_*: {error}") from error
# Promotion gate (mlcore.gate.GateRule says what each value means; its defaults are these
# settings' defaults): STEELQC_GATE_<FIELD> for every field of the rule, checked at start-up.
_GATE_DEFAULTS = GateRule()
STEELQC_GATE_ALPHA = env_float("STEELQC_GATE_ALPHA", _GATE_DEFAULTS.alpha)
STEELQC_GATE_CLASS_ALPHA = env_float("STEELQC_GATE_CLASS_ALPHA", _GATE_DEFAULTS.class_alpha)
STEELQC_GATE_PRACTICAL_MARGIN = env_float("STEELQC_GATE_PRACTICAL_MARGIN", _GATE_DEFAULTS.practical_margin)
STEELQC_GATE_CLASS_PRACTICAL_MARGIN = env_float("STEELQC_GATE_CLASS_PRACTICAL_MARGIN",
                                                _GATE_DEFAULTS.class_practical_margin)
STEELQC_GATE_RECALL_FLOOR = env_float("STEELQC_GATE_RECALL_FLOOR", _GATE_DEFAULTS.recall_floor)
STEELQC_GATE_MAX_RECALL_DROP = env_float("STEELQC_GATE_MAX_RECALL_DROP", _GATE_DEFAULTS.max_recall_drop)
STEELQC_GATE_MAX_RECALL_DROP_IMAGES = env_int("STEELQC_GATE_MAX_RECALL_DROP_IMAGES",
                                              _GATE_DEFAULTS.max_recall_drop_images, minimum=0)
STEELQC_GATE_MIN_TEST_IMAGES = env_int("STEELQC_GATE_MIN_TEST_IMAGES", _GATE_DEFAULTS.min_test_images, minimum=1)
STEELQC_GATE_MIN_CLASS_TEST_IMAGES = env_int("STEELQC_GATE_MIN_CLASS_TEST_IMAGES",
                                             _GATE_DEFAULTS.min_class_test_images, minimum=0)
STEELQC_GATE_MAP50_TOLERANCE = env_float("STEELQC_GATE_MAP50_TOLERANCE", _GATE_DEFAULTS.map50_tolerance)
try:
    GateRule(**{name: globals()[f"STEELQC_GATE_{name.upper()}"] for name in GateRule.__dataclass_fields__})
except ValueError as error:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_GATE_*: {error}") from error
# The anomaly models' gate (mlcore.anomaly_gate.AnomalyGateRule; its defaults are these settings'
# defaults): STEELQC_ANOMALY_GATE_<FIELD> for every field of the rule, checked at start-up.
_ANOMALY_GATE_DEFAULTS = AnomalyGateRule()
STEELQC_ANOMALY_GATE_ALPHA = env_float("STEELQC_ANOMALY_GATE_ALPHA", _ANOMALY_GATE_DEFAULTS.alpha)
STEELQC_ANOMALY_GATE_FALSE_ALARM_MARGIN = env_float("STEELQC_ANOMALY_GATE_FALSE_ALARM_MARGIN",
                                                    _ANOMALY_GATE_DEFAULTS.false_alarm_margin)
STEELQC_ANOMALY_GATE_MISS_MARGIN = env_float("STEELQC_ANOMALY_GATE_MISS_MARGIN", _ANOMALY_GATE_DEFAULTS.miss_margin)
STEELQC_ANOMALY_GATE_AUROC_TOLERANCE = env_float("STEELQC_ANOMALY_GATE_AUROC_TOLERANCE",
                                                 _ANOMALY_GATE_DEFAULTS.auroc_tolerance)
STEELQC_ANOMALY_GATE_MIN_GOOD_IMAGES = env_int("STEELQC_ANOMALY_GATE_MIN_GOOD_IMAGES",
                                               _ANOMALY_GATE_DEFAULTS.min_good_images, minimum=1)
STEELQC_ANOMALY_GATE_MIN_DEFECT_IMAGES = env_int("STEELQC_ANOMALY_GATE_MIN_DEFECT_IMAGES",
                                                 _ANOMALY_GATE_DEFAULTS.min_defect_images, minimum=1)
STEELQC_ANOMALY_GATE_MAX_FALSE_ALARM_RATE = env_float("STEELQC_ANOMALY_GATE_MAX_FALSE_ALARM_RATE",
                                                      _ANOMALY_GATE_DEFAULTS.max_false_alarm_rate)
STEELQC_ANOMALY_GATE_AUROC_FLOOR = env_float("STEELQC_ANOMALY_GATE_AUROC_FLOOR", _ANOMALY_GATE_DEFAULTS.auroc_floor)
try:
    AnomalyGateRule(**{name: globals()[f"STEELQC_ANOMALY_GATE_{name.upper()}"]
                       for name in AnomalyGateRule.__dataclass_fields__})
except ValueError as error:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_ANOMALY_GATE_*: {error}") from error
# Drift: a source is in drift alert while the share of its images flagged foreign by the active
# model over the last STEELQC_DRIFT_WINDOW_HOURS is above STEELQC_DRIFT_FOREIGN_SHARE (with at least
# STEELQC_DRIFT_MIN_IMAGES images); checked every STEELQC_DRIFT_CHECK_INTERVAL_S, events go to the
# promotion webhook URL.
STEELQC_DRIFT_FOREIGN_SHARE = env_float("STEELQC_DRIFT_FOREIGN_SHARE", 0.2)
if not 0 < STEELQC_DRIFT_FOREIGN_SHARE < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_DRIFT_FOREIGN_SHARE must be a share between 0 and 1, e.g. 0.2.")
STEELQC_DRIFT_WINDOW_HOURS = env_int("STEELQC_DRIFT_WINDOW_HOURS", 24, minimum=1)
STEELQC_DRIFT_MIN_IMAGES = env_int("STEELQC_DRIFT_MIN_IMAGES", 20, minimum=1)
STEELQC_DRIFT_CHECK_INTERVAL_S = env_int("STEELQC_DRIFT_CHECK_INTERVAL_S", 900, minimum=10)
# Line retention (classify/): the default policy for sources without their own RetentionPolicy.
# Flagged images are always kept; of the confidently accepted ones this share is sampled, at most
# so many per source per minute and per day (counted in Redis, STEELQC_EVENTS_REDIS_URL).
STEELQC_RETENTION_SAMPLE_RATE = env_float("STEELQC_RETENTION_SAMPLE_RATE", 0.01)
if not 0 <= STEELQC_RETENTION_SAMPLE_RATE <= 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_RETENTION_SAMPLE_RATE must be a share between 0 and 1, e.g. 0.01.")
STEELQC_RETENTION_MAX_PER_MINUTE = env_int("STEELQC_RETENTION_MAX_PER_MINUTE", 60, minimum=0)
STEELQC_RETENTION_MAX_PER_DAY = env_int("STEELQC_RETENTION_MAX_PER_DAY", 5000, minimum=0)
# Retention sweep (periodic job apply-retention, command apply_retention): a new policy keeps an image
# nobody needs (not labelled, reviewed, boxed by a person, snapshotted, split or queued for review)
# this many days, then deletes row and file; "forever" keeps them. Each run deletes at most
# STEELQC_RETENTION_SWEEP_MAX_IMAGES, in transactions of STEELQC_RETENTION_SWEEP_BATCH images.
# Deleting is opt-in: an upgrade never starts removing images a plant had kept until now.
_keep_days = env_str("STEELQC_RETENTION_KEEP_DAYS", "forever").strip().lower()
if _keep_days == "forever":
    STEELQC_RETENTION_KEEP_DAYS = None
elif _keep_days.isdigit() and int(_keep_days) >= 1:
    STEELQC_RETENTION_KEEP_DAYS = int(_keep_days)
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_RETENTION_KEEP_DAYS must be a whole number of days >= 1 or 'forever', "
                               f"got {_keep_days!r}.")
STEELQC_RETENTION_SWEEP_INTERVAL_S = env_int("STEELQC_RETENTION_SWEEP_INTERVAL_S", 3600, minimum=60)
# Periodic job clear-expired-sessions: expired login sessions are deleted this often.
STEELQC_SESSION_SWEEP_INTERVAL_S = env_int("STEELQC_SESSION_SWEEP_INTERVAL_S", 86400, minimum=60)
STEELQC_RETENTION_SWEEP_BATCH = env_int("STEELQC_RETENTION_SWEEP_BATCH", 500, minimum=1)
STEELQC_RETENTION_SWEEP_MAX_IMAGES = env_int("STEELQC_RETENTION_SWEEP_MAX_IMAGES", 50000, minimum=1)
# classify/ waits this long by default (?timeout=, at most STEELQC_CLASSIFY_MAX_TIMEOUT_S) for its answer.
STEELQC_CLASSIFY_DEFAULT_TIMEOUT_S = env_int("STEELQC_CLASSIFY_DEFAULT_TIMEOUT_S", 10, minimum=1)
STEELQC_CLASSIFY_MAX_TIMEOUT_S = env_int("STEELQC_CLASSIFY_MAX_TIMEOUT_S", 30, minimum=1)
# How long a classify/ Idempotency-Key (and the answer stored under it) is remembered.
STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S = env_int("STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S", 86400, minimum=60)
# Line counts (LineMinute): minutes older than STEELQC_LINE_MINUTES_KEEP_DAYS are merged into hours,
# hours older than STEELQC_LINE_HOURS_KEEP_DAYS into days (kept); the roll-up job runs every
# STEELQC_LINE_ROLLUP_INTERVAL_S.
STEELQC_LINE_MINUTES_KEEP_DAYS = env_int("STEELQC_LINE_MINUTES_KEEP_DAYS", 3, minimum=1)
STEELQC_LINE_HOURS_KEEP_DAYS = env_int("STEELQC_LINE_HOURS_KEEP_DAYS", 90, minimum=1)
if STEELQC_LINE_HOURS_KEEP_DAYS < STEELQC_LINE_MINUTES_KEEP_DAYS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_LINE_HOURS_KEEP_DAYS must be at least STEELQC_LINE_MINUTES_KEEP_DAYS "
                               "(hours are made from minutes).")
STEELQC_LINE_ROLLUP_INTERVAL_S = env_int("STEELQC_LINE_ROLLUP_INTERVAL_S", 3600, minimum=60)

# --- The line bridge (`manage.py line_bridge`: camera folders in, MQTT and OPC UA out) ----------
# Watched folders, "SOURCE=DIR,SOURCE=DIR" (`--folder SOURCE=DIR` overrides); a file is taken once
# its size and time stayed the same for STEELQC_BRIDGE_SETTLE_S (0: at first sight, for writers that
# rename a finished temporary file into place), looked for every STEELQC_BRIDGE_POLL_S.
STEELQC_BRIDGE_FOLDERS = env_list("STEELQC_BRIDGE_FOLDERS", [])
STEELQC_BRIDGE_POLL_S = env_float("STEELQC_BRIDGE_POLL_S", 0.5)
STEELQC_BRIDGE_SETTLE_S = env_float("STEELQC_BRIDGE_SETTLE_S", 1.0)
STEELQC_BRIDGE_BATCH = env_int("STEELQC_BRIDGE_BATCH", 8, minimum=1)
STEELQC_BRIDGE_TIMEOUT_S = env_int("STEELQC_BRIDGE_TIMEOUT_S", 30, minimum=1)
STEELQC_BRIDGE_KEEP_DAYS = env_int("STEELQC_BRIDGE_KEEP_DAYS", 7, minimum=2)
# MQTT: mqtt://user:pass@host:port (mqtts:// for TLS, checked against STEELQC_MQTT_CA_FILE or the
# system's CAs); empty: no MQTT. Results wait in a persistent outbox of at most
# STEELQC_MQTT_QUEUE_LIMIT messages while the broker is away.
STEELQC_MQTT_URL = env_str("STEELQC_MQTT_URL", "")
if STEELQC_MQTT_URL and not STEELQC_MQTT_URL.startswith(("mqtt://", "mqtts://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_MQTT_URL must be mqtt://[user:password@]host[:port] or mqtts://..., "
                               "or empty.")
STEELQC_MQTT_CLIENT_ID = env_str("STEELQC_MQTT_CLIENT_ID", "steelqc-line-bridge")
STEELQC_MQTT_CA_FILE = env_str("STEELQC_MQTT_CA_FILE", "")
STEELQC_MQTT_QUEUE_LIMIT = env_int("STEELQC_MQTT_QUEUE_LIMIT", 100000, minimum=100)
STEELQC_MQTT_FRAME_SOURCES = env_list("STEELQC_MQTT_FRAME_SOURCES", [])
# OPC UA: the server's endpoint (e.g. opc.tcp://0.0.0.0:4840/steelqc/); empty: no server. Anonymous
# clients only with STEELQC_OPCUA_ALLOW_ANONYMOUS; otherwise the user name and password below.
STEELQC_OPCUA_ENDPOINT = env_str("STEELQC_OPCUA_ENDPOINT", "")
if STEELQC_OPCUA_ENDPOINT and not STEELQC_OPCUA_ENDPOINT.startswith("opc.tcp://"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("STEELQC_OPCUA_ENDPOINT must be an opc.tcp:// URL, or empty.")
STEELQC_OPCUA_USERNAME = env_str("STEELQC_OPCUA_USERNAME", "")
STEELQC_OPCUA_PASSWORD = env_str("STEELQC_OPCUA_PASSWORD", "")
STEELQC_OPCUA_ALLOW_ANONYMOUS = env_bool("STEELQC_OPCUA_ALLOW_ANONYMOUS", False)
STEELQC_OPCUA_CERTIFICATE = env_str("STEELQC_OPCUA_CERTIFICATE", "")
STEELQC_OPCUA_PRIVATE_KEY = env_str("STEELQC_OPCUA_PRIVATE_KEY", "")
# Periodic jobs live in the database (django-celery-beat), so an admin can change their interval
# in the admin and it stays changed; `manage.py ensure_periodic_tasks` creates missing ones with
# the intervals above (see inspections/services/schedules.py).
CELERY_BEAT_SCHEDULE: dict = {}

# --- Logging --------------------------------------------------------------------------------
# Every line carries the request id (or the id of the request that queued the task); `json`
# writes one JSON object per line for log collectors.
STEELQC_LOG_FORMAT = env_str("STEELQC_LOG_FORMAT", "plain")
if STEELQC_LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"STEELQC_LOG_FORMAT must be 'plain' or 'json', got {STEELQC_LOG_FORMAT!r}.")
LOGGING = logging_config(log_format=STEELQC_LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))

# --- Health check ---------------------------------------------------------------------------
# /healthz gives each check (database, broker, storage) at most this long.
STEELQC_HEALTH_TIMEOUT_S = env_float("STEELQC_HEALTH_TIMEOUT_S", 2.0)
