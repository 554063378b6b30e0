"""Production: every secret and location comes from the environment; nothing has a default."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .env import env_bool, env_int, env_list, env_str

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters with at least 5 distinct ones.")
# Backups are signed with their own key, so that a restore on a new host (or after SECRET_KEY is
# rotated) still trusts them: the key derived from SECRET_KEY is for local use only.
STEELQC_BACKUP_KEY = env_str("STEELQC_BACKUP_KEY")
if len(STEELQC_BACKUP_KEY) < 32 or len(set(STEELQC_BACKUP_KEY)) < 5 or STEELQC_BACKUP_KEY == SECRET_KEY:
    raise ImproperlyConfigured("STEELQC_BACKUP_KEY must be at least 32 characters with at least 5 distinct ones, "
                               "and not SECRET_KEY.")
env_str("DATABASE_URL")  # required: base.py's SQLite default is for local use only
if not env_str("CELERY_BROKER_URL").startswith(("redis://", "rediss://", "amqp://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a redis:// or amqp:// URL in production.")
if not STEELQC_EVENTS_REDIS_URL.startswith(("redis://", "rediss://")):  # noqa: F405
    raise ImproperlyConfigured("STEELQC_EVENTS_REDIS_URL (Redis for waking ?wait= uploads) is required with an amqp:// broker.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required in production (comma-separated host names).")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The browser preload list is for public sites; a plant-internal host opts in with the variable above.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
