"""Settings for the membership platform.

Everything has an embedded default that works on a fresh machine (SQLite in ``data/``, eager
Celery, media on local disk, email written to files). Production switches by environment
only: see the README's production section for the variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import csp.constants
import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.csp import origin_of
from config.env import env_bool, env_int, env_list, env_optional, env_str, secret_key, stripe_credential

# Lets the type-checker's generic classes (ModelAdmin[Offer], QuerySet[User]) work at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)  # a fresh checkout has none; SQLite needs it

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(debug=DEBUG)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The absolute address of this site, used in emails and in the URLs handed to Stripe.
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
SITE_NAME = env_str("SITE_NAME", "Community")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "accounts",
    "hubs",
    "memberships",
    "billing",
    "affiliates",
]

MIDDLEWARE = [
    "config.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the CSRF check and the views, which read the body; after authentication, which
    # it asks whether an upload comes from staff.
    "config.middleware.RequestLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Takes ?ref= visits to offer pages: records the click, sets the attribution cookie.
    "affiliates.referrals.ReferralMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
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
                "accounts.context_processors.site",
                "csp.context_processors.nonce",  # {{ CSP_NONCE }}: see Content Security Policy below
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
_database_url = env_optional("DATABASE_URL")
if _database_url:
    try:
        _default_db: dict[str, Any] = dict(
            dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
    _default_db["CONN_HEALTH_CHECKS"] = True
else:
    _default_db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        # Reusing connections matters even for SQLite: opening one (and its PRAGMAs) on every
        # request costs more than a simple page.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        "OPTIONS": {
            # IMMEDIATE transactions and a busy timeout keep concurrent writers (web, worker,
            # webhook deliveries) from failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        "CONN_HEALTH_CHECKS": True,
    }
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
# Give the cache its own Redis database (CACHE_URL): clearing a cache flushes its whole
# database, which must never be the Celery broker's.
CACHE_URL = env_optional("CACHE_URL") or REDIS_URL
CACHES: dict[str, dict[str, Any]] = {
    # Shared by every process: sessions live here, so a logout must reach every worker.
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    ),
    # Each process's own memory, for rendered fragments whose keys change with their content
    # or that live a few seconds only: a network round-trip would cost as much as rendering.
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 2000}},
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Sessions are read on every logged-in request: keep them in the cache, backed by the database
# (accounts/sessions.py: the database alone answers while the cache is down).
SESSION_ENGINE = "accounts.sessions"
# Every password check, the admin's login included, goes through the login rate limit. One
# backend only, so that login() never needs to be told which one.
AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:root"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
# Attempts one visitor may make per window (seconds), per address and per email address.
# Logins count wrong passwords per account instead: after "email" of them the account is
# locked for the addresses that were failing, after "email_all" for every address
# (accounts/ratelimit.py).
RATE_LIMITS: dict[str, dict[str, int]] = {
    "login": {"ip": 30, "email": 10, "email_all": 100, "window": 15 * 60},
    "login_link": {"ip": 20, "email": 5, "window": 60 * 60},
    "password_reset": {"ip": 20, "email": 5, "window": 60 * 60},
    "free_claim": {"ip": 30, "email": 5, "window": 60 * 60},
    "checkout_start": {"ip": 30, "email": 10, "window": 60 * 60},
    # Opening the billing portal (per buyer's email): each visit creates a Stripe session.
    "billing_portal": {"ip": 30, "email": 20, "window": 60 * 60},
    # A one-click purchase's page and its charge (per member): each reads or charges their card.
    "one_click": {"ip": 30, "email": 20, "window": 60 * 60},
}
# How many proxies (load balancers) stand in front of the web processes and append to
# X-Forwarded-For; 0 trusts only the connection's own address.
FORWARDED_PROXY_COUNT = env_int("FORWARDED_PROXY_COUNT", 0, minimum=0, maximum=5)
# How long a magic login link stays valid.
MAGIC_LINK_MAX_AGE = env_int("MAGIC_LINK_MAX_AGE", 60 * 60 * 24, minimum=60)
# The partner program (Customer Resell Rights): partners, referral links, the application fee
# on referred sales and its transfer to the partner. Off: no Become a Partner widget, no
# partner page, and a ``?ref=`` link attributes nothing, so no fee is taken from any sale.
AFFILIATES_ENABLED = env_bool("AFFILIATES_ENABLED", True)
# How long a referral link's attribution cookie lasts (the last link clicked wins).
AFFILIATE_COOKIE_DAYS = env_int("AFFILIATE_COOKIE_DAYS", 30, minimum=1, maximum=365)
# How long a commission is held before it is transferred to the partner (refunds and disputes
# usually come within it).
AFFILIATE_HOLD_DAYS = env_int("AFFILIATE_HOLD_DAYS", 14, minimum=0, maximum=120)
# How often the beat pays the commissions whose hold is over.
AFFILIATE_PAYOUT_INTERVAL = env_int("AFFILIATE_PAYOUT_INTERVAL", 600, minimum=30, maximum=24 * 60 * 60)

# How old the dashboard's cached figures may be (core/figures.py): a payment, refund, dispute
# or membership change forgets them at once; what no write announces (a paid period running
# out) shows within this many seconds.
FIGURES_CACHE_SECONDS = env_int("FIGURES_CACHE_SECONDS", 60, minimum=0, maximum=3600)

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request without it
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = env_str("MEDIA_URL", "/media/")
MEDIA_ROOT = DATA_DIR / "media"
AWS_STORAGE_BUCKET_NAME = env_optional("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    # Credentials come from the usual AWS_* variables or the instance role (boto3's chain).
    AWS_S3_REGION_NAME = env_optional("AWS_S3_REGION_NAME")
    AWS_S3_ENDPOINT_URL = env_optional("AWS_S3_ENDPOINT_URL")
    AWS_S3_CUSTOM_DOMAIN = env_optional("AWS_S3_CUSTOM_DOMAIN")
    AWS_DEFAULT_ACL = None
    AWS_S3_FILE_OVERWRITE = False
    _media_storage: dict[str, Any] = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve uploaded media from Django when it lives on local disk (the embedded default);
# production normally puts it on S3 instead.
SERVE_MEDIA = env_bool("SERVE_MEDIA", not AWS_STORAGE_BUCKET_NAME)

# --- Request limits -------------------------------------------------------------------------
# config.middleware.RequestLimitMiddleware answers 413 to a body whose Content-Length is over
# REQUEST_BODY_MAX_BYTES before anything reads it; staff image uploads (the offer editor and the
# hub editor, under REQUEST_BODY_UPLOAD_PATHS) may send up to REQUEST_BODY_MAX_BYTES_UPLOADS.
# A body without a Content-Length (chunked) is never read by Django at all.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024, minimum=64 * 1024)
REQUEST_BODY_MAX_BYTES_UPLOADS = env_int(
    "REQUEST_BODY_MAX_BYTES_UPLOADS", 12 * 1024 * 1024, minimum=REQUEST_BODY_MAX_BYTES
)
REQUEST_BODY_UPLOAD_PATHS = ("/dashboard/offers/", "/dashboard/community/")
# Django's own limits, behind the middleware: form fields (not files) held in memory, how many
# fields and files one request may carry, and the size above which an upload goes to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Error pages show a body Django refused to parse as empty instead of failing on it again.
DEFAULT_EXCEPTION_REPORTER = "config.errors.ExceptionReporter"

# --- Email ----------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Community <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = env_optional("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "emails"))

# --- Celery ---------------------------------------------------------------------------------
# Without a broker, tasks run in-process right after commit: the embedded default needs no
# Redis. With REDIS_URL set they go through Redis to a worker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
# The queue tasks are sent to, including tasks that tasks queue (a test worker has its own).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
# In-process tasks run inside the request that queued them (after its commit): a failing
# email must be logged, not turn a purchase that succeeded into an error page, and retrying at
# once, with no wait between tries, would only make that request slower.
CELERY_TASK_EAGER_PROPAGATES = False
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_TASK_ANNOTATIONS = {"*": {"max_retries": 0}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# When the broker connection drops, a running task finishes instead of being cancelled (the
# default until Celery 6): a Redis that restarts empty no longer holds its message, so a
# cancelled task would be lost, while one that finishes has done its work. If its ack is lost
# with the connection, a Redis that kept its data delivers it again after the visibility
# timeout, and tasks are idempotent.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# The timeouts, chosen together (seconds). With late acks a task stays unacknowledged in Redis
# from its delivery to the end of its run, and Redis delivers again any message left
# unacknowledged for the visibility timeout, whether its worker died or is merely slow. So:
# - CELERY_TASK_TIME_LIMIT bounds the longest task; the soft limit, a minute earlier (a quarter
#   of the limit under four minutes), lets it stop cleanly.
# - A healthy worker holds a message unacknowledged for at most the time limit plus the longest
#   wait before it starts: a retry waits for its countdown, up to TASK_RETRY_WAIT_MAX
#   (CELERY_RETRY_WAIT_MAX; ReliableTask's retry_backoff_max), and a prefetched message waits at
#   most one time limit behind a running task. BROKER_VISIBILITY_TIMEOUT must be above that
#   sum, or healthy tasks run twice; whatever it is, a task held by a worker that was killed
#   waits that long for another worker.
# - WEBHOOK_SWEEP_INTERVAL is much shorter, so webhooks do not wait for that: each sweep
#   re-queues the Stripe events stored but not processed two minutes after their last try (a
#   task lost with a killed worker or a broker that restarted empty, or never queued).
# - WEBHOOK_RECONCILE_INTERVAL is how late an event Stripe never delivered is found. Each run
#   looks back two days (billing.services.webhooks.RECONCILE_WINDOW), so a failed run is covered by the
#   next ones; at most 12 hours keeps several runs inside that window.
TASK_RETRY_WAIT_MAX = env_int("CELERY_RETRY_WAIT_MAX", 300, minimum=30, maximum=3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(60, CELERY_TASK_TIME_LIMIT // 4)
_LONGEST_HOLD = CELERY_TASK_TIME_LIMIT + max(TASK_RETRY_WAIT_MAX, CELERY_TASK_TIME_LIMIT)
BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=_LONGEST_HOLD + 1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
WEBHOOK_SWEEP_INTERVAL = env_int("WEBHOOK_SWEEP_INTERVAL", 120, minimum=30, maximum=BROKER_VISIBILITY_TIMEOUT // 2)
WEBHOOK_RECONCILE_INTERVAL = env_int("WEBHOOK_RECONCILE_INTERVAL", 900, minimum=60, maximum=12 * 60 * 60)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Stripe events stored but never processed (a lost task, a worker that died) are re-queued.
    "billing-sweep-webhook-events": {
        "task": "billing.tasks.sweep_webhook_events",
        "schedule": float(WEBHOOK_SWEEP_INTERVAL),
    },
    # Events Stripe has but never delivered are listed from its API and processed.
    "billing-reconcile-webhook-events": {
        "task": "billing.tasks.reconcile_webhook_events",
        "schedule": float(WEBHOOK_RECONCILE_INTERVAL),
    },
    # Commissions whose hold is over are transferred to their partners.
    "affiliates-pay-commissions": {
        "task": "affiliates.tasks.pay_commissions",
        "schedule": float(AFFILIATE_PAYOUT_INTERVAL),
    },
}
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = TIME_ZONE

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    # Behind a load balancer that terminates TLS and sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- Content Security Policy ----------------------------------------------------------------
# Every page runs only the scripts and styles this site serves, or those carrying the response's
# nonce ({{ CSP_NONCE }} in templates), and submits forms only here and to the Stripe-hosted
# pages it redirects to after a POST (Checkout, Connect OAuth, the billing portal);
# config.csp adds the offline sandbox (STRIPE_API_BASE) when set. An offer's custom code never
# runs under this policy: it is served alone with CUSTOM_CODE_CSP (memberships.views.custom_code)
# into a sandboxed frame, where it has an opaque origin and no session.
STRIPE_HOSTED_ORIGINS = ["https://checkout.stripe.com", "https://connect.stripe.com", "https://billing.stripe.com"]
# Uploaded images (thumbnails, covers, hub icons) may come from another host: S3 or a CDN.
_media_origins = [origin_of(MEDIA_URL)] if origin_of(MEDIA_URL) else []
if AWS_STORAGE_BUCKET_NAME:
    _media_origins.append(
        f"https://{AWS_S3_CUSTOM_DOMAIN}"
        if AWS_S3_CUSTOM_DOMAIN
        else origin_of(AWS_S3_ENDPOINT_URL or "") or "https://*.amazonaws.com"
    )
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [csp.constants.SELF],
        "script-src": [csp.constants.SELF, csp.constants.NONCE],
        # The 500 page renders without a request, so without a nonce: its one style is allowed by hash.
        "style-src": [csp.constants.SELF, csp.constants.NONCE, "'sha256-fQqjwF1w3QRa7v1VLnpi5jLeq+WHNdYbWCJub9HQorM='"],
        "img-src": [csp.constants.SELF, "data:", *_media_origins],
        "object-src": [csp.constants.NONE],
        "base-uri": [csp.constants.NONE],
        "frame-ancestors": [csp.constants.NONE],
        "form-action": [csp.constants.SELF, *STRIPE_HOSTED_ORIGINS],
    },
}
# The custom code's own document: any outside host for its scripts, images, requests and forms
# (pixels and widgets need them), inline code, and the sandbox that gives it an opaque origin, so
# it can neither read this site's pages and cookies nor send a request that carries a session.
# Only this site's checkout page may frame it, with the same sandbox on its <iframe>
# (memberships/checkout.html). Never add allow-same-origin or allow-top-navigation (this site's
# origin, the page around it), nor allow-popups: a window it opens is a top-level navigation, and
# browsers send SameSite=Lax session cookies with those.
CUSTOM_CODE_SANDBOX = "allow-scripts allow-forms"
CUSTOM_CODE_CSP: dict[str, Any] = {
    "sandbox": [CUSTOM_CODE_SANDBOX],
    "default-src": ["*", "data:", "blob:", csp.constants.UNSAFE_INLINE, csp.constants.UNSAFE_EVAL],
    "frame-ancestors": [csp.constants.SELF],
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Stripe ---------------------------------------------------------------------------------
# The deployment's own Stripe account is the Connect platform; creators and affiliates connect
# theirs through Connect OAuth. STRIPE_API_BASE points the official SDK at another server: the
# offline sandbox (stripe_sandbox/) in development and tests.
#
# Without DEBUG the sandbox's published keys are refused, and the secret key, the webhook
# signing secret and the Connect client id are required: with a published webhook secret
# anyone could sign events (say, a deauthorization that disconnects the creator's account).
# Two explicit exceptions, both in the README:
# - BUILD_STEP=1, for build steps that serve nothing (the Dockerfile's collectstatic); the WSGI
#   application and the Celery worker refuse to start with it;
# - STRIPE_SANDBOX_ALLOWED=1, for a production-like deployment that runs on the offline
#   sandbox (load and fault tests on one machine); it never talks to Stripe.
BUILD_STEP = env_bool("BUILD_STEP", False)
STRIPE_SANDBOX_ALLOWED = env_bool("STRIPE_SANDBOX_ALLOWED", False)
_stripe_sandbox_allowed = DEBUG or BUILD_STEP or STRIPE_SANDBOX_ALLOWED
SANDBOX_STRIPE_CREDENTIALS = {
    "STRIPE_SECRET_KEY": "sk_test_sandbox_platform",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_sandbox_platform",
    "STRIPE_CONNECT_CLIENT_ID": "ca_sandbox_platform",
    "STRIPE_WEBHOOK_SECRET": "whsec_sandbox_platform_secret",
}


def _stripe(name: str, *, required: bool = True) -> str:
    return stripe_credential(
        name, SANDBOX_STRIPE_CREDENTIALS[name], required=required, sandbox_allowed=_stripe_sandbox_allowed
    )


STRIPE_SECRET_KEY = _stripe("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = _stripe("STRIPE_PUBLISHABLE_KEY", required=False)  # no page uses it yet
STRIPE_CONNECT_CLIENT_ID = _stripe("STRIPE_CONNECT_CLIENT_ID")
STRIPE_WEBHOOK_SECRET = _stripe("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_optional("STRIPE_API_BASE")  # e.g. http://127.0.0.1:12111 for the sandbox
STRIPE_SANDBOX = bool(STRIPE_API_BASE)
# Every Stripe call checks that no database transaction is open (billing/stripe_gateway.py):
# on in development and the tests, where a mistake should fail loudly, off in production,
# where it should not turn a payment into an error page.
STRIPE_REFUSE_CALLS_IN_TRANSACTIONS = env_bool("STRIPE_REFUSE_CALLS_IN_TRANSACTIONS", DEBUG)
if STRIPE_SANDBOX and not DEBUG and not STRIPE_SANDBOX_ALLOWED:
    raise ImproperlyConfigured(
        "STRIPE_API_BASE points at the offline Stripe sandbox, which is a development and test "
        "double: production must talk to Stripe itself (unset STRIPE_API_BASE)."
    )
