"""Typed errors with stable codes, shared by every app.

A service raises one of these; a view or API handler maps it to a response.
Messages are English templates translated at the edge (`message` is rendered in
the active language), so the same error reads in Chinese on a page and in the
caller's language through the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.utils.translation import gettext

from etcnet.core.validators import Issue


def render(template: str, params: Mapping[str, object]) -> str:
    """The template in the active language with its parameters filled in."""
    return gettext(template).format(**params)


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one input field."""

    field: str
    code: str
    template: str
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_issue(cls, field_name: str, issue: Issue) -> FieldIssue:
        return cls(field_name, issue.code, issue.template, dict(issue.params))

    @property
    def message(self) -> str:
        return render(self.template, self.params)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}

    def as_record(self) -> dict[str, object]:
        """A language-neutral form for storage (refusal reasons, audit data)."""
        return {
            "field": self.field,
            "code": self.code,
            "template": self.template,
            "params": dict(self.params),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> FieldIssue:
        params = record.get("params") or {}
        assert isinstance(params, dict)
        return cls(str(record["field"]), str(record["code"]), str(record["template"]), params)


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    status = 400
    code = "invalid"
    template = "The request is not valid."

    def __init__(
        self,
        template: str | None = None,
        *,
        code: str | None = None,
        params: Mapping[str, object] | None = None,
        issues: Iterable[FieldIssue] = (),
    ) -> None:
        self.template = template or self.template
        self.code = code or self.code
        self.params = dict(params or {})
        self.issues = list(issues)
        super().__init__(self.template.format(**self.params))

    @property
    def message(self) -> str:
        return render(self.template, self.params)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "errors": [issue.as_dict() for issue in self.issues],
        }


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    template = "Some fields are not valid; correct them and try again."


class NotFound(DomainError):
    status = 404
    code = "not_found"
    template = "Not found."


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    template = "Your role may not do this."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    template = "The request conflicts with the current state."
