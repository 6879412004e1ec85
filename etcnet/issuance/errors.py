"""Typed issuance errors with stable codes."""

from __future__ import annotations

from etcnet.core.errors import Conflict, FieldIssue, InvalidInput
from etcnet.core.validators import gettext_noop


class NotEditable(Conflict):
    code = "not_editable"
    template = gettext_noop("This application has been approved and can no longer be changed.")


class PhoneNotVerified(Conflict):
    code = "phone_not_verified"
    template = gettext_noop("Verify the customer's phone first.")


class StepIncomplete(InvalidInput):
    code = "step_incomplete"
    template = gettext_noop("Complete every step before submitting.")

    def __init__(self, *, missing: list[str]) -> None:
        super().__init__(
            issues=[
                FieldIssue(step, "step_incomplete", gettext_noop("This step is not complete."))
                for step in missing
            ],
        )
