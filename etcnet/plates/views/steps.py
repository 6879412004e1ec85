"""The six steps, the pre-selected number's page and its printable form."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.core.errors import DomainError, InvalidInput
from etcnet.plates import captchas, domain, flow, selectors
from etcnet.plates.forms_pdf import registration_form
from etcnet.plates.models import PlateKind, Selection, SelectionSession, Step, VehicleOffice
from etcnet.plates.views.common import (
    STEP_URLS,
    check_captcha,
    client_ip,
    closed_message,
    failed,
    json_error,
    limit,
    page,
    plate_account,
    token,
    user_required,
)

# --- The six steps ----------------------------------------------------------------------


def _go_to_step(session: SelectionSession) -> HttpResponse:
    return redirect(STEP_URLS.get(Step(session.step), "plates:account"))


def at_step(step: str, methods: tuple[str, ...] = ("GET", "POST")) -> Callable[[Any], Any]:
    """A page of one step: internet users only; the browser's session checked
    like any step (a refusal goes back to the office choice with its message),
    and a session at another step sent there. The view gets the session."""

    def decorator(view: Any) -> Any:
        @user_required
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponseBase:
            try:
                session = flow.resume(actor=request.user, token=token(request))
            except DomainError as error:
                messages.error(request, error.message)
                return redirect("plates:select")
            if session.step != step:
                return _go_to_step(session)
            response: HttpResponseBase = view(request, session)
            return response

        return wrapper

    return decorator


def _step_context(session: SelectionSession, step: str, **extra: Any) -> dict[str, Any]:
    return {
        "session": session,
        "step": step,
        "steps": [(s.value, s.label) for s in Step],
        **extra,
    }


@user_required
@require_http_methods(["GET", "POST"])
def select(request: HttpRequest) -> HttpResponse:
    """Choose the vehicle office and district, then 「开始选号」."""
    me = plate_account(request)
    assert me is not None
    now = timezone.now()
    config = selectors.plate_settings()
    offices = VehicleOffice.objects.filter(is_active=True).prefetch_related("districts")
    context: dict[str, Any] = {
        "offices": offices,
        "remaining": selectors.remaining(me, vin="", now=now, config=config),
        "blacklist": selectors.active_blacklist(me, now),
        "closed": (c := selectors.closed_reason(now, config)) and closed_message(c),
        "holding": selectors.holding(me),
    }
    if request.method == "POST":
        try:
            district = int(request.POST.get("district") or 0)
            office = int(request.POST.get("office") or 0)
            session = flow.start(
                actor=request.user, token=token(request), office_id=office, district_id=district
            )
        except (DomainError, ValueError) as error:
            if not isinstance(error, DomainError):
                error = InvalidInput()
            # A refusal may have just blacklisted the user (two computers).
            context["blacklist"] = selectors.active_blacklist(me, timezone.now())
            return failed(request, "select.html", error, context)
        return _go_to_step(session)
    return page(request, "select.html", context)


@at_step(Step.NOTICE)
def notice(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("read") != "on":
            return page(
                request,
                "notice.html",
                _step_context(
                    session, Step.NOTICE, error=_("Confirm that you have read the notice.")
                ),
                status=400,
            )
        return _go_to_step(flow.accept_notice(actor=request.user, token=token(request)))
    return page(request, "notice.html", _step_context(session, Step.NOTICE))


def _form_step(
    request: HttpRequest,
    session: SelectionSession,
    step: str,
    template: str,
    fields: tuple[str, ...],
    action: Callable[..., SelectionSession],
    **extra: Any,
) -> HttpResponse:
    """A step that is one form: show it, or post its fields to ``action``."""
    context = _step_context(session, step, **{"values": {}, **extra})
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in fields}
        context["values"] = values
        try:
            session = action(actor=request.user, token=token(request), **values)
        except DomainError as error:
            return failed(request, template, error, context)
        return _go_to_step(session)
    return page(request, template, context)


@at_step(Step.VIN)
def vin(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Step 2: the VIN and the plate kind."""
    return _form_step(
        request,
        session,
        Step.VIN,
        "vin.html",
        ("vin", "kind"),
        flow.enter_vehicle,
        kinds=PlateKind.choices,
        values={"kind": "ordinary"},
    )


@at_step(Step.CONTACT)
def contact(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Step 3: the owner's address."""
    return _form_step(
        request,
        session,
        Step.CONTACT,
        "contact.html",
        ("address", "postal_code"),
        flow.enter_contact,
    )


def _remaining(request: HttpRequest, session: SelectionSession) -> selectors.Remaining:
    me = plate_account(request)
    assert me is not None
    return selectors.remaining(
        me, vin=session.vin, now=timezone.now(), config=selectors.plate_settings()
    )


@at_step(Step.CHOOSE)
def choose(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Step 4: self-composed or random, with what remains of each."""
    if request.method == "POST":
        try:
            flow.open_window(actor=request.user, token=token(request))
        except DomainError as error:
            return failed(
                request,
                "choose.html",
                error,
                _step_context(session, Step.CHOOSE, remaining=_remaining(request, session)),
            )
        return redirect("plates:compose")
    return page(
        request,
        "choose.html",
        _step_context(
            session,
            Step.CHOOSE,
            remaining=_remaining(request, session),
            config=selectors.plate_settings(),
        ),
    )


@at_step(Step.CHOOSE, methods=("GET",))
def compose(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """The virtual keyboard: the window's remaining time, the shuffled keys of
    the first position (the rest come from ``keys`` as the user types)."""
    now = timezone.now()
    if session.window_closes_at is None or now >= session.window_closes_at:
        return redirect("plates:choose")
    kind = domain.PlateKind(session.kind)
    return page(
        request,
        "compose.html",
        _step_context(
            session,
            Step.CHOOSE,
            remaining=_remaining(request, session),
            length=domain.serial_length(kind),
            keys=selectors.keyboard(session, ""),
            seconds_left=(session.window_closes_at - now).total_seconds(),
            captcha=captchas.new_challenge(),
        ),
    )


@user_required
def keys(request: HttpRequest) -> JsonResponse:
    try:
        found = flow.keys(
            actor=request.user, token=token(request), prefix=request.GET.get("prefix", "")
        )
    except DomainError as error:
        return json_error(error)
    return JsonResponse({"keys": found})


@user_required
@require_POST
def verify(request: HttpRequest) -> JsonResponse:
    """「验证」: the image captcha, then the number. The answer carries the next
    captcha (each is good for one try); a wrong captcha counts no verification."""
    try:
        check_captcha(request)
        result = flow.verify(
            actor=request.user, token=token(request), serial=request.POST.get("serial", "")
        )
    except DomainError as error:
        return json_error(error, captcha=captchas.new_challenge().as_dict())
    message = (
        (_("%(serial)s is available.") if result.available else _("%(serial)s is not available."))
        % {"serial": result.serial}
        + " "
        + _("Verifications left today: %(left)d.") % {"left": result.remaining.verifications}
    )
    return JsonResponse(
        {
            "serial": result.serial,
            "available": result.available,
            "message": message,
            "verifications_left": result.remaining.verifications,
            "locks_left": result.remaining.locks,
            "captcha": captchas.new_challenge().as_dict(),
        },
        json_dumps_params={"ensure_ascii": False},
    )


@user_required
@require_POST
def submit(request: HttpRequest) -> HttpResponse:
    """The window's submission (sent by the page when the 90 seconds are up)."""
    try:
        flow.submit(actor=request.user, token=token(request), serial=request.POST.get("serial", ""))
    except DomainError as error:
        messages.error(request, error.message)
        for issue in error.issues:
            messages.error(request, issue.message)
        if error.code in {"early_submission", "concurrent_sessions", "blacklisted"}:
            return redirect("plates:account")
        return redirect("plates:choose")
    return redirect("plates:sms")


@at_step(Step.CHOOSE)
def random_pick(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Random selection: draw (a limited number of times per vehicle), pick one."""
    if request.method == "POST":
        try:
            if "draw" in request.POST:
                flow.draw(actor=request.user, token=token(request))
                return redirect("plates:random")
            flow.pick(
                actor=request.user, token=token(request), serial=request.POST.get("serial", "")
            )
        except DomainError as error:
            session.refresh_from_db()
            return failed(
                request,
                "random.html",
                error,
                _step_context(session, Step.CHOOSE, remaining=_remaining(request, session)),
            )
        return redirect("plates:sms")
    return page(
        request,
        "random.html",
        _step_context(session, Step.CHOOSE, remaining=_remaining(request, session)),
    )


@at_step(Step.SMS)
def sms(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Step 5: the SMS code."""
    selection = Selection.objects.get(session=session)
    context = _step_context(session, Step.SMS, selection=selection)
    if request.method == "POST":
        try:
            if "resend" in request.POST:
                limit("sms.ip", client_ip(request), settings.ETCNET_RATE_SMS_PER_IP)
                flow.resend_code(actor=request.user, token=token(request))
                messages.info(request, _("A new code was sent."))
                return redirect("plates:sms")
            selection = flow.confirm_code(
                actor=request.user, token=token(request), code=request.POST.get("code", "")
            )
        except DomainError as error:
            if error.issues and error.issues[0].code in {"code_expired", "code_tries_exhausted"}:
                messages.error(request, error.issues[0].message)
                return redirect("plates:select")
            return failed(request, "sms.html", error, context)
        return redirect("plates:done", selection.number)
    return page(request, "sms.html", context)


def _own_selection(request: HttpRequest, number: str) -> Selection:
    me = plate_account(request)
    return get_object_or_404(
        Selection.objects.select_related("office", "district", "account"),
        number=number,
        account=me,
    )


@user_required
def done(request: HttpRequest, number: str) -> HttpResponse:
    """Step 6: the pre-selected number, the deadline, where to register."""
    selection = _own_selection(request, number)
    return page(
        request,
        "done.html",
        {"selection": selection, "step": Step.DONE, "steps": [(s.value, s.label) for s in Step]},
    )


@user_required
def form_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """The registration form (机动车注册申请表) to print, as often as needed."""
    selection = _own_selection(request, number)
    if selection.status not in ("preselected", "registered"):
        return page(
            request,
            "done.html",
            {"selection": selection, "error": _("No form for this number.")},
            status=409,
        )
    response = HttpResponse(registration_form(selection), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{selection.number}.pdf"'
    return response
