"""Card pages for the clerk (mobile first): issue, activate, card (top-up, loss,
replacement, cancellation), account, inventory. Each view reads the form,
calls one service, and redirects or shows the errors."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.cards import selectors, services
from etcnet.cards.models import (
    Account,
    Binding,
    TopUpChannel,
    TopUpStatus,
    UnitKind,
)
from etcnet.core.codes import CardType
from etcnet.core.errors import DomainError, FieldIssue, InvalidInput
from etcnet.core.money import MoneyError, parse_yuan
from etcnet.core.roles import Role, role_required
from etcnet.core.validators import gettext_noop
from etcnet.issuance import selectors as issuance_selectors
from etcnet.lists.models import ListEvent

CLERK = (Role.ISSUANCE_CLERK,)
READERS = (Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR)


def _errors(error: DomainError) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for issue in error.issues:
        by_field.setdefault(issue.field, []).append(issue.message)
    return by_field


def _fail(request: HttpRequest, error: DomainError) -> None:
    messages.error(request, error.message)
    for issue in error.issues:
        messages.error(request, issue.message)


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def issue(request: HttpRequest, application_id: int) -> HttpResponse:
    """用户卡注册 and OBU issuance for an approved application."""
    application = issuance_selectors.get_application(application_id, viewer=request.user)
    outlet = selectors.outlet_of(request.user)
    values = {
        "card_type": request.POST.get("card_type", str(CardType.STORED_VALUE.value)),
        "card_no": request.POST.get("card_no", ""),
        "contract_no": request.POST.get("contract_no", ""),
    }
    errors: dict[str, list[str]] = {}
    error_message = None
    status = 200
    if request.method == "POST":
        try:
            binding = services.issue(
                application.pk,
                card_no=values["card_no"],
                contract_no=values["contract_no"],
                card_type=int(values["card_type"] or 0),
                actor=request.user,
            )
        except (DomainError, ValueError) as error:
            if not isinstance(error, DomainError):
                error = InvalidInput(
                    issues=[
                        FieldIssue(
                            "card_type",
                            "invalid_choice",
                            gettext_noop("Choose one of the listed values."),
                        )
                    ]
                )
            errors, error_message, status = _errors(error), error.message, error.status
        else:
            messages.success(request, _("Card and OBU issued. Install the OBU, then activate it."))
            return redirect("cards:binding", binding.pk)
    return TemplateResponse(
        request,
        "cards/issue.html",
        {
            "application": application,
            "cards": selectors.stock_cards(outlet) if outlet else [],
            "obus": selectors.stock_obus(outlet) if outlet else [],
            "card_types": [(str(t.value), t.label) for t in CardType],
            "values": values,
            "errors": errors,
            "error": error_message,
        },
        status=status,
    )


@role_required(*READERS)
@require_http_methods(["GET", "POST"])
def binding(request: HttpRequest, binding_id: int) -> HttpResponse:
    """A binding; the clerk activates its OBU here with the installation photo."""
    found = Binding.objects.select_related("vehicle", "card", "obu").filter(pk=binding_id).first()
    if found is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    errors: dict[str, list[str]] = {}
    error_message = None
    status = 200
    if request.method == "POST":
        photo = request.FILES.get("photo")
        try:
            if photo is None:
                raise InvalidInput(
                    issues=[
                        FieldIssue("photo", "required", gettext_noop("Choose a photo to upload."))
                    ]
                )
            services.activate(found.pk, photo=photo, actor=request.user)
        except DomainError as error:
            errors, error_message, status = _errors(error), error.message, error.status
        else:
            messages.success(request, _("OBU activated: the vehicle can use ETC lanes."))
            return redirect("cards:card", found.card.card_no)
    return TemplateResponse(
        request,
        "cards/binding.html",
        {"binding": found, "errors": errors, "error": error_message},
        status=status,
    )


@role_required(*READERS)
def card(request: HttpRequest, card_no: str) -> HttpResponse:
    """The card: its vehicle, balance, recent movements and the actions its state allows."""
    found = selectors.find_card(card_no, viewer=request.user)
    outlet = selectors.outlet_of(request.user)
    return TemplateResponse(
        request,
        "cards/card.html",
        {
            "card": found,
            "binding": selectors.live_binding(found),
            "movements": selectors.purse_movements(found),
            "top_ups": selectors.recent_top_ups(found),
            "pending": found.top_ups.filter(status=TopUpStatus.PENDING).order_by("created_at"),
            "channels": [
                (c.value, c.label)
                for c in (
                    TopUpChannel.CASH,
                    TopUpChannel.BANK_TRANSFER,
                    TopUpChannel.MOBILE_PAYMENT,
                )
            ],
            "spare_cards": selectors.stock_cards(outlet, limit=50) if outlet else [],
            "idempotency_key": services.new_idempotency_key(),
            "list_events": ListEvent.objects.filter(medium_id=found.card_no).order_by(
                "-occurred_at"
            )[:10],
            "payouts": found.payouts.all(),
        },
    )


@role_required(*CLERK)
@require_POST
def top_up(request: HttpRequest, card_no: str) -> HttpResponse:
    """圈存: the amount in yuan (at most two decimals), the channel."""
    try:
        try:
            amount = parse_yuan(request.POST.get("amount", ""))
        except MoneyError:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "amount",
                        "bad_amount",
                        gettext_noop("Enter an amount in yuan with at most two decimals."),
                    )
                ]
            ) from None
        done = services.top_up(
            card_no,
            amount_fen=int(amount),
            channel=request.POST.get("channel", ""),
            idempotency_key=request.POST.get("idempotency_key") or services.new_idempotency_key(),
            actor=request.user,
        )
    except DomainError as error:
        _fail(request, error)
    else:
        _top_up_message(request, done)
    return redirect("cards:card", card_no)


def _top_up_message(request: HttpRequest, done: Any) -> None:
    amount = {"amount": f"{done.amount_fen / 100:.2f}"}
    if done.status == TopUpStatus.LOADED:
        messages.success(request, _("Top-up of %(amount)s yuan loaded onto the card.") % amount)
    elif done.status == TopUpStatus.PENDING:
        messages.warning(
            request,
            _(
                "%(amount)s yuan received but not yet on the card: "
                "retry with the card on the reader."
            )
            % amount,
        )
    else:
        messages.info(
            request, _("This top-up was refunded.") if done.status == TopUpStatus.REFUNDED else ""
        )


@role_required(*CLERK)
@require_POST
def retry_top_up(request: HttpRequest, card_no: str, top_up_id: int) -> HttpResponse:
    try:
        done = services.retry_top_up(top_up_id, actor=request.user)
    except DomainError as error:
        _fail(request, error)
    else:
        _top_up_message(request, done)
    return redirect("cards:card", card_no)


@role_required(*CLERK)
@require_POST
def refund_top_up(request: HttpRequest, card_no: str, top_up_id: int) -> HttpResponse:
    _act(
        request,
        lambda: services.refund_pending_top_up(top_up_id, actor=request.user),
        _("The money of the unfinished top-up was refunded."),
    )
    return redirect("cards:card", card_no)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def resume(request: HttpRequest, card_no: str) -> HttpResponse:
    _act(request, lambda: services.resume(card_no, actor=request.user), _("Suspension lifted."))
    return redirect("cards:card", card_no)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def report_loss(request: HttpRequest, card_no: str) -> HttpResponse:
    try:
        services.report_loss(card_no, reason=request.POST.get("reason", ""), actor=request.user)
    except DomainError as error:
        _fail(request, error)
    else:
        messages.success(request, _("Loss reported: the card is on the status list at once."))
    return redirect("cards:card", card_no)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def cancel_loss(request: HttpRequest, card_no: str) -> HttpResponse:
    try:
        services.cancel_loss_report(card_no, actor=request.user)
    except DomainError as error:
        _fail(request, error)
    else:
        messages.success(request, _("Loss report withdrawn."))
    return redirect("cards:card", card_no)


@role_required(*CLERK)
@require_POST
def replace(request: HttpRequest, card_no: str) -> HttpResponse:
    handed_in = request.POST.get("old_card") == "read"
    try:
        binding = services.replace_card(
            card_no,
            new_card_no=request.POST.get("new_card_no", ""),
            card_returned=handed_in,
            read_old_card=handed_in,
            actor=request.user,
        )
    except DomainError as error:
        _fail(request, error)
        return redirect("cards:card", card_no)
    if handed_in:
        # The new card is in the reader: its share of the old purse is loaded now;
        # a load that does not complete stays pending on the new card's page.
        transfer = binding.card.top_ups.filter(
            channel=TopUpChannel.BALANCE_TRANSFER, status=TopUpStatus.PENDING
        ).first()
        if transfer is not None:
            try:
                services.retry_top_up(transfer.pk, actor=request.user)
            except DomainError as error:
                _fail(request, error)
        messages.success(
            request,
            _(
                "Card replaced; the old card's balance moved to the new card at once "
                "(a load that did not complete waits on the new card's page)."
            ),
        )
    else:
        messages.success(
            request,
            _(
                "Card replaced; the old balance moves to the new card "
                "after the fund-dispute period."
            ),
        )
    return redirect("cards:card", binding.card.card_no)


@role_required(*CLERK)
@require_POST
def cancel(request: HttpRequest, card_no: str) -> HttpResponse:
    try:
        services.cancel(
            card_no,
            obu_returned=request.POST.get("obu_returned") == "on",
            card_returned=request.POST.get("card_returned") == "on",
            actor=request.user,
        )
    except DomainError as error:
        _fail(request, error)
    else:
        messages.success(
            request, _("Account cancelled; the balance is refunded after the fund-dispute period.")
        )
    return redirect("cards:card", card_no)


@role_required(*READERS)
def account(request: HttpRequest, number: str) -> HttpResponse:
    found = Account.objects.select_related("customer").filter(number=number).first()
    if found is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    cards = list(selectors.account_cards(found))
    return TemplateResponse(
        request,
        "cards/account.html",
        {
            "account": found,
            "cards": cards,
            "total_fen": sum(c.shadow_balance_fen for c in cards),
            "movements": selectors.account_movements(found),
        },
    )


@role_required(*READERS)
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    return TemplateResponse(
        request,
        "cards/search.html",
        {"q": q, "results": selectors.search_cards(q, viewer=request.user) if q else []},
    )


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_http_methods(["GET", "POST"])
def inventory(request: HttpRequest) -> HttpResponse:
    """The outlet's stock; receiving a batch of blank cards or OBUs."""
    outlet = selectors.outlet_of(request.user)
    errors: dict[str, list[str]] = {}
    error_message = None
    values: dict[str, Any] = {"kind": "card", "reference": "", "first": "", "count": "10"}
    status = 200
    if request.method == "POST":
        values = {
            k: request.POST.get(k, "").strip() for k in ("kind", "reference", "first", "count")
        }
        try:
            serials = _serial_range(values["first"], values["count"])
            services.receive_batch(
                kind=UnitKind(values["kind"])
                if values["kind"] in UnitKind.values
                else UnitKind.CARD,
                reference=values["reference"],
                serials=serials,
                emulated=request.POST.get("emulated") == "on",
                actor=request.user,
            )
        except DomainError as error:
            errors, error_message, status = _errors(error), error.message, error.status
        else:
            messages.success(request, _("Batch received into stock."))
            return redirect("cards:inventory")
    return TemplateResponse(
        request,
        "cards/inventory.html",
        {
            "outlet": outlet,
            "counts": selectors.state_counts(outlet) if outlet else {},
            "cards": selectors.stock_cards(outlet, limit=30) if outlet else [],
            "obus": selectors.stock_obus(outlet, limit=30) if outlet else [],
            "values": values,
            "errors": errors,
            "error": error_message,
        },
        status=status,
    )


def _serial_range(first: str, count: str) -> list[str]:
    if not first.isdigit() or not count.isdigit() or not 1 <= int(count) <= 1000:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "first",
                    "bad_range",
                    gettext_noop("Give the first serial (digits) and a count from 1 to 1000."),
                )
            ]
        )
    width = len(first)
    return [str(int(first) + n).zfill(width) for n in range(int(count))]


@role_required(*READERS)
def list_events(request: HttpRequest) -> HttpResponse:
    """Status-list events not yet published to terminals (the next issue publishes them)."""
    pending = ListEvent.objects.filter(published_at__isnull=True).order_by("-occurred_at")[:200]
    return TemplateResponse(request, "cards/list_events.html", {"events": pending})


def _act(request: HttpRequest, call: Any, success: str) -> bool:
    try:
        call()
    except DomainError as error:
        _fail(request, error)
        return False
    messages.success(request, success)
    return True


@role_required(*CLERK)
@require_POST
def renew(request: HttpRequest, card_no: str) -> HttpResponse:
    _act(request, lambda: services.renew(card_no, actor=request.user), _("Card renewed."))
    return redirect("cards:card", card_no)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def suspend(request: HttpRequest, card_no: str) -> HttpResponse:
    _act(
        request,
        lambda: services.suspend(
            card_no, reason=request.POST.get("reason", ""), actor=request.user
        ),
        _("Card suspended: it is on the status list."),
    )
    return redirect("cards:card", card_no)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def obu_loss(request: HttpRequest, contract_no: str) -> HttpResponse:
    binding_id = request.POST.get("binding", "")
    _act(
        request,
        lambda: services.report_obu_loss(
            contract_no, reason=request.POST.get("reason", ""), actor=request.user
        ),
        _("OBU loss reported: it is on the status list at once."),
    )
    return (
        redirect("cards:binding", binding_id) if binding_id.isdigit() else redirect("cards:search")
    )


@role_required(*CLERK)
@require_POST
def replace_obu(request: HttpRequest, contract_no: str) -> HttpResponse:
    result: dict[str, Any] = {}

    def call() -> None:
        result["binding"] = services.replace_obu(
            contract_no, new_contract_no=request.POST.get("new_contract_no", ""), actor=request.user
        )

    if _act(request, call, _("OBU replaced; install and activate the new one.")):
        return redirect("cards:binding", result["binding"].pk)
    binding_id = request.POST.get("binding", "")
    return (
        redirect("cards:binding", binding_id) if binding_id.isdigit() else redirect("cards:search")
    )


@role_required(*CLERK)
@require_POST
def link_bank(request: HttpRequest, number: str) -> HttpResponse:
    _act(
        request,
        lambda: services.link_bank_account(
            number,
            bank_name=request.POST.get("bank_name", ""),
            bank_account_no=request.POST.get("bank_account_no", ""),
            actor=request.user,
        ),
        _("Bank account linked."),
    )
    return redirect("cards:account", number)


@role_required(*CLERK, Role.CENTER_OPERATOR)
@require_POST
def move(request: HttpRequest) -> HttpResponse:
    serials = [s for s in request.POST.get("serials", "").replace(",", " ").split() if s]
    kind = request.POST.get("kind", "card")
    _act(
        request,
        lambda: services.move_units(
            kind=UnitKind(kind) if kind in UnitKind.values else UnitKind.CARD,
            serials=serials,
            to_outlet=request.POST.get("to_outlet", ""),
            actor=request.user,
        ),
        _("Units moved."),
    )
    return redirect("cards:inventory")
