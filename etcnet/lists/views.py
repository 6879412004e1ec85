"""Operator pages: search a card, OBU or plate and see its list history; the
published versions with their counts; imports with their reports."""

from __future__ import annotations

import re
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.cards.selectors import numbers_for_plate
from etcnet.core.roles import Role, role_required
from etcnet.core.validators import gettext_noop
from etcnet.lists import selectors, services
from etcnet.lists.models import ListImport, ListVersion

OPERATOR = (Role.CENTER_OPERATOR,)
READERS = (Role.CENTER_OPERATOR, Role.AUDITOR, Role.STATION_MASTER)
_NUMBER = re.compile(r"^[0-9]{16}([0-9]{4})?$")


@role_required(*READERS)
def index(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    found: list[dict[str, Any]] = []
    error = ""
    if q:
        if _NUMBER.match(q):
            numbers = [("card" if len(q) == 20 else "obu", q)]
        else:
            numbers = numbers_for_plate(q)
            if not numbers:
                error = gettext_noop("No card or OBU number or plate matches.")
        found = [{"medium": m, "number": n, **selectors.history(n)} for m, n in numbers]
    return TemplateResponse(
        request,
        "lists/index.html",
        {
            "q": q,
            "found": found,
            "error": error,
            "versions": ListVersion.objects.all()[:12],
            "imports": ListImport.objects.select_related("actor")[:8],
        },
    )


@role_required(*OPERATOR)
@require_POST
def publish(request: HttpRequest) -> HttpResponse:
    services.publish(full=True, actor=request.user)
    return redirect("lists:index")


@role_required(*OPERATOR)
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = gettext_noop("Choose a list file (.zip).")
        else:
            row = services.import_file(
                upload.read(), filename=upload.name or "upload.zip", actor=request.user
            )
            return redirect("lists:import_report", row.pk)
    return TemplateResponse(
        request, "lists/import.html", {"error": error}, status=400 if error else 200
    )


@role_required(*READERS)
def import_report(request: HttpRequest, import_id: int) -> HttpResponse:
    row = ListImport.objects.filter(pk=import_id).select_related("actor").first()
    if row is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    return TemplateResponse(request, "lists/import_report.html", {"row": row})


@role_required(*READERS)
def version_file(request: HttpRequest, number: str, kind: str) -> HttpResponseBase:
    version = ListVersion.objects.filter(number=number).first()
    full = kind == "full"
    if version is None or (full and not version.full_file):
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    path = services.version_path(version, full=full)
    if not path.exists():
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
