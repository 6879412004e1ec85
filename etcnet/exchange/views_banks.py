"""The banks' page (/exchange/banks/) for center operators and auditors
(docs/banks.md): per bank the files sent and received (debit, result, usage,
instructions, confirmations) with their state; the accounts in recovery (追缴)
with what they owe, since when and their cards on status list type 4; the
settlement bank's instructions with their state and age, the unconfirmed ones
past ``ETCNET_BANK_CONFIRM_HOURS`` marked. An operator may chase the overdue
instructions now (a CHASE file the bank loop sends); a chase can be repeated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etcnet.cards.models import CardUnit
from etcnet.core.codes import CardType
from etcnet.core.roles import Role, role_required
from etcnet.exchange import signing
from etcnet.exchange.banks import config, settlement
from etcnet.exchange.banks.debits import BankError
from etcnet.exchange.models import (
    BankFile,
    BankFileKind,
    InstructionState,
    Recovery,
    SettlementInstruction,
    TransferState,
)
from etcnet.lists.models import ListEvent, ListStatus, ListType, Medium

READERS = (Role.CENTER_OPERATOR, Role.AUDITOR)
PAGE = 50  # files a bank, instructions
OVERDUE = "overdue"


def _filters(request: HttpRequest, banks: dict[str, str]) -> tuple[dict[str, str], Any]:
    """The query's filters, and the first that does not hold as (field, reason)."""
    chosen = {name: request.GET.get(name, "") for name in ("bank", "kind", "state", "instruction")}
    allowed = {
        "bank": (banks, _("choose one of the banks listed")),
        "kind": (BankFileKind.values, _("choose one of the file kinds listed")),
        "state": (TransferState.values, _("choose one of the states listed")),
        "instruction": (
            [*InstructionState.values, OVERDUE],
            _("choose one of the instruction states listed"),
        ),
    }
    for name, (values, reason) in allowed.items():
        if chosen[name] and chosen[name] not in values:
            return dict.fromkeys(chosen, ""), (name, reason)
    return chosen, None


def _age(since: dt.datetime, now: dt.datetime) -> dict[str, int]:
    minutes = max(0, int((now - since).total_seconds() // 60))
    return {"hours": minutes // 60, "minutes": minutes % 60}


def _recoveries(names: dict[str, str]) -> list[dict[str, Any]]:
    """The open recoveries, each with its account's debit cards and whether each
    is on list type 4 now (its latest type-4 event is IN)."""
    rows = list(Recovery.objects.filter(state=Recovery.State.OPEN).select_related("account"))
    cards: dict[int, list[str]] = {}
    for account_id, card_no in (
        CardUnit.objects.filter(
            account_id__in=[r.account_id for r in rows], card_type=int(CardType.DEBIT)
        )
        .order_by("card_no")
        .values_list("account_id", "card_no")
    ):
        cards.setdefault(account_id, []).append(card_no)
    latest: dict[str, int] = {}
    for card_no, status in (
        ListEvent.objects.filter(
            medium=Medium.CARD,
            list_type=ListType.OVERDRAWN,
            medium_id__in=[c for numbers in cards.values() for c in numbers],
        )
        .order_by("occurred_at", "pk")
        .values_list("medium_id", "status")
    ):
        latest[card_no] = status
    return [
        {
            "recovery": r,
            "bank_name": names.get(r.bank, r.bank),
            "cards": [
                (card_no, latest.get(card_no) == ListStatus.IN)
                for card_no in cards.get(r.account_id, [])
            ],
        }
        for r in rows
    ]


def _instructions(chosen: str, now: dt.datetime) -> tuple[list[SettlementInstruction], set[int]]:
    overdue = set(settlement.overdue(now).values_list("pk", flat=True))
    rows = SettlementInstruction.objects.select_related("day", "file")
    if chosen == OVERDUE:
        rows = rows.filter(pk__in=overdue)
    elif chosen:
        rows = rows.filter(state=chosen)
    # The unconfirmed first, oldest first; then the answered, latest first.
    shown = list(rows.filter(state=InstructionState.SENT).order_by("file__created_at", "pk")[:PAGE])
    if len(shown) < PAGE:
        shown += list(
            rows.exclude(state=InstructionState.SENT).order_by("-confirmed_at", "-pk")[
                : PAGE - len(shown)
            ]
        )
    for i in shown:
        since = i.last_chased_at or i.file.created_at
        i.age = _age(since, now)  # type: ignore[attr-defined]
        i.overdue = i.pk in overdue  # type: ignore[attr-defined]
    return shown, overdue


@role_required(*READERS)
def index(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    try:
        configured: config.BanksConfig | None = config.load()
        config_error = ""
    except config.ConfigError as unreadable:
        configured, config_error = None, str(unreadable)
    names = {b.id: b.name for b in configured.banks.values()} if configured else {}
    for bank in BankFile.objects.order_by().values_list("bank", flat=True).distinct():
        names.setdefault(bank, bank)  # a bank no longer configured keeps its files shown
    chosen, error = _filters(request, names)
    files = BankFile.objects.all()
    if chosen["kind"]:
        files = files.filter(kind=chosen["kind"])
    if chosen["state"]:
        files = files.filter(state=chosen["state"])
    banks = []
    for bank_id, name in sorted(names.items()):
        if chosen["bank"] and bank_id != chosen["bank"]:
            continue
        counts = (
            BankFile.objects.filter(bank=bank_id)
            .values("state")
            .annotate(n=Count("id"))
            .order_by("state")
        )
        banks.append(
            {
                "id": bank_id,
                "name": name,
                "url": configured.banks[bank_id].url
                if configured and bank_id in configured.banks
                else "",
                "settlement": bool(configured and configured.settlement_bank == bank_id),
                "files": list(files.filter(bank=bank_id)[:PAGE]),
                "counts": [(TransferState(c["state"]).label, c["n"]) for c in counts],
            }
        )
    instructions, overdue = _instructions(chosen["instruction"], now)
    owed = Recovery.objects.filter(state=Recovery.State.OPEN).aggregate(
        n=Count("id"), fen=Sum("owed_fen")
    )
    context = {
        "config_error": config_error,
        "error": error,
        "chosen": chosen,
        "banks": banks,
        "bank_choices": sorted(names.items()),
        "kinds": BankFileKind.choices,
        "states": TransferState.choices,
        "instruction_states": InstructionState.choices,
        "recoveries": _recoveries(names),
        "owed": {"count": owed["n"], "fen": owed["fen"] or 0},
        "instructions": instructions,
        "unconfirmed": SettlementInstruction.objects.filter(state=InstructionState.SENT).count(),
        "overdue": len(overdue),
        "deadline_hours": settings.ETCNET_BANK_CONFIRM_HOURS,
        "may_act": request.user.groups.filter(name=Role.CENTER_OPERATOR).exists(),
    }
    return TemplateResponse(request, "exchange/banks.html", context, status=400 if error else 200)


@require_POST
@role_required(Role.CENTER_OPERATOR)
def chase(request: HttpRequest) -> HttpResponse:
    """The overdue instructions sent again now, in one CHASE file the bank loop
    sends; audited by the service (``exchange.instructions_chased``)."""
    try:
        chased = settlement.chase(actor=request.user)
    except (config.ConfigError, BankError, signing.SignerUnavailable) as error:
        messages.error(request, _("Nothing was chased: %(reason)s") % {"reason": error})
        return redirect("exchange:banks")
    if chased is None:
        messages.info(request, _("No instruction is overdue: nothing to chase."))
    else:
        messages.success(
            request,
            _("%(count)d overdue instruction(s) chased in %(file)s.")
            % {"count": chased.lines, "file": chased.name},
        )
    return redirect("exchange:banks")
