"""Pages of plate pre-selection: the public site of internet users (register,
log in, pool announcements, the six steps, the printable form), the vehicle
office's registration page and the center operator's settings and pools.

Views parse the input, call one flow or service function and render; the
browser is named by a token kept in its Django session (one selection per
computer, seed 004 rule 2).

One module per audience: ``public`` (home, announcements, register, log in,
account), ``steps`` (the six steps, the form), ``office`` (the vehicle office,
the window), ``manage`` (the center operator), with ``common`` helpers."""

from etcnet.plates.views.manage import manage
from etcnet.plates.views.office import office, window
from etcnet.plates.views.public import (
    LoginView,
    account,
    announcement,
    announcements,
    index,
    logout_view,
    register,
)
from etcnet.plates.views.steps import (
    choose,
    compose,
    contact,
    done,
    form_pdf,
    keys,
    notice,
    random_pick,
    select,
    sms,
    submit,
    verify,
    vin,
)

__all__ = [
    "LoginView",
    "account",
    "announcement",
    "announcements",
    "choose",
    "compose",
    "contact",
    "done",
    "form_pdf",
    "index",
    "keys",
    "logout_view",
    "manage",
    "notice",
    "office",
    "random_pick",
    "register",
    "select",
    "sms",
    "submit",
    "verify",
    "vin",
    "window",
]
