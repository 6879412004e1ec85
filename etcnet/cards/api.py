"""Card endpoints: inventory, issuing, activation, top-up and the lifecycle.
Thin: parse, call a service, shape. Money is integer fen."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from etcnet.cards import selectors, services
from etcnet.cards.models import CardUnit, UnitKind
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput
from etcnet.core.roles import Role, has_role
from etcnet.core.schemas import errors
from etcnet.core.validators import gettext_noop
from etcnet.lists.models import ListEvent

router = Router()

READERS = (Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR)
# Error statuses (etcnet.core.schemas): a state change refused by the unit's
# state is 409; one that talks to the card or OBU also answers 502 when the
# device fails and 422 when its MAC or TAC does not verify.
READ = errors(400, 401, 403, 404)
STATE = errors(400, 401, 403, 404, 409)
DEVICE = errors(400, 401, 403, 404, 409, 422, 502)


def _require_reader(request: HttpRequest) -> None:
    if not has_role(request.user, *READERS):
        raise Forbidden()


class BatchIn(Schema):
    kind: str
    reference: str
    serials: list[str]
    emulated: bool = False
    alg: str = "3des"


class BatchOut(Schema):
    id: int
    kind: str
    reference: str
    quantity: int


class MoveIn(Schema):
    kind: str
    serials: list[str]
    to_outlet: str


class IssueIn(Schema):
    application_id: int
    card_no: str
    contract_no: str
    card_type: int


class BindingOut(Schema):
    id: int
    status: str
    vehicle_id: int
    plate: str
    plate_color: int
    card_no: str
    contract_no: str


class CardOut(Schema):
    card_no: str
    state: str
    card_type: int | None
    is_master: bool
    account: str | None
    balance_fen: int
    expiry_date: str | None
    plate: str | None


class TopUpIn(Schema):
    amount_fen: int
    channel: str
    idempotency_key: str


class TopUpOut(Schema):
    id: int
    status: str
    amount_fen: int
    channel: str
    tac: str
    balance_fen: int


class MovedOut(Schema):
    moved: int


class UnitStateOut(Schema):
    serial: str
    state: str


class ObuStateOut(Schema):
    contract_no: str
    state: str


class BankOut(Schema):
    number: str
    bank_name: str


class ReasonIn(Schema):
    reason: str = ""


class ReplaceIn(Schema):
    new_card_no: str
    # The old card handed in and read at the counter: its purse moves at once.
    read_old_card: bool = False
    card_returned: bool = True


class CancelIn(Schema):
    obu_returned: bool = True
    card_returned: bool = True


class ListEventOut(Schema):
    medium: str
    medium_id: str
    list_type: int
    status: int
    reason: str
    occurred_at: dt.datetime
    published_at: dt.datetime | None


def _kind(value: str) -> UnitKind:
    if value not in UnitKind.values:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "kind", "invalid_choice", gettext_noop("Choose one of the listed values.")
                )
            ]
        )
    return UnitKind(value)


def _binding(binding: Any) -> dict[str, Any]:
    return {
        "id": binding.pk,
        "status": binding.status,
        "vehicle_id": binding.vehicle_id,
        "plate": binding.vehicle.plate,
        "plate_color": binding.vehicle.plate_color,
        "card_no": binding.card.card_no,
        "contract_no": binding.obu.contract_no,
    }


def _card(card: CardUnit) -> dict[str, Any]:
    card.refresh_from_db()
    live = selectors.live_binding(card)
    return {
        "card_no": card.card_no,
        "state": card.state,
        "card_type": card.card_type,
        "is_master": card.is_master,
        "account": card.account.number if card.account else None,
        "balance_fen": card.shadow_balance_fen,
        "expiry_date": card.expiry_date.isoformat() if card.expiry_date else None,
        "plate": live.vehicle.plate if live else None,
    }


@router.post("/batches", response={201: BatchOut, **STATE})
def receive_batch(request: HttpRequest, payload: BatchIn) -> Any:
    """Blank cards or OBUs received into the caller's outlet."""
    from etcnet.smartcard.crypto import Alg

    batch = services.receive_batch(
        kind=_kind(payload.kind),
        reference=payload.reference,
        serials=payload.serials,
        emulated=payload.emulated,
        alg=Alg.SM4 if payload.alg == "sm4" else Alg.TDES,
        actor=request.user,
    )
    return Status(
        201,
        {
            "id": batch.pk,
            "kind": batch.kind,
            "reference": batch.reference,
            "quantity": batch.quantity,
        },
    )


@router.post("/moves", response={200: MovedOut, **STATE})
def move(request: HttpRequest, payload: MoveIn) -> Any:
    moved = services.move_units(
        kind=_kind(payload.kind),
        serials=payload.serials,
        to_outlet=payload.to_outlet,
        actor=request.user,
    )
    return {"moved": moved}


@router.post("/issuances", response={201: BindingOut, **DEVICE})
def issue(request: HttpRequest, payload: IssueIn) -> Any:
    """用户卡注册 and OBU issuance for an approved application."""
    binding = services.issue(
        payload.application_id,
        card_no=payload.card_no,
        contract_no=payload.contract_no,
        card_type=payload.card_type,
        actor=request.user,
    )
    return Status(201, _binding(binding))


@router.post("/bindings/{binding_id}/activation", response={200: BindingOut, **DEVICE})
def activate(request: HttpRequest, binding_id: int, photo: File[UploadedFile]) -> Any:
    """Activates the OBU (multipart field `photo`: the installation photo)."""
    return _binding(services.activate(binding_id, photo=photo, actor=request.user))


@router.get("/cards/{card_no}", response={200: CardOut, **READ})
def get_card(request: HttpRequest, card_no: str) -> Any:
    _require_reader(request)
    return _card(selectors.find_card(card_no, viewer=request.user))


@router.post("/cards/{card_no}/top-ups", response={201: TopUpOut, **DEVICE})
def top_up(request: HttpRequest, card_no: str, payload: TopUpIn) -> Any:
    """圈存 through the counter's reader. The idempotency key makes a retry safe."""
    done = services.top_up(
        card_no,
        amount_fen=payload.amount_fen,
        channel=payload.channel,
        idempotency_key=payload.idempotency_key,
        actor=request.user,
    )
    done.card.refresh_from_db()
    return Status(
        201,
        {
            "id": done.pk,
            "status": done.status,
            "amount_fen": done.amount_fen,
            "channel": done.channel,
            "tac": done.tac,
            "balance_fen": done.card.shadow_balance_fen,
        },
    )


@router.post("/cards/{card_no}/loss", response={200: CardOut, **STATE})
def report_loss(request: HttpRequest, card_no: str, payload: ReasonIn) -> Any:
    return _card(services.report_loss(card_no, reason=payload.reason, actor=request.user))


@router.delete("/cards/{card_no}/loss", response={200: CardOut, **STATE})
def cancel_loss(request: HttpRequest, card_no: str) -> Any:
    return _card(services.cancel_loss_report(card_no, actor=request.user))


@router.post("/cards/{card_no}/replacement", response={201: BindingOut, **DEVICE})
def replace(request: HttpRequest, card_no: str, payload: ReplaceIn) -> Any:
    binding = services.replace_card(
        card_no,
        new_card_no=payload.new_card_no,
        card_returned=payload.card_returned,
        read_old_card=payload.read_old_card,
        actor=request.user,
    )
    return Status(201, _binding(binding))


@router.post("/cards/{card_no}/cancellation", response={200: CardOut, **DEVICE})
def cancel(request: HttpRequest, card_no: str, payload: CancelIn) -> Any:
    return _card(
        services.cancel(
            card_no,
            obu_returned=payload.obu_returned,
            card_returned=payload.card_returned,
            actor=request.user,
        )
    )


@router.post("/units/{kind}/{serial}/recycling", response={200: UnitStateOut, **DEVICE})
def recycle(request: HttpRequest, kind: str, serial: str) -> Any:
    unit = services.recycle(_kind(kind), serial, actor=request.user)
    return {"serial": serial, "state": unit.state}


@router.get("/list-events", response={200: list[ListEventOut], **errors(401, 403)})
def pending_list_events(request: HttpRequest) -> Any:
    """Status-list events not yet published to terminals, newest first."""
    _require_reader(request)
    return list(ListEvent.objects.filter(published_at__isnull=True).order_by("-occurred_at")[:500])


class ObuReplaceIn(Schema):
    new_contract_no: str


class BankIn(Schema):
    bank_name: str
    bank_account_no: str


@router.post("/cards/{card_no}/renewal", response={200: CardOut, **DEVICE})
def renew(request: HttpRequest, card_no: str) -> Any:
    return _card(services.renew(card_no, actor=request.user))


@router.post("/cards/{card_no}/suspension", response={200: CardOut, **STATE})
def suspend(request: HttpRequest, card_no: str, payload: ReasonIn) -> Any:
    return _card(services.suspend(card_no, reason=payload.reason, actor=request.user))


@router.post("/obus/{contract_no}/loss", response={200: ObuStateOut, **STATE})
def obu_loss(request: HttpRequest, contract_no: str, payload: ReasonIn) -> Any:
    obu = services.report_obu_loss(contract_no, reason=payload.reason, actor=request.user)
    return {"contract_no": obu.contract_no, "state": obu.state}


@router.post("/obus/{contract_no}/replacement", response={201: BindingOut, **DEVICE})
def replace_obu(request: HttpRequest, contract_no: str, payload: ObuReplaceIn) -> Any:
    binding = services.replace_obu(
        contract_no, new_contract_no=payload.new_contract_no, actor=request.user
    )
    return Status(201, _binding(binding))


@router.put("/accounts/{number}/bank", response={200: BankOut, **STATE})
def link_bank(request: HttpRequest, number: str, payload: BankIn) -> Any:
    account = services.link_bank_account(
        number,
        bank_name=payload.bank_name,
        bank_account_no=payload.bank_account_no,
        actor=request.user,
    )
    return {"number": account.number, "bank_name": account.bank_name}


def _top_up(done: Any) -> dict[str, Any]:
    done.card.refresh_from_db()
    return {
        "id": done.pk,
        "status": done.status,
        "amount_fen": done.amount_fen,
        "channel": done.channel,
        "tac": done.tac,
        "balance_fen": done.card.shadow_balance_fen,
    }


@router.post("/top-ups/{top_up_id}/retry", response={200: TopUpOut, **DEVICE})
def retry_top_up(request: HttpRequest, top_up_id: int) -> Any:
    """Finishes a pending top-up (interrupted, or a balance moved from a replaced card)."""
    return _top_up(services.retry_top_up(top_up_id, actor=request.user))


@router.post("/top-ups/{top_up_id}/refund", response={200: TopUpOut, **DEVICE})
def refund_top_up(request: HttpRequest, top_up_id: int) -> Any:
    """Gives back a pending top-up the card never took."""
    return _top_up(services.refund_pending_top_up(top_up_id, actor=request.user))


@router.post("/cards/{card_no}/resumption", response={200: CardOut, **STATE})
def resume(request: HttpRequest, card_no: str) -> Any:
    return _card(services.resume(card_no, actor=request.user))
