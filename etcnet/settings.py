"""etcnet settings: one module, driven by the environment.

Every value that differs between a demo, a small outlet and a provincial center
comes from an environment variable read through the typed helpers below, which
fail loudly on a malformed value instead of guessing (healthchecks does the same).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets typed generics such as `admin.ModelAdmin[Outlet]` work at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate limit as "count/seconds" (e.g. "5/3600"); a count of 0 turns it off."""
    raw = os.environ.get(name) or default
    count, _, seconds = raw.partition("/")
    try:
        rate = int(count), int(seconds)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate (use count/seconds)") from None
    if rate[0] < 0 or rate[1] < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: count >= 0 and seconds >= 1")
    return rate


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Where the embedded deployment keeps its state (SQLite file, media, secret key).
DATA_DIR = Path(env_str("ETCNET_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)


def _private_dir(path: Path) -> None:
    """A folder of ours for personal data, created owner-only (0700)."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    # The embedded default (a demo or a small outlet) keeps a generated key beside
    # its database, so sessions survive restarts without a secret in the repository.
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    _private_dir(DATA_DIR)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "axes",
    "etcnet.core",
    # The center's clock against its time source (北斗时钟同步, docs/clock.md).
    "etcnet.clock",
    "etcnet.issuance",
    "etcnet.cards",
    "etcnet.lists",
    "etcnet.network",
    "etcnet.tolling",
    "etcnet.plates",
    "etcnet.clearing",
    "etcnet.exchange",
    # The demo data (`etcnet load_demo`): above every app, used by none.
    "etcnet.demo",
    # Image captchas (验证码) of plate pre-selection: registration and 验证.
    "captcha",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "etcnet.core.middleware.RequestIdMiddleware",
    "etcnet.core.middleware.DomainErrorMiddleware",
    # Axes must come last: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "etcnet.urls"
WSGI_APPLICATION = "etcnet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "etcnet.core.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'etcnet.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}


def _private_sqlite_file(name: str) -> None:
    """The SQLite file holds personal data: owner-only (0600) before Django opens
    it, like the key files (SQLite creates the -wal and -shm files with the
    database file's permissions, whatever the umask); a new DATA_DIR is 0700."""
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    _private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.exists():
            companion.chmod(0o600)


if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _private_dir(DATA_DIR)
    _private_sqlite_file(str(DATABASES["default"]["NAME"]))
    # WAL lets readers run beside the one writer; IMMEDIATE makes a write
    # transaction take its lock up front instead of failing half-way.
    # Tests use a file too (not the in-memory shared cache, which fails a
    # second writer at once instead of letting it wait like the real file does).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-etcnet.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Internet users of plate pre-selection log in with their ID or mobile number.
    "etcnet.plates.auth.PlateAccountBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed logins: after AXES_FAILURE_LIMIT failures for one username (from any
# address) or from one address (for any username), that username or address is
# locked out for AXES_COOLOFF_MINUTES — a password guesser cannot spread its
# tries over many addresses, nor over many usernames.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The client's address: REMOTE_ADDR, unless the center runs behind our own
# reverse proxies: ETCNET_TRUSTED_PROXY_HEADER names the header they set (e.g.
# X-Forwarded-For) and ETCNET_TRUSTED_PROXY_COUNT how many there are. Without
# it a client's X-Forwarded-For is ignored (it could be spoofed).
ETCNET_TRUSTED_PROXY_HEADER = env_str("ETCNET_TRUSTED_PROXY_HEADER", "")
ETCNET_TRUSTED_PROXY_COUNT = env_int("ETCNET_TRUSTED_PROXY_COUNT", 1)
AXES_CLIENT_IP_CALLABLE = "etcnet.core.middleware.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "etcnet.core.views.lockout_response"
AXES_VERBOSE = False

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "etcnet" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Static files are served by the app itself (no CDN); finders let a fresh
# checkout work before collectstatic has run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploaded documents hold personal data: they are never served from a public
# URL, only through views that check the role (see issuance.views.document).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
# Uploaded and generated files (ID and licence photos, vehicle photos) and their
# folders are readable by the owner only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

ETCNET_UPLOAD_MAX_BYTES = env_int("ETCNET_UPLOAD_MAX_BYTES", 8 * 1024 * 1024)
ETCNET_UPLOAD_MAX_PIXELS = env_int("ETCNET_UPLOAD_MAX_PIXELS", 40_000_000)
# Cards and keys. The key vault reads the issuer master keys from ETCNET_KEYS_FILE
# (a JSON file, see docs/cards.md) or ETCNET_KEYS (the same JSON in the
# environment); they are never logged and never in the repository. `make demo`
# generates its own file under ETCNET_DATA_DIR.
ETCNET_KEYS_FILE = env_str("ETCNET_KEYS_FILE", str(DATA_DIR / "keys.json"))
ETCNET_CARD_DIR = Path(env_str("ETCNET_CARD_DIR", str(DATA_DIR / "cards")))
ETCNET_FUND_DISPUTE_DAYS = env_int("ETCNET_FUND_DISPUTE_DAYS", 30)
ETCNET_CARD_VALID_YEARS = env_int("ETCNET_CARD_VALID_YEARS", 10)
ETCNET_COUNTER_TERMINAL_NO = env_str("ETCNET_COUNTER_TERMINAL_NO", "610100000001")
# The card network numbers (the first four digits of a card number) this center
# issues: their cards' TACs are verified here; any other network's card is
# another issuer's, taken into the store to be cleared with its issuer.
ETCNET_CARD_NETWORKS = env_list("ETCNET_CARD_NETWORKS", ["6101"])
# Cards whose TAC key the vault keeps ready, per algorithm (about 1 KB each).
ETCNET_CARD_KEY_CACHE = env_int("ETCNET_CARD_KEY_CACHE", 20_000)

# Status lists (docs/lists.md): version files are written to ETCNET_LIST_DIR and
# signed with the Ed25519 key in ETCNET_LIST_KEY_FILE (made on first use). Imported
# files must be signed by one of ETCNET_LIST_TRUSTED_KEYS (base64 raw public keys,
# comma-separated) unless ETCNET_LIST_IMPORT_UNSIGNED allows unsigned files.
ETCNET_LIST_DIR = Path(env_str("ETCNET_LIST_DIR", str(DATA_DIR / "lists")))
ETCNET_LIST_KEY_FILE = Path(
    env_str("ETCNET_LIST_KEY_FILE", str(DATA_DIR / "keys" / "status-list-ed25519.pem"))
)
ETCNET_LIST_TRUSTED_KEYS = [
    k.strip() for k in env_str("ETCNET_LIST_TRUSTED_KEYS", "").split(",") if k.strip()
]
ETCNET_LIST_PUBLISHER = env_str("ETCNET_LIST_PUBLISHER", "etcnet-center")
# Off by default: an unsigned file could come from anyone. Turn it on only for
# a counterpart that cannot sign yet (tests that import unsigned files set it).
ETCNET_LIST_IMPORT_UNSIGNED = env_bool("ETCNET_LIST_IMPORT_UNSIGNED", False)
# Increments are kept this many days; a terminal further behind takes a full version.
ETCNET_LIST_KEEP_DAYS = env_int("ETCNET_LIST_KEEP_DAYS", 7)

# Clearing (docs/clearing.md): how far back a run looks for late records, and the
# lane clock offset beyond which a record is held (code 16).
ETCNET_CLEARING_LATE_DAYS = env_int("ETCNET_CLEARING_LATE_DAYS", 90)
ETCNET_CLEARING_CLOCK_LIMIT_MS = env_int("ETCNET_CLEARING_CLOCK_LIMIT_MS", 300_000)
# The center's time source (docs/clock.md): the Beidou receiver, an NTP server, as
# "host" or "host:port" (empty: none, server_time is the system clock as it is);
# the center's offset from it beyond which the operators' panel warns, and how long
# without a good reading before it says the source is silent.
ETCNET_TIME_SOURCE = env_str("ETCNET_TIME_SOURCE", "")
ETCNET_TIME_SOURCE_MAX_MS = env_int("ETCNET_TIME_SOURCE_MAX_MS", 1000)
ETCNET_TIME_SOURCE_STALE_S = env_int("ETCNET_TIME_SOURCE_STALE_S", 300)
if ETCNET_TIME_SOURCE:
    from etcnet.clock.sntp import parse_source

    try:
        parse_source(ETCNET_TIME_SOURCE)
    except ValueError as _bad_source:
        raise ImproperlyConfigured(f"ETCNET_TIME_SOURCE: {_bad_source}") from None
if ETCNET_TIME_SOURCE_MAX_MS < 0 or ETCNET_TIME_SOURCE_STALE_S < 1:
    raise ImproperlyConfigured("ETCNET_TIME_SOURCE_MAX_MS >= 0 and ETCNET_TIME_SOURCE_STALE_S >= 1")
# The exchange with the national center (docs/clearing-packages.md): our sender id and
# theirs (16 hex digits each), and our id as the service provider (收费方) of our roads.
ETCNET_CLEARING_SENDER_ID = env_str("ETCNET_CLEARING_SENDER_ID", "0000000000006101")
ETCNET_NATIONAL_CENTER_ID = env_str("ETCNET_NATIONAL_CENTER_ID", "0000000000000001")
ETCNET_SERVICE_PROVIDER_ID = env_str("ETCNET_SERVICE_PROVIDER_ID", "6101")
# The signature server (docs/exchange.md): its local API and the bearer token the
# center presents (the token file is made by `etcnet signer init`).
ETCNET_SIGNER_URL = env_str("ETCNET_SIGNER_URL", "http://127.0.0.1:8710")
ETCNET_SIGNER_TOKEN_FILE = Path(
    env_str("ETCNET_SIGNER_TOKEN_FILE", str(DATA_DIR / "signer" / "client.token"))
)
ETCNET_SIGNER_TOKEN = env_str("ETCNET_SIGNER_TOKEN", "")
ETCNET_SIGNER_TIMEOUT_S = env_int("ETCNET_SIGNER_TIMEOUT_S", 10)
# The national center's front server (docs/exchange.md): HTTPS, trusting exactly its
# TLS certificate; an unanswered message is resent after RETRY_S, doubling up to MAX_S.
ETCNET_NATIONAL_URL = env_str("ETCNET_NATIONAL_URL", "https://127.0.0.1:8720")
ETCNET_NATIONAL_TLS_CA = Path(
    env_str("ETCNET_NATIONAL_TLS_CA", str(DATA_DIR / "national-sim" / "tls-cert.pem"))
)
ETCNET_EXCHANGE_TIMEOUT_S = env_int("ETCNET_EXCHANGE_TIMEOUT_S", 60)
ETCNET_EXCHANGE_RETRY_S = env_int("ETCNET_EXCHANGE_RETRY_S", 30)
ETCNET_EXCHANGE_RETRY_MAX_S = env_int("ETCNET_EXCHANGE_RETRY_MAX_S", 600)
# The banks' front server (docs/banks.md): who the banks are, their addresses and
# TLS certificates, the settlement bank and the settlement accounts (a JSON file);
# the hours within which the settlement bank confirms an instruction before it is
# listed as overdue and chased.
ETCNET_BANKS_FILE = Path(env_str("ETCNET_BANKS_FILE", str(DATA_DIR / "banks.json")))
ETCNET_BANK_CONFIRM_HOURS = env_int("ETCNET_BANK_CONFIRM_HOURS", 24)
ETCNET_SMS_SENDER = env_str("ETCNET_SMS_SENDER", "etcnet.core.sms.LogSmsSender")
ETCNET_SMS_CODE_TTL_SECONDS = env_int("ETCNET_SMS_CODE_TTL_SECONDS", 300)
ETCNET_SMS_CODE_MAX_TRIES = env_int("ETCNET_SMS_CODE_MAX_TRIES", 5)
ETCNET_SMS_RESEND_SECONDS = env_int("ETCNET_SMS_RESEND_SECONDS", 60)
# Rate limits (docs/plates.md), "count/seconds": a request past the count within
# the window is refused with 429. SMS codes per mobile number count every
# application's codes together (plates registration and selection, issuance).
ETCNET_RATE_SMS_PER_MOBILE = env_rate("ETCNET_RATE_SMS_PER_MOBILE", "5/3600")
ETCNET_RATE_SMS_PER_IP = env_rate("ETCNET_RATE_SMS_PER_IP", "20/3600")
ETCNET_RATE_REGISTER_PER_IP = env_rate("ETCNET_RATE_REGISTER_PER_IP", "20/3600")
ETCNET_RATE_REGISTER_PER_MOBILE = env_rate("ETCNET_RATE_REGISTER_PER_MOBILE", "10/3600")
ETCNET_RATE_LOGIN_PER_IP = env_rate("ETCNET_RATE_LOGIN_PER_IP", "30/600")
ETCNET_RATE_LOGIN_PER_USER = env_rate("ETCNET_RATE_LOGIN_PER_USER", "10/600")

# The API's list pages: at most this many rows per request.
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 200

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
# Behind TLS in production set SESSION_COOKIE_SECURE=true; the embedded demo runs on
# plain http://127.0.0.1, where a secure cookie would never be sent back.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # One handler, on the root logger; etcnet and django propagate to it. A
    # handler on a logger as well as on the root prints each line twice — and
    # waitress' serve() calls logging.basicConfig(), which adds a root handler
    # whenever the root has none.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "etcnet": {"level": env_str("ETCNET_LOG_LEVEL", "INFO")},
        "django": {"level": "WARNING"},
    },
}
