"""Who the banks are: ``ETCNET_BANKS_FILE`` (JSON, docs/banks.md).

    {"settlement_bank": "0000000000000100",
     "banks": {"0000000000000102": {"name": "中国工商银行陕西省分行",
                                   "url": "https://bank.example:8443",
                                   "tls_ca": "/etc/etcnet/banks/icbc-tls.pem"}},
     "accounts": {"center": "…", "owner:O01": "…", "bank:中国工商银行陕西省分行": "…",
                  "national_center": "…", "purses": "…", "station_cash:*": "…"}}

A bank's ``name`` is the name debit accounts carry (`Account.bank_name`). The
``accounts`` are the settlement accounts at the settlement bank: ``center`` is
ours; a counterparty's is found as ``kind:id``, else ``kind:*``, else ``kind``
(for the kinds without an id: ``purses``, ``national_center``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

__all__ = ["Bank", "BanksConfig", "ConfigError", "load"]

_PARTY = re.compile(r"^[0-9A-Fa-f]{16}$")


class ConfigError(Exception):
    """ETCNET_BANKS_FILE is missing or does not hold; the message names the field."""


@dataclass(frozen=True)
class Bank:
    id: str  # the party id of its certificate
    name: str  # as debit accounts carry it
    url: str
    tls_ca: Path


@dataclass(frozen=True)
class BanksConfig:
    banks: dict[str, Bank]
    settlement_bank: str
    accounts: dict[str, str]

    def bank(self, bank_id: str) -> Bank:
        try:
            return self.banks[bank_id]
        except KeyError:
            raise ConfigError(f"bank: {bank_id} is not in ETCNET_BANKS_FILE") from None

    def by_name(self, name: str) -> Bank | None:
        return next((b for b in self.banks.values() if b.name == name), None)

    def account(self, kind: str, counterparty_id: str) -> str | None:
        for key in (f"{kind}:{counterparty_id}", f"{kind}:*", kind):
            if key in self.accounts:
                return self.accounts[key]
        return None


def load() -> BanksConfig:
    path = Path(settings.ETCNET_BANKS_FILE)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"ETCNET_BANKS_FILE {path}: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"ETCNET_BANKS_FILE {path}: not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"ETCNET_BANKS_FILE {path}: not a JSON object")
    banks: dict[str, Bank] = {}
    for bank_id, item in (raw.get("banks") or {}).items():
        where = f"ETCNET_BANKS_FILE banks.{bank_id}"
        if not _PARTY.fullmatch(bank_id):
            raise ConfigError(f"{where}: a party id of 16 hex digits")
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("name", "url", "tls_ca")
        ):
            raise ConfigError(f"{where}: name, url and tls_ca, each a string")
        banks[bank_id] = Bank(bank_id, item["name"], item["url"], Path(item["tls_ca"]))
    settlement = str(raw.get("settlement_bank", ""))
    if settlement and settlement not in banks:
        raise ConfigError("ETCNET_BANKS_FILE settlement_bank: not one of the banks")
    accounts = raw.get("accounts") or {}
    if not isinstance(accounts, dict) or not all(
        isinstance(v, str) and re.fullmatch(r"[0-9A-Za-z-]{1,32}", v) for v in accounts.values()
    ):
        raise ConfigError("ETCNET_BANKS_FILE accounts: each an account number (1-32 characters)")
    return BanksConfig(banks, settlement, dict(accounts))
