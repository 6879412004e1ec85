"""Status-list imports need a trusted signature unless a deployment says
otherwise: ETCNET_LIST_IMPORT_UNSIGNED is off by default (tests/test_settings.py
checks the default itself)."""

from __future__ import annotations

from typing import Any

import pytest

from etcnet.lists import services
from etcnet.lists.models import ListEntry
from etcnet.lists.tests.test_import import FULL, national

pytestmark = pytest.mark.django_db


def test_an_unsigned_file_is_refused_by_default(operator: Any) -> None:
    row = services.import_file(
        national("full", "202611211200", FULL, signer=None), filename="u.zip", actor=operator
    )

    assert (row.result, row.field) == ("refused", "signature")
    assert not ListEntry.objects.exists()
