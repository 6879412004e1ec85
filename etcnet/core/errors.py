"""Typed errors with stable codes, shared by every app.

A service raises one of these; a view or API handler maps it to a response.
Messages are English templates translated at the edge (`message` is rendered in
the active language), so the same error reads in Chinese on a page and in the
caller's language through the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.utils.translation import get_language, gettext

from etcnet.core import codes
from etcnet.core.validators import PARAM_KINDS, Issue, display_params, english_label


def _english() -> bool:
    return (get_language() or "").startswith("en")


# Parameter kinds the apps add (name → kind, kind → label in the active language).
_EXTRA_KINDS: dict[str, str] = {}
_EXTRA_LABELS: dict[str, Callable[[str], str]] = {}


def register_param_kind(name: str, kind: str, label: Callable[[str], str]) -> None:
    """Lets an app show its own codes in messages, e.g. issuance's photo kinds."""
    _EXTRA_KINDS[name] = kind
    _EXTRA_LABELS[kind] = label


def localized_label(kind: str, code: str) -> str:
    """A code's label in the active language (the Chinese labels are the code
    tables' own; other labels go through the translation catalogue)."""
    if kind in _EXTRA_LABELS:
        return _EXTRA_LABELS[kind](code)
    if kind == "text":
        return gettext(code)  # a description marked for translation
    english = english_label(kind, code)
    if _english():
        return english
    try:
        if kind in ("plate_color", "plate_colors"):
            return codes.PlateColor(int(code)).label
        if kind == "doc_type":
            return codes.IdDocType(int(code)).label
        if kind == "category":
            return codes.VehicleCategory(code).label
        if kind == "vehicle_class":
            return codes.VehicleClass(int(code)).label
    except ValueError:
        return code
    return gettext(english)


def render(template: str, params: Mapping[str, object]) -> str:
    """The template in the active language with its parameters filled in; code
    parameters (colours, document types, shapes…) shown as labels."""
    shown = display_params(
        {k: v for k, v in params.items() if isinstance(v, str | int)},
        localized_label,
        separator=", " if _english() else "、",
        kinds={**PARAM_KINDS, **_EXTRA_KINDS},
    )
    return gettext(template).format(**{**params, **shown})


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
