"""The clearing days' own tables: a month's days with their runs, a day's
totals and money as its run recorded them, its run log, and what it held by
§6.2 code."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from etcnet.clearing.models import ClearingDay, ClearingEntry, DayFigure, EntryState, JobRun
from etcnet.clearing.reports.tables import (
    COUNT,
    YUAN,
    Column,
    Period,
    Row,
    Table,
    code_label,
    local_time,
)


def days(month: Period) -> Table:
    """The month's clearing days: status, the run's counts, the last run."""
    found = list(ClearingDay.objects.filter(month.dates_of()).order_by("date"))
    last_runs = {
        run.day_id: run
        for run in JobRun.objects.filter(day__in=found).order_by(
            "day_id", "started_at", "id"
        )  # the last one wins
    }
    table = Table(
        "days",
        _("Clearing days"),
        [
            Column("date", _("Day")),
            Column("status", _("Status")),
            Column("records", _("Records"), COUNT, {"what": "all"}),
            Column("cleared", _("Cleared"), COUNT, {"what": "cleared"}),
            Column("held", _("Held (遗留)"), COUNT, {"what": "held"}),
            Column("sent", _("Sent for 记账"), COUNT, {"what": "sent"}),
            Column("late", _("Late"), COUNT),
            Column("payable", _("Cleared amount"), YUAN, {"what": "cleared"}),
            Column("run", _("Last run")),
        ],
    )
    for day in found:
        run = last_runs.get(day.pk)
        totals = day.totals or {}
        values = {
            "date": day.date.isoformat(),
            "status": day.get_status_display(),
            "records": totals.get("records"),
            "cleared": totals.get("cleared"),
            "held": totals.get("held"),
            "sent": totals.get("sent"),
            "late": totals.get("late"),
            "payable": totals.get("payable_fen"),
            "run": f"{run.get_status_display()} {local_time(run.started_at)}" if run else "",
        }
        key = day.date.isoformat()
        table.rows.append(Row(values, drill={"period": key}, ref=key))
    table.add_total(_("Total"), drill={"period": month.key})
    return table


def totals(day: ClearingDay) -> Table:
    totals = day.totals or {}
    period = {"period": day.date.isoformat()}
    table = Table(
        "totals",
        _("The day's totals"),
        [Column("key", _("Figure")), Column("count", _("Count"), COUNT, {})],
    )
    for key, label, what in (
        ("records", _("Records taken or carried in"), {"what": "all"}),
        ("cleared", _("Cleared"), {"what": "cleared"}),
        ("held", _("Held (遗留)"), {"what": "held"}),
        ("sent", _("Sent for 记账"), {"what": "sent"}),
        ("late", _("Late records (adjustments of closed days)"), {"what": "taken", "late": "1"}),
        ("carried", _("Carried in from earlier days"), {"what": "carried"}),
    ):
        table.rows.append(
            Row(
                {"key": label, "count": totals.get(key)},
                drill=period | what if what is not None else None,
            )
        )
    return table


def money(day: ClearingDay) -> Table:
    totals = day.totals or {}
    table = Table(
        "money",
        _("The day's money"),
        [Column("key", _("Figure")), Column("amount", _("Amount"), YUAN, {"what": "cleared"})],
    )
    period = {"period": day.date.isoformat()}
    table.rows.append(
        Row({"key": _("Payable cleared"), "amount": totals.get("payable_fen")}, period)
    )
    table.rows.append(
        Row({"key": _("Split among the road owners"), "amount": totals.get("split_fen")}, period)
    )
    return table


def runs(day: ClearingDay) -> Table:
    table = Table(
        "runs",
        _("Run log"),
        [
            Column("started", _("Run started")),
            Column("finished", _("Run finished")),
            Column("job", _("Job")),
            Column("status", _("Status")),
            Column("step", _("Step")),
            Column("counts", _("Counts"), wrap=True),
            Column("where", _("Host and process")),
            Column("actor", _("Run by")),
            Column("error", _("Error"), wrap=True),
        ],
    )
    for run in JobRun.objects.filter(day=day).order_by("-started_at", "-id"):
        counts = ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in run.counts.items()
        )
        table.rows.append(
            Row(
                {
                    "started": local_time(run.started_at),
                    "finished": local_time(run.finished_at),
                    "job": run.job,
                    "status": run.get_status_display(),
                    "step": run.step,
                    "counts": counts,
                    "where": f"{run.host} {run.pid or ''}".strip(),
                    "actor": run.actor,
                    "error": run.error,
                },
                ref=run.status,
            )
        )
    return table


def held_by_code(period: Period | None = None) -> Table:
    """What was held (遗留) by §6.2 code: by the period's days (their figures,
    each total linked to its transactions), or, without a period, the entries
    held now (each row's `ref` its code)."""
    rows: QuerySet[Any, dict[str, Any]]
    if period is None:
        rows = (
            ClearingEntry.objects.filter(state=EntryState.HELD)
            .values("hold_code")
            .annotate(n=Count("pk"), payable=Sum("payable_fen"))
        )
        name, title, drill = "held-codes", _("Held now by §6.2 code"), None
    else:
        rows = (
            DayFigure.objects.filter(period.dates_of("day__date"), state=EntryState.HELD)
            .values("hold_code")
            .annotate(n=Sum("trips"), payable=Sum("payable_fen"))
        )
        name, title, drill = "held", _("Held (遗留) by §6.2 code"), {"what": "held"}
    table = Table(
        name,
        title,
        [
            Column("code", _("§6.2 code")),
            Column("trips", _("Trips"), COUNT, drill),
            Column("payable", _("Held amount"), YUAN, drill),
        ],
    )
    for r in rows.order_by("hold_code"):
        values = {"code": code_label(r["hold_code"]), "trips": r["n"], "payable": r["payable"]}
        where = {"period": period.key, "code": str(r["hold_code"])} if period else None
        table.rows.append(Row(values, drill=where, ref=r["hold_code"]))
    table.add_total(_("Total"), drill={"period": period.key} if period else None)
    return table
