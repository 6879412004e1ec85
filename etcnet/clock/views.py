"""The operators' clock page: the panel and the recent readings of the time source."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from etcnet.clock import selectors
from etcnet.core.roles import Role, role_required

READERS = (Role.CENTER_OPERATOR, Role.AUDITOR)


@role_required(*READERS)
def index(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "clock/index.html", {"readings": selectors.recent(50)})
