"""Pages every role shares: home, login and logout, lockout, errors."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from etcnet.core.roles import Role, has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands where its work is."""
    if has_role(request.user, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR):
        return redirect("issuance:list")
    if has_role(request.user, Role.VEHICLE_OFFICE_CLERK):
        return redirect("plates:office")
    return TemplateResponse(request, "core/home.html", {})


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True


def locked_out(request: HttpRequest) -> HttpResponse:
    # Rendered at once: axes hands this response straight back from its middleware.
    return render(request, "core/locked_out.html", {}, status=429)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: object = None
) -> HttpResponse:
    """What a locked-out login gets (AXES_LOCKOUT_CALLABLE): JSON in the API's
    error shape for API callers, the lockout page for people."""
    if request.path.startswith("/api/"):
        body = {
            "code": "login_locked",
            "message": gettext("Too many failed logins; try again later."),
            "errors": [],
        }
        return JsonResponse(body, status=429, json_dumps_params={"ensure_ascii": False})
    return locked_out(request)
