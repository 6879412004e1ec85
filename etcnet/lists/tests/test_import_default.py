"""Status-list imports need a trusted signature unless a deployment says
otherwise: ETCNET_LIST_IMPORT_UNSIGNED is off by default."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from etcnet.lists import services
from etcnet.lists.models import ListEntry
from etcnet.lists.tests.test_import import FULL, national

pytestmark = pytest.mark.django_db


def test_unsigned_imports_are_off_unless_the_environment_turns_them_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import etcnet.settings as module

    monkeypatch.delenv("ETCNET_LIST_IMPORT_UNSIGNED", raising=False)
    try:
        assert importlib.reload(module).ETCNET_LIST_IMPORT_UNSIGNED is False
        monkeypatch.setenv("ETCNET_LIST_IMPORT_UNSIGNED", "true")
        assert importlib.reload(module).ETCNET_LIST_IMPORT_UNSIGNED is True
    finally:
        monkeypatch.undo()
        importlib.reload(module)


def test_an_unsigned_file_is_refused_by_default(operator: Any, settings: Any) -> None:
    import etcnet.settings as module

    settings.ETCNET_LIST_IMPORT_UNSIGNED = module.ETCNET_LIST_IMPORT_UNSIGNED

    row = services.import_file(
        national("full", "202611211200", FULL, signer=None), filename="u.zip", actor=operator
    )

    assert (row.result, row.field) == ("refused", "signature")
    assert not ListEntry.objects.exists()
