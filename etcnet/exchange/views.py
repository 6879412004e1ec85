"""The exchange page (/exchange/) for center operators and auditors: the
signature server's certificate, the counterparts' registered certificates and
every message sent to or received from the national center, with its state,
its answer and its last error. An operator may send the waiting messages now
instead of at their next attempt."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from etcnet.clearing.reports.tables import FilterError, Period, mask_card
from etcnet.clearing.statements import NoStatement
from etcnet.core import audit
from etcnet.core.roles import Role, may_see_personal_data, role_required
from etcnet.exchange import signing, statements
from etcnet.exchange.models import (
    Direction,
    Notice,
    NoticeState,
    PartyCertificate,
    Transfer,
    TransferState,
)

READERS = (Role.CENTER_OPERATOR, Role.AUDITOR)
PAGE = 100
KINDS = {
    "transactions": _lazy("Transaction package (原始交易包)"),
    "accounting": _lazy("Accounting result (记账)"),
    "summary": _lazy("Clearing summary (清分统计)"),
    "statuslist": _lazy("Status list version"),
    "disputes": _lazy("Dispute results (争议处理结果)"),
    "notices": _lazy("Refund and supplementary-payment notices"),
}


@role_required(*READERS)
def index(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    direction = request.GET.get("direction", "")
    rows = Transfer.objects.all()
    error = None
    if state and state not in TransferState.values:
        error = ("state", _("choose one of the states listed"))
    elif direction and direction not in Direction.values:
        error = ("direction", _("choose sent or received"))
    else:
        if state:
            rows = rows.filter(state=state)
        if direction:
            rows = rows.filter(direction=direction)
    try:
        signer: dict[str, Any] | None = signing.health()
        signer_error = ""
    except signing.SignerUnavailable as unavailable:
        signer, signer_error = None, str(unavailable)
    counts = {
        (c["direction"], c["state"]): c["n"]
        for c in Transfer.objects.values("direction", "state").annotate(n=Count("id"))
    }
    now = timezone.now()
    reveal = may_see_personal_data(request.user)
    waiting = Transfer.objects.filter(direction=Direction.OUT, state=TransferState.PENDING)
    oldest = waiting.order_by("created_at").first()
    context = {
        "signer": signer,
        "signer_error": signer_error,
        "certificates": PartyCertificate.objects.all(),
        "transfers": [_labelled(t) for t in rows[:PAGE]],
        "states": TransferState.choices,
        "state": state,
        "direction": direction,
        "error": error,
        "counts": [
            (Direction(d).label, TransferState(s).label, n) for (d, s), n in sorted(counts.items())
        ],
        "waiting": waiting.count(),
        "oldest_minutes": int((now - oldest.created_at).total_seconds() // 60) if oldest else None,
        "now": now,
        "may_act": request.user.groups.filter(name=Role.CENTER_OPERATOR).exists(),
        "notices": [
            {
                "notice": n,
                "card": mask_card(n.card_no, reveal),
                "yuan": f"{n.amount_fen / 100:.2f}",
            }
            for n in Notice.objects.filter(state=NoticeState.OPEN)[:PAGE]
        ],
    }
    return TemplateResponse(request, "exchange/index.html", context, status=400 if error else 200)


def _labelled(transfer: Transfer) -> Transfer:
    transfer.kind_label = str(KINDS.get(transfer.kind, transfer.kind))  # type: ignore[attr-defined]
    return transfer


@role_required(*READERS)
def statement(request: HttpRequest, kind: str) -> HttpResponse:
    """A counterparty's statement, PDF and Excel signed, in one zip."""
    try:
        period = Period.parse(request.GET.get("period", ""))
    except FilterError as error:
        return HttpResponse(
            f"{error.field}: {error.message}", status=400, content_type="text/plain; charset=utf-8"
        )
    try:
        found = statements.signed(period, kind, request.GET.get("counterparty", "")[:60])
    except NoStatement:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    except signing.SignerUnavailable as unavailable:
        return HttpResponse(
            _("The signature server does not answer: nothing can be signed or sent.")
            + f"\n{unavailable}",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(found.data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return response


@require_POST
@role_required(Role.CENTER_OPERATOR)
def send_now(request: HttpRequest) -> HttpResponse:
    """The waiting messages are due now: the next `etcnet exchange run` sends them."""
    waiting = Transfer.objects.filter(direction=Direction.OUT, state=TransferState.PENDING)
    with transaction.atomic():
        count = waiting.update(next_attempt_at=timezone.now())
        audit.record(
            actor=request.user,
            action="exchange.send_now",
            subject=("exchange.transfer", "pending"),
            after={"transfers": count},
        )
    messages.success(
        request, _("%(count)d waiting message(s) will be sent now.") % {"count": count}
    )
    return redirect("exchange:index")
