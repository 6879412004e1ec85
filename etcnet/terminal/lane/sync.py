"""One round with the center: uploads, reference data, and the status list in
versions under the center's pinned key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from etcnet.lists.versionfile import key_id, public_key_from_text
from etcnet.terminal.lane._base import (
    LIST_KEY,
    LIST_SYNC,
    LOCAL,
    LaneBase,
    ListSyncError,
    _iso,
)
from etcnet.terminal.outbox import CenterUnavailable
from etcnet.terminal.statuslist import ListRefused


class Sync(LaneBase):
    """Uploads, reference data and the status list."""

    # -- sync --------------------------------------------------------------------

    def sync(self) -> dict[str, Any]:
        """One round with the center: upload what is due, refresh the reference
        data, bring the status list up to date."""
        # The machine's own clock throughout: the offset is measured against it.
        reports = self.outbox.sync_all(self.center, now=self.clock)
        refresh = self.reference.refresh(self.center, now=self.clock(), clock=self.clock)
        if refresh.updated and not refresh.failed and not any(r.error for r in reports):
            self.outbox.mark_contact(self.clock(), clock_offset_ms=refresh.clock_offset_ms)
        elif refresh.clock_offset_ms is not None:  # a partial refresh still measured it
            self.outbox.note_clock(refresh.clock_offset_ms, self.clock())
        return {"uploads": reports, "refresh": refresh, "lists": self.sync_status_list()}

    # -- the status list ---------------------------------------------------------

    def list_age(self, now: dt.datetime) -> dt.timedelta | None:
        """How old the status list held is: since its version was published at
        the center (the version number is that minute, Asia/Shanghai)."""
        version = self.status_list.version
        if version is None:
            return None
        published = dt.datetime.strptime(version, "%Y%m%d%H%M").replace(tzinfo=LOCAL)
        return max(now - published, dt.timedelta(0))

    def sync_status_list(self) -> dict[str, Any]:
        """Downloads and applies what the center's plan names: the increments
        after the version held, or a full version first when the list holds
        none, was refused an increment, or fell too far behind. The center's
        signing key is pinned the first time; a different key later is refused
        (the operator resets it by removing the terminal's list key). Never
        raises for the network or a refused file: the list stays as it was."""
        lists = self.status_list
        applied: list[str] = []
        try:
            plan = self.center.list_plan(None if lists.needs_full else lists.version)
            key_id_, key_text = str(plan["key_id"]), str(plan["public_key"])
            pinned = self.reference.get(LIST_KEY)
            if pinned is None:
                key = public_key_from_text(key_text)
                if key_id(key) != key_id_:
                    raise ListSyncError("the center's key and its id do not match")
                self.reference.put(
                    LIST_KEY, {"key_id": key_id_, "public_key": key_text}, now=self.clock()
                )
                lists.trust(key_id_, key)
            elif pinned["key_id"] != key_id_:
                raise ListSyncError(
                    f"the center signs with key {key_id_}, not the pinned {pinned['key_id']}"
                )
            if plan["full_needed"] or lists.version is None:
                full = plan.get("full")
                if not full:
                    raise ListSyncError("the center has no full version yet")
                lists.install_full(self.center.list_file("full", str(full["number"])))
                applied.append(f"full {full['number']}")
            for step in plan["increments"]:
                if lists.version is not None and str(step["number"]) <= lists.version:
                    continue
                lists.apply_increment(self.center.list_file("increment", str(step["number"])))
                applied.append(str(step["number"]))
        except (CenterUnavailable, ListRefused, ListSyncError) as error:
            return self._list_synced(applied, str(error))
        except (KeyError, TypeError, ValueError) as error:
            return self._list_synced(applied, f"bad plan: {error}")
        return self._list_synced(applied, "")

    def _list_synced(self, applied: list[str], error: str) -> dict[str, Any]:
        """The outcome of a list sync, kept for the screen and ``/status.json``."""
        report = {"applied": applied, "version": self.status_list.version, "error": error}
        now = self.clock()
        self.reference.put(LIST_SYNC, {**report, "at": _iso(now)}, now=now)
        return report
