"""Operator pages: received transactions with filters, the rejected queue,
per-shift totals, and one transaction with its fee breakdown and audit trail."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, Sum
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from etcnet.core.models import AuditEvent
from etcnet.core.roles import Role, role_required
from etcnet.tolling.models import RecordStatus, Terminal, TollTransaction

READERS = (Role.CENTER_OPERATOR, Role.AUDITOR, Role.STATION_MASTER)
PAGE_SIZE = 50
# The exceptions queue: special cases the collector resolved, and records the
# center accepted but flagged for review.
EXCEPTIONS = ~Q(special_case="") | ~Q(flag="")
# The disputes queue: records the center rejected, and records it took with a
# finding (a §6.2 code in `dispute_code`, the evidence in `findings`).
DISPUTES = Q(status=RecordStatus.REJECTED) | Q(dispute_code__isnull=False)


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@role_required(*READERS)
def transactions(request: HttpRequest) -> HttpResponse:
    get = request.GET
    qs = TollTransaction.objects.select_related("terminal", "station")
    if get.get("station"):
        qs = qs.filter(station__node_id=get["station"])
    if get.get("lane", "").isdigit():
        qs = qs.filter(lane_number=int(get["lane"]))
    if get.get("card"):
        qs = qs.filter(card_no=get["card"].strip())
    if get.get("plate"):
        qs = qs.filter(plate__icontains=get["plate"].strip().upper())
    if get.get("special") == "1":
        qs = qs.filter(EXCEPTIONS)
    if get.get("disputes") == "1":
        qs = qs.filter(DISPUTES)
    if get.get("result") in RecordStatus.values:
        qs = qs.filter(status=get["result"])
    tz = timezone.get_current_timezone()
    day_from, day_to = _date(get.get("date_from", "")), _date(get.get("date_to", ""))
    if day_from:
        qs = qs.filter(exit_time__gte=dt.datetime.combine(day_from, dt.time.min, tzinfo=tz))
    if day_to:
        qs = qs.filter(
            exit_time__lt=dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        )
    totals = qs.aggregate(
        count=Count("pk"), payable=Sum("payable_fen", filter=Q(status=RecordStatus.ACCEPTED))
    )
    shifts = (
        qs.filter(status=RecordStatus.ACCEPTED)
        .values("terminal__terminal_id", "shift", "collector")
        .annotate(count=Count("pk"), payable=Sum("payable_fen"))
        .order_by("terminal__terminal_id", "shift")[:50]
    )
    return TemplateResponse(
        request,
        "tolling/transactions.html",
        {
            "rows": qs[:PAGE_SIZE],
            "values": get,
            "totals": totals,
            "shifts": shifts,
            "rejected_waiting": TollTransaction.objects.filter(
                status=RecordStatus.REJECTED
            ).count(),
            "special_count": TollTransaction.objects.filter(EXCEPTIONS).count(),
            "dispute_count": TollTransaction.objects.filter(DISPUTES).count(),
            "terminals": Terminal.objects.select_related("station").order_by("terminal_id"),
        },
    )


@role_required(*READERS)
def transaction(request: HttpRequest, transaction_id: int) -> HttpResponse:
    found = (
        TollTransaction.objects.select_related("terminal", "station")
        .filter(pk=transaction_id)
        .first()
    )
    if found is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    history = AuditEvent.objects.filter(
        subject_type="tolling.tolltransaction", subject_id=str(found.pk)
    ).order_by("occurred_at")
    return TemplateResponse(request, "tolling/transaction.html", {"txn": found, "history": history})


@role_required(*READERS)
def photo(request: HttpRequest, transaction_id: int) -> FileResponse:
    """The vehicle photo the collector took (提交图片数据), re-encoded without EXIF."""
    found = TollTransaction.objects.filter(pk=transaction_id).exclude(photo="").first()
    if found is None:
        raise Http404
    response = FileResponse(found.photo.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
