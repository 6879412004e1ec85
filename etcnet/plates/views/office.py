"""The vehicle office: registration of pre-selected numbers, registration at
the window."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from etcnet.core.codes import IdDocType
from etcnet.core.errors import DomainError
from etcnet.core.masking import mask_phone
from etcnet.core.roles import Role, role_required
from etcnet.plates import selectors, services
from etcnet.plates.models import Selection, UserType
from etcnet.plates.views.common import choices, failed, page

# --- The vehicle office -----------------------------------------------------------------


@role_required(Role.VEHICLE_OFFICE_CLERK)
@require_http_methods(["GET", "POST"])
def office(request: HttpRequest) -> HttpResponse:
    """Find a pre-selected number by plate or form number; register the vehicle
    (the invoice's name must be the user's) or refuse."""
    q = (request.GET.get("q") or request.POST.get("q") or "").strip().upper()
    clerk = request.user.pk
    found = None
    if q:
        found = (
            Selection.objects.select_related("account", "office", "district")
            .filter(office__clerks=clerk)
            .filter(number=q)
            .first()
            or Selection.objects.select_related("account", "office", "district")
            .filter(office__clerks=clerk, plate=q.replace("·", "").replace(" ", ""))
            .order_by("-locked_at")
            .first()
        )
    context: dict[str, Any] = {"q": q, "found": found, "values": {}, "errors": {}}
    if request.method == "POST" and found is not None:
        values = {k: request.POST.get(k, "") for k in ("invoice_name", "invoice_number", "vin")}
        context["values"] = values
        try:
            if "refuse" in request.POST:
                services.refuse_registration(
                    found.pk,
                    reason=request.POST.get("reason", ""),
                    blacklist_user=request.POST.get("blacklist") == "on",
                    actor=request.user,
                )
                messages.info(request, _("Refused; the number went back to the pool."))
            else:
                services.confirm_registration(found.pk, actor=request.user, **values)
                messages.success(request, _("Registered."))
        except DomainError as error:
            return failed(request, "office.html", error, context)
        return redirect(f"{reverse('plates:office')}?q={q}")
    return page(request, "office.html", context)


WINDOW_FIELDS = ("user_type", "id_type", "id_number", "name", "phone", "city")


@role_required(Role.VEHICLE_OFFICE_CLERK)
@require_http_methods(["GET", "POST"])
def window(request: HttpRequest) -> HttpResponse:
    """Registration at the window (窗口注册): the clerk checks the original ID
    card and registers its owner; an account someone else registered with the
    ID number is cancelled. 「查询」 shows that account first."""
    office = services.clerk_office(request.user)
    looked_up = (request.GET.get("id_number") or "").strip().upper()
    context: dict[str, Any] = {
        "office": office,
        "user_types": [(t.value, t.label) for t in UserType],
        "id_types": choices([m for m in IdDocType if not m.for_organization]),
        "values": {"id_number": looked_up, "id_type": "101"} if looked_up else {},
        "errors": {},
        "looked_up": looked_up,
        "holder": selectors.account_holding_id(looked_up),
    }
    if request.method == "POST":
        values: dict[str, Any] = {k: request.POST.get(k, "") for k in WINDOW_FIELDS}
        context["values"] = values
        context["holder"] = selectors.account_holding_id(values["id_number"])
        try:
            done = services.register_at_window(
                **values,
                password=request.POST.get("password", ""),
                password_again=request.POST.get("password_again", ""),
                id_card_seen=request.POST.get("id_card_seen") == "on",
                actor=request.user,
            )
        except DomainError as error:
            return failed(request, "window.html", error, context)
        messages.success(
            request,
            _("Registered %(name)s at the window (mobile %(phone)s).")
            % {"name": done.account.name, "phone": mask_phone(done.account.phone)},
        )
        if done.cancelled is not None:
            messages.warning(
                request,
                _(
                    "The account that held this ID number (mobile %(phone)s) is cancelled; "
                    "numbers it held back in the pool: %(plates)s."
                )
                % {
                    "phone": mask_phone(done.cancelled.phone),
                    "plates": "、".join(done.voided) or _("none"),
                },
            )
        return redirect("plates:window")
    return page(request, "window.html", context)
