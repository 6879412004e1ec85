"""Card, OBU and account services: inventory, issuing, activation, top-up and the
lifecycle (loss, suspension, replacement, cancellation, recycling, renewal).

Each top-level service is one durable transaction that locks the rows it
changes in primary-key order, checks the state allows the change (refusing
with `WrongState` and a reason otherwise), writes its audit events and its
status-list events inside that transaction, and moves money only through
balanced ledger entries. Card I/O happens while the rows are locked, so a
failed write rolls the whole change back; writes to a card are idempotent
(personalising twice writes the same files).

Top-up is the exception that needs two transactions, because the center must
record the money before it lets the card credit itself: (1) record the money
and hand the card MAC2, (2) on the card's TAC move the money onto the purse.
A card pulled out in between leaves a pending top-up that a retry finishes.

The package, one module a section: ``inventory``, ``issuing``, ``topup``,
``lifecycle``, ``purchases``, ``payouts``; ``_common`` holds the checks and locks
they share.
Callers use this package (``from etcnet.cards import services``).
"""

from __future__ import annotations

from etcnet.cards.services.inventory import move_units, receive_batch
from etcnet.cards.services.issuing import activate, issue
from etcnet.cards.services.lifecycle import (
    cancel,
    cancel_loss_report,
    link_bank_account,
    listed_types,
    new_idempotency_key,
    recycle,
    renew,
    replace_card,
    replace_obu,
    report_loss,
    report_obu_loss,
    resume,
    settle_due,
    suspend,
)
from etcnet.cards.services.payouts import (
    DuePayout,
    cancel_payout,
    make_payout,
    mark_paid,
    payouts_due,
)
from etcnet.cards.services.purchases import record_purchase
from etcnet.cards.services.topup import (
    LOAD_TYPE,
    MAX_TOP_UP_FEN,
    refund_pending_top_up,
    retry_top_up,
    top_up,
)

__all__ = [
    "LOAD_TYPE",
    "MAX_TOP_UP_FEN",
    "DuePayout",
    "activate",
    "cancel",
    "cancel_loss_report",
    "cancel_payout",
    "issue",
    "link_bank_account",
    "listed_types",
    "make_payout",
    "mark_paid",
    "move_units",
    "new_idempotency_key",
    "payouts_due",
    "receive_batch",
    "record_purchase",
    "recycle",
    "refund_pending_top_up",
    "renew",
    "replace_card",
    "replace_obu",
    "report_loss",
    "report_obu_loss",
    "resume",
    "retry_top_up",
    "settle_due",
    "suspend",
    "top_up",
]
