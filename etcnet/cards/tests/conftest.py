"""Card fixtures: a fresh key vault, emulated stock at the clerk's outlet, an
approved application waiting for issuance."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import complete_application
from etcnet.cards import services, vault
from etcnet.cards.models import UnitKind
from etcnet.issuance import samples
from etcnet.issuance import services as issuance_services

CARD_NOS = [f"6101{n:016d}" for n in range(1, 7)]
OBU_NOS = [f"{6101_0000_0000_0000 + n:016d}" for n in range(1, 7)]


@pytest.fixture(autouse=True)
def _vault(settings: Any, tmp_path: Any, monkeypatch: Any) -> Any:
    key_file = tmp_path / "keys.json"
    vault.generate_key_file(key_file)
    monkeypatch.delenv("ETCNET_KEYS", raising=False)
    settings.ETCNET_KEYS_FILE = str(key_file)
    settings.ETCNET_CARD_DIR = tmp_path / "cards"
    vault.reset_cache()
    yield key_file
    vault.reset_cache()


@pytest.fixture
def stock(clerk: Any) -> dict[str, list[str]]:
    services.receive_batch(
        kind=UnitKind.CARD, reference="C-2026-001", serials=CARD_NOS, emulated=True, actor=clerk
    )
    services.receive_batch(
        kind=UnitKind.OBU, reference="O-2026-001", serials=OBU_NOS, emulated=True, actor=clerk
    )
    return {"cards": CARD_NOS, "obus": OBU_NOS}


def approved_application(clerk: Any, **kwargs: Any) -> Any:
    application = complete_application(clerk, **kwargs)
    assert issuance_services.submit_application(application.pk, actor=clerk).approved
    application.refresh_from_db()
    return application


@pytest.fixture
def approved(clerk: Any) -> Any:
    return approved_application(clerk)


def second_car(clerk: Any, plate: str = "陕A54321", serial: str = "500001") -> Any:
    return approved_application(
        clerk,
        vehicle=samples.passenger_car(plate=plate, vin=samples.vin(serial=serial)),
        phone="13800138000",
    )
