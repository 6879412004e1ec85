"""Issuing and activation: card and OBU personalised and bound, activation with the
installation photo, accounts, SM4 cards, the vault's key file.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import make_user, photo
from etcnet.cards import devices, ledger, services, vault
from etcnet.cards.errors import AlreadyBound, NotApproved, VehicleMismatch, WrongState
from etcnet.cards.models import BindingStatus, TopUpStatus, UnitKind, UnitState
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, second_car
from etcnet.cards.tests.services import DEBIT, STORED_VALUE, active, issued, state
from etcnet.core.errors import NotFound
from etcnet.core.models import AuditEvent
from etcnet.issuance.models import Outlet, Vehicle, VehicleStatus
from etcnet.smartcard import ops

pytestmark = pytest.mark.django_db


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


def test_activation_refuses_a_lost_card(clerk, stock, approved):
    binding = issued(clerk, approved)
    services.report_loss(binding.card.card_no, actor=clerk)
    before = state()
    with pytest.raises(WrongState):
        services.activate(binding.pk, photo=photo("obu"), actor=clerk)
    assert state() == before


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
