"""The collector's screens. Each step of seeds 001 and 002 is a button of one
page; the card is read again at every step (it is in the reader), the draft
(what the collector typed) lives in the signed session cookie, the photo in the
terminal's store. Views parse, call ``LaneTerminal``, render."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etcnet.core.codes import PlateColor, VehicleClass, VehicleKind
from etcnet.core.validators import gettext_noop
from etcnet.smartcard.transport import TransportError
from etcnet.terminal.lane import (
    FALLBACK_PAYMENTS,
    Committed,
    ExitRequest,
    LaneError,
    LaneTerminal,
    Person,
    Quote,
    Reading,
    Shift,
)
from etcnet.terminal.web import runtime

PAYMENT_LABELS = {22: "储值卡", 23: "记账卡", 1: "现金", 10: "支付宝", 11: "微信", 0: "免费"}
MODES = {"linkage", "single"}
#: The special cases' names, as the center's SpecialCase labels them.
SPECIAL_LABELS = {
    "status_list": gettext_noop("Card or OBU on the status list"),
    "expired": gettext_noop("Card or OBU expired"),
    "mismatch": gettext_noop("Card, OBU and vehicle do not match"),
    "no_entry": gettext_noop("No entry information"),
    "insufficient_balance": gettext_noop("Insufficient balance"),
    "exempt": gettext_noop("Exempt vehicle"),
    "minimum_fee": gettext_noop("Minimum fee charged"),
    "grey_completed": gettext_noop("Interrupted purchase completed"),
}


def _person(request: HttpRequest) -> Person | None:
    data = request.session.get("person")
    if not data:
        return None
    return Person(data["username"], data["name"], tuple(data["roles"]), data["offline"])


def signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _person(request) is None:
            return redirect("login")
        return view(request, *args, **kwargs)

    return wrapper


def _error(error: LaneError) -> dict[str, str]:
    text = _(error.message)
    with contextlib.suppress(KeyError, IndexError, ValueError):
        text = text.format(**error.params)
    return {"code": error.code, "field": error.field, "text": text}


def _page(
    request: HttpRequest, template: str, extra: dict[str, Any], status: int = 200
) -> HttpResponse:
    with runtime.lane():
        context = runtime.context(extra)
    context["person"] = _person(request)
    return render(request, template, context, status=status)


def login(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            with runtime.lane() as lane:
                person = lane.sign_in(
                    request.POST.get("username", ""), request.POST.get("password", "")
                )
        except LaneError as problem:
            error = _error(problem)
        else:
            request.session.cycle_key()
            request.session["person"] = {
                "username": person.username,
                "name": person.name,
                "roles": list(person.roles),
                "offline": person.offline,
            }
            return redirect("home")
    return _page(
        request,
        "terminal/login.html",
        {"error": error, "username": request.POST.get("username", "")},
        status=400 if error else 200,
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return redirect("login")


def _shift(username: str) -> Shift | None:
    with runtime.lane() as lane:
        return lane.current_shift(username)


@signed_in
def home(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    assert person is not None
    with runtime.lane() as lane:
        shift = lane.current_shift(person.username)
        exit_lanes, entry_lanes = lane.lanes("exit"), lane.lanes("entry")
        recent = lane.outbox.recent(10)
        totals = lane.shift_totals(shift.shift_no) if shift else None
    lane_direction = ""
    if shift:
        lane_direction = "entry" if any(x["number"] == shift.lane for x in entry_lanes) else "exit"
    return _page(
        request,
        "terminal/home.html",
        {
            "shift": shift,
            "totals": totals,
            "exit_lanes": exit_lanes,
            "entry_lanes": entry_lanes,
            "lane_direction": lane_direction,
            "recent": recent,
            "payment_labels": PAYMENT_LABELS,
        },
    )


@require_POST
@signed_in
def start_shift(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    assert person is not None
    try:
        with runtime.lane() as lane:
            lane.start_shift(person, lane=int(request.POST.get("lane", "0") or 0))
    except (LaneError, ValueError) as problem:
        error = _error(problem) if isinstance(problem, LaneError) else {"text": _("Choose a lane.")}
        return _page(request, "terminal/message.html", {"error": error}, status=400)
    request.session.pop("draft", None)
    return redirect("home")


@signed_in
def end_shift(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    assert person is not None
    shift = _shift(person.username)
    if shift is None:
        return redirect("home")
    if request.method == "POST":
        with runtime.lane() as lane:
            totals = lane.end_shift(shift.shift_no)
        request.session.pop("draft", None)
        return _page(
            request,
            "terminal/shift_end.html",
            {"totals": totals, "ended": True, "payment_labels": PAYMENT_LABELS},
        )
    with runtime.lane() as lane:
        totals = lane.shift_totals(shift.shift_no)
    return _page(
        request,
        "terminal/shift_end.html",
        {"totals": totals, "ended": False, "payment_labels": PAYMENT_LABELS},
    )


@require_POST
@signed_in
def sync_now(request: HttpRequest) -> HttpResponse:
    with runtime.lane() as lane:
        lane.sync()
    return redirect(request.POST.get("next") or "home")


def status_json(request: HttpRequest) -> JsonResponse:
    with runtime.lane() as lane:
        status = lane.outbox.status()
        intents = lane.open_intents()
        lists = lane.status_list
        age = lane.list_age(lane.now())
        list_sync = lane.reference.get("list-sync") or {}
        clock = lane.lane_clock()
    return JsonResponse(
        {
            "status_list": {
                "version": lists.version,
                "age_s": None if age is None else int(age.total_seconds()),
                "size": len(lists),
                "needs_full": lists.needs_full,
                "last_sync_utc": list_sync.get("at"),
                "last_error": list_sync.get("error", ""),
            },
            "waiting": status.waiting,
            "needs_attention": status.needs_attention,
            "held_back": status.held_back,
            "held_back_error": status.held_back_error,
            "last_sync_utc": status.last_sync_utc.isoformat() if status.last_sync_utc else None,
            "last_error": status.last_error,
            "clock_offset_ms": status.clock_offset_ms,
            "clock": {
                # center minus terminal, as measured; records carry its negative
                "offset_ms": clock.offset_ms,
                "measured_utc": clock.measured_utc.isoformat() if clock.measured_utc else None,
                "max_ms": clock.max_ms,
                "card_work_refused": clock.beyond or not clock.measured,
            },
            "open_intents": intents,
        }
    )


# -- the exit and entry screens ------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _label(code: Any) -> str:
    return str(code.label if (get_language() or "zh").startswith("zh") else code.label_en)


def _choices() -> dict[str, Any]:
    return {
        "plate_colors": [(int(c), _label(c)) for c in PlateColor],
        "vehicle_classes": [(int(c), f"{int(c)} {_label(c)}") for c in VehicleClass],
        "vehicle_kinds": [(int(k), f"{int(k)} {_label(k)}") for k in VehicleKind],
        "cards": runtime.devices("card"),
        "obus": runtime.devices("obu"),
        "fallback_payments": [(p, PAYMENT_LABELS[p]) for p in FALLBACK_PAYMENTS],
    }


_DRAFT_FIELDS = (
    "card",
    "obu",
    "plate",
    "plate_color",
    "vehicle_class",
    "vehicle_kind",
    "axles",
    "total_weight_kg",
    "station_hex",
    "payment_type",
    "reason",
)


class _Flow:
    """One exit (or entry) screen's state across its buttons."""

    def __init__(self, request: HttpRequest, mode: str) -> None:
        self.request = request
        self.mode = mode
        draft = request.session.get("draft") or {}
        if draft.get("mode") != mode:
            draft = {"mode": mode, "step": "read"}
        for name in _DRAFT_FIELDS:
            if name in request.POST:
                draft[name] = request.POST[name].strip()
        self.draft = draft

    def save(self) -> None:
        self.request.session["draft"] = self.draft

    def reset(self) -> None:
        self.request.session.pop("draft", None)
        self.draft = {"mode": self.mode, "step": "read"}

    def open_card(self) -> Any:
        try:
            return runtime.open_device("card", self.draft.get("card", ""))
        except (FileNotFoundError, TransportError, OSError) as error:
            raise LaneError(
                "no_card",
                gettext_noop("Place the card (choose its file) and read it."),
                field="card",
            ) from error

    def open_obu(self) -> Any:
        if self.mode == "single" or (self.mode == "entry" and not self.draft.get("obu")):
            return None
        try:
            return runtime.open_device("obu", self.draft.get("obu", ""))
        except (FileNotFoundError, TransportError, OSError) as error:
            raise LaneError(
                "no_obu", gettext_noop("Choose the vehicle's OBU and read again."), field="obu"
            ) from error

    def vehicle(self, reading: Reading) -> dict[str, Any]:
        d = self.draft
        return {
            "plate": d.get("plate") or reading.plate,
            "plate_color": _int(d.get("plate_color"))
            if d.get("plate_color") not in (None, "")
            else reading.plate_color,
            "vehicle_class": _int(d.get("vehicle_class"))
            or reading.vehicle_class
            or reading.obu_vehicle_class
            or 1,
            "vehicle_kind": _int(d.get("vehicle_kind")) or 0,
        }


def _quote(lane: LaneTerminal, flow: _Flow, reading: Reading) -> Quote:
    v = flow.vehicle(reading)
    return lane.quote(
        reading,
        plate=v["plate"],
        plate_color=v["plate_color"],
        vehicle_class=v["vehicle_class"],
        vehicle_kind=v["vehicle_kind"],
        # As typed: the lane checks them (and names the field when they are wrong).
        axles=flow.draft.get("axles", ""),
        total_weight_kg=flow.draft.get("total_weight_kg", ""),
    )


@signed_in
def exit_flow(request: HttpRequest, mode: str) -> HttpResponse:
    """ETC联动 (``linkage``, seed 001) and ETC单卡交易 (``single``, seed 002)."""
    if mode not in MODES:
        return redirect("home")
    return _flow(request, mode)


@signed_in
def entry_flow(request: HttpRequest) -> HttpResponse:
    return _flow(request, "entry")


def _flow(request: HttpRequest, mode: str) -> HttpResponse:
    person = _person(request)
    assert person is not None
    shift = _shift(person.username)
    if shift is None:
        return redirect("home")
    flow = _Flow(request, mode)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "new" or (request.method == "GET" and request.GET.get("new")):
        flow.reset()
    error: dict[str, str] | None = None
    reading: Reading | None = None
    quote: Quote | None = None
    committed: Committed | None = None
    try:
        with runtime.lane() as lane:
            if flow.draft.get("card") and action != "new":
                card_t = flow.open_card()
                reading = lane.read(card_t, flow.open_obu())
            if action == "read":
                if reading is None:
                    raise LaneError(
                        "no_card",
                        gettext_noop("Place the card (choose its file) and read it."),
                        field="card",
                    )
                for name in ("plate", "plate_color", "vehicle_class"):
                    flow.draft.pop(name, None)
                flow.draft.pop("photo", None)
                flow.draft.pop("authorised_by", None)
                flow.draft["step"] = "image"
            elif action == "photo" and reading is not None:
                upload = request.FILES.get("photo")
                if upload is not None:
                    try:
                        token = lane.keep_photo(runtime.shrink_photo(upload.read()))
                    except OSError as bad:
                        raise LaneError(
                            "bad_photo",
                            gettext_noop("Take the photo again: it is not a readable image."),
                            field="photo",
                        ) from bad
                    flow.draft["photo"] = token
                if not flow.draft.get("plate"):
                    raise LaneError(
                        "plate_missing", gettext_noop("Enter the actual plate."), field="plate"
                    )
                flow.draft["step"] = "exit" if mode != "entry" else "entry"
            elif action == "quote" and reading is not None:
                quote = _quote(lane, flow, reading)
                flow.draft["step"] = "fee"
            elif action == "authorise" and reading is not None:
                master = lane.authorise(
                    request.POST.get("master_username", ""), request.POST.get("master_password", "")
                )
                flow.draft["authorised_by"] = {
                    "username": master.username,
                    "name": master.name,
                    "roles": list(master.roles),
                    "offline": master.offline,
                }
                quote = _quote(lane, flow, reading)
            elif action == "commit" and reading is not None:
                committed = _commit(lane, flow, reading, person, shift)
                flow.draft = {"mode": mode, "step": "done", "card": flow.draft.get("card", "")}
            elif flow.draft.get("step") == "fee" and reading is not None:
                quote = _quote(lane, flow, reading)
    except LaneError as problem:
        error = _error(problem)
        if reading is not None and flow.draft.get("step") in ("fee",) and quote is None:
            try:
                with runtime.lane() as lane:
                    quote = _quote(lane, flow, reading)
            except LaneError:
                quote = None
    flow.save()
    authorised = flow.draft.get("authorised_by")
    return _page(
        request,
        "terminal/flow.html",
        {
            "mode": mode,
            "shift": shift,
            "draft": flow.draft,
            "reading": reading,
            "problems": [
                {"code": p.code, "text": _(p.message).format(**p.params)}
                for p in (reading.problems if reading else ())
            ],
            "vehicle": flow.vehicle(reading) if reading else {},
            "quote": quote,
            "committed": committed,
            "special_labels": [_(SPECIAL_LABELS.get(c, c)) for c in quote.special_cases]
            if quote
            else [],
            "error": error,
            "master": authorised,
            "payment_labels": PAYMENT_LABELS,
            "now": dt.datetime.now(dt.UTC),
            **_choices(),
        },
        status=400 if error else 200,
    )


def _commit(
    lane: LaneTerminal, flow: _Flow, reading: Reading, person: Person, shift: Shift
) -> Committed:
    d = flow.draft
    v = flow.vehicle(reading)
    photo = lane.photo(d["photo"]) if d.get("photo") else None
    card_t = flow.open_card()
    if flow.mode == "entry":
        return lane.entry(
            card_t,
            reading,
            collector=person,
            shift=shift,
            plate=v["plate"],
            plate_color=v["plate_color"],
            vehicle_class=v["vehicle_class"],
            vehicle_kind=v["vehicle_kind"],
            axles=d.get("axles", ""),
            total_weight_kg=d.get("total_weight_kg", ""),
            photo_jpeg=photo,
            obu_t=flow.open_obu(),
        )
    quote = _quote(lane, flow, reading)
    master = d.get("authorised_by")
    return lane.exit(
        ExitRequest(
            card_t,
            reading,
            quote,
            collector=person,
            shift=shift,
            plate=v["plate"],
            plate_color=v["plate_color"],
            vehicle_kind=v["vehicle_kind"],
            axles=d.get("axles", ""),
            total_weight_kg=d.get("total_weight_kg", ""),
            station_hex=d.get("station_hex", "") if flow.mode == "single" else None,
            authorised_by=Person(
                master["username"], master["name"], tuple(master["roles"]), master["offline"]
            )
            if master
            else None,
            payment_type=_int(d.get("payment_type")),
            reason=d.get("reason", ""),
            photo_jpeg=photo,
            obu_t=flow.open_obu(),
        )
    )
