"""Sign-in (online, or offline against a kept verifier), the station's lanes and
the collector's shifts (上班, 交班) with their totals.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from etcnet.core.validators import gettext_noop
from etcnet.terminal.lane._base import (
    LOCAL,
    LaneBase,
    LaneError,
    Person,
    Shift,
    ShiftTotals,
    _from_iso,
    _iso,
    _shift,
)
from etcnet.terminal.outbox import CenterUnavailable


class Shifts(LaneBase):
    """Sign-in, station, lanes and shifts."""

    # -- sign-in ---------------------------------------------------------------

    def sign_in(self, username: str, password: str, *, role: str = "toll_collector") -> Person:
        """Checked by the center; when it cannot be reached, against the verifier
        kept from this user's last online sign-in here (collectors, within
        ``offline_login_days``) or the downloaded verifiers (station masters)."""
        username = username.strip()
        if not username or not password:
            raise LaneError(
                "login_missing",
                gettext_noop("Enter the staff number and password."),
                field="username",
            )
        try:
            found = self.center.login(username, password)
        except CenterUnavailable:
            return self._offline_sign_in(username, password, role=role)
        if found is None or role not in found.get("roles", ()):
            self._db.execute("BEGIN IMMEDIATE")
            self._journal(self._db, username, "login_refused", role=role, online=True)
            self._db.execute("COMMIT")
            raise LaneError(
                "login_refused",
                gettext_noop("Wrong staff number or password, or not allowed for this task."),
                field="password",
            )
        person = Person(
            username=str(found["username"]),
            name=str(found.get("name") or found["username"]),
            roles=tuple(found["roles"]),
        )
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "INSERT INTO users (username, name, roles, verifier, online_login_utc)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET name = excluded.name,"
            " roles = excluded.roles, verifier = excluded.verifier,"
            " online_login_utc = excluded.online_login_utc",
            (
                person.username,
                person.name,
                json.dumps(person.roles),
                str(found["verifier"]),
                _iso(self.now()),
            ),
        )
        self._journal(self._db, person.username, "login", role=role, online=True)
        self._db.execute("COMMIT")
        return person

    def _offline_sign_in(self, username: str, password: str, *, role: str) -> Person:
        row = self._db.execute(
            "SELECT name, roles, verifier, online_login_utc FROM users WHERE username = ?",
            (username,),
        ).fetchone()
        candidates: list[tuple[str, tuple[str, ...], str]] = []
        # A station master authorises only at his own station (seed 002): offline,
        # only the downloaded verifiers (this station's staff) say who that is, never
        # roles cached at an earlier sign-in, from before he may have moved.
        if row is not None and role != "station_master":
            last = _from_iso(row[3])
            recent = last is not None and self.now() - last <= dt.timedelta(
                days=self.offline_login_days
            )
            if recent:
                candidates.append((row[0], tuple(json.loads(row[1])), row[2]))
        if role == "station_master":
            for user in (self.reference.get("verifiers") or {}).get("users", []):
                if user.get("username") == username:
                    candidates.append(
                        (username, tuple(user.get("roles", ())), str(user.get("verifier", "")))
                    )
        for name, roles, verifier in candidates:
            if role in roles and verifier and self._verify(password, verifier):
                self._db.execute("BEGIN IMMEDIATE")
                self._journal(self._db, username, "login", role=role, online=False)
                self._db.execute("COMMIT")
                return Person(username=username, name=name, roles=roles, offline=True)
        self._db.execute("BEGIN IMMEDIATE")
        self._journal(self._db, username, "login_refused", role=role, online=False)
        self._db.execute("COMMIT")
        raise LaneError(
            "login_offline_refused",
            gettext_noop(
                "The center cannot be reached and this sign-in cannot be checked here: "
                "only a user who signed in on this terminal in the last {days} days can "
                "work offline."
            ),
            field="password",
            days=self.offline_login_days,
        )

    def authorise(self, username: str, password: str) -> Person:
        """站长权限: a station master's staff number and password."""
        return self.sign_in(username, password, role="station_master")

    # -- station, lanes, shifts ------------------------------------------------

    def station(self) -> dict[str, Any]:
        doc = self.reference.get("station")
        if not doc:
            raise LaneError(
                "no_station_data",
                gettext_noop(
                    "This terminal has no station data yet: connect it to the center once."
                ),
            )
        return doc

    def lanes(self, direction: str) -> list[dict[str, Any]]:
        """The lanes this terminal may work in ``direction`` that are enabled
        (seed: 前提：已在系统配置中启用出口车道)."""
        doc = self.reference.get("station") or {}
        return [
            lane
            for lane in doc.get("lanes", [])
            if lane.get("allowed") and lane.get("enabled") and lane.get("direction") == direction
        ]

    def start_shift(self, person: Person, *, lane: int) -> Shift:
        """上班 on a lane; a collector's open shift on this terminal is ended first."""
        if not any(lane == item["number"] for d in ("entry", "exit") for item in self.lanes(d)):
            raise LaneError(
                "lane_not_enabled",
                gettext_noop("Lane {lane} is not an enabled lane of this terminal."),
                field="lane",
                lane=lane,
            )
        now = self.now()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE shifts SET ended_utc = ? WHERE username = ? AND ended_utc IS NULL",
                (_iso(now), person.username),
            )
            (count,) = self._db.execute("SELECT COUNT(*) FROM shifts").fetchone()
            shift_no = f"{now.astimezone(LOCAL):%Y%m%d}-{int(count) + 1}"
            self._db.execute(
                "INSERT INTO shifts (shift_no, username, lane, started_utc) VALUES (?, ?, ?, ?)",
                (shift_no, person.username, lane, _iso(now)),
            )
            self._journal(self._db, person.username, "shift_started", shift=shift_no, lane=lane)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return Shift(shift_no, person.username, lane, now, None)

    def current_shift(self, username: str) -> Shift | None:
        row = self._db.execute(
            "SELECT shift_no, username, lane, started_utc, ended_utc FROM shifts"
            " WHERE username = ? AND ended_utc IS NULL ORDER BY id DESC LIMIT 1",
            (username,),
        ).fetchone()
        return _shift(row) if row else None

    def end_shift(self, shift_no: str) -> ShiftTotals:
        """交班: closes the shift and returns its totals."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "UPDATE shifts SET ended_utc = ? WHERE shift_no = ? AND ended_utc IS NULL",
            (_iso(self.now()), shift_no),
        )
        totals = self.shift_totals(shift_no)
        self._journal(
            self._db,
            totals.shift.username,
            "shift_ended",
            shift=shift_no,
            count=totals.count,
            total_fen=totals.total_fen,
        )
        self._db.execute("COMMIT")
        return totals

    def shift_totals(self, shift_no: str) -> ShiftTotals:
        row = self._db.execute(
            "SELECT shift_no, username, lane, started_utc, ended_utc FROM shifts"
            " WHERE shift_no = ?",
            (shift_no,),
        ).fetchone()
        if row is None:
            raise LaneError("no_shift", gettext_noop("Start a shift first (上班)."))
        by_payment: dict[int, tuple[int, int]] = {}
        count = specials = 0
        for record in self.outbox.records_where("shift", shift_no):
            if record.get("direction") == "entry":
                continue
            count += 1
            specials += bool(record.get("special_case"))
            kind = int(record["payment_type"])
            n, fen = by_payment.get(kind, (0, 0))
            by_payment[kind] = (n + 1, fen + int(record["payable_fen"]))
        return ShiftTotals(
            shift=_shift(row),
            count=count,
            total_fen=sum(fen for _, fen in by_payment.values()),
            by_payment=dict(sorted(by_payment.items())),
            specials=specials,
        )
