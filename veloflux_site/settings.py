"""VeloFlux settings: one module, driven by the environment (see .env.example).

A missing or invalid value stops start-up with ImproperlyConfigured naming it.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from veloflux_site.env import (
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_redis_url,
    env_str,
    is_loopback,
    load_dotenv,
    split_host_port,
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

# The address the web process listens on (the Procfile's --host). Debug pages show settings and
# source to whoever can reach them, so debug mode serves loopback only: refused here at start,
# and DebugLoopbackOnlyMiddleware refuses any request that arrives on another address anyway.
WEB_HOST = env_str("VF_WEB_HOST", "127.0.0.1")
if DEBUG and not is_loopback(WEB_HOST):
    raise ImproperlyConfigured(
        f"VF_WEB_HOST={WEB_HOST!r} is not a loopback address, and debug mode is on (VF_DEBUG, on by default when "
        "VF_ENV=development): its error pages would show settings to anyone. Set VF_ENV=production (and "
        "VF_SECRET_KEY), or listen on 127.0.0.1.")

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
# The proxies whose X-Forwarded-For is believed (empty: none). uvicorn gets the same list
# (--forwarded-allow-ips in the Procfile) and veloflux_site.api.client_ip applies the same rule.
TRUSTED_PROXIES = env_networks("VF_TRUSTED_PROXIES", [])
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

# --- Invitations and e-mail (Django's e-mail framework) ------------------------
# A person who has an account is invited, never added: the link goes by mail, valid this long, once.
INVITATION_TTL = env_duration("VF_INVITATION_TTL", "7d")
INVITATION_MAX_PENDING = env_int("VF_INVITATION_MAX_PENDING", 100, minimum=1, maximum=100_000)
INVITATION_RATE_PER_HOUR = env_int("VF_INVITATION_RATE_PER_HOUR", 50, minimum=1, maximum=100_000)
# Links in mails point here (never at the request's Host header, which the caller controls).
PUBLIC_URL = env_str("VF_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# "console" prints mails to the web process's log (development); "smtp" sends them.
EMAIL_BACKEND = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}[env_str("VF_EMAIL_BACKEND", "console" if VF_ENV == "development" else "smtp", choices=("smtp", "console"))]
EMAIL_HOST = env_str("VF_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("VF_EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("VF_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("VF_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("VF_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("VF_EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("VF_EMAIL_USE_TLS and VF_EMAIL_USE_SSL cannot both be true; choose one.")
EMAIL_TIMEOUT = env_duration("VF_EMAIL_TIMEOUT", "10s")
DEFAULT_FROM_EMAIL = env_str("VF_EMAIL_FROM", "VeloFlux <no-reply@veloflux.localhost>")

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
    "veloflux_site.api.middleware.DebugLoopbackOnlyMiddleware",
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
        "veloflux_site.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "veloflux_site.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "veloflux_site.api.schema.VeloFluxAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_PAGE_SIZE = env_int("VF_API_PAGE_SIZE", 50, minimum=1, maximum=1000)
API_MAX_PAGE_SIZE = env_int("VF_API_MAX_PAGE_SIZE", 500, minimum=1, maximum=10_000)
# Bounds on what one request may make the server read (veloflux_site/documents.py): body size (413 above it)
# and how deep JSON/YAML documents may nest (400 above it; YAML anchors and aliases are always refused).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("VF_API_MAX_BODY_BYTES", 2_621_440, minimum=1024, maximum=1 << 30)
API_MAX_DEPTH = env_int("VF_API_MAX_DEPTH", 32, minimum=4, maximum=200)
# Paths that take more than DATA_UPLOAD_MAX_MEMORY_SIZE (checked at the ASGI edge, veloflux_site/api/body_limit.py):
# a platform backup (balancer.backup.MAX_BACKUP_BYTES).
API_LARGE_BODY_PATHS = {"/api/backup/restore": 512 * 2**20}

SPECTACULAR_SETTINGS = {
    "TITLE": "VeloFlux API",
    "DESCRIPTION": "Multi-tenant, AI-assisted HTTP load balancer.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set used by several serializers' "type" fields (else: Type163Enum, and a warning).
    "ENUM_NAME_OVERRIDES": {"ObjectTypeEnum": ["pool", "backend", "route"], "LogTypeEnum": ["audit", "access"]},
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

# --- Domains (balancer/domains.py): who may route a host name ---------------------
# Every tenant gets <slug>.<VF_PLATFORM_DOMAIN>, verified from the start (empty: no platform names).
PLATFORM_DOMAIN = env_str("VF_PLATFORM_DOMAIN", "localhost").strip().lower().strip(".")
# Nameservers for the DNS TXT check, "ip:port,ip:port" (empty: the system resolver).
DNS_NAMESERVERS = env_list("VF_DNS_NAMESERVERS", [])
for _entry in DNS_NAMESERVERS:
    try:
        _address, _port = split_host_port(_entry, 53)
        ipaddress.ip_address(_address)
        if not 1 <= _port <= 65535:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(f"VF_DNS_NAMESERVERS entry {_entry!r} is invalid: write ip or ip:port, e.g. "
                                   "10.0.0.53:53 or [2001:db8::53]:53.") from None
DOMAIN_HTTP_PORT = env_int("VF_DOMAIN_HTTP_PORT", 80, minimum=1, maximum=65535)  # the HTTP token check's port
DOMAIN_CHECK_TIMEOUT = env_duration("VF_DOMAIN_CHECK_TIMEOUT", "3s")
DOMAIN_PENDING_TTL = env_duration("VF_DOMAIN_PENDING_TTL", "7d")

# --- Backend address policy (balancer/netpolicy.py) -------------------------------
# Private ranges (RFC 1918, CGNAT 100.64/10, ULA fc00::/7) a backend may use; empty = none. A network inside
# 127.0.0.0/8 or ::1 opens loopback too (bin/up's demo backends); platform listeners and link-local never open.
BACKEND_ALLOWED_NETWORKS = env_networks("VF_BACKEND_ALLOWED_NETWORKS", [], strict=False)
# More host:port the platform listens on (0.0.0.0:port or [::]:port = every local address), refused as backends.
PLATFORM_LISTENERS = env_list("VF_PLATFORM_LISTENERS", [])
for _listener in PLATFORM_LISTENERS:
    if not _listener.rpartition(":")[2].isdigit():
        raise ImproperlyConfigured(f"VF_PLATFORM_LISTENERS contains {_listener!r}: expected host:port entries such as "
                                   "0.0.0.0:5432,[::1]:9000.")
WEB_PORT = env_int("VF_WEB_PORT", 8000, minimum=1, maximum=65535)
BACKEND_RESOLVE_TIMEOUT = env_duration("VF_BACKEND_RESOLVE_TIMEOUT", "1s")
PROXY_MAX_HOPS = env_int("VF_PROXY_MAX_HOPS", 5, minimum=1, maximum=100)  # X-VeloFlux-Hops past this: 508
PROXY_MAX_UPSTREAM_CONNECTIONS_PER_TENANT = env_int("VF_PROXY_MAX_UPSTREAM_CONNECTIONS_PER_TENANT", 256,
                                                    minimum=1, maximum=1_000_000)

# --- Realtime hub: Centrifugo's client protocol and server API (compatibility mode) ---
REALTIME_TOKEN_SECRET = env_str("VF_REALTIME_TOKEN_SECRET", "")  # empty: the JWT signing key
REALTIME_TOKEN_TTL = env_duration("VF_REALTIME_TOKEN_TTL", "15m")  # longest connection/subscription token
REALTIME_PING_INTERVAL = max(1, int(env_duration("VF_REALTIME_PING_INTERVAL", "25s")))
REALTIME_EXPIRED_GRACE = env_duration("VF_REALTIME_EXPIRED_GRACE", "25s")  # a token past exp: refresh within this
# Centrifugo's HTTP API (``cent`` client) at /api/<method>: a platform credential; empty = disabled.
REALTIME_API_KEY = env_str("VF_REALTIME_API_KEY", "")
# Who a hub connection is: the hub imports no app, tenants provides it (veloflux_site/realtime/auth.py).
REALTIME_AUTH_PROVIDER = "tenants.channels_auth.HubAuth"
# The streams at /api/ws/<name>: each app registers its own (the hub names none).
REALTIME_STREAMS = {
    "backends": "balancer.streams.BackendsStream",
    "metrics": "balancer.streams.MetricsStream",
    "status": "veloflux_site.realtime.streams.StatusStream",
    "billing": "billing.streams.BillingStream",
    "health": "balancer.streams.HealthStream",
}
