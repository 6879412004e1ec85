"""A bank's shared keys (非交通机构密钥, 共享密钥接收), docs/banks.md.

A KEYS file carries a bank's card keys wrapped under the transport key agreed
with it (K lines) and the card numbers they serve (C lines). Every key is
unwrapped and checked against its KCV, then sealed into the key vault
(`etcnet.cards.vault.store_shared_key`) — never written in clear; a key that
does not unwrap to 16 bytes or does not match its KCV refuses the whole file.
A card of a format the national network does not take (not 20 digits, a network
other than the file's issuers', a card type other than 22/23) is reported on
the file, not refused: the bank fixes its card.
"""

from __future__ import annotations

import re
from typing import Any

from etcnet.cards import vault
from etcnet.core import audit
from etcnet.exchange import bankfiles
from etcnet.exchange.models import BankFile

__all__ = ["apply_keys", "card_problems"]


def card_problems(card_no: str, card_type: str, issuers: set[str]) -> list[tuple[str, str]]:
    """What is wrong with a bank's card for the national network: (field, reason)."""
    problems = []
    if not re.fullmatch(r"[0-9]{20}", card_no):
        problems.append(("card_no", f"{len(card_no)} characters, the network takes 20 digits"))
    elif card_no[:4] not in issuers:
        problems.append(
            ("card_no", f"network {card_no[:4]} is not the issuer's ({', '.join(sorted(issuers))})")
        )
    if card_type not in ("22", "23"):
        problems.append(("card_type", f"{card_type!r}: 22 (stored value) or 23 (debit)"))
    return problems


def apply_keys(row: BankFile, parsed: bankfiles.BankFile, actor: Any) -> None:
    """Unwrap, check and seal a bank's keys into the vault; report its cards that
    do not conform. Runs in the intake's transaction; a key that does not hold
    raises `BankFileError` before any key is stored. Audits
    ``exchange.shared_keys_received`` (issuers, names, KCVs — never a key)."""
    try:
        transport = vault.transport_key(row.bank)
    except vault.VaultNotConfigured:
        raise bankfiles.BankFileError(0, "transport key", f"none agreed with {row.bank}") from None
    keys: list[tuple[bankfiles.Record, bytes]] = []
    for record in parsed.records:
        if record.type != "K":
            continue
        line = record.number + 1
        if not re.fullmatch(r"[0-9]{4}", record["issuer"]):
            raise bankfiles.BankFileError(line, "issuer", "the issuer's 4-digit network number")
        try:
            key = bankfiles.unwrap_key(transport, bytes.fromhex(record["wrapped"]))
        except ValueError as error:
            raise bankfiles.BankFileError(line, "wrapped", str(error)) from None
        if bankfiles.kcv(key) != record["kcv"]:
            raise bankfiles.BankFileError(line, "kcv", "does not match the unwrapped key")
        keys.append((record, key))
    if not keys:
        raise bankfiles.BankFileError(0, "file", "no key in it")
    issuers = {record["issuer"] for record, _ in keys}
    report = []
    for record in parsed.records:
        if record.type == "C":
            for field, reason in card_problems(record["card_no"], record["card_type"], issuers):
                report.append({"line": record.number + 1, "field": field, "reason": reason,
                               "card_no": record["card_no"]})  # fmt: skip
    stored = []
    for record, key in keys:
        check = vault.store_shared_key(
            issuer=record["issuer"], version=record["key_version"], alg=record["alg"],
            name=record["name"], key=key, bank=row.bank,
        )  # fmt: skip
        stored.append(f"{record['issuer']}/{record['key_version']}/{record['alg']}/"
                      f"{record['name']} KCV {check}")  # fmt: skip
    row.report = report
    row.save(update_fields=["report"])
    audit.record(
        actor=actor, action="exchange.shared_keys_received", subject=row,
        after={"keys": stored, "nonconforming_cards": len(report)},
    )  # fmt: skip
