"""Card services through the real database and emulated cards and OBUs: issue,
activate, top up, lose, replace, cancel, recycle — and every refusal leaving
nothing changed and the ledger balanced."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import make_user, photo
from etcnet.cards import devices, ledger, services, vault
from etcnet.cards.errors import (
    AlreadyBound,
    CardFault,
    DisputePeriod,
    IdempotencyConflict,
    LoadInterrupted,
    MacRejected,
    NotApproved,
    NotInStock,
    TopUpPending,
    VehicleMismatch,
    WrongState,
)
from etcnet.cards.models import (
    Binding,
    BindingStatus,
    CardUnit,
    JournalEntry,
    ObuUnit,
    TopUp,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, second_car
from etcnet.core.errors import InvalidInput, NotFound
from etcnet.core.models import AuditEvent
from etcnet.issuance.models import Outlet, Vehicle, VehicleStatus
from etcnet.lists.models import ListEvent, Medium
from etcnet.smartcard import ops
from etcnet.smartcard.emulator import SoftObu
from etcnet.smartcard.transport import TransportError

pytestmark = pytest.mark.django_db

STORED_VALUE, DEBIT = 22, 23


def state() -> dict[str, Any]:
    """What a refused request must leave as it was, device files included."""
    root = Path(settings.ETCNET_CARD_DIR)
    return {
        "cards": list(
            CardUnit.objects.order_by("pk").values_list("pk", "state", "shadow_balance_fen")
        ),
        "obus": list(ObuUnit.objects.order_by("pk").values_list("pk", "state")),
        "bindings": Binding.objects.count(),
        "entries": JournalEntry.objects.count(),
        "top_ups": TopUp.objects.count(),
        "events": AuditEvent.objects.count(),
        "list": ListEvent.objects.count(),
        "files": {p.name: p.read_bytes() for p in sorted(root.glob("*.json"))},
    }


def issued(clerk: Any, application: Any, n: int = 0, card_type: int = STORED_VALUE) -> Binding:
    return services.issue(
        application.pk,
        card_no=CARD_NOS[n],
        contract_no=OBU_NOS[n],
        card_type=card_type,
        actor=clerk,
    )


def active(clerk: Any, application: Any, n: int = 0, card_type: int = STORED_VALUE) -> Binding:
    binding = issued(clerk, application, n, card_type)
    return services.activate(binding.pk, photo=photo("installed"), actor=clerk)


# --- inventory -------------------------------------------------------------------


def test_received_units_are_blank_emulated_devices_in_the_outlets_stock(clerk, stock):
    assert CardUnit.objects.filter(state=UnitState.IN_STOCK).count() == 6
    assert ObuUnit.objects.filter(state=UnitState.IN_STOCK).count() == 6
    reading = devices.read_card(CardUnit.objects.get(card_no=CARD_NOS[0]))
    assert reading.card_no == CARD_NOS[0]
    assert reading.balance == 0
    assert AuditEvent.objects.filter(action="cards.unit_received").count() == 12


def test_receiving_a_serial_twice_is_refused(clerk, stock):
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.receive_batch(
            kind=UnitKind.CARD, reference="C-2", serials=[CARD_NOS[0]], emulated=True, actor=clerk
        )
    assert state() == before


def test_units_move_between_outlets_and_are_then_not_issuable_here(clerk, stock, approved):
    Outlet.objects.create(code="610202001", name="铜川网点")
    services.move_units(
        kind=UnitKind.CARD, serials=[CARD_NOS[0]], to_outlet="610202001", actor=clerk
    )
    before = state()

    with pytest.raises(NotInStock):
        issued(clerk, approved)

    assert state() == before
    moved = AuditEvent.objects.get(action="cards.unit_moved")
    assert (moved.before, moved.after) == ({"outlet": "610101001"}, {"outlet": "610202001"})


# --- issuing and activation --------------------------------------------------------


def test_issuing_personalises_card_and_obu_and_binds_them(clerk, stock, approved):
    binding = issued(clerk, approved)

    card = binding.card
    assert (card.state, card.card_type, card.is_master) == (UnitState.ISSUED, STORED_VALUE, True)
    assert card.account.customer == approved.customer
    reading = devices.read_card(card)
    assert reading.f0015.plate == "陕A12345"
    assert int(reading.f0015.vehicle_class) == 1
    assert reading.f0016.name == "张三"
    obu = ops.read_obu(devices.open_unit(binding.obu))
    assert obu.vehicle.plate == "陕A12345"
    assert obu.activated is False
    assert binding.status == BindingStatus.ISSUED
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "cards.card_issued",
        "cards.obu_issued",
        "cards.binding_created",
        "cards.account_opened",
    } <= actions


def test_another_outlets_application_is_not_found_even_with_units_in_stock(clerk, stock, approved):
    elsewhere = Outlet.objects.create(code="610202001", name="铜川网点")
    far = make_user("frank", "issuance_clerk", outlet=elsewhere)
    for kind, serial in ((UnitKind.CARD, CARD_NOS[0]), (UnitKind.OBU, OBU_NOS[0])):
        services.move_units(kind=kind, serials=[serial], to_outlet="610202001", actor=clerk)
    before = state()

    with pytest.raises(NotFound):
        services.issue(
            approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=far
        )

    assert state() == before


def test_a_second_live_binding_for_the_vehicle_is_refused(clerk, stock, approved):
    issued(clerk, approved)
    before = state()

    with pytest.raises(AlreadyBound):
        services.issue(
            approved.pk, card_no=CARD_NOS[1], contract_no=OBU_NOS[1], card_type=22, actor=clerk
        )

    assert state() == before


def test_only_approved_applications_are_issued(clerk, stock):
    from conftest import complete_application

    draft = complete_application(clerk)
    before = state()
    with pytest.raises(NotApproved):
        services.issue(
            draft.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=clerk
        )
    assert state() == before


def test_activation_writes_the_tamper_flag_and_makes_everything_active(clerk, stock, approved):
    binding = active(clerk, approved)

    binding.refresh_from_db()
    assert binding.status == BindingStatus.ACTIVE
    assert (binding.card.state, binding.obu.state) == (UnitState.ACTIVE, UnitState.ACTIVE)
    assert Vehicle.objects.get().status == VehicleStatus.ACTIVE
    assert ops.read_obu(devices.open_unit(binding.obu)).activated is True
    assert binding.obu.installation_photo.name.endswith(".jpg")


def test_activation_with_a_mismatched_plate_is_refused(clerk, stock, approved):
    binding = issued(clerk, approved)
    Vehicle.objects.filter(pk=binding.vehicle_id).update(plate="陕A99999")
    before = state()

    with pytest.raises(VehicleMismatch) as caught:
        services.activate(binding.pk, photo=photo("installed"), actor=clerk)

    assert "陕A12345_0" in caught.value.message
    assert state() == before
    assert ops.read_obu(devices.open_unit(binding.obu)).activated is False


def test_activation_needs_a_real_photo(clerk, stock, approved):
    binding = issued(clerk, approved)
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.activate(
            binding.pk, photo=SimpleUploadedFile("x.txt", b"text", "text/plain"), actor=clerk
        )
    assert state() == before


# --- top-up ---------------------------------------------------------------------------


def test_top_up_of_100_yuan_lands_on_the_card_and_in_the_ledger(clerk, stock, approved):
    binding = active(clerk, approved)

    top = services.top_up(
        binding.card.card_no, amount_fen=10_000, channel="cash", idempotency_key="k1", actor=clerk
    )

    assert top.status == TopUpStatus.LOADED
    assert len(top.tac) == 8
    assert devices.read_card(binding.card).balance == 10_000
    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.shadow_balance_fen == 10_000
    assert ledger.balance("cash:610101001") == 10_000
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.balance(ledger.purse_code(card.card_no)) == -10_000
    assert ledger.check() == []
    loaded = AuditEvent.objects.get(action="cards.top_up_loaded")
    assert (loaded.before, loaded.after["balance_fen"]) == ({"balance_fen": 0}, 10_000)


def test_the_same_top_up_key_twice_loads_once(clerk, stock, approved):
    binding = active(clerk, approved)
    first = services.top_up(
        binding.card.card_no, amount_fen=5_000, channel="cash", idempotency_key="same", actor=clerk
    )
    again = services.top_up(
        binding.card.card_no, amount_fen=5_000, channel="cash", idempotency_key="same", actor=clerk
    )
    assert first.pk == again.pk
    assert devices.read_card(binding.card).balance == 5_000


def test_top_up_with_a_card_the_vault_does_not_know_credits_nothing(
    clerk, stock, approved, tmp_path
):
    binding = active(clerk, approved)
    # The vault's keys change under the card (a card issued by someone else).
    other = tmp_path / "other-keys.json"
    vault.generate_key_file(other)
    settings.ETCNET_KEYS_FILE = str(other)
    vault.reset_cache()
    before = state()

    with pytest.raises(MacRejected):
        services.top_up(
            binding.card.card_no,
            amount_fen=10_000,
            channel="cash",
            idempotency_key="x",
            actor=clerk,
        )

    after = state()
    # The card counted a VERIFY PIN and an INITIALIZE; no money anywhere.
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }
    assert devices.read_card(binding.card).balance == 0


class PulledOut:
    """A reader whose card is pulled out when the center sends CREDIT FOR LOAD."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[:2] == b"\x80\x52":
            raise TransportError("card removed")
        return self.inner.transmit(apdu)


def test_card_pulled_out_before_the_credit_leaves_a_safe_pending_top_up(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))

    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no,
            amount_fen=10_000,
            channel="cash",
            idempotency_key="p",
            actor=clerk,
        )

    # the money is recorded as received, not on the card; the ledger balances
    top = TopUp.objects.get()
    assert top.status == TopUpStatus.PENDING
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0
    assert devices.read_card(binding.card).balance == 0
    assert ledger.balance(ledger.LOADS_PENDING) == -10_000
    assert ledger.check() == []

    # the card is put back: the retry finishes it, once
    monkeypatch.setattr(devices, "open_unit", real_open)
    done = services.retry_top_up(top.pk, actor=clerk)
    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 10_000
    assert services.retry_top_up(top.pk, actor=clerk).status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 10_000
    assert ledger.check() == []


def test_a_pending_top_up_the_card_never_took_can_be_refunded(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=3_000, channel="cash", idempotency_key="r", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)

    refunded = services.refund_pending_top_up(TopUp.objects.get().pk, actor=clerk)

    assert refunded.status == TopUpStatus.REFUNDED
    assert ledger.balance("cash:610101001") == 0
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.check() == []


def test_debit_cards_are_not_topped_up(clerk, stock, approved):
    binding = active(clerk, approved, card_type=DEBIT)
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.top_up(
            binding.card.card_no, amount_fen=100, channel="cash", idempotency_key="d", actor=clerk
        )
    assert state() == before


@pytest.mark.parametrize("amount", [0, -5, 5_000_001])
def test_top_up_amount_must_be_sensible(clerk, stock, approved, amount):
    binding = active(clerk, approved)
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.top_up(
            binding.card.card_no,
            amount_fen=amount,
            channel="cash",
            idempotency_key="a",
            actor=clerk,
        )
    assert state() == before


# --- loss, replacement, cancellation, recycling --------------------------------------


def test_loss_report_takes_effect_at_once_on_the_status_list(clerk, stock, approved):
    binding = active(clerk, approved)

    services.report_loss(binding.card.card_no, reason="客户来电挂失", actor=clerk)

    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.state == UnitState.LOST
    event = ListEvent.objects.get()
    assert (event.medium, event.medium_id, event.list_type, event.status) == (
        "card",
        card.card_no,
        1,
        1,
    )
    assert event.published_at is None

    services.cancel_loss_report(card.card_no, actor=clerk)
    assert CardUnit.objects.get(pk=card.pk).state == UnitState.ACTIVE
    assert list(ListEvent.objects.values_list("list_type", "status")) == [(1, 1), (1, 2)]


def test_loss_report_on_a_cancelled_card_is_refused(clerk, stock, approved):
    binding = active(clerk, approved)
    services.cancel(binding.card.card_no, obu_returned=True, actor=clerk)
    before = state()

    with pytest.raises(WrongState) as caught:
        services.report_loss(binding.card.card_no, actor=clerk)

    assert "已注销" in caught.value.message
    assert state() == before


def test_replacement_moves_the_balance_only_after_the_dispute_period(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        old_no = binding.card.card_no
        services.top_up(old_no, amount_fen=8_800, channel="cash", idempotency_key="t", actor=clerk)
        services.report_loss(old_no, actor=clerk)

        replacement = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk)

        old = CardUnit.objects.get(card_no=old_no)
        new = replacement.card
        assert (old.state, new.state) == (UnitState.CANCELLED, UnitState.ACTIVE)
        assert new.is_master
        assert not old.is_master
        assert (old.shadow_balance_fen, new.shadow_balance_fen) == (0, 0)
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == -8_800
        assert devices.read_card(new).f0015.plate == "陕A12345"

        # recycling the old card before the dispute period ends is refused
        before = state()
        with pytest.raises(DisputePeriod):
            services.recycle(UnitKind.CARD, old_no, actor=clerk)
        assert state() == before

        traveller.shift(dt.timedelta(days=29))
        assert services.settle_due() == 0
        traveller.shift(dt.timedelta(days=2))
        assert services.settle_due() == 1
        assert services.settle_due() == 0
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
        assert ledger.balance(ledger.LOADS_PENDING) == -8_800
        assert ledger.check() == []


def test_cancellation_refunds_after_the_dispute_period_and_recycles(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        card_no = binding.card.card_no
        services.top_up(card_no, amount_fen=2_000, channel="cash", idempotency_key="c", actor=clerk)
        services.cancel(card_no, obu_returned=True, actor=clerk)

        assert Vehicle.objects.get().status == VehicleStatus.CANCELLED
        assert ObuUnit.objects.get(pk=binding.obu_id).state == UnitState.CANCELLED
        traveller.shift(dt.timedelta(days=31))
        services.settle_due()
        assert ledger.balance(ledger.REFUNDS_PAYABLE) == -2_000

        # the OBU is recycled; the card still holds its purse money physically
        recycled = services.recycle(UnitKind.OBU, binding.obu.contract_no, actor=clerk)
        assert recycled.state == UnitState.IN_STOCK
        assert SoftObu.load(devices.path_of(recycled)).tamper_flag == 0
        assert ledger.check() == []


def test_ledger_check_finds_a_tampered_shadow_balance(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="z", actor=clerk
    )
    CardUnit.objects.filter(pk=binding.card_id).update(shadow_balance_fen=999)

    problems = ledger.check()

    assert problems == [
        f"card {binding.card.card_no}: shadow balance 999 fen, purse postings 1000 fen"
    ]


def test_master_card_and_sub_cards_of_one_account(clerk, stock, approved):
    first = active(clerk, approved)
    other = second_car(clerk)
    sub = services.issue(
        other.pk, card_no=CARD_NOS[1], contract_no=OBU_NOS[1], card_type=DEBIT, actor=clerk
    )
    assert first.card.account_id == sub.card.account_id
    assert (first.card.is_master, sub.card.is_master) == (True, False)


def test_an_sm4_card_is_issued_and_topped_up_like_a_3des_one(clerk, approved):
    from etcnet.smartcard.crypto import Alg

    services.receive_batch(
        kind=UnitKind.CARD,
        reference="SM4-1",
        serials=["61019900000000000001"],
        emulated=True,
        alg=Alg.SM4,
        actor=clerk,
    )
    services.receive_batch(
        kind=UnitKind.OBU, reference="O-SM4", serials=[OBU_NOS[5]], emulated=True, actor=clerk
    )
    binding = services.issue(
        approved.pk,
        card_no="61019900000000000001",
        contract_no=OBU_NOS[5],
        card_type=22,
        actor=clerk,
    )
    services.activate(binding.pk, photo=photo("installed"), actor=clerk)

    top = services.top_up(
        "61019900000000000001",
        amount_fen=12_345,
        channel="mobile_payment",
        idempotency_key="s",
        actor=clerk,
    )

    assert top.status == TopUpStatus.LOADED
    reading = devices.read_card(binding.card)
    assert (reading.balance, reading.f0015.version >> 4) == (12_345, 5)
    assert ledger.balance(ledger.MOBILE) == 12_345
    assert ledger.check() == []


# --- renewal, OBU replacement, bank link, purchase TAC, randomized ledger ------------


def test_renewal_writes_the_new_expiry_date_to_the_card(clerk, stock, approved):
    with time_machine.travel(dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC), tick=False):
        binding = active(clerk, approved)
    with time_machine.travel(dt.datetime(2035, 6, 1, 2, 0, tzinfo=dt.UTC), tick=False):
        renewed = services.renew(binding.card.card_no, actor=clerk)
    assert renewed.expiry_date == dt.date(2046, 11, 21)
    assert devices.read_card(renewed).f0015.expiry_date == dt.date(2046, 11, 21)
    assert AuditEvent.objects.filter(action="cards.card_renewed").count() == 1


def test_obu_replacement_needs_a_new_activation(clerk, stock, approved):
    binding = active(clerk, approved)

    replacement = services.replace_obu(
        binding.obu.contract_no, new_contract_no=OBU_NOS[1], actor=clerk
    )

    assert replacement.status == BindingStatus.ISSUED
    assert replacement.card_id == binding.card_id
    assert ObuUnit.objects.get(contract_no=binding.obu.contract_no).state == UnitState.CANCELLED
    assert list(ListEvent.objects.values_list("medium", "list_type", "status")) == [("obu", 3, 1)]
    services.activate(replacement.pk, photo=photo("new obu"), actor=clerk)
    assert ops.read_obu(devices.open_unit(replacement.obu)).activated is True


def test_a_debit_account_is_linked_to_its_bank_account(clerk, stock, approved):
    binding = active(clerk, approved, card_type=DEBIT)
    number = binding.card.account.number

    with pytest.raises(Exception, match="Some fields"):
        services.link_bank_account(number, bank_name="", bank_account_no="12", actor=clerk)
    account = services.link_bank_account(
        number,
        bank_name="中国工商银行西安分行",
        bank_account_no="6222 0212 3456 7890 123",
        actor=clerk,
    )

    assert account.bank_account_no == "6222021234567890123"
    assert account.agreement_signed_at is not None


def test_a_purchase_with_a_provisioned_psam_is_verified_by_the_center(
    clerk, stock, approved, tmp_path
):
    from etcnet.smartcard.crypto import Alg
    from etcnet.smartcard.transport import open_emulated

    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.top_up(card_no, amount_fen=5_000, channel="cash", idempotency_key="p1", actor=clerk)
    psam_file = tmp_path / "psam.json"
    devices.provision_psam(psam_file, terminal_no="610100000099")

    result = ops.purchase(
        devices.open_unit(binding.card),
        open_emulated(psam_file),
        amount=1_234,
        when=dt.datetime(2026, 11, 21, 12, 0, 0),
    )

    assert (result.balance_before, result.balance_after) == (5_000, 3_766)
    assert vault.verify_purchase_tac(
        Alg.TDES,
        binding.card.internal_no,
        amount=1_234,
        trans_type=result.trans_type,
        terminal_no=result.terminal_no,
        terminal_seq=result.terminal_seq,
        when=result.when,
        tac=result.tac,
    )
    assert not vault.verify_purchase_tac(
        Alg.TDES,
        binding.card.internal_no,
        amount=1_235,
        trans_type=result.trans_type,
        terminal_no=result.terminal_no,
        terminal_seq=result.terminal_seq,
        when=result.when,
        tac=result.tac,
    )


def test_ledger_and_cards_agree_through_a_randomized_run_with_faults(clerk, stock, monkeypatch):
    import random

    from django.core.management import call_command

    rng = random.Random(20261121)
    real_open = devices.open_unit
    spare = list(CARD_NOS[4:])
    live: list[str] = []
    for n, plate in enumerate(["陕A10001", "陕A10002", "陕A10003", "陕A10004"]):
        application = second_car(clerk, plate=plate, serial=f"60000{n}")
        binding = services.issue(
            application.pk, card_no=CARD_NOS[n], contract_no=OBU_NOS[n], card_type=22, actor=clerk
        )
        services.activate(binding.pk, photo=photo("obu"), actor=clerk)
        live.append(CARD_NOS[n])

    def cards_agree() -> None:
        for card in CardUnit.objects.filter(card_no__in=live):
            assert devices.read_card(card).balance == card.shadow_balance_fen, card.card_no

    interrupted = 0
    for step in range(40):
        card_no = rng.choice(live)
        action = rng.choice(["top_up", "top_up", "pulled", "retry", "loss", "replace", "cancel"])
        try:
            if action in ("top_up", "pulled"):
                if action == "pulled":
                    monkeypatch.setattr(
                        devices, "open_unit", lambda unit: PulledOut(real_open(unit))
                    )
                services.top_up(
                    card_no,
                    amount_fen=rng.randint(1, 50_000),
                    channel=rng.choice(["cash", "bank_transfer", "mobile_payment"]),
                    idempotency_key=f"r{step}",
                    actor=clerk,
                )
            elif action == "retry":
                for top in TopUp.objects.filter(status=TopUpStatus.PENDING):
                    services.retry_top_up(top.pk, actor=clerk)
            elif action == "loss":
                services.report_loss(card_no, actor=clerk)
            elif action == "replace" and spare:
                new = spare.pop()
                services.replace_card(card_no, new_card_no=new, actor=clerk)
                live.remove(card_no)
                live.append(new)
            elif action == "cancel" and len(live) > 1:
                services.cancel(card_no, obu_returned=True, actor=clerk)
                live.remove(card_no)
        except LoadInterrupted:
            interrupted += 1
        except (WrongState, TopUpPending):
            pass  # refused: nothing may have moved, as the checks below prove
        finally:
            monkeypatch.setattr(devices, "open_unit", real_open)
        assert ledger.check() == [], f"after step {step} ({action} on {card_no})"
        cards_agree()
    # The run did real work: money loaded, loads interrupted and finished later.
    assert TopUp.objects.filter(status=TopUpStatus.LOADED).count() >= 5
    assert interrupted >= 2
    assert TopUp.objects.filter(status=TopUpStatus.LOADED, tac__gt="").count() >= 5
    services.settle_due(now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert ledger.check() == []
    call_command("ledger", "check")


def _pending_top_up(clerk, card_no, amount, key, monkeypatch):
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            card_no, amount_fen=amount, channel="cash", idempotency_key=key, actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    return TopUp.objects.get(idempotency_key=key)


def test_no_second_top_up_starts_while_one_is_pending(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    card_no = binding.card.card_no
    _pending_top_up(clerk, card_no, 10_000, "a", monkeypatch)
    before = state()

    with pytest.raises(TopUpPending):
        services.top_up(
            card_no, amount_fen=20_000, channel="cash", idempotency_key="b", actor=clerk
        )

    assert state() == before


class LostAnswer:
    """The card executes CREDIT FOR LOAD, but its answer never comes back."""

    def __init__(self, inner):
        self.inner = inner

    def transmit(self, apdu):
        response = self.inner.transmit(apdu)
        if apdu[:2] == b"\x80\x52":
            raise TransportError("answer lost")
        return response


def test_a_load_whose_answer_was_lost_is_confirmed_from_the_card_log(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=6_000, channel="cash", idempotency_key="l", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    top = TopUp.objects.get()
    assert devices.read_card(binding.card).balance == 6_000  # the card has it
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0  # the center not yet

    done = services.retry_top_up(top.pk, actor=clerk)

    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 6_000  # not credited twice
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 6_000
    event = AuditEvent.objects.filter(action="cards.top_up_loaded").last()
    assert event.after["confirmed_from_card_log"]["amount"] == 6_000
    assert ledger.check() == []


def test_a_refund_is_refused_once_the_card_took_the_load(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=3_000, channel="cash", idempotency_key="f", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    before = state()

    with pytest.raises(CardFault):
        services.refund_pending_top_up(TopUp.objects.get().pk, actor=clerk)

    assert {k: v for k, v in state().items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }


class CorruptTac:
    """A reader that garbles the TAC in the card's answer to CREDIT FOR LOAD."""

    def __init__(self, inner):
        self.inner = inner

    def transmit(self, apdu):
        response = self.inner.transmit(apdu)
        if apdu[:2] == b"\x80\x52" and response[-2:] == b"\x90\x00":
            return bytes([response[0] ^ 0xFF]) + response[1:]
        return response


def test_a_wrong_tac_credits_nothing_and_the_retry_does_not_either(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: CorruptTac(real_open(unit)))
    with pytest.raises(MacRejected):
        services.top_up(
            binding.card.card_no, amount_fen=4_000, channel="cash", idempotency_key="t", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    top = TopUp.objects.get()
    assert top.status == TopUpStatus.PENDING
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0

    # The card did credit itself (its TAC was garbled on the way): the retry
    # finds that load in the card's log and confirms exactly that one.
    done = services.retry_top_up(top.pk, actor=clerk)
    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 4_000
    assert ledger.check() == []


def test_the_idempotency_key_is_tied_to_its_request(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="k", actor=clerk
    )
    before = state()

    with pytest.raises(IdempotencyConflict):
        services.top_up(
            binding.card.card_no, amount_fen=9_999, channel="cash", idempotency_key="k", actor=clerk
        )
    with pytest.raises(InvalidInput):
        services.top_up(
            binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="", actor=clerk
        )

    assert state() == before


def test_a_card_with_a_pending_top_up_is_not_cancelled_or_replaced(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    _pending_top_up(clerk, binding.card.card_no, 2_000, "p", monkeypatch)
    before = state()

    with pytest.raises(TopUpPending):
        services.cancel(binding.card.card_no, obu_returned=True, actor=clerk)
    with pytest.raises(TopUpPending):
        services.replace_card(binding.card.card_no, new_card_no=CARD_NOS[1], actor=clerk)

    assert state() == before


def test_a_replaced_cards_balance_is_loaded_onto_the_new_card_after_the_period(
    clerk, stock, approved
):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        old_no = binding.card.card_no
        services.top_up(old_no, amount_fen=8_800, channel="cash", idempotency_key="t", actor=clerk)
        new = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk).card
        assert TopUp.objects.filter(card=new).count() == 0  # nothing before the period ends

        traveller.shift(dt.timedelta(days=31))
        services.settle_due()

        transfer = TopUp.objects.get(card=new)
        assert (transfer.channel, transfer.status, transfer.amount_fen) == (
            "balance_transfer",
            "pending",
            8_800,
        )
        done = services.retry_top_up(transfer.pk, actor=clerk)
        assert done.status == TopUpStatus.LOADED
        assert devices.read_card(new).balance == 8_800
        assert CardUnit.objects.get(pk=new.pk).shadow_balance_fen == 8_800
        assert ledger.balance(ledger.LOADS_PENDING) == 0
        assert ledger.check() == []


def test_activation_refuses_a_lost_card(clerk, stock, approved):
    binding = issued(clerk, approved)
    services.report_loss(binding.card.card_no, actor=clerk)
    before = state()
    with pytest.raises(WrongState):
        services.activate(binding.pk, photo=photo("obu"), actor=clerk)
    assert state() == before


def test_recycled_units_leave_every_list_and_a_purse_is_emptied(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        card_no, obu_no = binding.card.card_no, binding.obu.contract_no
        services.top_up(card_no, amount_fen=2_000, channel="cash", idempotency_key="c", actor=clerk)
        services.report_loss(card_no, actor=clerk)
        services.cancel(card_no, obu_returned=False, card_returned=False, actor=clerk)
        traveller.shift(dt.timedelta(days=31))
        services.settle_due()

        services.recycle(UnitKind.CARD, card_no, actor=clerk)
        services.recycle(UnitKind.OBU, obu_no, actor=clerk)

    assert services.listed_types(Medium.CARD, card_no) == set()
    assert services.listed_types(Medium.OBU, obu_no) == set()
    recycled = CardUnit.objects.get(card_no=card_no)
    assert recycled.state == UnitState.IN_STOCK
    assert devices.read_card(recycled).balance == 0
    assert devices.read_card(recycled).f0015 is None
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == -2_000
    assert ledger.check() == []


def test_a_returned_card_is_not_listed_on_cancellation_but_a_kept_one_is(clerk, stock, approved):
    first = active(clerk, approved)
    services.cancel(first.card.card_no, obu_returned=True, card_returned=True, actor=clerk)
    assert services.listed_types(Medium.CARD, first.card.card_no) == set()

    other = second_car(clerk)
    second = services.issue(
        other.pk, card_no=CARD_NOS[1], contract_no=OBU_NOS[1], card_type=22, actor=clerk
    )
    services.cancel(second.card.card_no, obu_returned=True, card_returned=False, actor=clerk)
    assert services.listed_types(Medium.CARD, second.card.card_no) == {3}


def test_withdrawing_a_loss_keeps_a_suspension_and_resume_lifts_it(clerk, stock, approved):
    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.suspend(card_no, reason="欠费", actor=clerk)
    services.report_loss(card_no, actor=clerk)

    services.cancel_loss_report(card_no, actor=clerk)
    assert CardUnit.objects.get(card_no=card_no).state == UnitState.SUSPENDED
    assert services.listed_types(Medium.CARD, card_no) == {2}

    services.resume(card_no, actor=clerk)
    assert CardUnit.objects.get(card_no=card_no).state == UnitState.ACTIVE
    assert services.listed_types(Medium.CARD, card_no) == set()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"issuer_id": "C9C2CEF761010001", "keys": {"3des": {}}}', "KeyError"),
        ("not json", "JSONDecodeError"),
    ],
)
def test_a_broken_key_file_is_a_clear_vault_error(settings, tmp_path, content, problem):
    broken = tmp_path / "broken.json"
    broken.write_text(content)
    settings.ETCNET_KEYS_FILE = str(broken)
    vault.reset_cache()
    from etcnet.cards.vault import VaultNotConfigured

    with pytest.raises(VaultNotConfigured) as caught:
        vault.master()
    assert caught.value.params == {"source": str(broken), "problem": problem}
    assert caught.value.status == 503


def test_an_overlong_reason_is_refused_before_anything_changes(clerk, stock, approved):
    binding = active(clerk, approved)
    before = state()
    with pytest.raises(InvalidInput):
        services.report_loss(binding.card.card_no, reason="很" * 201, actor=clerk)
    assert state() == before


def test_an_uploaded_purchase_debits_the_purse_once_and_only_with_its_tac(
    clerk, stock, approved, tmp_path
):
    from etcnet.smartcard.transport import open_emulated

    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.top_up(card_no, amount_fen=5_000, channel="cash", idempotency_key="u", actor=clerk)
    psam = tmp_path / "psam.json"
    devices.provision_psam(psam, terminal_no="610100000099")
    when = dt.datetime(2026, 11, 21, 12, 0, 0)
    result = ops.purchase(
        devices.open_unit(binding.card), open_emulated(psam), amount=1_234, when=when
    )
    upload = {
        "amount_fen": 1_234,
        "trans_type": result.trans_type,
        "terminal_no": "610100000099",
        "terminal_seq": int.from_bytes(result.terminal_seq, "big"),
        "when": result.when,
        "tac": result.tac.hex().upper(),
    }
    forged = {**upload, "tac": "00000000"}
    before = state()
    with pytest.raises(MacRejected):
        services.record_purchase(card_no, **forged, actor=clerk)
    assert state() == before

    first = services.record_purchase(card_no, **upload, actor=clerk)
    again = services.record_purchase(card_no, **upload, actor=clerk)

    assert first.pk == again.pk
    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.shadow_balance_fen == 3_766
    assert devices.read_card(card).balance == 3_766
    assert ledger.balance(ledger.TOLLS_PAYABLE) == -1_234
    assert ledger.check() == []


def test_replacing_a_card_still_waiting_for_a_balance_is_refused(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="w", actor=clerk
    )
    new = services.replace_card(binding.card.card_no, new_card_no=CARD_NOS[1], actor=clerk).card
    before = state()

    with pytest.raises(DisputePeriod) as caught:
        services.replace_card(new.card_no, new_card_no=CARD_NOS[2], actor=clerk)
    with pytest.raises(DisputePeriod):
        services.cancel(new.card_no, obu_returned=True, actor=clerk)

    assert binding.card.card_no in caught.value.message
    assert state() == before
