"""Pages of plate pre-selection: the public site of internet users (register,
log in, pool announcements, the six steps, the printable form), the vehicle
office's registration page and the center operator's settings and pools.

Views parse the input, call one flow or service function and render; the
browser is named by a token kept in its Django session (one selection per
computer, seed 004 rule 2)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.core import ratelimit
from etcnet.core.codes import IdDocType
from etcnet.core.errors import DomainError, InvalidInput
from etcnet.core.masking import mask_phone
from etcnet.core.roles import Role, role_required
from etcnet.core.validators import gettext_noop
from etcnet.plates import auth, captchas, domain, flow, selectors, services
from etcnet.plates.forms_pdf import registration_form
from etcnet.plates.models import (
    CalendarDay,
    MaintenanceWindow,
    NumberPool,
    PlateAccount,
    PlateKind,
    PoolStatus,
    Selection,
    SelectionSession,
    Step,
    UserType,
    VehicleOffice,
)

STEP_URLS = {
    Step.NOTICE: "plates:notice",
    Step.VIN: "plates:vin",
    Step.CONTACT: "plates:contact",
    Step.CHOOSE: "plates:choose",
    Step.SMS: "plates:sms",
}


def _token(request: HttpRequest) -> str:
    token = request.session.get("plates_token")
    if not token:
        token = secrets.token_hex(16)
        request.session["plates_token"] = token
    return str(token)


def _account(request: HttpRequest) -> PlateAccount | None:
    if not request.user.is_authenticated:
        return None
    return PlateAccount.objects.filter(user=request.user, status="active").first()


def _errors(error: DomainError) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for issue in error.issues:
        by_field.setdefault(issue.field, []).append(issue.message)
    return by_field


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    return TemplateResponse(
        request, f"plates/{template}", {"account": _account(request), **context}, status=status
    )


def _failed(
    request: HttpRequest, template: str, error: DomainError, context: dict[str, Any]
) -> TemplateResponse:
    response = _page(
        request,
        template,
        {**context, "errors": _errors(error), "error": error.message, "error_code": error.code},
        status=error.status,
    )
    if isinstance(error, ratelimit.RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


_client_ip = auth.client_ip


def _limit(scope: str, key: str, rate: tuple[int, int]) -> None:
    """Counts one request against a limit (committed at once: views run outside
    a transaction, so a refused request counts too); ``RateLimited`` past it."""
    shown = mask_phone(key) if key.isdigit() else key
    ratelimit.hit(f"plates.{scope}", key, rate, shown_key=shown)


def _mobile_key(text: str) -> str:
    return "".join(ch for ch in (text or "") if ch.isdigit())[-11:]


def user_required(view: Any) -> Any:
    """Internet users only: others go to the plates login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if _account(request) is None:
            return redirect(f"{reverse('plates:login')}?next={request.get_full_path()}")
        response: HttpResponseBase = view(request, *args, **kwargs)
        return response

    return wrapper


def _choices(enum: Any) -> list[tuple[str, str]]:
    english = (get_language() or "").startswith("en")
    return [(str(m.value), m.label_en if english else m.label) for m in enum]


# --- Public pages -----------------------------------------------------------------------


def index(request: HttpRequest) -> HttpResponse:
    config = selectors.plate_settings()
    closed = selectors.closed_reason(timezone.now(), config)
    return _page(
        request,
        "index.html",
        {
            "pools": selectors.announcements()[:5],
            "closed": closed and _closed_message(closed),
            "config": config,
        },
    )


def _closed_message(closed: domain.Closed) -> str:
    return _(closed.template).format(**closed.params)


def announcements(request: HttpRequest) -> HttpResponse:
    return _page(request, "announcements.html", {"pools": selectors.announcements()})


def announcement(request: HttpRequest, pool_id: int) -> HttpResponse:
    pool = get_object_or_404(
        NumberPool.objects.select_related("office"), pk=pool_id, status=PoolStatus.RELEASED
    )
    return _page(request, "announcement.html", {"pool": pool})


USER_TYPE_NOTES = {
    UserType.VEHICLE_OWNER: gettext_noop(
        "You own a vehicle registered here and gave this mobile number when registering it."
    ),
    UserType.DRIVER: gettext_noop(
        "You hold a driving licence issued here and gave this mobile number for it."
    ),
    UserType.LEARNER: gettext_noop("You applied here for your first driving licence."),
    UserType.NEW_VEHICLE_OWNER: gettext_noop(
        "You hold no vehicle and no licence anywhere, and register a new or second-hand "
        "vehicle here. Pre-select a plate within 24 hours of registering and register the "
        "vehicle in time, or the account is cancelled and this ID may not register again "
        "with this mobile number for two years."
    ),
}


SERVICE_LABELS = {
    domain.Service.BIND_LICENCE: gettext_noop("Bind your driving licence"),
    domain.Service.QUERY_RECORDS: gettext_noop("Query your vehicle and licence records"),
    domain.Service.VIOLATIONS: gettext_noop("Handle violations and pay fines"),
    domain.Service.PRESELECT_PLATE: gettext_noop("Pre-select a plate"),
    domain.Service.EXAM_BOOKING: gettext_noop("Book driving tests"),
    domain.Service.CHANGE_CONTACT: gettext_noop("Change contact details"),
}


def _check_captcha(request: HttpRequest) -> None:
    captchas.check(request.POST.get("captcha_key", ""), request.POST.get("captcha", ""))


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """The registration form. 「获取短信验证码」 (action ``send_code``) texts a
    code to the mobile number; 「注册」 registers with it. Both need the image
    captcha and count against the address's (and the number's) limits."""
    context: dict[str, Any] = {
        "user_types": [(t.value, t.label, _(USER_TYPE_NOTES[t])) for t in UserType],
        "id_types": _choices([m for m in IdDocType if not m.for_organization]),
        "values": {},
        "errors": {},
        # A challenge is good for one try: every page shown gets a new one.
        "captcha": captchas.new_challenge(),
    }
    if request.method == "POST":
        values: dict[str, Any] = {
            k: request.POST.get(k, "")
            for k in ("user_type", "id_type", "id_number", "name", "phone", "city", "sms_code")
        }
        context["values"] = values
        context["agreed"] = request.POST.get("agreed") == "on"
        ip = _client_ip(request)
        try:
            if request.POST.get("action") == "send_code":
                _limit("sms.ip", ip, settings.ETCNET_RATE_SMS_PER_IP)
                _check_captcha(request)
                sent = services.send_registration_code(phone=values["phone"])
                context["code_sent"] = _(
                    "A code was sent to %(phone)s; it is valid until %(until)s."
                ) % {
                    "phone": mask_phone(sent.phone),
                    "until": selectors.local_now(sent.expires_at).strftime("%H:%M"),
                }
                return _page(request, "register.html", context)
            _limit("register.ip", ip, settings.ETCNET_RATE_REGISTER_PER_IP)
            _limit(
                "register.mobile",
                _mobile_key(values["phone"]),
                settings.ETCNET_RATE_REGISTER_PER_MOBILE,
            )
            _check_captcha(request)
            account = services.register_account(
                **values,
                password=request.POST.get("password", ""),
                password_again=request.POST.get("password_again", ""),
                agreed=request.POST.get("agreed") == "on",
            )
        except DomainError as error:
            return _failed(request, "register.html", error, context)
        login(request, account.user, backend="etcnet.plates.auth.PlateAccountBackend")
        messages.success(request, _("Registered. You can pre-select a plate now."))
        return redirect("plates:account")
    return _page(request, "register.html", context)


class LoginView(auth_views.LoginView):
    """Log in with the ID number or the mobile number. Every attempt counts
    against the address's and the login name's limits (``auth``; 429 past
    them), on top of axes' lockout after failures."""

    template_name = "plates/login.html"
    redirect_authenticated_user = False

    def get_default_redirect_url(self) -> str:
        return reverse("plates:account")

    def form_invalid(self, form: Any) -> HttpResponse:
        # The backend counts the attempt (whichever login page it comes from)
        # and leaves a refusal past the limits here.
        error = getattr(self.request, auth.REFUSAL, None)
        if not isinstance(error, ratelimit.RateLimited):
            return super().form_invalid(form)
        refused = self.render_to_response(
            self.get_context_data(form=form, limited=error.message), status=error.status
        )
        refused["Retry-After"] = str(error.retry_after)
        return refused


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if _account(request) is not None:
        flow.abandon(actor=request.user, token=_token(request))
    logout(request)
    return redirect("plates:index")


@user_required
def account(request: HttpRequest) -> HttpResponse:
    me = _account(request)
    assert me is not None
    now = timezone.now()
    config = selectors.plate_settings()
    active = selectors.active_session(me)
    return _page(
        request,
        "account.html",
        {
            "me": me,
            "blacklist": selectors.active_blacklist(me, now),
            "selections": me.selections.select_related("office")[:10],
            "remaining": selectors.remaining(me, vin="", now=now, config=config),
            "config": config,
            "active": active,
            "resume_url": active and STEP_URLS.get(Step(active.step)),
            "select_by": me.registered_at + dt.timedelta(hours=config.new_owner_select_hours),
            "services": [
                (_(SERVICE_LABELS[service]), service == domain.Service.PRESELECT_PLATE)
                for service in domain.Service
                if service in domain.SERVICES[domain.UserType(me.user_type)]
            ],
        },
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
                session = flow.resume(actor=request.user, token=_token(request))
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
    me = _account(request)
    assert me is not None
    now = timezone.now()
    config = selectors.plate_settings()
    offices = VehicleOffice.objects.filter(is_active=True).prefetch_related("districts")
    context: dict[str, Any] = {
        "offices": offices,
        "remaining": selectors.remaining(me, vin="", now=now, config=config),
        "blacklist": selectors.active_blacklist(me, now),
        "closed": (c := selectors.closed_reason(now, config)) and _closed_message(c),
        "holding": selectors.holding(me),
    }
    if request.method == "POST":
        try:
            district = int(request.POST.get("district") or 0)
            office = int(request.POST.get("office") or 0)
            session = flow.start(
                actor=request.user, token=_token(request), office_id=office, district_id=district
            )
        except (DomainError, ValueError) as error:
            if not isinstance(error, DomainError):
                error = InvalidInput()
            # A refusal may have just blacklisted the user (two computers).
            context["blacklist"] = selectors.active_blacklist(me, timezone.now())
            return _failed(request, "select.html", error, context)
        return _go_to_step(session)
    return _page(request, "select.html", context)


@at_step(Step.NOTICE)
def notice(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("read") != "on":
            return _page(
                request,
                "notice.html",
                _step_context(
                    session, Step.NOTICE, error=_("Confirm that you have read the notice.")
                ),
                status=400,
            )
        return _go_to_step(flow.accept_notice(actor=request.user, token=_token(request)))
    return _page(request, "notice.html", _step_context(session, Step.NOTICE))


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
            session = action(actor=request.user, token=_token(request), **values)
        except DomainError as error:
            return _failed(request, template, error, context)
        return _go_to_step(session)
    return _page(request, template, context)


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
    me = _account(request)
    assert me is not None
    return selectors.remaining(
        me, vin=session.vin, now=timezone.now(), config=selectors.plate_settings()
    )


@at_step(Step.CHOOSE)
def choose(request: HttpRequest, session: SelectionSession) -> HttpResponse:
    """Step 4: self-composed or random, with what remains of each."""
    if request.method == "POST":
        try:
            flow.open_window(actor=request.user, token=_token(request))
        except DomainError as error:
            return _failed(
                request,
                "choose.html",
                error,
                _step_context(session, Step.CHOOSE, remaining=_remaining(request, session)),
            )
        return redirect("plates:compose")
    return _page(
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
    return _page(
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


def _json_error(error: DomainError, **extra: Any) -> JsonResponse:
    response = JsonResponse(
        {**error.as_dict(), **extra}, status=error.status, json_dumps_params={"ensure_ascii": False}
    )
    if isinstance(error, ratelimit.RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


@user_required
def keys(request: HttpRequest) -> JsonResponse:
    try:
        found = flow.keys(
            actor=request.user, token=_token(request), prefix=request.GET.get("prefix", "")
        )
    except DomainError as error:
        return _json_error(error)
    return JsonResponse({"keys": found})


@user_required
@require_POST
def verify(request: HttpRequest) -> JsonResponse:
    """「验证」: the image captcha, then the number. The answer carries the next
    captcha (each is good for one try); a wrong captcha counts no verification."""
    try:
        _check_captcha(request)
        result = flow.verify(
            actor=request.user, token=_token(request), serial=request.POST.get("serial", "")
        )
    except DomainError as error:
        return _json_error(error, captcha=captchas.new_challenge().as_dict())
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
        flow.submit(
            actor=request.user, token=_token(request), serial=request.POST.get("serial", "")
        )
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
                flow.draw(actor=request.user, token=_token(request))
                return redirect("plates:random")
            flow.pick(
                actor=request.user, token=_token(request), serial=request.POST.get("serial", "")
            )
        except DomainError as error:
            session.refresh_from_db()
            return _failed(
                request,
                "random.html",
                error,
                _step_context(session, Step.CHOOSE, remaining=_remaining(request, session)),
            )
        return redirect("plates:sms")
    return _page(
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
                _limit("sms.ip", _client_ip(request), settings.ETCNET_RATE_SMS_PER_IP)
                flow.resend_code(actor=request.user, token=_token(request))
                messages.info(request, _("A new code was sent."))
                return redirect("plates:sms")
            selection = flow.confirm_code(
                actor=request.user, token=_token(request), code=request.POST.get("code", "")
            )
        except DomainError as error:
            if error.issues and error.issues[0].code in {"code_expired", "code_tries_exhausted"}:
                messages.error(request, error.issues[0].message)
                return redirect("plates:select")
            return _failed(request, "sms.html", error, context)
        return redirect("plates:done", selection.number)
    return _page(request, "sms.html", context)


def _own_selection(request: HttpRequest, number: str) -> Selection:
    me = _account(request)
    return get_object_or_404(
        Selection.objects.select_related("office", "district", "account"),
        number=number,
        account=me,
    )


@user_required
def done(request: HttpRequest, number: str) -> HttpResponse:
    """Step 6: the pre-selected number, the deadline, where to register."""
    selection = _own_selection(request, number)
    return _page(
        request,
        "done.html",
        {"selection": selection, "step": Step.DONE, "steps": [(s.value, s.label) for s in Step]},
    )


@user_required
def form_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """The registration form (机动车注册申请表) to print, as often as needed."""
    selection = _own_selection(request, number)
    if selection.status not in ("preselected", "registered"):
        return _page(
            request,
            "done.html",
            {"selection": selection, "error": _("No form for this number.")},
            status=409,
        )
    response = HttpResponse(registration_form(selection), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{selection.number}.pdf"'
    return response


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
            return _failed(request, "office.html", error, context)
        return redirect(f"{reverse('plates:office')}?q={q}")
    return _page(request, "office.html", context)


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
        "id_types": _choices([m for m in IdDocType if not m.for_organization]),
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
            return _failed(request, "window.html", error, context)
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
    return _page(request, "window.html", context)


# --- The center operator ----------------------------------------------------------------


SETTING_LABELS = {
    "opens": gettext_noop("Opens at (HH:MM)"),
    "closes": gettext_noop("Closes at (HH:MM)"),
    "verifications_per_day": gettext_noop(
        "Verifications of self-composed numbers per user per day"
    ),
    "locks_per_day": gettext_noop("Verify-and-lock attempts per user per day"),
    "draws_per_vehicle": gettext_noop("Random draws per vehicle"),
    "numbers_per_draw": gettext_noop("Numbers offered per random draw"),
    "window_seconds": gettext_noop("Self-composed window (seconds)"),
    "window_grace_seconds": gettext_noop("Grace for the window's submission (seconds)"),
    "sms_code_minutes": gettext_noop("A locked number waits for its SMS code (minutes)"),
    "sms_code_tries": gettext_noop("Tries per SMS code"),
    "session_idle_minutes": gettext_noop("An idle selection session ends after (minutes)"),
    "registration_working_days": gettext_noop("Working days to register the vehicle"),
    "new_owner_select_hours": gettext_noop("Hours a new-vehicle owner has to pre-select"),
    "blacklist_days": gettext_noop("Blacklist period (days)"),
    "cancel_ban_days": gettext_noop(
        "A cancelled new-vehicle owner may not register again for (days)"
    ),
    "agreement_version": gettext_noop("Service agreement version"),
}


def _setting_text(value: Any) -> str:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@role_required(Role.CENTER_OPERATOR, Role.AUDITOR)
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest) -> HttpResponse:
    """Periods and limits, the holiday calendar, maintenance windows, pools."""
    config = selectors.plate_settings()
    context: dict[str, Any] = {
        "config": config,
        "settings_rows": [
            (name, _(SETTING_LABELS[name]), _setting_text(getattr(config, name)))
            for name in services.SETTING_FIELDS
        ],
        "days": CalendarDay.objects.filter(day__gte=timezone.localdate() - dt.timedelta(days=30)),
        "windows": MaintenanceWindow.objects.filter(ends_at__gte=timezone.now()),
        "pools": NumberPool.objects.select_related("office")[:30],
        "offices": VehicleOffice.objects.filter(is_active=True),
        "kinds": PlateKind.choices,
        "errors": {},
        "values": {},
    }
    if request.method != "POST":
        return _page(request, "manage.html", context)
    action = request.POST.get("action", "")
    try:
        _manage_action(request, action)
    except DomainError as error:
        context["values"] = request.POST
        return _failed(request, "manage.html", error, context)
    except ValueError:
        return _failed(request, "manage.html", InvalidInput(), context)
    messages.success(request, _("Saved."))
    return redirect("plates:manage")


def _manage_action(request: HttpRequest, action: str) -> None:
    post = request.POST
    actor = request.user
    if action == "settings":
        changes: dict[str, Any] = {}
        for name in services.SETTING_FIELDS:
            raw = post.get(name, "").strip()
            if name in ("opens", "closes"):
                changes[name] = dt.time.fromisoformat(raw)
            elif name == "agreement_version":
                changes[name] = raw
            else:
                number = _int_or_none(raw)
                changes[name] = -1 if number is None else number
        services.update_settings(changes=changes, actor=actor)
    elif action == "day":
        services.set_calendar_day(
            day=dt.date.fromisoformat(post.get("day", "")),
            working=post.get("working") == "1",
            note=post.get("note", ""),
            actor=actor,
        )
    elif action == "remove_day":
        services.remove_calendar_day(day=dt.date.fromisoformat(post.get("day", "")), actor=actor)
    elif action == "maintenance":
        tz = selectors.SHANGHAI
        services.add_maintenance(
            starts_at=dt.datetime.fromisoformat(post.get("starts_at", "")).replace(tzinfo=tz),
            ends_at=dt.datetime.fromisoformat(post.get("ends_at", "")).replace(tzinfo=tz),
            note=post.get("note", ""),
            actor=actor,
        )
    elif action == "remove_maintenance":
        services.remove_maintenance(int(post.get("window", "0")), actor=actor)
    elif action == "pool":
        services.create_pool(
            office_code=post.get("office", ""),
            kind=post.get("kind", ""),
            title=post.get("title", ""),
            patterns=post.get("patterns", "").split(),
            reserved=post.get("reserved", "").split(),
            forbidden=post.get("forbidden", "").split(),
            announcement=post.get("announcement", ""),
            actor=actor,
        )
    elif action == "release":
        services.release_pool(int(post.get("pool", "0")), actor=actor)
    else:
        raise ValueError(action)
