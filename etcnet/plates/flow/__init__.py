"""The six steps of internet plate pre-selection (seed 004), enforced here:

choose office and district → 1 notice → 2 VIN → 3 owner contact → 4 choose a
number (self-composed in a 90-second window on the virtual keyboard, or random
draws) → 5 SMS code → 6 the pre-selected number and its deadline.

Every call names the browser by ``token`` (kept in its Django session). One user
may have one active session: a call from another browser while one is active
voids both (and any number they hold) and blacklists the user. A self-composed
number is submitted when the window closes; a submission before that comes only
from a tampered page, and voids the selection and blacklists the user.

Each call is one durable transaction that locks the user's account row first, so
two requests of one user never race past a limit. Refusals that must leave a
trace (a counted try, a voided session, a blacklisting) are committed first and
raised afterwards; every other refusal changes nothing.

The steps are split by stage: ``session`` (the transaction and the one-session
rule, start/resume/abandon), ``steps`` (1 to 3), ``choose`` (step 4 and the
lock), ``sms`` (step 5). Callers use the names below:
``from etcnet.plates import flow``.
"""

from etcnet.plates.flow.choose import Verified, draw, keys, open_window, pick, submit, verify
from etcnet.plates.flow.session import abandon, resume, start
from etcnet.plates.flow.sms import confirm_code, resend_code
from etcnet.plates.flow.steps import accept_notice, enter_contact, enter_vehicle

__all__ = [
    "Verified",
    "abandon",
    "accept_notice",
    "confirm_code",
    "draw",
    "enter_contact",
    "enter_vehicle",
    "keys",
    "open_window",
    "pick",
    "resend_code",
    "resume",
    "start",
    "submit",
    "verify",
]
