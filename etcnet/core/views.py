"""Pages every role shares: home, login and logout, lockout, errors."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from etcnet.core.roles import Role, has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands where its work is."""
    if has_role(request.user, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR):
        return redirect("issuance:list")
    return TemplateResponse(request, "core/home.html", {})


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True


def locked_out(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "core/locked_out.html", {}, status=429)
