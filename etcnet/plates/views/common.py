"""What the plate pages share: the browser's token, the page and refusal
helpers, the internet-user check, the limits and the captcha."""

from __future__ import annotations

import secrets
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from etcnet.core import ratelimit
from etcnet.core.errors import DomainError
from etcnet.core.masking import mask_phone
from etcnet.plates import auth, captchas, domain
from etcnet.plates.models import PlateAccount, Step

STEP_URLS = {
    Step.NOTICE: "plates:notice",
    Step.VIN: "plates:vin",
    Step.CONTACT: "plates:contact",
    Step.CHOOSE: "plates:choose",
    Step.SMS: "plates:sms",
}


def token(request: HttpRequest) -> str:
    token = request.session.get("plates_token")
    if not token:
        token = secrets.token_hex(16)
        request.session["plates_token"] = token
    return str(token)


def plate_account(request: HttpRequest) -> PlateAccount | None:
    if not request.user.is_authenticated:
        return None
    return PlateAccount.objects.filter(user=request.user, status="active").first()


def errors_by_field(error: DomainError) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for issue in error.issues:
        by_field.setdefault(issue.field, []).append(issue.message)
    return by_field


def page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    return TemplateResponse(
        request, f"plates/{template}", {"account": plate_account(request), **context}, status=status
    )


def failed(
    request: HttpRequest, template: str, error: DomainError, context: dict[str, Any]
) -> TemplateResponse:
    response = page(
        request,
        template,
        {
            **context,
            "errors": errors_by_field(error),
            "error": error.message,
            "error_code": error.code,
        },
        status=error.status,
    )
    if isinstance(error, ratelimit.RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


client_ip = auth.client_ip


def limit(scope: str, key: str, rate: tuple[int, int]) -> None:
    """Counts one request against a limit (committed at once: views run outside
    a transaction, so a refused request counts too); ``RateLimited`` past it."""
    shown = mask_phone(key) if key.isdigit() else key
    ratelimit.hit(f"plates.{scope}", key, rate, shown_key=shown)


def mobile_key(text: str) -> str:
    return "".join(ch for ch in (text or "") if ch.isdigit())[-11:]


def user_required(view: Any) -> Any:
    """Internet users only: others go to the plates login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if plate_account(request) is None:
            return redirect(f"{reverse('plates:login')}?next={request.get_full_path()}")
        response: HttpResponseBase = view(request, *args, **kwargs)
        return response

    return wrapper


def choices(enum: Any) -> list[tuple[str, str]]:
    english = (get_language() or "").startswith("en")
    return [(str(m.value), m.label_en if english else m.label) for m in enum]


def closed_message(closed: domain.Closed) -> str:
    return _(closed.template).format(**closed.params)


def check_captcha(request: HttpRequest) -> None:
    captchas.check(request.POST.get("captcha_key", ""), request.POST.get("captcha", ""))


def json_error(error: DomainError, **extra: Any) -> JsonResponse:
    response = JsonResponse(
        {**error.as_dict(), **extra}, status=error.status, json_dumps_params={"ensure_ascii": False}
    )
    if isinstance(error, ratelimit.RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response
