"""Which database the suite runs on: the one DATABASE_URL names."""

import os

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_suite_runs_on_the_configured_database():
    url = os.environ.get("DATABASE_URL", "sqlite://")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
