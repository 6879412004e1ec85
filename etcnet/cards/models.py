"""Cards, OBUs and accounts.

Inventory: every physical user card (`CardUnit`) and OBU (`ObuUnit`) arrives in a
`Batch` at an outlet or the warehouse and moves through the unit states
(in stock → issued → active → lost / suspended → cancelled → recycled → in
stock); the audit trail is its history.

Issuing binds one vehicle, one OBU and one card (`Binding`); partial unique
constraints guarantee it among live bindings.

Money: a customer has one `Account`; stored-value cards keep their purse on the
card, and the center keeps a shadow balance from loads and uploaded purchases.
Every movement of money is a balanced `JournalEntry` of `Posting`s (debits
positive, credits negative, summing to zero) that is never edited; corrections
are reversing entries (django-hordak's model). `LedgerAccount.balance_fen` and
`CardUnit.shadow_balance_fen` are caches of the postings that
`etcnet ledger check` proves equal.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etcnet.core.codes import CardType
from etcnet.issuance.models import Customer, Outlet, Vehicle


class UnitState(models.TextChoices):
    IN_STOCK = "in_stock", _("In stock")
    ISSUED = "issued", _("Issued")
    ACTIVE = "active", _("Active")
    LOST = "lost", _("Reported lost")
    SUSPENDED = "suspended", _("Suspended")
    CANCELLED = "cancelled", _("Cancelled")
    RECYCLED = "recycled", _("Recycled")


# A unit in one of these states belongs to a vehicle.
BOUND_STATES = (UnitState.ISSUED, UnitState.ACTIVE, UnitState.LOST, UnitState.SUSPENDED)


class UnitKind(models.TextChoices):
    CARD = "card", _("User card")
    OBU = "obu", _("OBU")


class Batch(models.Model):
    """A delivery of blank cards or OBUs received into stock."""

    kind = models.CharField(max_length=8, choices=UnitKind.choices)
    reference = models.CharField(max_length=40)
    location = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "reference"], name="batch_unique_reference")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.reference}"


class Account(models.Model):
    """A customer's ETC account: its cards (one of them the master card) and, for
    debit cards (记账卡), the linked bank account that settles the tolls."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="account")
    number = models.CharField(max_length=20, unique=True)
    bank_name = models.CharField(max_length=60, blank=True)
    bank_account_no = models.CharField(max_length=32, blank=True)
    agreement_signed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.number


class CardUnit(models.Model):
    """A user card: in stock it is blank; issuing personalises it."""

    card_no = models.CharField(max_length=20, unique=True)  # network (4) + internal number (16)
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="cards")
    location = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=UnitState.choices, default=UnitState.IN_STOCK)
    alg = models.CharField(max_length=4, default="3des")
    card_type = models.PositiveSmallIntegerField(choices=CardType.choices(), null=True, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="cards"
    )
    is_master = models.BooleanField(default=False)
    expiry_date = models.DateField(null=True, blank=True)
    # The emulated card's state file, relative to ETCNET_CARD_DIR; empty for a real card.
    emulator_file = models.CharField(max_length=200, blank=True)
    # Stored-value cards: the center's running copy of the purse (sum of the purse
    # postings). The card's own log is the truth: a TAC-verified purchase is posted
    # whatever the center expected, so this may run below zero ("the card spent
    # money the center has not matched yet", dispute 14); no CHECK forbids it.
    shadow_balance_fen = models.BigIntegerField(default=0)
    issued_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(is_master=True) & ~Q(state__in=["cancelled", "recycled", "in_stock"]),
                name="account_one_live_master_card",
            ),
        ]

    def __str__(self) -> str:
        return self.card_no

    @property
    def network(self) -> str:
        return self.card_no[:4]

    @property
    def internal_no(self) -> str:
        return self.card_no[4:]

    @property
    def is_stored_value(self) -> bool:
        return self.card_type == CardType.STORED_VALUE


class ObuUnit(models.Model):
    """An OBU (its ESAM): the contract serial is its number."""

    contract_no = models.CharField(max_length=16, unique=True)
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="obus")
    location = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=UnitState.choices, default=UnitState.IN_STOCK)
    emulator_file = models.CharField(max_length=200, blank=True)
    installation_photo = models.FileField(upload_to="obu-installation/%Y/%m/", blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.contract_no


class BindingStatus(models.TextChoices):
    ISSUED = "issued", _("Issued, OBU not activated")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


LIVE_BINDING = ~Q(status=BindingStatus.ENDED)


class Binding(models.Model):
    """One vehicle, one OBU, one card. A replacement ends the binding and starts
    a new one with the new unit."""

    vehicle = models.ForeignKey(Vehicle, on_delete=models.PROTECT, related_name="bindings")
    card = models.ForeignKey(CardUnit, on_delete=models.PROTECT, related_name="bindings")
    obu = models.ForeignKey(ObuUnit, on_delete=models.PROTECT, related_name="bindings")
    status = models.CharField(max_length=8, choices=BindingStatus.choices)
    created_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vehicle"], condition=LIVE_BINDING, name="binding_one_per_vehicle"
            ),
            models.UniqueConstraint(
                fields=["card"], condition=LIVE_BINDING, name="binding_one_per_card"
            ),
            models.UniqueConstraint(
                fields=["obu"], condition=LIVE_BINDING, name="binding_one_per_obu"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vehicle} / {self.obu} / {self.card}"


# --- the ledger ---------------------------------------------------------------------


class LedgerKind(models.TextChoices):
    ASSET = "asset", _("Asset")
    LIABILITY = "liability", _("Liability")
    INCOME = "income", _("Income")


class LedgerAccount(models.Model):
    """An account of the double-entry ledger, e.g. `cash:610101001`,
    `purse:61010000000000000001`, `loads_pending`, `refunds_payable`."""

    code = models.CharField(max_length=60, unique=True)
    kind = models.CharField(max_length=10, choices=LedgerKind.choices)
    card = models.OneToOneField(
        CardUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="purse_account"
    )
    # Sum of the postings (debits positive). Liabilities therefore run negative.
    balance_fen = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.code


class EntryKind(models.TextChoices):
    TOP_UP_RECEIVED = "top_up_received", _("Top-up money received")
    TOP_UP_LOADED = "top_up_loaded", _("Top-up loaded onto the card")
    TOP_UP_REFUNDED = "top_up_refunded", _("Top-up refunded (not loaded)")
    PURCHASE = "purchase", _("Toll purchase")
    BALANCE_TRANSFER = "balance_transfer", _("Balance moved to another card")
    REFUND_DUE = "refund_due", _("Balance due for refund")
    REFUND_PAID = "refund_paid", _("Refund paid")
    REVERSAL = "reversal", _("Reversal")
    CLEARING = "clearing", _("Clearing day")


class JournalEntry(models.Model):
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A retried request finds its entry here instead of posting twice.
    idempotency_key = models.CharField(max_length=80, unique=True, null=True, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.pk}:{self.kind}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount_fen = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount_fen=0), name="posting_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_fen}"


class CardPurchase(models.Model):
    """One purchase a card's TAC proved, as posted: the detail behind a purchase
    entry (a zero-amount one has none). The intake posts a whole upload's
    purchases as one entry (one line per paying account); each purchase is kept
    here once, by the PSAM's terminal number and sequence, so a purchase is
    never posted twice whichever way it arrives, and a card's purchases can be
    listed from its own books."""

    # Written a thousand at a time by the intake, with the card it has locked and
    # the entry it has just posted (entries are append-only, cards never
    # deleted): no foreign-key checks per row; Django's PROTECT guards deletes.
    card = models.ForeignKey(
        "CardUnit", on_delete=models.PROTECT, related_name="purchases", db_constraint=False
    )
    terminal_no = models.CharField(max_length=12)  # the PSAM's terminal number, hex
    terminal_seq = models.PositiveBigIntegerField()
    amount_fen = models.BigIntegerField()
    # The entry that posted it; none for a zero-amount purchase (an exempt exit
    # closed on the card), kept all the same: its PSAM sequence is used.
    entry = models.ForeignKey(
        JournalEntry,
        on_delete=models.PROTECT,
        related_name="purchases",
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["terminal_no", "terminal_seq"], name="card_purchase_once"
            ),
            models.CheckConstraint(
                condition=Q(amount_fen__gte=0) & (Q(amount_fen=0) | Q(entry__isnull=False)),
                name="card_purchase_posted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_no}:{self.terminal_seq} {self.amount_fen}"


# --- top-ups, transfers, refunds -------------------------------------------------


class TopUpChannel(models.TextChoices):
    CASH = "cash", _("Cash")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    MOBILE_PAYMENT = "mobile_payment", _("Mobile payment")
    BALANCE_TRANSFER = "balance_transfer", _("Balance moved from a replaced card")


class TopUpStatus(models.TextChoices):
    # Money recorded, MAC2 given to the card, its TAC not seen yet.
    PENDING = "pending", _("Money received, not yet on the card")
    LOADED = "loaded", _("Loaded onto the card")
    REFUNDED = "refunded", _("Refunded, not loaded")


class TopUp(models.Model):
    """A load (圈存) of a stored-value card. The money is recorded before the
    center computes MAC2; the card's TAC moves it onto the purse."""

    card = models.ForeignKey(CardUnit, on_delete=models.PROTECT, related_name="top_ups")
    amount_fen = models.BigIntegerField()
    channel = models.CharField(max_length=20, choices=TopUpChannel.choices)
    status = models.CharField(max_length=10, choices=TopUpStatus.choices)
    terminal_no = models.CharField(max_length=12)
    balance_before_fen = models.BigIntegerField(null=True, blank=True)
    online_atc = models.PositiveIntegerField(null=True, blank=True)
    tac = models.CharField(max_length=8, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)
    received_entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="+")
    loaded_entry = models.OneToOneField(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outlet = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="+")
    # Empty for a balance transfer made by the settlement job.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=80, unique=True)
    # sha256 of card, amount and channel: the same key for another request is a 409.
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="top_up_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.card_id}:{self.amount_fen}"


class SettlementKind(models.TextChoices):
    TRANSFER = "transfer", _("Balance transfer to the replacement card")
    REFUND = "refund", _("Refund on cancellation")


class SettlementStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting for the fund-dispute period")
    DONE = "done", _("Done")


class BalanceSettlement(models.Model):
    """A cancelled or replaced card's balance, held until the fund-dispute period
    ends, then moved to the replacement card (as a free top-up) or refunded."""

    kind = models.CharField(max_length=10, choices=SettlementKind.choices)
    status = models.CharField(max_length=10, choices=SettlementStatus.choices)
    from_card = models.OneToOneField(CardUnit, on_delete=models.PROTECT, related_name="settlement")
    to_card = models.ForeignKey(
        CardUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount_fen = models.BigIntegerField()
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind}:{self.from_card_id}"


class PayoutState(models.TextChoices):
    DUE = "due", _("Due")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


class Payout(models.Model):
    """A cancelled card's balance paid out of `refunds_payable` to the customer's
    bank account once the fund-dispute period has ended and the settlement has
    netted the late debits: made due by a clerk for exactly what the account's
    settled cards left payable, then paid (Dr refunds_payable / Cr bank)."""

    reference = models.CharField(max_length=24, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payouts")
    cards = models.ManyToManyField(CardUnit, related_name="payouts")
    amount_fen = models.BigIntegerField()
    bank_name = models.CharField(max_length=60)
    bank_account_no = models.CharField(max_length=32)
    holder_name = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=PayoutState.choices)
    bank_reference = models.CharField(max_length=60, blank=True)
    paid_entry = models.OneToOneField(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payout_amount_positive"),
            # At most one payout waits per account: a second one would pay twice.
            models.UniqueConstraint(
                fields=["account"], condition=Q(state="due"), name="one_due_payout_per_account"
            ),
        ]

    def __str__(self) -> str:
        return self.reference
