"""Settings of the terminal's local web UI (``etcnet terminal serve``).

No database: the terminal's state is its own SQLite store (``etcnet.terminal``),
the collector's sign-in lives in a signed cookie, and the secret key is
generated once per terminal in its data folder. Simplified Chinese first."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]  # etcnet/
DATA_DIR = Path(os.environ.get("ETCNET_TERMINAL_DATA", "var/terminal")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
_key_file = DATA_DIR / "ui-secret-key"
if not _key_file.exists():
    _key_file.write_text(secrets.token_urlsafe(50))
    _key_file.chmod(0o600)
SECRET_KEY = _key_file.read_text().strip()

DEBUG = os.environ.get("ETCNET_TERMINAL_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "etcnet.terminal.web",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "etcnet.terminal.web.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csrf",
            ],
            "builtins": ["django.templatetags.i18n"],
        },
    }
]
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_NAME = "etcnet_terminal"
SESSION_COOKIE_AGE = 12 * 3600  # a shift
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
STATIC_URL = "static/"
STATICFILES_DIRS = [PACKAGE / "core" / "static"]
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
# The hashers whose verifiers the center sends for the offline sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# One handler, on the root logger (as the center's settings): a logger with its
# own handler besides the root's, which waitress' logging.basicConfig() adds,
# would print every line twice.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "etcnet": {"level": os.environ.get("ETCNET_LOG_LEVEL", "INFO")},
        "django": {"level": "WARNING"},
    },
}
