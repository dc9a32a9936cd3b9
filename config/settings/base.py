"""Settings shared by every environment. Per-deploy values come from `config.env.env`."""

from datetime import timedelta

from django_guid.integrations import CeleryIntegration

from config.env import BASE_DIR, broker_url, cache_url, database_url, env
from core.cors import frontend_origins

# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
# The platform answers on BASE_DOMAIN; hospital <slug> on <slug>.BASE_DOMAIN.
BASE_DOMAIN = env.str("BASE_DOMAIN", default="localhost")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[BASE_DOMAIN, f".{BASE_DOMAIN}"])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# APIs answer a missing slash with a JSON 404 rather than a redirect that
# drops the POST body (and raises in DEBUG).
APPEND_SLASH = False

# DATABASES
# ------------------------------------------------------------------------------
DATABASES = {"default": env.db_url_config(database_url())}
# django-tenants' backend, without re-issuing an unchanged search_path or a SELECT 1 per request.
DATABASES["default"]["ENGINE"] = "tenants.postgresql_backend"
# Persistent connections: a new connection per request costs more than the
# request itself. Health checks drop connections the server has closed.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# An unreachable server fails a request (and /readyz) in seconds, not after the
# OS's TCP timeout. libpq's minimum is 2; a connect_timeout in DATABASE_URL wins.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=2))
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

# TENANCY (django-tenants): each hospital is a PostgreSQL schema.
# ------------------------------------------------------------------------------
SHARED_APPS = [
    # Hospital, Domain (the routing table itself) and the spare-schema pool.
    # Listed before django_tenants so that its migrate_schemas (which also
    # migrates the spare schemas) is the one manage.py runs.
    "tenants",
    "django_tenants",  # before django.contrib.admin: its admin templates
    # contenttypes and auth live only in public so that content-type and
    # permission ids are one global id space; guardian's per-hospital rows
    # point at them (see ARCHITECTURE.md and ../shared/research/guardian-placement.md).
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",  # Django admin on the platform domain only
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    # Identity is global: one email is one account, linked to one hospital.
    # allauth's EmailAddress and the JWT blacklist reference the user, so they
    # live beside it (a tenant copy would be an empty, dangling user table).
    "accounts",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",  # imported unconditionally by dj_rest_auth.registration
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "dj_rest_auth",
    "dj_rest_auth.registration",
    "drf_spectacular",  # OpenAPI schema at /api/schema/ (core/openapi.py, @extend_schema on the views)
    "drf_spectacular_sidecar",  # Swagger UI's assets served by us (/api/docs/), no CDN
    "corsheaders",  # each hospital's frontend origin (core/cors.py)
    "django_guid",  # request ids in every log line, passed on to Celery tasks
    # Email delivery is a platform service: one outbox for every hospital.
    "emails",
    "tasks",  # the Celery app, created when Django starts (tasks/apps.py); no models
    # The platform's own audit trail (onboarding, suspension) lives in public.
    "audit",
]
TENANT_APPS = [
    # Object permissions are rows about one hospital's records, so they live
    # in that hospital's schema (FKs to the public user/permission tables).
    "guardian",
    "staff",  # who works here: staff members and their roles, departments, invitations
    "hospitals",  # patients, care teams, notes and the grants that open them
    "sso",  # the hospital's OpenID Connect IdP, identities linked to its accounts, sign-ins under way
    # ...and each hospital's trail in its own schema, with its records.
    "audit",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
TENANT_MODEL = "tenants.Hospital"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenants"
DEFAULT_NOT_FOUND_TENANT_VIEW = "core.api.tenant_not_found_view"
# SET search_path once per request and connection, not before every query
# (django-tenants forgets it on set_tenant, close and rollback).
TENANT_LIMIT_SET_CALLS = True
# Pre-migrated spare schemas kept ready, so onboarding renames one instead of
# migrating a new schema (tenants/provisioning.py). 0 turns the pool off.
SPARE_SCHEMA_POOL_SIZE = env.int("SPARE_SCHEMA_POOL_SIZE", default=5)

# MIDDLEWARE
# ------------------------------------------------------------------------------
MIDDLEWARE = [
    # First: /healthz and /readyz on any host, no tenant lookup, not logged (config/health.py).
    "config.health.HealthCheckMiddleware",
    "config.logs.RequestLogMiddleware",  # request id + one log line per request, unknown hosts included
    # Before the tenant middleware, so that its 403/404 answers carry CORS headers too (core/cors.py).
    "corsheaders.middleware.CorsMiddleware",
    # No NUL in query parameters (PostgreSQL text cannot hold one): a JSON 400 before any lookup.
    "config.querystring.QueryStringMiddleware",
    "tenants.middleware.HospitalTenantMiddleware",  # picks the schema
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, answered before sessions and auth run
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "audit.context.AuditOriginMiddleware",  # the client's address and agent, for the audit trail
    # A login refused by the attempt budget outside DRF (Django's admin): our 429 (accounts/security/attempts.py).
    "accounts.security.middleware.LoginRefusedMiddleware",
]

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
WSGI_APPLICATION = "config.wsgi.application"
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"

# AUTHENTICATION
# ------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# User.email is unique per hospital, not alone (a hospital is a realm); every lookup by email
# names the hospital too (accounts.security.backends, UserManager.get_by_natural_key for platform staff).
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTHENTICATION_BACKENDS = [
    # Email + password, only for users of the hospital the request is for; takes an attempt from the
    # login budget before any password is checked (accounts/security/attempts.py).
    "accounts.security.backends.HospitalEmailBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    # Argon2id at OWASP's minimum (m=7 MiB, t=5, p=1); older Argon2 hashes verify and are upgraded on login.
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 3)

# Login attempt budget (accounts/security/attempts.py, README "Abuse resistance"): reserved atomically in
# PostgreSQL (public schema) before any password is checked, shared by every worker, kept through a
# Redis outage. The address-wide spraying limit is THROTTLE_RATES["login_failures"].
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)  # one account from one address
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=3 * LOGIN_FAILURE_LIMIT)
LOGIN_LOCKOUT_COOLOFF = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))

# Multi-factor login (accounts/mfa/, README "Multi-factor login"). TOTP secrets are encrypted with the first
# of MFA_ENCRYPTION_KEYS (Fernet keys, comma-separated; the others still decrypt, for rotation); without
# any, a key derived from SECRET_KEY. Recovery codes are hashed with the same key.
MFA_ENCRYPTION_KEYS = env.list("MFA_ENCRYPTION_KEYS", default=[])
MFA_TOKEN_LIFETIME = timedelta(minutes=env.int("MFA_TOKEN_MINUTES", default=5))  # password step to code step
MFA_FAILURE_LIMIT = env.int("MFA_FAILURE_LIMIT", default=5)  # wrong codes per account, then LOGIN_LOCKOUT_COOLOFF
MFA_TOTP_TOLERANCE = 1  # time steps either side of now (clock drift, typing time)
MFA_RECOVERY_CODE_COUNT = 10
MFA_WEBAUTHN_LIMIT = 10  # passkeys and security keys per account
# Removing a factor, new recovery codes and a password change need a second factor given this recently.
MFA_STEP_UP_WINDOW = timedelta(minutes=env.int("MFA_STEP_UP_MINUTES", default=10))
# Platform staff must have a second factor (the API's enrolment-only session, the admin refuses them). On in
# production (config/settings/production.py).
MFA_REQUIRED_FOR_PLATFORM_STAFF = env.bool("MFA_REQUIRED_FOR_PLATFORM_STAFF", default=False)

# django-allauth: registration and email verification only; login goes
# through dj-rest-auth and our backend.
ACCOUNT_ADAPTER = "accounts.adapters.HospitalAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# A hospital is a realm (ARCHITECTURE.md "Accounts"): the same address may have an account, verified,
# at two hospitals. Uniqueness is per hospital, on accounts.User; allauth's platform-wide rule would
# contradict it. allauth's critical check that email login needs it is filtered out in accounts/apps.py:
# allauth's login is not used, and ours always looks an email up within one hospital.
ACCOUNT_UNIQUE_EMAIL = False
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env.str("ACCOUNT_DEFAULT_HTTP_PROTOCOL", default="https")

# django-guardian: an all-authenticated API has no anonymous user.
ANONYMOUS_USER_NAME = None

# DJANGO REST FRAMEWORK
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.HospitalJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsTenantMember"],
    # DRF's, with a nesting limit and finite numbers (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    # Reverse proxies whose X-Forwarded-For is trusted for the client address
    # (throttles and lockout); 0: REMOTE_ADDR, a client-sent header is ignored.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
}

# OpenAPI (drf-spectacular): one schema per URLconf, error shapes and limits in core/openapi.py.
SPECTACULAR_SETTINGS = {
    "TITLE": "Hospital platform API",
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PUBLIC": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.postprocess_schema"],
    "ENUM_NAME_OVERRIDES": {"StaffRoleEnum": "staff.models.StaffMember.Role"},
    # A view's description is its own docstring, never that of core.api.MethodPermissions.
    "GET_LIB_DOC_EXCLUDES": "core.openapi.lib_doc_excludes",
    # The docs page (/api/docs/) loads Swagger UI from our static files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from swagger.io's online validator: it would send it our schema's URL.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# dj-rest-auth + simplejwt: pure JWT, tokens bound to one hospital.
REST_AUTH = {
    "USE_JWT": True,
    "TOKEN_MODEL": None,
    "SESSION_LOGIN": False,
    "JWT_AUTH_COOKIE": "hospital-access",
    "JWT_AUTH_REFRESH_COOKIE": "hospital-refresh",
    # Sent only to the endpoints that consume it.
    "JWT_AUTH_REFRESH_COOKIE_PATH": "/accounts/",
    "JWT_AUTH_HTTPONLY": True,
    "JWT_AUTH_SECURE": env.bool("JWT_AUTH_SECURE", default=True),
    "JWT_AUTH_SAMESITE": "Lax",
    # Host-only cookies: hospital A's cookie is never sent to hospital B.
    "JWT_AUTH_COOKIE_DOMAIN": None,
    # Cookie-authenticated unsafe requests need the CSRF header: sibling
    # hospital subdomains are "same-site", so SameSite=Lax alone is not enough.
    "JWT_AUTH_COOKIE_USE_CSRF": True,
    "JWT_AUTH_RETURN_EXPIRATION": True,
    "OLD_PASSWORD_FIELD_ENABLED": True,
    # False would call update_session_auth_hash(), which creates a Django
    # session (and a sessionid cookie) on every password change.
    "LOGOUT_ON_PASSWORD_CHANGE": True,
    "JWT_TOKEN_CLAIMS_SERIALIZER": "accounts.serializers.HospitalTokenObtainPairSerializer",
    "LOGIN_SERIALIZER": "accounts.serializers.LoginSerializer",
    "USER_DETAILS_SERIALIZER": "accounts.serializers.UserDetailsSerializer",
    "REGISTER_SERIALIZER": "accounts.serializers.RegisterSerializer",
    "PASSWORD_RESET_SERIALIZER": "accounts.serializers.PasswordResetSerializer",
    "PASSWORD_CHANGE_SERIALIZER": "accounts.serializers.PasswordChangeSerializer",
    "PASSWORD_RESET_CONFIRM_SERIALIZER": "accounts.serializers.PasswordResetConfirmSerializer",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=10)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Access tokens carry a hash of the password hash: a password change ends them at once.
    "CHECK_REVOKE_TOKEN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# Refresh token reuse interval (accounts/security/tokens.py, README "Tokens"): a rotated-away refresh token
# presented once more within this time of its rotation, while its successor is still live, is answered with
# that successor (two tabs refreshing at once), not taken for theft. 0 turns the grace off.
REFRESH_TOKEN_REUSE_INTERVAL = timedelta(seconds=env.float("REFRESH_TOKEN_REUSE_SECONDS", default=10))

# EMAIL
# ------------------------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# Seconds an SMTP conversation may stall before the send counts as failed (and is retried).
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Hospital Platform <no-reply@localhost>")

# Where links in a hospital's emails point: its own frontend. "{slug}" and
# "{base_domain}" are filled in per hospital.
FRONTEND_URL = env.str("FRONTEND_URL", default="http://{slug}.{base_domain}:8000")

# Single sign-on through each hospital's own OpenID Connect IdP (sso/, README "Single sign-on").
# Fernet keys for the client secrets at rest, newest first (empty: one derived from SECRET_KEY).
SSO_SECRET_KEYS = env.list("SSO_SECRET_KEYS", default=[])
# Plain-http issuers: development and tests only (an admin-typed URL our servers fetch).
SSO_ALLOW_HTTP_ISSUERS = env.bool("SSO_ALLOW_HTTP_ISSUERS", default=False)
SSO_HTTP_TIMEOUT = env.float("SSO_HTTP_TIMEOUT", default=10.0)  # each request to an IdP
SSO_SIGN_IN_SECONDS = env.int("SSO_SIGN_IN_SECONDS", default=600)  # from the start to the callback
SSO_CLOCK_LEEWAY = env.int("SSO_CLOCK_LEEWAY", default=60)  # seconds of clock skew allowed on id_tokens

# Staff invitations: single-use links, valid this many days.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)

# Hospital frontends (FRONTEND_URL) may live on another origin than the API and
# call it with cookies. CORS lets each one read its own hospital's API only
# (core/cors.py). CSRF trusts every hospital frontend as one pattern
# (https://*.<frontend domain>): the line between hospitals is already drawn by
# CORS and by the CSRF token, which a page of another hospital cannot obtain.
CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]  # for the frontend's error reports and back-off
CSRF_TRUSTED_ORIGINS = [frontend_origins(FRONTEND_URL, BASE_DOMAIN), *env.list("CSRF_TRUSTED_ORIGINS", default=[])]
CSRF_FAILURE_VIEW = "core.api.csrf_failure_view"

# CELERY: every auth email goes out through a worker, from a persisted outbox.
# ------------------------------------------------------------------------------
CELERY_BROKER_URL = broker_url()
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task lost with its worker is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues a task must not hang on a dead broker: fail fast,
# the outbox sweep sends it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# Which queue each task goes to; the workers consuming them are in config/commands.py.
CELERY_TASK_ROUTES = {
    "emails.tasks.*": {"queue": "email"},
    "tenants.tasks.*": {"queue": "maintenance"},
    "accounts.tasks.*": {"queue": "maintenance"},
    "hospitals.tasks.*": {"queue": "maintenance"},
}
CELERY_BEAT_SCHEDULE = {
    "emails-outbox-sweep": {
        "task": "emails.tasks.outbox_sweep",
        "schedule": env.float("EMAIL_OUTBOX_SWEEP_SECONDS", default=30.0),
    },
    # Onboarding queues a refill itself; this catches refills lost with the broker.
    "tenants-spare-pool-refill": {
        "task": "tenants.tasks.spare_pool_refill_task",
        "schedule": 300.0,
    },
    # Break-glass access ends at its deadline whatever runs (the checks read it); this records the ends.
    "hospitals-break-glass-sweep": {"task": "hospitals.tasks.break_glass_sweep_task", "schedule": 300.0},
    "accounts-login-counters-purge": {"task": "accounts.tasks.login_counters_purge_task", "schedule": 3600.0},
    "accounts-sessions-purge": {"task": "accounts.tasks.sessions_purge_task", "schedule": 86400.0},
    "accounts-registrations-expired-purge": {
        "task": "accounts.tasks.registrations_expired_purge_task",
        "schedule": 86400.0,
    },
}
# Retries of a failed SMTP send: base * 2**attempt seconds, capped.
EMAIL_RETRY_BASE_SECONDS = env.float("EMAIL_RETRY_BASE_SECONDS", default=30.0)
EMAIL_RETRY_MAX_SECONDS = env.float("EMAIL_RETRY_MAX_SECONDS", default=3600.0)
# A queued email not sent after this long is queued again by the sweep
# (its message was lost with the broker or a worker).
EMAIL_REQUEUE_AFTER_SECONDS = env.float("EMAIL_REQUEUE_AFTER_SECONDS", default=120.0)
# How long a worker keeps trying to record an email the SMTP server took as sent, after losing its database
# connection (emails.services.email_sent_record_on_new_connection): past it, the sweep may send it again.
EMAIL_SENT_RECORD_PATIENCE_SECONDS = env.float("EMAIL_SENT_RECORD_PATIENCE_SECONDS", default=60.0)

# CACHE: keys carry the schema name, so hospitals never share entries.
# Redis (the broker's server, another db number): throttle counters must be
# shared by every web worker. Short timeouts: a dead cache must not hang requests.
# ------------------------------------------------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": cache_url(),
        "KEY_PREFIX": "cache",
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

# Rate limits of the endpoints that mail or hash without a login, and of failed
# logins (accounts/security/throttles.py): "<count>/<second|minute|hour|day>", per client
# address and hospital, except "email": per target address.
THROTTLE_RATES = {
    "registration": env.str("THROTTLE_REGISTRATION_RATE", default="20/hour"),
    "password_reset": env.str("THROTTLE_PASSWORD_RESET_RATE", default="20/hour"),
    "invitation_accept": env.str("THROTTLE_INVITATION_ACCEPT_RATE", default="20/hour"),
    "email": env.str("THROTTLE_EMAIL_RATE", default="5/hour"),
    # Failures only, across accounts (password spraying); generous, since a
    # hospital's staff may share one address (the address budget of accounts/security/attempts.py).
    "login_failures": env.str("THROTTLE_LOGIN_FAILURES_RATE", default="100/hour"),
    # Single sign-on starts (each writes a row until it is used or purged); generous: a hospital's staff
    # may sign in from one address at the start of a shift.
    "sso_start": env.str("THROTTLE_SSO_START_RATE", default="600/hour"),
}
# While the cache is unreachable each process counts on its own; it tries the cache again after this long.
THROTTLE_FALLBACK_RETRY_SECONDS = env.float("THROTTLE_FALLBACK_RETRY_SECONDS", default=5.0)

# REQUESTS
# ------------------------------------------------------------------------------
# An auth API takes small JSON bodies; anything larger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

# LOGGING: one JSON object per line on stdout, each with the request id (config/logs.py).
# ------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")  # or "text", for a terminal
# django-guid holds the request id and sends it along with every task queued meanwhile.
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "INTEGRATIONS": [CeleryIntegration()]}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId", "correlation_id_field": "request_id"},
        "redact": {"()": "config.logs.RedactDatabaseDetails"},  # no patient data from database errors
    },
    "formatters": {
        "json": {"()": "config.logs.JsonFormatter"},
        "text": {
            "()": "config.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"level": "INFO"},  # through root only: no second, plain-text handler in DEBUG
        # Our request line replaces runserver's and django.request's 4xx lines (5xx keep their traceback).
        "django.server": {"level": "CRITICAL"},
        "django.request": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},  # never SQL: its parameters are patient data
        # Our task line replaces Celery's "received" and "succeeded" lines (results may be data).
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "django_guid": {"level": "WARNING"},  # a line each time an id is set or cleared
    },
}
