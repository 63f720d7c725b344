"""VeloFlux settings: one module, driven by the environment (see .env.example).

A missing or invalid value stops start-up with ImproperlyConfigured naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from veloflux_site.env import (
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    load_dotenv,
)

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

VF_ENV = env_str("VF_ENV", "development", choices=("development", "test", "production"))
DEBUG = env_bool("VF_DEBUG", VF_ENV == "development")

_DEV_SECRET = "veloflux-insecure-development-key-do-not-use-in-production-0123456789"
SECRET_KEY = env_str("VF_SECRET_KEY", None if VF_ENV == "production" else _DEV_SECRET)
if SECRET_KEY is None:
    raise ImproperlyConfigured("Environment variable VF_SECRET_KEY is required when VF_ENV=production.")
if VF_ENV == "production" and (SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured("VF_SECRET_KEY must be a random string of at least 50 characters in production.")

ALLOWED_HOSTS = env_list("VF_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("VF_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "veloflux_site.api.errors.csrf_failure"  # the one error shape, not an HTML page
VERSION = "0.1.0"

# --- Redis: the only database -------------------------------------------------
REDIS_URL = env_redis_url("REDIS_URL", "redis://127.0.0.1:6390/0")
REDIS_SOCKET_TIMEOUT = env_duration("VF_REDIS_SOCKET_TIMEOUT", "2s")
REDIS_CONNECT_TIMEOUT = env_duration("VF_REDIS_CONNECT_TIMEOUT", "1s")
REDIS_MAX_CONNECTIONS = env_int("VF_REDIS_MAX_CONNECTIONS", 200, minimum=1, maximum=100_000)
DATABASES: dict = {}

# --- Auth ----------------------------------------------------------------------
JWT_SIGNING_KEY = env_str("VF_JWT_SIGNING_KEY", SECRET_KEY)
JWT_ACCESS_TTL = env_duration("VF_JWT_ACCESS_TTL", "15m")
JWT_REFRESH_TTL = env_duration("VF_JWT_REFRESH_TTL", "14d")
LOGIN_MAX_FAILURES = env_int("VF_LOGIN_MAX_FAILURES", 5, minimum=1, maximum=1000)
LOGIN_LOCKOUT = env_duration("VF_LOGIN_LOCKOUT", "15m")
LOGIN_RATE_PER_IP = env_int("VF_LOGIN_RATE_PER_IP", 30, minimum=1, maximum=100_000)
LOGIN_RATE_WINDOW = env_duration("VF_LOGIN_RATE_WINDOW", "1m")
TRUSTED_PROXIES = env_list("VF_TRUSTED_PROXIES", [])
AUDIT_STREAM_MAXLEN = env_int("VF_AUDIT_STREAM_MAXLEN", 100_000, minimum=100)
ACCESS_LOG_MAXLEN = env_int("VF_ACCESS_LOG_MAXLEN", 10_000, minimum=100)
# An error-rate alert opens when a tenant's 5xx share over the window passes the threshold.
ALERT_ERROR_RATE_THRESHOLD = env_float("VF_ALERT_ERROR_RATE_THRESHOLD", 0.05, minimum=0.0, maximum=1.0)
ALERT_ERROR_RATE_MIN_REQUESTS = env_int("VF_ALERT_ERROR_RATE_MIN_REQUESTS", 20, minimum=1)
ALERT_ERROR_RATE_WINDOW_MINUTES = env_int("VF_ALERT_ERROR_RATE_WINDOW_MINUTES", 1, minimum=1, maximum=60)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
# "md5" exists for the test suite only (hashing cost is not what tests measure); refused in production.
if env_str("VF_PASSWORD_HASHER", "pbkdf2", choices=("pbkdf2", "md5")) == "md5":
    if VF_ENV == "production":
        raise ImproperlyConfigured("VF_PASSWORD_HASHER=md5 is for tests only and refused when VF_ENV=production.")
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_MIN_LENGTH = env_int("VF_PASSWORD_MIN_LENGTH", 8, minimum=6, maximum=128)

# --- Django --------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "veloflux_site",
    "tenants",
    "balancer",
    "billing",
    "ai",
    "cluster",
]

MIDDLEWARE = [
    "veloflux_site.api.middleware.RequestIdMiddleware",
    "veloflux_site.api.middleware.StoreUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "tenants.middleware.SessionPrincipalMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "veloflux_site.urls"
ASGI_APPLICATION = "veloflux_site.asgi.application"
WSGI_APPLICATION = None
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "tenants.context_processors.principal",
            ],
        },
    },
]

SESSION_ENGINE = "tenants.sessions"
SESSION_COOKIE_AGE = int(env_duration("VF_SESSION_AGE", "12h"))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("VF_SECURE_COOKIES", VF_ENV == "production")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# Serve straight from the finders (app dirs, drf-spectacular-sidecar): no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- API -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.JWTAuthentication",
        "tenants.authentication.APIKeyAuthentication",
        "tenants.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsAuthenticatedPrincipal"],
    "UNAUTHENTICATED_USER": "tenants.principal.AnonymousPrincipal",
    "UNAUTHENTICATED_TOKEN": None,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "veloflux_site.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_PAGE_SIZE = env_int("VF_API_PAGE_SIZE", 50, minimum=1, maximum=1000)
API_MAX_PAGE_SIZE = env_int("VF_API_MAX_PAGE_SIZE", 500, minimum=1, maximum=10_000)

SPECTACULAR_SETTINGS = {
    "TITLE": "VeloFlux API",
    "DESCRIPTION": "Multi-tenant, AI-assisted HTTP load balancer.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Data plane (manage.py runproxy; each is also a command-line option) ---------
PROXY_HOST = env_str("VF_PROXY_HOST", "0.0.0.0")
PROXY_PORT = env_int("VF_PROXY_PORT", 8080, minimum=1, maximum=65535)
PROXY_HTTPS_PORT = env_int("VF_PROXY_HTTPS_PORT", 0, minimum=0, maximum=65535)  # 0 = no HTTPS listener
PROXY_ADMIN_PORT = env_int("VF_PROXY_ADMIN_PORT", 9180, minimum=0, maximum=65535)  # worker i: port + i
PROXY_WORKERS = env_int("VF_PROXY_WORKERS", os.cpu_count() or 1, minimum=1, maximum=256)
PROXY_HEADER_TIMEOUT = env_duration("VF_PROXY_HEADER_TIMEOUT", "10s")
PROXY_IDLE_TIMEOUT = env_duration("VF_PROXY_IDLE_TIMEOUT", "60s")
PROXY_CONNECT_TIMEOUT = env_duration("VF_PROXY_CONNECT_TIMEOUT", "3s")
PROXY_UPSTREAM_TIMEOUT = env_duration("VF_PROXY_UPSTREAM_TIMEOUT", "60s")
PROXY_MAX_HEADER_BYTES = env_int("VF_PROXY_MAX_HEADER_BYTES", 16384, minimum=1024, maximum=1_048_576)
PROXY_TRUSTED_PROXIES = ",".join(env_list("VF_PROXY_TRUSTED_PROXIES", []))
PROXY_EJECT_AFTER = env_int("VF_PROXY_EJECT_AFTER", 5, minimum=1, maximum=1000)
PROXY_EJECT_BASE = env_duration("VF_PROXY_EJECT_BASE", "5s")
PROXY_ACCESS_LOG = env_bool("VF_PROXY_ACCESS_LOG", False)

# --- Realtime and background work ----------------------------------------------
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "vf:chan:"},
    }
}
CELERY_BROKER_URL = env_redis_url("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = int(env_duration("VF_TASK_TIME_LIMIT", "60s"))
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": "vf:celery:"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("VF_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# --- Realtime hub: Centrifugo's client protocol and server API (compatibility mode) ---
REALTIME_TOKEN_SECRET = env_str("VF_REALTIME_TOKEN_SECRET", "")  # empty: the JWT signing key
REALTIME_TOKEN_TTL = env_duration("VF_REALTIME_TOKEN_TTL", "15m")  # longest connection/subscription token
REALTIME_PING_INTERVAL = max(1, int(env_duration("VF_REALTIME_PING_INTERVAL", "25s")))
REALTIME_EXPIRED_GRACE = env_duration("VF_REALTIME_EXPIRED_GRACE", "25s")  # a token past exp: refresh within this
# Centrifugo's HTTP API (``cent`` client) at /api/<method>: a platform credential; empty = disabled.
REALTIME_API_KEY = env_str("VF_REALTIME_API_KEY", "")
