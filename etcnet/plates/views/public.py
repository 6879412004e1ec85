"""The public site: home, pool announcements, registration, login, the account."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.core import ratelimit
from etcnet.core.codes import IdDocType
from etcnet.core.errors import DomainError
from etcnet.core.masking import mask_phone
from etcnet.core.validators import gettext_noop
from etcnet.plates import auth, captchas, domain, flow, selectors, services
from etcnet.plates.models import NumberPool, PoolStatus, Step, UserType
from etcnet.plates.views.common import (
    STEP_URLS,
    check_captcha,
    choices,
    client_ip,
    closed_message,
    failed,
    limit,
    mobile_key,
    page,
    plate_account,
    token,
    user_required,
)

# --- Public pages -----------------------------------------------------------------------


def index(request: HttpRequest) -> HttpResponse:
    config = selectors.plate_settings()
    closed = selectors.closed_reason(timezone.now(), config)
    return page(
        request,
        "index.html",
        {
            "pools": selectors.announcements()[:5],
            "closed": closed and closed_message(closed),
            "config": config,
        },
    )


def announcements(request: HttpRequest) -> HttpResponse:
    return page(request, "announcements.html", {"pools": selectors.announcements()})


def announcement(request: HttpRequest, pool_id: int) -> HttpResponse:
    pool = get_object_or_404(
        NumberPool.objects.select_related("office"), pk=pool_id, status=PoolStatus.RELEASED
    )
    return page(request, "announcement.html", {"pool": pool})


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


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """The registration form. 「获取短信验证码」 (action ``send_code``) texts a
    code to the mobile number; 「注册」 registers with it. Both need the image
    captcha and count against the address's (and the number's) limits."""
    context: dict[str, Any] = {
        "user_types": [(t.value, t.label, _(USER_TYPE_NOTES[t])) for t in UserType],
        "id_types": choices([m for m in IdDocType if not m.for_organization]),
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
        ip = client_ip(request)
        try:
            if request.POST.get("action") == "send_code":
                limit("sms.ip", ip, settings.ETCNET_RATE_SMS_PER_IP)
                check_captcha(request)
                sent = services.send_registration_code(phone=values["phone"])
                context["code_sent"] = _(
                    "A code was sent to %(phone)s; it is valid until %(until)s."
                ) % {
                    "phone": mask_phone(sent.phone),
                    "until": selectors.local_now(sent.expires_at).strftime("%H:%M"),
                }
                return page(request, "register.html", context)
            limit("register.ip", ip, settings.ETCNET_RATE_REGISTER_PER_IP)
            limit(
                "register.mobile",
                mobile_key(values["phone"]),
                settings.ETCNET_RATE_REGISTER_PER_MOBILE,
            )
            check_captcha(request)
            account = services.register_account(
                **values,
                password=request.POST.get("password", ""),
                password_again=request.POST.get("password_again", ""),
                agreed=request.POST.get("agreed") == "on",
            )
        except DomainError as error:
            return failed(request, "register.html", error, context)
        login(request, account.user, backend="etcnet.plates.auth.PlateAccountBackend")
        messages.success(request, _("Registered. You can pre-select a plate now."))
        return redirect("plates:account")
    return page(request, "register.html", context)


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
    if plate_account(request) is not None:
        flow.abandon(actor=request.user, token=token(request))
    logout(request)
    return redirect("plates:index")


@user_required
def account(request: HttpRequest) -> HttpResponse:
    me = plate_account(request)
    assert me is not None
    now = timezone.now()
    config = selectors.plate_settings()
    active = selectors.active_session(me)
    return page(
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
