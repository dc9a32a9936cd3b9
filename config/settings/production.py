"""Production: every secret and host comes from the environment; nothing falls back to a local default.

docker/.env.example lists every variable; `manage.py check --deploy` passes
with no warning (tests/test_deploy.py).
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, env

# base.py (and config/env.py) fall back to local servers and a localhost domain
# for development; here a missing value must stop the process instead.
REQUIRED = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "BASE_DOMAIN",
    "FRONTEND_URL",
    "EMAIL_HOST",
    "DEFAULT_FROM_EMAIL",
)
_missing = [name for name in REQUIRED if not env.str(name, default="").strip()]
if _missing:
    raise ImproperlyConfigured(
        f"Production settings need these environment variables: {', '.join(_missing)} (see docker/.env.example)."
    )

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import BASE_DOMAIN, REST_AUTH  # noqa: E402

DEBUG = False
# Platform staff hold every hospital's keys: a second factor is not optional for them here.
MFA_REQUIRED_FOR_PLATFORM_STAFF = env.bool("MFA_REQUIRED_FOR_PLATFORM_STAFF", default=True)
# The platform and every hospital subdomain, nothing else (DJANGO_ALLOWED_HOSTS is not read here).
ALLOWED_HOSTS = [BASE_DOMAIN, f".{BASE_DOMAIN}"]

# HTTPS: TLS ends at the proxy in front, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True  # every hospital is a subdomain
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
REST_AUTH["JWT_AUTH_SECURE"] = True
SSO_ALLOW_HTTP_ISSUERS = False  # an IdP is reached over https only

# Static files: collected into the image at build time (docker/Dockerfile) and
# served by whitenoise with hashed names, compressed, cached for ever.
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
